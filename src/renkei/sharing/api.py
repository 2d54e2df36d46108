"""Information sharing over the API: reports up the chain, advisories down, anonymized copies across.

Reads go through `restrict` / `get_restricted_or_404`, so a report, advisory or copy the caller may
not see is the same 404 as one that does not exist. Writes go through sharing/services.py, which
decides again. This module only turns codes into objects and objects into JSON.

Every POST runs in one transaction and honours `Idempotency-Key` (see renkei.core.idempotency).
Text is stored as sent and returned as JSON strings; nothing here renders HTML.
"""

import contextlib
import datetime as dt
import functools
from uuid import UUID

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, ValidationError
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from ninja import Query, Router, Status
from ninja.decorators import decorate_view

from renkei.core.access import get_restricted_or_404
from renkei.core.api import paginate
from renkei.core.choices import Action
from renkei.core.problems import (
    STATUS_DETAILS,
    Problem,
    ProblemType,
    invalid_param,
    problem_response,
    validation_problem,
)
from renkei.core.reference_cache import cached_reference
from renkei.core.schemas import ProblemOut
from renkei.directory.models import Organization, Sector, User
from renkei.sharing import misp, services, stix
from renkei.sharing.choices import GrantReason
from renkei.sharing.deadlines import stage_deadlines
from renkei.sharing.delivery import acknowledgement_reminders, advisory_recipient_memberships
from renkei.sharing.downloads import advisory_attachment_download, report_attachment_download
from renkei.sharing.misp import (
    advisory_event,
    anonymized_report_event,
    event_response,
    report_event,
)
from renkei.sharing.models import (
    FORWARD_ROLES,
    REPORTING_ROLES,
    Acknowledgement,
    Advisory,
    AdvisoryAttachment,
    AdvisoryAudience,
    AnonymizedReport,
    Attachment,
    CauseCategory,
    CauseClassification,
    DeadlineProfile,
    InboxItem,
    Report,
    ReportComment,
    ReportVersion,
    StoredFile,
)
from renkei.sharing.observables import normalize_observable
from renkei.sharing.schemas import (
    AcknowledgeIn,
    AcknowledgementOut,
    AcknowledgementTableOut,
    AdvisoryIn,
    AdvisoryOut,
    AdvisoryPageOut,
    AdvisoryQuery,
    AnonymizedReportIn,
    AnonymizedReportOut,
    AnonymizedReportPageOut,
    AnonymizedReportQuery,
    ClassificationIn,
    ClassificationOut,
    CommentIn,
    CommentOut,
    ForwardIn,
    ForwardOut,
    InboxPageOut,
    LabelIn,
    LabelOut,
    LinkIn,
    LinksOut,
    ObservableIn,
    ReportDetailOut,
    ReportIn,
    ReportOut,
    ReportPageOut,
    ReportQuery,
    ReportUpdateIn,
)
from renkei.sharing.search import filter_anonymized, filter_reports, search_anonymized, search_reports
from renkei.sharing.services import (
    ISSUER_TYPES,
    AnonymizedInput,
    AttachmentInput,
    ObservableInput,
    ReportInput,
)
from renkei.sharing.stix import (
    REPORT_BUNDLE_PREFETCH,
    SEARCH_EXPORT_LIMIT,
    advisory_bundle,
    anonymized_report_bundle,
    bundle_response,
    report_bundle,
    reports_bundle,
)

router = Router(tags=["sharing"])

LIST_ERRORS = {401: ProblemOut, 422: ProblemOut}
DETAIL_ERRORS = {401: ProblemOut, 404: ProblemOut}
WRITE_ERRORS = {401: ProblemOut, 403: ProblemOut, 413: ProblemOut, 415: ProblemOut, 422: ProblemOut}
MAX_ATTACHMENTS = 10
# Services refuse with these codes when the caller may see the object but not do this to it.
FORBIDDEN_CODES = {"not_allowed", "not_triage", "not_reporter", "not_issuer", "tlp_red"}


# --- Request plumbing -----------------------------------------------------------------------------


def _openapi_answer(description: str, media_type: str, schema: dict) -> dict:
    """OpenAPI for an operation that answers a document other than its JSON schema."""
    return {"responses": {200: {"description": description, "content": {media_type: {"schema": schema}}}}}


FILE_DOWNLOAD = _openapi_answer(
    "The file, as a download.", "application/octet-stream", {"type": "string", "format": "binary"}
)
STIX_BUNDLE = _openapi_answer("A STIX 2.1 bundle.", stix.MEDIA_TYPE, {"type": "object"})
MISP_EVENT = _openapi_answer("A MISP event, as PyMISP writes it.", misp.MEDIA_TYPE, {"type": "object"})


def _multipart_body(part: str, schema: str) -> dict:
    """OpenAPI for the multipart alternative: the JSON body as the `part` field, plus files."""
    return {
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [part],
                        "properties": {
                            part: {"$ref": f"#/components/schemas/{schema}"},
                            "attachments": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "maxItems": MAX_ATTACHMENTS,
                            },
                        },
                    },
                    "encoding": {part: {"contentType": "application/json"}},
                }
            }
        }
    }


def _too_large(detail: str):
    return problem_response(status=413, title=_("Request body too large"), detail=detail)


def _json_part_as_body(part: str):
    """Let an operation take multipart bodies: the `part` field holds the JSON body that ninja then
    validates as usual (one schema, one validation path), the `attachments` field the files."""

    def decorator(run):
        @functools.wraps(run)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.content_type != "multipart/form-data":
                return run(request, *args, **kwargs)
            max_file = settings.RENKEI_ATTACHMENT_MAX_BYTES
            limit = MAX_ATTACHMENTS * max_file + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
                return _too_large(_("The body may be at most %(limit)s.") % {"limit": filesizeformat(limit)})
            try:
                form, files = request.POST, request.FILES.getlist("attachments")
            except (RequestDataTooBig, SuspiciousOperation, MultiPartParserError):
                return _too_large(
                    _("At most %(count)d attachments, and form fields of at most %(limit)s.")
                    % {
                        "count": MAX_ATTACHMENTS,
                        "limit": filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE),
                    }
                )
            if len(files) > MAX_ATTACHMENTS:
                return _too_large(
                    _("At most %(count)d attachments per request.") % {"count": MAX_ATTACHMENTS}
                )
            oversized = [upload.name for upload in files if upload.size > max_file]
            if oversized:
                return _too_large(
                    _("%(names)s: an attachment may be at most %(limit)s.")
                    % {"names": ", ".join(oversized), "limit": filesizeformat(max_file)}
                )
            if part not in form:
                return problem_response(
                    status=422,
                    detail=STATUS_DETAILS[422],
                    type=ProblemType.VALIDATION,
                    invalid_params=[invalid_param(part, _("This field is required."), "body")],
                )
            # The multipart stream has been read, so `request.body` is unavailable; hand ninja the part.
            request._body = form[part].encode()
            return run(request, *args, **kwargs)

        return wrapper

    return decorator


def _attachments(request: HttpRequest) -> list[AttachmentInput]:
    if request.content_type != "multipart/form-data":
        return []
    return [
        AttachmentInput(filename=upload.name, content_type=upload.content_type or "", content=upload.read())
        for upload in request.FILES.getlist("attachments")
    ]


@contextlib.contextmanager
def service_errors(rename: dict[str, str] | None = None, forbidden: frozenset | set = FORBIDDEN_CODES):
    """A service's refusal as the API answers it: 403 when the caller may see the object but not do
    this (the `forbidden` codes), otherwise 422 naming the fields (renamed to their place in the
    request body)."""
    try:
        yield
    except ValidationError as error:
        if not hasattr(error, "error_dict"):
            if {e.code for e in error.error_list} & forbidden:
                raise Problem(403, " ".join(error.messages)) from None
            raise
        rename = rename or {}
        raise validation_problem(
            [
                invalid_param(rename.get(field, field), message, "body")
                for field, messages in error.message_dict.items()
                for message in messages
            ]
        ) from None


@contextlib.contextmanager
def _query_errors():
    """Unknown codes in filters are 422 errors about the query, never an empty list."""
    try:
        yield
    except ValidationError as error:
        raise validation_problem(
            [
                invalid_param(field, message, "query")
                for field, messages in error.message_dict.items()
                for message in messages
            ]
        ) from None


class _Problems:
    """Collects every invalid field of a request body, so one answer names them all."""

    def __init__(self):
        self.params: list[dict] = []

    def add(self, name: str, reason: str) -> None:
        self.params.append(invalid_param(name, reason, "body"))

    def raise_any(self) -> None:
        if self.params:
            raise validation_problem(self.params)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """Times sent without a time zone are Japan time (the platform's time zone)."""
    if value is None or timezone.is_aware(value):
        return value
    return timezone.make_aware(value)


def _query_time(name: str, value: str | None) -> dt.datetime | dt.date | None:
    if not value:
        return None
    parsed = None
    with contextlib.suppress(ValueError):
        parsed = parse_datetime(value) or parse_date(value)
    if parsed is None:
        raise validation_problem(
            [invalid_param(name, _("Use an ISO 8601 date or date-time, e.g. 2026-04-01."), "query")]
        )
    return parsed


def _acting_organization(user, organization_id: int | None, roles, *, types=()) -> Organization:
    """The organization the caller acts for: the one named, or their only one with these roles."""
    candidates = (
        Organization.objects.filter(active=True, memberships__user=user, memberships__role__in=roles)
        .select_related("parent")  # a report's routing asks for the CEPTOAR above
        .distinct()
    )
    if types:
        candidates = candidates.filter(type__in=types)
    candidates = list(candidates.order_by("pk"))
    if organization_id is not None:
        chosen = next((org for org in candidates if org.pk == organization_id), None)
        if chosen is None:
            raise validation_problem(
                [invalid_param("organization", _("You cannot act for this organization here."), "body")]
            )
        return chosen
    if not candidates:
        raise Problem(403, _("None of your organizations can do this."))
    if len(candidates) > 1:
        raise validation_problem(
            [
                invalid_param(
                    "organization",
                    _("You belong to several organizations that can do this; give the id of one: %(ids)s")
                    % {"ids": ", ".join(str(org.pk) for org in candidates)},
                    "body",
                )
            ]
        )
    return candidates[0]


def _code(problems: _Problems, model, field: str, code: str | None, message: str):
    """The reference row (sector, cause category, deadline profile) with this code."""
    if code is None:
        return None
    found = cached_reference(("code", model, code), lambda: model.objects.filter(code=code).first())
    if found is None:
        problems.add(field, message % {"code": code})
    return found


def _observables(problems: _Problems, items: list[ObservableIn], field: str = "observables") -> list:
    observables = []
    for index, item in enumerate(items):
        try:
            normalize_observable(item.type, item.value)
        except ValidationError as error:
            problems.add(f"{field}.{index}.value", " ".join(error.messages))
        observables.append(ObservableInput(str(item.type), item.value))
    return observables


def _sectors(problems: _Problems, user, codes: list[str], field: str) -> list[Sector]:
    """Active sectors by code; retired and unknown codes are named as unknown."""
    found = {
        sector.code: sector
        for sector in Sector.objects.restrict(user, Action.VIEW).filter(code__in=codes, active=True)
    }
    unknown = [code for code in dict.fromkeys(codes) if code not in found]
    if unknown:
        problems.add(field, _("Unknown sector code: %(values)s") % {"values": ", ".join(unknown)})
    return [found[code] for code in dict.fromkeys(codes) if code in found]


def _organizations(problems: _Problems, user, ids: list[int], field: str) -> list[Organization]:
    """Organizations the caller may see, by id; others are unknown, whether they exist or not."""
    found = {org.pk: org for org in Organization.objects.restrict(user, Action.VIEW).filter(pk__in=ids)}
    unknown = [pk for pk in dict.fromkeys(ids) if pk not in found]
    if unknown:
        problems.add(
            field, _("Unknown organization: %(values)s") % {"values": ", ".join(map(str, sorted(unknown)))}
        )
    return [found[pk] for pk in dict.fromkeys(ids) if pk in found]


def _people(problems: _Problems, user, usernames: list[str], field: str) -> list[User]:
    """Active people the caller may see, by username; others are unknown, whether they exist or not."""
    if not usernames:
        return []
    found = {
        person.username: person
        for person in User.objects.restrict(user, Action.VIEW).filter(username__in=usernames, is_active=True)
    }
    unknown = [name for name in dict.fromkeys(usernames) if name not in found]
    if unknown:
        problems.add(field, _("Unknown user: %(values)s") % {"values": ", ".join(unknown)})
    return [found[name] for name in dict.fromkeys(usernames) if name in found]


# --- Output ---------------------------------------------------------------------------------------


def _org(organization: Organization) -> dict:
    return {
        "id": organization.pk,
        "name_ja": organization.name_ja,
        "name_en": organization.name_en,
        "type": organization.type,
    }


def _report(report: Report) -> dict:
    return {
        "id": report.pk,
        "organization": _org(report.organization),
        "reporter": report.reporter.username,
        "title": report.title,
        "sector": report.sector.code,
        "kind": report.kind,
        "status": report.status,
        "stage": report.stage,
        "tlp": report.tlp,
        "cause": report.cause.code,
        "narrative": report.narrative,
        "occurred_at": report.occurred_at,
        "detected_at": report.detected_at,
        "share_with_ceptoar": report.share_with_ceptoar,
        "anonymized_copy_consent": report.anonymized_copy_consent,
        "ransom_paid": report.ransom_paid,
        "deadline_profile": report.deadline_profile.code if report.deadline_profile else None,
        "version_count": report.version_count,
        "created_at": report.created_at,
        "updated_at": report.updated_at,
    }


def _impact(version: ReportVersion) -> dict:
    return {
        "confidentiality": version.impact_confidentiality,
        "integrity": version.impact_integrity,
        "availability": version.impact_availability,
        "service_state": version.service_state,
        "users_affected": version.users_affected,
        "duration_minutes": version.duration_minutes,
        "area": version.area,
    }


def _stored_file(attachment: StoredFile, download_url: str) -> dict:
    """What the API says of an attachment, a report's or an advisory's."""
    return {
        "id": attachment.pk,
        "filename": attachment.filename,
        "size": attachment.blob.size,
        "sha256": attachment.blob_id,
        "content_type": attachment.content_type,
        "uploaded_by": attachment.uploaded_by.username,
        "created_at": attachment.created_at,
        "download_url": download_url,
    }


def _attachment(attachment: Attachment, version: ReportVersion) -> dict:
    url = reverse(
        "api:report_attachment_download",
        kwargs={"report_id": version.report_id, "attachment_id": attachment.pk},
    )
    return _stored_file(attachment, url) | {"version": version.number}


def _version(version: ReportVersion) -> dict:
    return {
        "number": version.number,
        "stage": version.stage,
        "author": version.author.username,
        "created_at": version.created_at,
        "title": version.title,
        "status": version.status,
        "cause": version.cause.code,
        "occurred_at": version.occurred_at,
        "detected_at": version.detected_at,
        "impact": _impact(version),
        "affected_services": version.affected_services,
        "narrative": version.narrative,
        "observables": [{"type": o.type, "value": o.value} for o in version.observables.all()],
        "attachments": [_attachment(a, version) for a in version.attachments.all()],
    }


def _comment(comment: ReportComment) -> dict:
    return {
        "id": comment.pk,
        "kind": comment.kind,
        "parent": comment.parent_id,
        "author": comment.author.username,
        "organization": _org(comment.author_organization),
        "body": comment.body,
        "created_at": comment.created_at,
    }


def _classification(classification: CauseClassification) -> dict:
    return {
        "cause": classification.cause.code,
        "classified_by": classification.classified_by.username,
        "note": classification.note,
        "created_at": classification.created_at,
    }


def _linked(user, report: Report) -> list[UUID]:
    """The reports linked to `report` that `user` may see."""
    return list(
        Report.objects.restrict(user, Action.VIEW)
        .filter(pk__in=report.linked.values("pk"))
        .values_list("pk", flat=True)
    )


def _reports(user):
    return Report.objects.restrict(user, Action.VIEW).select_related(
        "organization", "reporter", "sector", "cause", "deadline_profile"
    )


def _report_detail(user, report: Report) -> dict:
    versions = list(
        report.versions.select_related("author", "cause").prefetch_related(
            "observables",
            Prefetch("attachments", queryset=Attachment.objects.select_related("blob", "uploaded_by")),
        )
    )
    current = versions[-1]
    observables = dict.fromkeys((o.type, o.value) for v in versions for o in v.observables.all())
    deadlines = stage_deadlines(report, versions=versions)
    return _report(report) | {
        "impact": _impact(current),
        "affected_services": current.affected_services,
        "observables": [{"type": kind, "value": value} for kind, value in observables],
        "recipients": list(
            report.grants.filter(reason=GrantReason.NAMED)
            .order_by("user__username")
            .values_list("user__username", flat=True)
        ),
        "versions": [_version(v) for v in versions],
        "attachments": [_attachment(a, v) for v in versions for a in v.attachments.all()],
        "comments": [_comment(c) for c in report.comments.select_related("author", "author_organization")],
        "cause_history": [
            _classification(c) for c in report.classifications.select_related("cause", "classified_by")
        ],
        "linked": _linked(user, report),
        "deadlines": [
            {
                "stage": d.stage.code,
                "name": str(d.stage),
                "due_at": d.due_at,
                "fulfilled_at": d.fulfilled_at,
                "overdue": d.overdue,
                "late": d.late,
            }
            for d in deadlines
        ],
    }


# --- Reports --------------------------------------------------------------------------------------


@router.post(
    "/reports",
    response={201: ReportOut, **WRITE_ERRORS},
    summary="Submit a report",
    openapi_extra=_multipart_body("report", "ReportIn"),
)
@decorate_view(_json_part_as_body("report"))
def report_create(request: HttpRequest, payload: ReportIn):
    """File an incident report. It reaches your organization, the sector's ministries and the national
    centre, your CEPTOAR if `share_with_ceptoar`, and for TLP:RED only the named `recipients`.
    Send JSON, or multipart with the JSON as the `report` field and files as `attachments`.
    The answer is the report as lists show it; `GET /reports/{id}` has its versions and the rest."""
    user = request.auth
    organization = _acting_organization(user, payload.organization, REPORTING_ROLES)
    problems = _Problems()
    sector = _code(problems, Sector, "sector", payload.sector, _("Unknown sector code: %(code)s"))
    cause = _code(problems, CauseCategory, "cause", payload.cause, _("Unknown cause category: %(code)s"))
    profile = _code(
        problems,
        DeadlineProfile,
        "deadline_profile",
        payload.deadline_profile,
        _("Unknown deadline profile: %(code)s"),
    )
    observables = _observables(problems, payload.observables)
    recipients = _people(problems, user, payload.recipients, "recipients")
    problems.raise_any()
    impact = payload.impact
    data = ReportInput(
        title=payload.title,
        sector=sector,
        kind=payload.kind,
        detected_at=_aware(payload.detected_at),
        occurred_at=_aware(payload.occurred_at),
        cause=cause,
        tlp=payload.tlp,
        narrative=payload.narrative,
        status=payload.status,
        share_with_ceptoar=payload.share_with_ceptoar,
        anonymized_copy_consent=payload.anonymized_copy_consent,
        recipients=recipients,
        observables=observables,
        attachments=_attachments(request),
        impact_confidentiality=impact.confidentiality,
        impact_integrity=impact.integrity,
        impact_availability=impact.availability,
        service_state=impact.service_state,
        users_affected=impact.users_affected,
        duration_minutes=impact.duration_minutes,
        area=impact.area,
        affected_services=payload.affected_services,
        deadline_profile=profile,
        ransom_paid=payload.ransom_paid,
    )
    with service_errors():
        report = services.report_submit(reporter=user, organization=organization, data=data)
    # Answered with the summary of what was just stored, which holds nothing the submitter did not
    # send: reading the whole report back doubled the cost of a submission.
    return Status(201, _report(report))


@router.get("/reports", response={200: ReportPageOut, **LIST_ERRORS}, summary="Reports")
def report_list(request: HttpRequest, filters: Query[ReportQuery]):
    """Reports you may see, newest first. `q` searches titles and narratives (Japanese included);
    the other filters take the same codes as everywhere. An unknown code is a 422, not an empty list."""
    page = paginate(request, _found_reports(request.auth, filters), filters)
    page["items"] = [_report(report) for report in page["items"]]
    return page


def _found_reports(user, filters: ReportQuery):
    with _query_errors():
        reports = filter_reports(
            _reports(user),
            sector=filters.sector,
            cause=filters.cause,
            tlp=filters.tlp,
            status=filters.status,
            since=_query_time("since", filters.since),
            until=_query_time("until", filters.until),
        )
    return search_reports(reports, filters.q)


@router.get(
    "/reports/stix",
    response={200: None, **LIST_ERRORS},
    summary="Export the reports a search finds as one STIX 2.1 bundle",
    openapi_extra=STIX_BUNDLE,
)
def report_search_stix(request: HttpRequest, filters: Query[ReportQuery]):
    """The reports `GET /reports` finds with the same filters (paging aside), as one STIX 2.1 bundle:
    each as `GET /reports/{id}/stix` exports it, with shared objects once. At most 500 reports: a
    search that finds more is a 422, so narrow it (by `since`, for instance)."""
    found = list(
        _found_reports(request.auth, filters).prefetch_related(*REPORT_BUNDLE_PREFETCH)[
            : SEARCH_EXPORT_LIMIT + 1
        ]
    )
    if len(found) > SEARCH_EXPORT_LIMIT:
        raise validation_problem(
            [
                invalid_param(
                    "q",
                    _("The search finds more than %(limit)d reports; narrow it to export them.")
                    % {"limit": SEARCH_EXPORT_LIMIT},
                    "query",
                )
            ]
        )
    return bundle_response(reports_bundle(found))


@router.get(
    "/reports/{uuid:report_id}", response={200: ReportDetailOut, **DETAIL_ERRORS}, summary="One report"
)
def report_detail(request: HttpRequest, report_id: UUID):
    """The report with its versions, observables, attachments (as download links), comments, cause
    history, linked reports you may see, and deadlines. A report you may not see is a 404."""
    user = request.auth
    return _report_detail(user, get_restricted_or_404(_reports(user), user, Action.VIEW, pk=report_id))


@router.post(
    "/reports/{uuid:report_id}/updates",
    response={201: ReportDetailOut, 404: ProblemOut, **WRITE_ERRORS},
    summary="Add an update or the final report",
    openapi_extra=_multipart_body("update", "ReportUpdateIn"),
)
@decorate_view(_json_part_as_body("update"))
def report_update(request: HttpRequest, report_id: UUID, payload: ReportUpdateIn):
    """Add a version to the report's thread (`stage`: `update` or `final`). Fields you leave out keep
    their current value; observables and attachments are added. Sector and label do not change here.
    Send JSON, or multipart with the JSON as the `update` field and files as `attachments`."""
    user = request.auth
    report = get_restricted_or_404(_reports(user), user, Action.VIEW, pk=report_id)
    current = report.versions.select_related("cause").order_by("-number").first()
    sent = payload.model_fields_set
    problems = _Problems()
    cause = _code(problems, CauseCategory, "cause", payload.cause, _("Unknown cause category: %(code)s"))
    observables = _observables(problems, payload.observables)
    problems.raise_any()
    impact = _impact(current) | (payload.impact.model_dump(exclude_unset=True) if payload.impact else {})

    def sent_or(name: str, current_value):
        """The value sent for `name`, or the current one when the field was left out (or null)."""
        sent_value = getattr(payload, name)
        return current_value if sent_value is None else sent_value

    data = ReportInput(
        title=sent_or("title", current.title),
        sector=report.sector,
        kind=report.kind,
        detected_at=_aware(sent_or("detected_at", current.detected_at)),
        occurred_at=_aware(payload.occurred_at) if "occurred_at" in sent else current.occurred_at,
        cause=cause or current.cause,
        tlp=report.tlp,
        narrative=sent_or("narrative", current.narrative),
        status=sent_or("status", report.status),
        observables=observables,
        attachments=_attachments(request),
        impact_confidentiality=impact["confidentiality"],
        impact_integrity=impact["integrity"],
        impact_availability=impact["availability"],
        service_state=impact["service_state"],
        users_affected=impact["users_affected"],
        duration_minutes=impact["duration_minutes"],
        area=impact["area"],
        affected_services=sent_or("affected_services", current.affected_services),
        ransom_paid=sent_or("ransom_paid", report.ransom_paid),
    )
    with service_errors():
        services.report_update(author=user, report=report, data=data, stage=payload.stage)
    return Status(201, _report_detail(user, _reports(user).get(pk=report.pk)))


@router.post(
    "/reports/{uuid:report_id}/comments",
    response={201: CommentOut, 404: ProblemOut, **WRITE_ERRORS},
    summary="Comment, ask or answer",
)
def report_comment_create(request: HttpRequest, report_id: UUID, payload: CommentIn):
    """A comment by anyone who may see the report; a `question` to the reporter by the ministries and
    the national centre that received it; an `answer` by the reporting organization, with `parent`
    the question's id."""
    user = request.auth
    report = get_restricted_or_404(Report.objects.all(), user, Action.VIEW, pk=report_id)
    parent = None
    if payload.parent is not None:
        parent = ReportComment.objects.filter(report=report, pk=payload.parent).first()
        if parent is None:
            raise validation_problem([invalid_param("parent", _("No such comment on this report."), "body")])
    with service_errors():
        comment = services.report_comment(
            author=user, report=report, body=payload.body, kind=payload.kind, parent=parent
        )
    return Status(201, _comment(comment))


@router.post(
    "/reports/{uuid:report_id}/forward",
    response={200: ForwardOut, 404: ProblemOut, **WRITE_ERRORS},
    summary="Forward within the TLP ceiling",
)
def report_forward(request: HttpRequest, report_id: UUID, payload: ForwardIn):
    """Add organizations or people to the report's audience, within what its label allows. The answer
    lists those newly added (forwarding to someone who already has it adds nothing)."""
    user = request.auth
    report = get_restricted_or_404(Report.objects.all(), user, Action.VIEW, pk=report_id)
    problems = _Problems()
    organizations = _organizations(problems, user, payload.organizations, "organizations")
    people = _people(problems, user, payload.people, "people")
    problems.raise_any()
    with service_errors(rename={"users": "people"}):
        grants = services.report_forward(actor=user, report=report, organizations=organizations, users=people)
    return {
        "organizations": [_org(g.organization) for g in grants if g.organization_id],
        "people": [g.user.username for g in grants if g.user_id],
    }


def _links(user, report: Report) -> dict:
    return {"report": report.pk, "linked": _linked(user, report)}


@router.post(
    "/reports/{uuid:report_id}/links",
    response={200: LinksOut, 404: ProblemOut, **WRITE_ERRORS},
    summary="Link to another report",
)
def report_link_create(request: HttpRequest, report_id: UUID, payload: LinkIn):
    """Mark two reports as related; the link shows on both. The ministries and the national centre
    that received both reports may link them; others who can see the report get 403. Linking reports
    that are already linked changes nothing. The answer lists the linked reports you may see."""
    user = request.auth
    report = get_restricted_or_404(Report.objects.all(), user, Action.VIEW, pk=report_id)
    # A report the caller may not see is as unknown as one that does not exist.
    other = Report.objects.restrict(user, Action.VIEW).filter(pk=payload.report).first()
    if other is None:
        raise validation_problem(
            [invalid_param("report", _("Unknown report: %(values)s") % {"values": payload.report}, "body")]
        )
    with service_errors(rename={"other": "report"}):
        services.report_link(actor=user, report=report, other=other)
    return _links(user, report)


@router.delete(
    "/reports/{uuid:report_id}/links/{uuid:other_id}",
    response={200: LinksOut, 403: ProblemOut, **DETAIL_ERRORS},
    summary="Remove a link",
)
def report_link_delete(request: HttpRequest, report_id: UUID, other_id: UUID):
    """Remove the link between two reports, on both; who may is as for linking. Removing a link that
    is not there changes nothing. The answer lists the linked reports you may see."""
    user = request.auth
    report = get_restricted_or_404(Report.objects.all(), user, Action.VIEW, pk=report_id)
    other = get_restricted_or_404(Report.objects.all(), user, Action.VIEW, pk=other_id)
    with service_errors():
        services.report_unlink(actor=user, report=report, other=other)
    return _links(user, report)


@router.post(
    "/reports/{uuid:report_id}/classifications",
    response={201: ClassificationOut, 404: ProblemOut, **WRITE_ERRORS},
    summary="Reclassify the cause",
)
def report_reclassify(request: HttpRequest, report_id: UUID, payload: ClassificationIn):
    """Set the report's cause, with a note saying why; earlier classifications stay in its
    `cause_history`. The ministries and the national centre that received the report may; others
    who can see it get 403."""
    user = request.auth
    report = get_restricted_or_404(Report.objects.all(), user, Action.VIEW, pk=report_id)
    problems = _Problems()
    cause = _code(problems, CauseCategory, "cause", payload.cause, _("Unknown cause category: %(code)s"))
    problems.raise_any()
    with service_errors():
        classification = services.report_reclassify(actor=user, report=report, cause=cause, note=payload.note)
    return Status(201, _classification(classification))


@router.post(
    "/reports/{uuid:report_id}/label",
    response={200: LabelOut, 404: ProblemOut, **WRITE_ERRORS},
    summary="Change the TLP label",
)
def report_relabel(request: HttpRequest, report_id: UUID, payload: LabelIn):
    """Change the report's TLP label. The reporting organization may; the national centre may with
    the reporting organization's consent (`source_consent`). Others who can see the report get 403.
    The audience stays as it is; a stricter label limits who may be added from now on. Raising the
    label to RED names the reporting chain's duty coordinators."""
    user = request.auth
    report = get_restricted_or_404(Report.objects.all(), user, Action.VIEW, pk=report_id)
    with service_errors():
        report = services.report_relabel(
            actor=user, report=report, tlp=payload.tlp, source_consent=payload.source_consent
        )
    return {
        "report": report.pk,
        "tlp": report.tlp,
        "visible": Report.objects.restrict(user, Action.VIEW).filter(pk=report.pk).exists(),
    }


@router.get(
    "/reports/{uuid:report_id}/attachments/{uuid:attachment_id}",
    response={200: None, **DETAIL_ERRORS},
    summary="Download an attachment",
    url_name="report_attachment_download",
    openapi_extra=FILE_DOWNLOAD,
)
def report_attachment(request: HttpRequest, report_id: UUID, attachment_id: UUID):
    """The file, always as a download (`application/octet-stream`, never rendered by a browser), to
    those who may see the report. Each download is recorded in the audit trail."""
    user = request.auth
    report = get_restricted_or_404(Report.objects.all(), user, Action.VIEW, pk=report_id)
    return report_attachment_download(user=user, report=report, attachment_id=attachment_id)


@router.get(
    "/reports/{uuid:report_id}/stix",
    response={200: None, **DETAIL_ERRORS},
    summary="Export a report as STIX 2.1",
    openapi_extra=STIX_BUNDLE,
)
def report_stix(request: HttpRequest, report_id: UUID):
    """The report as a STIX 2.1 bundle: `incident` and `report`, an `indicator` per observable,
    `observed-data`, and `identity` objects for the reporting organization and the sector, marked
    with the official TLP 2.0 marking definitions. The id may also be an anonymized copy's (as
    `GET /anonymized-reports` lists them): its bundle holds the copy alone and never names the source.
    An id you may not see is a 404, like a missing one."""
    exported = _exported_report(request.auth, report_id)
    if isinstance(exported, Report):
        return bundle_response(report_bundle(exported))
    return bundle_response(anonymized_report_bundle(exported))


@router.get(
    "/reports/{uuid:report_id}/misp",
    response={200: None, **DETAIL_ERRORS},
    summary="Export a report as a MISP event",
    openapi_extra=MISP_EVENT,
)
def report_misp(request: HttpRequest, report_id: UUID):
    """The report as a MISP event, as PyMISP reads it: an attribute per observable, the `tlp:*` tag,
    and the MISP distribution level that matches the TLP label. The id may also be an anonymized
    copy's: its event holds the copy alone, without `Orgc`, and never names the source. An id you
    may not see is a 404, like a missing one."""
    exported = _exported_report(request.auth, report_id)
    if isinstance(exported, Report):
        return event_response(report_event(exported))
    return event_response(anonymized_report_event(exported))


def _exported_report(user, report_id: UUID) -> Report | AnonymizedReport:
    """The report to export; or, asked for by its own id, an anonymized copy the reader may see. The
    original's id never gives the copy: that would tie the copy to its source."""
    reports = Report.objects.restrict(user, Action.VIEW).select_related("organization", "sector", "cause")
    report = reports.prefetch_related(*REPORT_BUNDLE_PREFETCH).filter(pk=report_id).first()
    if report is not None:
        return report
    return get_restricted_or_404(_anonymized_copies(user), user, Action.VIEW, pk=report_id)


# --- Advisories -----------------------------------------------------------------------------------

AUDIENCE_FIELDS = {
    name: f"audience.{name}" for name in ("sectors", "organization_types", "organizations", "people")
}


def _advisories(user):
    return (
        Advisory.objects.restrict(user, Action.VIEW)
        .select_related("issuer", "issued_by")
        .prefetch_related(
            Prefetch(
                "audience",
                queryset=AdvisoryAudience.objects.select_related("sector", "organization", "user"),
            ),
            Prefetch("source_reports", queryset=Report.objects.restrict(user, Action.VIEW).only("pk")),
            "observables",
            Prefetch(
                "attachments", queryset=AdvisoryAttachment.objects.select_related("blob", "uploaded_by")
            ),
        )
    )


def _advisory_summary(advisory: Advisory) -> dict:
    return {
        "id": advisory.pk,
        "issuer": _org(advisory.issuer),
        "title": advisory.title,
        "severity": advisory.severity,
        "tlp": advisory.tlp,
        "ack_required": advisory.ack_required,
        "ack_due": advisory.ack_due,
        "created_at": advisory.created_at,
    }


def _advisory(advisory: Advisory, issuer_chain: set) -> dict:
    entries = list(advisory.audience.all())
    audience = None
    if advisory.pk in issuer_chain:
        audience = {
            "all_ci": any(e.all_ci for e in entries),
            "sectors": [e.sector.code for e in entries if e.sector_id],
            "organization_types": [e.organization_type for e in entries if e.organization_type],
            "organizations": [_org(e.organization) for e in entries if e.organization_id],
            "people": [e.user.username for e in entries if e.user_id],
        }
    return _advisory_summary(advisory) | {
        "issued_by": advisory.issued_by.username,
        "body": advisory.body,
        "audience": audience,
        "source_reports": [report.pk for report in advisory.source_reports.all()],
        "observables": [{"type": o.type, "value": o.value} for o in advisory.observables.all()],
        "attachments": [_advisory_attachment(a) for a in advisory.attachments.all()],
    }


def _advisory_attachment(attachment: AdvisoryAttachment) -> dict:
    url = reverse(
        "api:advisory_attachment_download",
        kwargs={"advisory_id": attachment.advisory_id, "attachment_id": attachment.pk},
    )
    return _stored_file(attachment, url)


def _issuer_chain(user, advisories: list[Advisory]) -> set:
    """Which of these advisories the caller's organization issued (and so may see the audience of)."""
    return set(
        Advisory.objects.restrict(user, Action.CHANGE)
        .filter(pk__in=[a.pk for a in advisories])
        .values_list("pk", flat=True)
    )


@router.post(
    "/advisories",
    response={201: AdvisoryOut, **WRITE_ERRORS},
    summary="Issue an advisory",
    openapi_extra=_multipart_body("advisory", "AdvisoryIn"),
)
@decorate_view(_json_part_as_body("advisory"))
def advisory_create(request: HttpRequest, payload: AdvisoryIn):
    """Issue an advisory to an audience. The national centre may address anyone; a ministry its
    sectors and their organizations; a CEPTOAR its member organizations. TLP:RED goes to named
    people only. Delivery (inbox, e-mail, webhooks) starts once it is stored. Send JSON, or
    multipart with the JSON as the `advisory` field and files as `attachments`."""
    user = request.auth
    organization = _acting_organization(user, payload.organization, FORWARD_ROLES, types=ISSUER_TYPES)
    audience = payload.audience
    # Resolved through the access function: an organization or person the issuer may not see is
    # as unknown as one that does not exist.
    problems = _Problems()
    sectors = _sectors(problems, user, audience.sectors, "audience.sectors")
    organizations = _organizations(problems, user, audience.organizations, "audience.organizations")
    people = _people(problems, user, audience.people, "audience.people")
    observables = _observables(problems, payload.observables)
    problems.raise_any()
    data = services.AdvisoryInput(
        title=payload.title,
        body=payload.body,
        severity=payload.severity,
        tlp=payload.tlp,
        all_ci=audience.all_ci,
        sectors=sectors,
        organization_types=[str(t) for t in audience.organization_types],
        organizations=organizations,
        people=people,
        ack_required=payload.ack_required,
        ack_due=_aware(payload.ack_due),
        source_reports=[str(pk) for pk in payload.source_reports],
        observables=observables,
        attachments=_attachments(request),
    )
    with service_errors(rename=AUDIENCE_FIELDS):
        advisory = services.advisory_issue(issuer=user, organization=organization, data=data)
    advisory = _advisories(user).get(pk=advisory.pk)
    return Status(201, _advisory(advisory, _issuer_chain(user, [advisory])))


@router.get("/advisories", response={200: AdvisoryPageOut, **LIST_ERRORS}, summary="Advisories")
def advisory_list(request: HttpRequest, filters: Query[AdvisoryQuery]):
    """Advisories you may see (issued by your organization or addressed to you), newest first."""
    advisories = _advisories(request.auth)
    if filters.severity:
        advisories = advisories.filter(severity=filters.severity)
    if filters.tlp:
        advisories = advisories.filter(tlp=filters.tlp)
    page = paginate(request, advisories, filters)
    chain = _issuer_chain(request.auth, page["items"])
    page["items"] = [_advisory(advisory, chain) for advisory in page["items"]]
    return page


@router.get(
    "/advisories/{uuid:advisory_id}", response={200: AdvisoryOut, **DETAIL_ERRORS}, summary="One advisory"
)
def advisory_detail(request: HttpRequest, advisory_id: UUID):
    user = request.auth
    advisory = get_restricted_or_404(_advisories(user), user, Action.VIEW, pk=advisory_id)
    return _advisory(advisory, _issuer_chain(user, [advisory]))


@router.get(
    "/advisories/{uuid:advisory_id}/attachments/{uuid:attachment_id}",
    response={200: None, **DETAIL_ERRORS},
    summary="Download an advisory's attachment",
    url_name="advisory_attachment_download",
    openapi_extra=FILE_DOWNLOAD,
)
def advisory_attachment(request: HttpRequest, advisory_id: UUID, attachment_id: UUID):
    """The file, always as a download, to those who may see the advisory; recorded in the audit
    trail."""
    user = request.auth
    advisory = get_restricted_or_404(Advisory.objects.all(), user, Action.VIEW, pk=advisory_id)
    return advisory_attachment_download(user=user, advisory=advisory, attachment_id=attachment_id)


@router.get(
    "/advisories/{uuid:advisory_id}/stix",
    response={200: None, **DETAIL_ERRORS},
    summary="Export an advisory as STIX 2.1",
    openapi_extra=STIX_BUNDLE,
)
def advisory_stix(request: HttpRequest, advisory_id: UUID):
    """The advisory as a STIX 2.1 bundle: a `report` from the issuer's `identity`, with an `indicator`
    per observable, marked with the official TLP 2.0 marking definition."""
    return bundle_response(advisory_bundle(_exported_advisory(request.auth, advisory_id)))


def _exported_advisory(user, advisory_id: UUID) -> Advisory:
    advisory = Advisory.objects.select_related("issuer").prefetch_related("observables")
    return get_restricted_or_404(advisory, user, Action.VIEW, pk=advisory_id)


@router.get(
    "/advisories/{uuid:advisory_id}/misp",
    response={200: None, **DETAIL_ERRORS},
    summary="Export an advisory as a MISP event",
    openapi_extra=MISP_EVENT,
)
def advisory_misp(request: HttpRequest, advisory_id: UUID):
    """The advisory as a MISP event from its issuer: an attribute per observable, the `tlp:*` tag, the
    matching distribution level and a threat level from the severity."""
    return event_response(advisory_event(_exported_advisory(request.auth, advisory_id)))


@router.get("/inbox", response={200: InboxPageOut, **LIST_ERRORS}, summary="Your inbox")
def inbox(request: HttpRequest, filters: Query[AdvisoryQuery]):
    """The advisories delivered to you, newest first, with whether your organization acknowledged each."""
    user = request.auth
    items = (
        InboxItem.objects.filter(user=user, advisory__in=Advisory.objects.restrict(user, Action.VIEW))
        .select_related("advisory__issuer", "organization")
        .annotate(
            acknowledged=Exists(
                Acknowledgement.objects.filter(
                    advisory_id=OuterRef("advisory_id"), organization_id=OuterRef("organization_id")
                )
            )
        )
    )
    if filters.severity:
        items = items.filter(advisory__severity=filters.severity)
    if filters.tlp:
        items = items.filter(advisory__tlp=filters.tlp)
    page = paginate(request, items, filters)
    page["items"] = [
        {
            "advisory": _advisory_summary(item.advisory),
            "organization": _org(item.organization),
            "delivered_at": item.delivered_at,
            "read_at": item.read_at,
            "acknowledged": item.acknowledged,
        }
        for item in page["items"]
    ]
    return page


@router.post(
    "/advisories/{uuid:advisory_id}/ack",
    response={200: AcknowledgementOut, 404: ProblemOut, **WRITE_ERRORS},
    summary="Acknowledge an advisory",
)
def advisory_ack(request: HttpRequest, advisory_id: UUID, payload: AcknowledgeIn | None = None):
    """Acknowledge for your organization (one acknowledgement per organization: acknowledging again,
    or after a colleague, returns the first one). The body is optional."""
    user = request.auth
    advisory = get_restricted_or_404(Advisory.objects.all(), user, Action.ACKNOWLEDGE, pk=advisory_id)
    organization = None
    if payload is not None and payload.organization is not None:
        organization = Organization.objects.filter(
            pk=payload.organization, memberships__user=user, active=True
        ).first()
        if organization is None:
            raise validation_problem(
                [invalid_param("organization", _("You are not a member of this organization."), "body")]
            )
    with service_errors():
        acknowledgement = services.advisory_acknowledge(
            user=user, advisory=advisory, organization=organization
        )
    return {
        "advisory": advisory.pk,
        "organization": _org(acknowledgement.organization),
        "acknowledged_by": acknowledgement.user.username,
        "acknowledged_at": acknowledgement.created_at,
    }


@router.get(
    "/advisories/{uuid:advisory_id}/acks",
    response={200: AcknowledgementTableOut, **DETAIL_ERRORS},
    summary="Who acknowledged",
)
def advisory_acks(request: HttpRequest, advisory_id: UUID):
    """For the issuer's chain only (others get 404): every organization in the advisory's audience, who
    acknowledged for it and when (those that have not come first), and the reminders sent."""
    user = request.auth
    advisory = get_restricted_or_404(Advisory.objects.all(), user, Action.CHANGE, pk=advisory_id)
    acknowledgements = {
        ack.organization_id: ack
        for ack in Acknowledgement.objects.filter(advisory=advisory).select_related("user")
    }
    reached = Organization.objects.filter(
        Q(pk__in=advisory_recipient_memberships(advisory).values("organization_id"))
        | Q(pk__in=list(acknowledgements))
    ).order_by("name_ja", "pk")
    rows = [
        {
            "organization": _org(org),
            "acknowledged_by": acknowledgements[org.pk].user.username if org.pk in acknowledgements else None,
            "acknowledged_at": acknowledgements[org.pk].created_at if org.pk in acknowledgements else None,
        }
        for org in reached
    ]
    rows.sort(key=lambda row: row["acknowledged_at"] is not None)
    return {
        "advisory": advisory.pk,
        "ack_required": advisory.ack_required,
        "ack_due": advisory.ack_due,
        "acknowledged": len(acknowledgements),
        "pending": len(rows) - len(acknowledgements),
        "organizations": rows,
        "reminders": [
            {
                "sent_at": reminder["at"],
                "organizations": reminder.get("organizations", []),
                "recipients": reminder.get("recipients", 0),
            }
            for reminder in acknowledgement_reminders(advisory)
        ],
    }


# --- Anonymized copies ----------------------------------------------------------------------------


def _anonymized_copies(user):
    return (
        AnonymizedReport.objects.restrict(user, Action.VIEW)
        .select_related("sector", "cause")
        .prefetch_related("observables")
    )


def _anonymized(copy: AnonymizedReport, visible_sources: set) -> dict:
    return {
        "id": copy.pk,
        "organization": None,
        "source": copy.source_id if copy.source_id in visible_sources else None,
        "title": copy.title,
        "narrative": copy.narrative,
        "sector": copy.sector.code if copy.sector_id else None,
        "kind": copy.kind,
        "cause": copy.cause.code,
        "occurred_month": copy.occurred_month,
        "tlp": copy.tlp,
        # The date only: a precise time could be matched against the original's.
        "published_on": timezone.localdate(copy.created_at),
        "observables": [{"type": o.type, "value": o.value} for o in copy.observables.all()],
    }


def _visible_sources(user, copies: list[AnonymizedReport]) -> set:
    return set(
        Report.objects.restrict(user, Action.VIEW)
        .filter(pk__in=[c.source_id for c in copies])
        .values_list("pk", flat=True)
    )


@router.get(
    "/anonymized-reports",
    response={200: AnonymizedReportPageOut, **LIST_ERRORS},
    summary="Anonymized reports",
)
def anonymized_report_list(request: HttpRequest, filters: Query[AnonymizedReportQuery]):
    """Sanitized cross-sector copies you may see, newest first. They never name the source; `source`
    links the original only for those who may see it."""
    user = request.auth
    copies = _anonymized_copies(user)
    with _query_errors():
        copies = filter_anonymized(copies, sector=filters.sector, cause=filters.cause)
    copies = search_anonymized(copies, filters.q)
    page = paginate(request, copies, filters)
    sources = _visible_sources(user, page["items"])
    page["items"] = [_anonymized(copy, sources) for copy in page["items"]]
    return page


@router.get(
    "/anonymized-reports/{uuid:copy_id}",
    response={200: AnonymizedReportOut, **DETAIL_ERRORS},
    summary="One anonymized report",
)
def anonymized_report_detail(request: HttpRequest, copy_id: UUID):
    user = request.auth
    copy = get_restricted_or_404(_anonymized_copies(user), user, Action.VIEW, pk=copy_id)
    return _anonymized(copy, _visible_sources(user, [copy]))


ANONYMIZED_AUDIENCE_FIELDS = {name: f"audience.{name}" for name in ("sectors", "organizations", "people")}


@router.post(
    "/reports/{uuid:report_id}/anonymized-copies",
    response={201: AnonymizedReportOut, 404: ProblemOut, **WRITE_ERRORS},
    summary="Publish an anonymized copy",
)
def report_anonymized_copy_create(request: HttpRequest, report_id: UUID, payload: AnonymizedReportIn):
    """Publish a sanitized copy of a report whose organization consented to one
    (`anonymized_copy_consent`). The national centre's coordinators and analysts, and the reporting
    organization, may; others who can see the report get 403. The copy never names the organization
    or the reporter: a title, narrative or kept observable that still contains their names is a 422.
    It takes the original's kind and cause and the month of occurrence only, and has its own id,
    label and audience."""
    user = request.auth
    report = get_restricted_or_404(
        Report.objects.select_related("organization", "reporter", "sector", "cause"),
        user,
        Action.VIEW,
        pk=report_id,
    )
    audience = payload.audience
    problems = _Problems()
    observables = _observables(problems, payload.observables)
    sectors = _sectors(problems, user, audience.sectors, "audience.sectors")
    organizations = _organizations(problems, user, audience.organizations, "audience.organizations")
    people = _people(problems, user, audience.people, "audience.people")
    problems.raise_any()
    data = AnonymizedInput(
        title=payload.title,
        narrative=payload.narrative,
        keep_sector=payload.keep_sector,
        tlp=payload.tlp,
        all_ci=audience.all_ci,
        sectors=sectors,
        organizations=organizations,
        people=people,
        observables=observables,
    )
    with service_errors(rename=ANONYMIZED_AUDIENCE_FIELDS):
        copy = services.anonymized_copy_create(actor=user, source=report, data=data)
    # Answered from what was just stored: the creator need not be in the copy's audience.
    return Status(201, _anonymized(copy, {report.pk}))
