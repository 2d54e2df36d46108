"""Writes for information sharing: reports and their audience, triage, advisories and their
acknowledgements, anonymized cross-sector copies.

Every service is atomic and audited in the same transaction; notifications are queued in that
transaction too, so they exist exactly when the change does.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.core.choices import Action
from renkei.core.services import check as _check
from renkei.correlation.choices import SourceKind
from renkei.correlation.services import index_sightings
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization, Sector, User
from renkei.sharing.choices import (
    CommentKind,
    GrantReason,
    ReportKind,
    ReportStatus,
    ServiceState,
    Severity,
    Tlp,
    VersionStage,
)
from renkei.sharing.deadlines import sector_default_profile
from renkei.sharing.models import (
    COMMUNITY_TYPES,
    FORWARD_ROLES,
    REPORTING_ROLES,
    TRIAGE_ROLES,
    TRIAGE_TYPES,
    Acknowledgement,
    Advisory,
    AdvisoryAttachment,
    AdvisoryAudience,
    AdvisoryObservable,
    AnonymizedObservable,
    AnonymizedReport,
    AnonymizedReportAudience,
    Attachment,
    Blob,
    CauseCategory,
    CauseClassification,
    DeadlineProfile,
    DeadlineStage,
    Observable,
    Report,
    ReportComment,
    ReportGrant,
    ReportVersion,
)
from renkei.sharing.observables import normalize_observable
from renkei.sharing.signals import report_changed
from renkei.sharing.tasks import advisory_fan_out, report_follow_up

REFERENCE_DATA = Path(__file__).parent / "referencedata" / "sharing.json"
# Clocks differ between an operator's systems and ours; a few minutes ahead is not "in the future".
CLOCK_SKEW = dt.timedelta(minutes=5)


@transaction.atomic
def sharing_reference_data_load(*, actor=None, path: Path = REFERENCE_DATA) -> dict[str, int]:
    """Create the cause taxonomy and deadline profiles that are missing; never overwrite edits."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    created = {"causes": 0, "deadline_profiles": 0}
    for item in data["causes"]:
        if CauseCategory.objects.filter(code=item["code"]).exists():
            continue
        cause = CauseCategory.objects.create(
            code=item["code"],
            parent=CauseCategory.objects.get(code=item["parent"]) if item["parent"] else None,
            name_ja=item["name_ja"],
            name_en=item["name_en"],
            display_order=item["display_order"],
        )
        audit_write(actor=actor, action=AuditAction.CREATE, obj=cause, after=snapshot(cause))
        created["causes"] += 1
    for item in data["deadline_profiles"]:
        if DeadlineProfile.objects.filter(code=item["code"]).exists():
            continue
        profile = DeadlineProfile.objects.create(
            code=item["code"],
            name_ja=item["name_ja"],
            name_en=item["name_en"],
            description=item["description"],
        )
        for order, stage in enumerate(item["stages"], start=1):
            DeadlineStage.objects.create(profile=profile, order=order, **stage)
        profile.sectors.set(Sector.objects.filter(code__in=item["sectors"]))
        audit_write(actor=actor, action=AuditAction.CREATE, obj=profile, after=snapshot(profile))
        created["deadline_profiles"] += 1
    return created


@dataclass(frozen=True)
class ObservableInput:
    type: str
    value: str


@dataclass(frozen=True)
class AttachmentInput:
    filename: str
    content_type: str
    content: bytes


@dataclass
class ReportInput:
    """What a reporter fills in. The same shape serves the initial report and every update."""

    title: str
    sector: Sector
    kind: str
    detected_at: dt.datetime
    cause: CauseCategory
    occurred_at: dt.datetime | None = None
    tlp: str = Tlp.AMBER
    narrative: str = ""
    status: str = ReportStatus.OPEN
    share_with_ceptoar: bool = False
    anonymized_copy_consent: bool = False
    recipients: Sequence[User] = ()
    observables: Sequence[ObservableInput] = ()
    attachments: Sequence[AttachmentInput] = ()
    impact_confidentiality: bool = False
    impact_integrity: bool = False
    impact_availability: bool = False
    service_state: str = ServiceState.NONE
    users_affected: int | None = None
    duration_minutes: int | None = None
    area: str = ""
    affected_services: str = ""
    deadline_profile: DeadlineProfile | None = None
    ransom_paid: bool = False
    extra: dict = field(default_factory=dict)


@dataclass
class AdvisoryInput:
    """What an issuer fills in. Audience codes are resolved to objects before this is built."""

    title: str
    body: str
    severity: str = Severity.MEDIUM
    tlp: str = Tlp.AMBER
    all_ci: bool = False
    sectors: Sequence[Sector] = ()
    organization_types: Sequence[str] = ()
    organizations: Sequence[Organization] = ()
    people: Sequence[User] = ()
    ack_required: bool = False
    ack_due: dt.datetime | None = None
    source_reports: Sequence[Report] = ()
    observables: Sequence[ObservableInput] = ()
    attachments: Sequence[AttachmentInput] = ()


@dataclass
class AnonymizedInput:
    """The sanitized copy as its creator redacted it; observables are the ones chosen to keep."""

    title: str
    narrative: str
    keep_sector: bool
    tlp: str = Tlp.GREEN
    all_ci: bool = True
    sectors: Sequence[Sector] = ()
    organizations: Sequence[Organization] = ()
    people: Sequence[User] = ()
    observables: Sequence[tuple[str, str]] = ()


def _validate_report(data: ReportInput) -> list[ObservableInput]:
    _check(bool(data.title and data.title.strip()), _("A title is required."), "title", "title")
    _check(len(data.title) <= 200, _("The title is longer than 200 characters."), "title", "title")
    _check(data.kind in ReportKind.values, _("Kind must be failure or sign."), "kind", "kind")
    _check(data.tlp in Tlp.values, _("Unknown TLP label %(tlp)s.") % {"tlp": data.tlp}, "tlp", "tlp")
    _check(data.status in ReportStatus.values, _("Unknown status."), "status", "status")
    _check(
        data.service_state in ServiceState.values,
        _("Unknown service state."),
        "service_state",
        "service_state",
    )
    _check(data.cause.active, _("That cause category is retired."), "cause", "cause")
    now = timezone.now()
    _check(
        data.detected_at <= now + CLOCK_SKEW,
        _("The detection time is in the future."),
        "detected_at",
        "detected_at",
    )
    if data.occurred_at is not None:
        _check(
            data.occurred_at <= data.detected_at,
            _("The incident cannot occur after it was detected."),
            "occurred_at",
            "occurred_at",
        )
    _validate_attachments(data.attachments)
    return _normalized_observables(data.observables)


def _validate_attachments(attachments: Sequence[AttachmentInput]) -> None:
    max_bytes = settings.RENKEI_ATTACHMENT_MAX_BYTES
    for attachment in attachments:
        _check(
            len(attachment.content) <= max_bytes,
            _("%(name)s is larger than the limit of %(limit)d MB.")
            % {"name": attachment.filename, "limit": max_bytes // (1024 * 1024)},
            "attachment_size",
            "attachments",
        )
        _check(
            bool(attachment.filename.strip()),
            _("An attachment needs a file name."),
            "attachment_name",
            "attachments",
        )


def _normalized_observables(observables: Sequence[ObservableInput]) -> list[ObservableInput]:
    """Each observable in its canonical form, once."""
    normalized = []
    for observable in observables:
        try:
            normalized.append(
                ObservableInput(observable.type, normalize_observable(observable.type, observable.value))
            )
        except ValidationError as error:
            raise ValidationError({"observables": error.messages}, code="observable") from None
    return list(dict.fromkeys(normalized))


# In SQL because every submission reads it: the ORM took about 1 ms of CPU to build the query with
# its check, four times what the whole read costs written out.
MANDATED_CHAIN = """
    SELECT chain.* FROM directory_organization chain
    WHERE chain.active
      AND (chain.type = %s
           OR chain.id IN (SELECT organization_id FROM directory_sector_ministries WHERE sector_id = %s))
"""
IF_MAY_REPORT = """
      AND EXISTS (
          SELECT 1 FROM directory_membership membership
          JOIN directory_organization source ON source.id = membership.organization_id
          JOIN directory_organization_sectors source_sector ON source_sector.organization_id = source.id
          WHERE membership.user_id = %s AND source.id = %s AND source.active
            AND source_sector.sector_id = %s AND membership.role IN ({roles}))
""".format(roles=", ".join(["%s"] * len(REPORTING_ROLES)))  # noqa: S608 (placeholders only)


def mandated_chain(sector: Sector) -> list[Organization]:
    """The sector's ministries and the national centre: every report's mandatory recipients."""
    return _in_chain_order(
        Organization.objects.raw(MANDATED_CHAIN, [OrganizationType.NATIONAL_CENTER, sector.pk])
    )


def _mandated_chain_if_may_report(
    reporter: User, organization: Organization, sector: Sector
) -> list[Organization]:
    """`mandated_chain(sector)`, or nobody unless `reporter` may report for `organization` (active,
    in `sector`, with a reporting role): the check rides along in the same query."""
    chain = Organization.objects.raw(
        MANDATED_CHAIN + IF_MAY_REPORT,
        [
            OrganizationType.NATIONAL_CENTER,
            sector.pk,
            reporter.pk,
            organization.pk,
            sector.pk,
            *REPORTING_ROLES,
        ],
    )
    return _in_chain_order(chain)


def _in_chain_order(chain: Iterable[Organization]) -> list[Organization]:
    # Ministries first, then the centre: the order grants and duty coordinators are listed in.
    return sorted(chain, key=lambda org: (org.type == OrganizationType.NATIONAL_CENTER, org.pk))


def duty_coordinators(organizations: Sequence[Organization]) -> list[User]:
    """The default named recipients of a TLP:RED report: the chain's coordinators."""
    return list(
        User.objects.filter(
            is_active=True,
            memberships__organization__in=organizations,
            memberships__role=Role.COORDINATOR,
        ).distinct()
    )


def _store_attachment(model, *, uploader: User, attachment: AttachmentInput, **owner):
    """An Attachment (owner: version=…) or AdvisoryAttachment (owner: advisory=…), its content
    stored once by its SHA-256."""
    digest = hashlib.sha256(attachment.content).hexdigest()
    blob, created = Blob.objects.get_or_create(sha256=digest, defaults={"size": len(attachment.content)})
    path = blob_path(digest)
    if created or not default_storage.exists(path):
        default_storage.save(path, ContentFile(attachment.content))
    return model.objects.create(
        **owner,
        blob=blob,
        filename=Path(attachment.filename).name[:255],
        content_type=(attachment.content_type or "application/octet-stream")[:100],
        uploaded_by=uploader,
    )


def blob_path(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256}"


def _add_version(
    *,
    report: Report,
    author: User,
    data: ReportInput,
    stage: str,
    number: int,
    observables: list[ObservableInput],
) -> ReportVersion:
    version = ReportVersion.objects.create(
        report=report,
        number=number,
        stage=stage,
        author=author,
        title=data.title.strip(),
        status=data.status,
        cause=data.cause,
        occurred_at=data.occurred_at,
        detected_at=data.detected_at,
        impact_confidentiality=data.impact_confidentiality,
        impact_integrity=data.impact_integrity,
        impact_availability=data.impact_availability,
        service_state=data.service_state,
        users_affected=data.users_affected,
        duration_minutes=data.duration_minutes,
        area=data.area,
        affected_services=data.affected_services,
        narrative=data.narrative,
    )
    Observable.objects.bulk_create(
        Observable(version=version, type=o.type, value=o.value) for o in observables
    )
    index_sightings(SourceKind.REPORT, report.pk, [(o.type, o.value) for o in observables])
    for attachment in data.attachments:
        _store_attachment(Attachment, version=version, uploader=author, attachment=attachment)
    return version


def _grant_new_report(report: Report, audience: list[tuple[str, Organization | User]], *, by: User) -> None:
    """A new report's audience in one insert; the first reason given for an organization or a
    person is the one kept."""
    grants: dict[tuple[type, int], ReportGrant] = {}
    for reason, holder in audience:
        is_organization = isinstance(holder, Organization)
        grants.setdefault(
            (type(holder), holder.pk),
            ReportGrant(
                report=report,
                organization=holder if is_organization else None,
                user=None if is_organization else holder,
                reason=reason,
                report_is_red=report.tlp == Tlp.RED,
                granted_by=by,
            ),
        )
    ReportGrant.objects.bulk_create(grants.values())


def report_submit(*, reporter: User, organization: Organization, data: ReportInput) -> Report:
    """File an initial report and route it: the reporter's organization, the sector's ministries and
    the national centre, the CEPTOAR if chosen, and for TLP:RED the named people.

    Everything is checked before anything is written, so the writes need no savepoint: if one of
    them fails, the caller's transaction (the API request's) is rolled back whole."""
    # One query when all is well: the chain comes back only if the reporter may report here. When it
    # does not, the checks say what is wrong, or the chain is read again (a sector may have none).
    chain = _mandated_chain_if_may_report(reporter, organization, data.sector)
    if not chain:
        _check(
            organization.active
            and reporter.memberships.filter(organization=organization, role__in=REPORTING_ROLES).exists(),
            _("You cannot report on behalf of this organization."),
            "not_reporter",
        )
        _check(
            organization.sectors.filter(pk=data.sector.pk).exists(),
            _("%(organization)s is not in the sector %(sector)s.")
            % {"organization": organization, "sector": data.sector},
            "sector",
            "sector",
        )
        chain = mandated_chain(data.sector)
    observables = _validate_report(data)
    ceptoar = (
        organization.parent
        if organization.parent and organization.parent.type == OrganizationType.CEPTOAR
        else None
    )
    _check(
        not data.share_with_ceptoar or ceptoar is not None,
        _("Your organization has no CEPTOAR to share with."),
        "no_ceptoar",
        "share_with_ceptoar",
    )
    recipients = list(data.recipients)
    if data.tlp == Tlp.RED and not recipients:
        recipients = duty_coordinators(chain + ([ceptoar] if data.share_with_ceptoar else []))
    _check(
        data.tlp == Tlp.RED or not recipients,
        _("Named recipients are only for TLP:RED reports."),
        "recipients",
        "recipients",
    )
    profile = data.deadline_profile or sector_default_profile(data.sector)

    with transaction.atomic(savepoint=False):
        report = Report.objects.create(
            organization=organization,
            reporter=reporter,
            sector=data.sector,
            kind=data.kind,
            status=data.status,
            tlp=data.tlp,
            share_with_ceptoar=data.share_with_ceptoar,
            anonymized_copy_consent=data.anonymized_copy_consent,
            deadline_profile=profile,
            ransom_paid=data.ransom_paid,
            title=data.title.strip(),
            cause=data.cause,
            narrative=data.narrative,
            occurred_at=data.occurred_at,
            detected_at=data.detected_at,
            stage=VersionStage.INITIAL,
            version_count=1,
        )
        _add_version(
            report=report,
            author=reporter,
            data=data,
            stage=VersionStage.INITIAL,
            number=1,
            observables=observables,
        )
        CauseClassification.objects.create(report=report, cause=data.cause, classified_by=reporter)
        audience = [
            (GrantReason.SOURCE, organization),
            # The reporter always sees their own report, whatever its label or their later roles.
            (GrantReason.SOURCE, reporter),
            *((GrantReason.MANDATED, recipient) for recipient in chain),
            *([(GrantReason.CEPTOAR, ceptoar)] if data.share_with_ceptoar else []),
            *((GrantReason.NAMED, person) for person in recipients),
        ]
        _grant_new_report(report, audience, by=reporter)
        audit_write(
            actor=reporter, action=AuditAction.CREATE, obj=report, after=snapshot(report, just_created=True)
        )
        _follow_up(report, "submitted")
        report_changed.send(sender=Report, report=report, event="submitted")
    return report


@transaction.atomic
def report_update(
    *, author: User, report: Report, data: ReportInput, stage: str = VersionStage.UPDATE
) -> ReportVersion:
    """Add an immutable version to the thread; the report's current state follows it."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    _check(
        report.organization.memberships.filter(user=author, role__in=REPORTING_ROLES).exists(),
        _("Only the reporting organization can add versions."),
        "not_reporter",
    )
    _check(report.status != ReportStatus.CLOSED, _("This report is closed."), "closed")
    _check(stage in (VersionStage.UPDATE, VersionStage.FINAL), _("Unknown stage."), "stage", "stage")
    _check(
        data.sector == report.sector,
        _("A report's sector cannot change; file a new report."),
        "sector",
        "sector",
    )
    _check(
        data.tlp == report.tlp, _("Change the label with the relabel action, not in an update."), "tlp", "tlp"
    )
    observables = _validate_report(data)
    before = snapshot(report)
    number = report.version_count + 1
    version = _add_version(
        report=report, author=author, data=data, stage=stage, number=number, observables=observables
    )
    if data.cause != report.cause:
        CauseClassification.objects.create(report=report, cause=data.cause, classified_by=author)
    report.title = version.title
    report.status = (
        ReportStatus.RESOLVED
        if stage == VersionStage.FINAL and data.status == ReportStatus.OPEN
        else data.status
    )
    report.cause = data.cause
    report.narrative = data.narrative
    report.occurred_at = data.occurred_at
    report.detected_at = data.detected_at
    report.ransom_paid = data.ransom_paid or report.ransom_paid
    report.stage = stage
    report.version_count = number
    report.save()
    audit_write(actor=author, action=AuditAction.UPDATE, obj=report, before=before, after=snapshot(report))
    _follow_up(report, "updated")
    report_changed.send(sender=Report, report=report, event="updated")
    return version


def _follow_up(report: Report, event: str) -> None:
    # Queued in the change's own transaction (tasks live in the same database): the follow-up (the
    # e-mail, the situation rules' look) exists exactly when the change does, even if the process
    # dies right after the commit.
    report_follow_up.enqueue(report_id=str(report.pk), event=event)


def _may(user: User, report: Report, action: str) -> bool:
    return Report.objects.restrict(user, action).filter(pk=report.pk).exists()


def _member_of(user: User, organization: Organization, roles: Sequence[str] = ()) -> bool:
    memberships = user.memberships.filter(organization=organization, organization__active=True)
    return (memberships.filter(role__in=roles) if roles else memberships).exists()


# --- Comments, questions and answers ---------------------------------------------------------------

COMMENT_MAX_LENGTH = 20_000


def _comment_organization(author: User, report: Report, kind: str) -> Organization:
    """The organization a comment speaks for: the source for answers, the triaging body for
    questions, otherwise the author's organization that received the report."""
    if kind == CommentKind.ANSWER:
        return report.organization
    memberships = author.memberships.filter(organization__active=True).select_related("organization")
    if kind == CommentKind.QUESTION:
        memberships = memberships.filter(role__in=TRIAGE_ROLES, organization__type__in=TRIAGE_TYPES)
    receiving = memberships.filter(organization__report_grants__report=report)
    membership = (
        memberships.filter(organization=report.organization).first()
        or receiving.order_by("organization_id").first()
        or memberships.order_by("organization_id").first()
    )
    _check(membership is not None, _("You need an organization to write on reports."), "no_organization")
    return membership.organization


@transaction.atomic
def report_comment(
    *,
    author: User,
    report: Report,
    body: str,
    kind: str = CommentKind.COMMENT,
    parent: ReportComment | None = None,
) -> ReportComment:
    """Comment on a report, ask the reporter a question (triaging bodies), or answer one (the source)."""
    body = (body or "").strip()
    _check(bool(body), _("Write something first."), "body", "body")
    _check(
        len(body) <= COMMENT_MAX_LENGTH,
        _("A comment may be at most %(count)d characters long.") % {"count": COMMENT_MAX_LENGTH},
        "body",
        "body",
    )
    _check(kind in CommentKind.values, _("Unknown kind of comment."), "kind", "kind")
    _check(_may(author, report, Action.COMMENT), _("You cannot comment on this report."), "not_allowed")
    if kind == CommentKind.QUESTION:
        _check(
            _may(author, report, Action.TRIAGE),
            _("Only the ministries and the national centre that received this report can ask questions."),
            "not_triage",
        )
        _check(parent is None, _("A question starts a new thread."), "parent", "parent")
    if kind == CommentKind.ANSWER:
        _check(
            _member_of(author, report.organization, REPORTING_ROLES),
            _("Only the reporting organization can answer questions."),
            "not_reporter",
        )
        _check(
            parent is not None and parent.kind == CommentKind.QUESTION,
            _("An answer must reply to a question."),
            "parent",
            "parent",
        )
    if parent is not None:
        _check(
            parent.report_id == report.pk, _("That comment belongs to another report."), "parent", "parent"
        )
    comment = ReportComment.objects.create(
        report=report,
        parent=parent,
        kind=kind,
        author=author,
        author_organization=_comment_organization(author, report, kind),
        body=body,
    )
    audit_write(actor=author, action=AuditAction.CREATE, obj=comment, after=snapshot(comment))
    if kind in (CommentKind.QUESTION, CommentKind.ANSWER):
        _follow_up(report, kind)
    return comment


# --- Forwarding within the TLP ceiling -------------------------------------------------------------


def _clients_of(organizations: Sequence[Organization]) -> Q:
    """Who an organization may pass TLP:AMBER material to on need-to-know: its member bodies (a
    CEPTOAR's operators), for a ministry the organizations of the sectors it oversees, and for the
    national centre the whole community."""
    if any(org.type == OrganizationType.NATIONAL_CENTER for org in organizations):
        return Q(type__in=COMMUNITY_TYPES)
    ministries = [org for org in organizations if org.type == OrganizationType.SECTOR_MINISTRY]
    overseen = Organization.sectors.through.objects.filter(sector__ministries__in=ministries).values(
        "organization_id"
    )
    return Q(parent__in=organizations) | Q(pk__in=overseen)


def forward_ceiling(report: Report, forwarders: Sequence[Organization]) -> Q:
    """Organizations the report may reach under its label (those already in the audience included)."""
    in_audience = Q(pk__in=report.grants.filter(organization__isnull=False).values("organization_id"))
    if report.tlp == Tlp.CLEAR:
        return Q()
    if report.tlp == Tlp.GREEN:
        return Q(type__in=COMMUNITY_TYPES) | in_audience
    if report.tlp == Tlp.AMBER:
        return _clients_of(forwarders) | in_audience
    return in_audience


@transaction.atomic
def report_forward(
    *,
    actor: User,
    report: Report,
    organizations: Sequence[Organization] = (),
    users: Sequence[User] = (),
) -> list[ReportGrant]:
    """Widen a report's audience within the ceiling its TLP label sets; returns the new entries.

    CLEAR: anyone. GREEN: the CIP community. AMBER: the forwarder's clients (see `_clients_of`).
    AMBER+STRICT: no new organizations, only people of the organizations already in the audience.
    RED: no forwarding; only the source may name more people.
    """
    report = Report.objects.select_for_update().get(pk=report.pk)
    _check(_may(actor, report, Action.FORWARD), _("You cannot forward this report."), "not_allowed")
    organizations, users = list(dict.fromkeys(organizations)), list(dict.fromkeys(users))
    _check(bool(organizations or users), _("Choose whom to forward to."), "empty")
    _check(
        all(org.active for org in organizations) and all(user.is_active for user in users),
        _("Inactive organizations and people cannot receive reports."),
        "inactive",
    )
    if report.tlp == Tlp.RED:
        _check(
            _member_of(actor, report.organization, FORWARD_ROLES),
            _("TLP:RED reports are not forwarded; only the reporting organization may name more people."),
            "tlp_red",
        )
        _check(
            not organizations,
            _("TLP:RED reports go to named people only, not to organizations."),
            "tlp_red",
            "organizations",
        )
        reason = GrantReason.NAMED
    else:
        forwarders = list(
            Organization.objects.filter(
                memberships__user=actor,
                memberships__role__in=FORWARD_ROLES,
                active=True,
                # A situation's participants read its reports; they do not pass them on.
                pk__in=ReportGrant.objects.filter(report=report)
                .exclude(reason=GrantReason.SITUATION)
                .values("organization_id"),
            ).distinct()
        )
        ceiling = Organization.objects.filter(forward_ceiling(report, forwarders))
        beyond = [org for org in organizations if not ceiling.filter(pk=org.pk).exists()]
        _check(
            not beyond,
            _("%(label)s does not allow forwarding to %(organizations)s.")
            % {"label": report.get_tlp_display(), "organizations": ", ".join(map(str, beyond))},
            "tlp_ceiling",
            "organizations",
        )
        if report.tlp != Tlp.CLEAR:
            outside = [
                user
                for user in users
                if not user.memberships.filter(organization__in=ceiling, organization__active=True).exists()
            ]
            _check(
                not outside,
                _("%(label)s does not allow forwarding to %(people)s.")
                % {"label": report.get_tlp_display(), "people": ", ".join(u.get_username() for u in outside)},
                "tlp_ceiling",
                "users",
            )
        reason = GrantReason.FORWARDED
    created = []
    for recipient in [{"organization": org} for org in organizations] + [{"user": user} for user in users]:
        grant, new = ReportGrant.objects.get_or_create(
            report=report, **recipient, defaults={"reason": reason, "granted_by": actor}
        )
        if new:
            audit_write(actor=actor, action=AuditAction.CREATE, obj=grant, after=snapshot(grant))
            created.append(grant)
        elif grant.reason == GrantReason.SITUATION:
            # Held for a situation's response until now: forwarded, it stays when the situation ends.
            before = snapshot(grant)
            grant.reason, grant.granted_by = reason, actor
            grant.save(update_fields=["reason", "granted_by"])
            audit_write(
                actor=actor, action=AuditAction.UPDATE, obj=grant, before=before, after=snapshot(grant)
            )
            created.append(grant)
    if created:
        _follow_up(report, "forwarded")
    return created


# --- Triage: links and cause classification --------------------------------------------------------


def _check_triage(actor: User, *reports: Report) -> None:
    allowed = Report.objects.restrict(actor, Action.TRIAGE).filter(pk__in=[r.pk for r in reports]).count()
    _check(allowed == len({r.pk for r in reports}), _("You cannot triage this report."), "not_triage")


@transaction.atomic
def report_link(*, actor: User, report: Report, other: Report) -> None:
    """Mark two reports as related (symmetrical); the actor must triage both."""
    _check(report.pk != other.pk, _("A report cannot be linked to itself."), "self_link", "other")
    _check_triage(actor, report, other)
    if report.linked.filter(pk=other.pk).exists():
        return
    before = snapshot(report)
    report.linked.add(other)
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=report, before=before, after=snapshot(report))


@transaction.atomic
def report_unlink(*, actor: User, report: Report, other: Report) -> None:
    """Remove the link between two reports; the actor must triage both."""
    _check_triage(actor, report, other)
    if not report.linked.filter(pk=other.pk).exists():
        return
    before = snapshot(report)
    report.linked.remove(other)
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=report, before=before, after=snapshot(report))


@transaction.atomic
def report_reclassify(
    *, actor: User, report: Report, cause: CauseCategory, note: str = ""
) -> CauseClassification:
    """Set the report's cause; the earlier classifications stay in its history."""
    _check_triage(actor, report)
    report = Report.objects.select_for_update().get(pk=report.pk)
    _check(cause.active, _("That cause category is retired."), "cause", "cause")
    _check(
        cause.pk != report.cause_id,
        _("The report is already classified as %(cause)s.") % {"cause": cause},
        "cause",
        "cause",
    )
    before = snapshot(report)
    classification = CauseClassification.objects.create(
        report=report, cause=cause, classified_by=actor, note=(note or "").strip()
    )
    report.cause = cause
    report.save(update_fields=["cause", "updated_at"])
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=report, before=before, after=snapshot(report))
    _follow_up(report, "reclassified")
    report_changed.send(sender=Report, report=report, event="reclassified")
    return classification


# --- Relabelling ------------------------------------------------------------------------------------


@transaction.atomic
def report_relabel(*, actor: User, report: Report, tlp: str, source_consent: bool = False) -> Report:
    """Change a report's TLP label: the source (its reporting roles) may, and so may the national
    centre when it records the source's consent. The audience stays as it is: a stricter label
    limits who may be added from now on. Raising to TLP:RED names the chain's duty coordinators,
    as at submission, besides anyone already named; with nobody named it is refused."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    _check(tlp in Tlp.values, _("Unknown TLP label %(tlp)s.") % {"tlp": tlp}, "tlp", "tlp")
    _check(tlp != report.tlp, _("The report already has this label."), "tlp", "tlp")
    visible = _may(actor, report, Action.VIEW)
    is_source = visible and _member_of(actor, report.organization, REPORTING_ROLES)
    is_centre = (
        visible
        and actor.memberships.filter(
            organization__type=OrganizationType.NATIONAL_CENTER,
            organization__active=True,
            role__in=TRIAGE_ROLES,
        ).exists()
    )
    _check(
        is_source or is_centre,
        _("Only the reporting organization, or the national centre with its consent, can relabel."),
        "not_allowed",
    )
    _check(
        is_source or source_consent,
        _("The national centre needs the reporting organization's consent to relabel."),
        "consent",
        "source_consent",
    )
    before = snapshot(report)
    if tlp == Tlp.RED:
        # The mandated chain keeps reaching the report through its duty coordinators.
        chain = Organization.objects.filter(
            report_grants__report=report,
            report_grants__reason__in=(GrantReason.MANDATED, GrantReason.CEPTOAR),
        )
        for person in duty_coordinators(list(chain)):
            grant, created = ReportGrant.objects.get_or_create(
                report=report, user=person, defaults={"reason": GrantReason.NAMED, "granted_by": actor}
            )
            if created:
                audit_write(actor=actor, action=AuditAction.CREATE, obj=grant, after=snapshot(grant))
        _check(
            report.grants.filter(reason=GrantReason.NAMED).exists(),
            _("A TLP:RED report needs named recipients."),
            "recipients",
            "tlp",
        )
    report.tlp = tlp
    report.save(update_fields=["tlp", "updated_at"])
    report.grants.update(report_is_red=tlp == Tlp.RED)
    audit_write(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=report,
        before=before,
        after=snapshot(report) | {"source_consent": bool(source_consent and not is_source)},
    )
    _follow_up(report, "relabelled")
    report_changed.send(sender=Report, report=report, event="relabelled")
    return report


# --- Advisories -------------------------------------------------------------------------------------

ISSUER_TYPES = (OrganizationType.NATIONAL_CENTER, OrganizationType.SECTOR_MINISTRY, OrganizationType.CEPTOAR)


def _resolve(model, values, *, lookup: str, message: str, code: str) -> list:
    """Objects for `values`, given as instances or as their codes/ids/usernames; unknown ones are
    named in the error."""
    given = list(dict.fromkeys(values))
    keys = [v for v in given if not isinstance(v, model)]
    try:
        found = {str(getattr(obj, lookup)): obj for obj in model.objects.filter(**{f"{lookup}__in": keys})}
    except (ValueError, ValidationError):  # e.g. "abc" as an organization id
        found = {}
    unknown = [str(key) for key in keys if str(key) not in found]
    _check(not unknown, message % {"values": ", ".join(unknown)}, code, code)
    return [v if isinstance(v, model) else found[str(v)] for v in given]


@dataclass(frozen=True)
class Audience:
    """A validated audience of an advisory or an anonymized copy."""

    all_ci: bool
    sectors: list[Sector]
    organization_types: list[str]
    organizations: list[Organization]
    people: list[User]

    def entries(self, model, **owner) -> list:
        """Unsaved rows of `model` (an AudienceEntry) for `owner`, one per named recipient."""
        return (
            ([model(**owner, all_ci=True)] if self.all_ci else [])
            + [model(**owner, sector=sector) for sector in self.sectors]
            + [model(**owner, organization_type=t) for t in self.organization_types]
            + [model(**owner, organization=org) for org in self.organizations]
            + [model(**owner, user=person) for person in self.people]
        )


def _audience_resolve(
    *, tlp: str, all_ci: bool, sectors=(), organization_types=(), organizations=(), people=()
) -> Audience:
    """Check an audience given as objects or codes (sector codes, organization ids, usernames):
    every code known, someone named, within the label's ceiling, nobody inactive."""
    unknown_types = [str(t) for t in organization_types if t not in OrganizationType.values]
    _check(
        not unknown_types,
        _("Unknown organization type: %(values)s") % {"values": ", ".join(unknown_types)},
        "organization_types",
        "organization_types",
    )
    audience = Audience(
        all_ci=bool(all_ci),
        sectors=_resolve(
            Sector, sectors, lookup="code", message=_("Unknown sector code: %(values)s"), code="sectors"
        ),
        organization_types=list(dict.fromkeys(organization_types)),
        organizations=_resolve(
            Organization,
            organizations,
            lookup="pk",
            message=_("Unknown organization: %(values)s"),
            code="organizations",
        ),
        people=_resolve(
            User, people, lookup="username", message=_("Unknown user: %(values)s"), code="people"
        ),
    )
    groups = audience.all_ci or audience.sectors or audience.organization_types or audience.organizations
    _check(bool(groups or audience.people), _("Choose an audience."), "audience", "audience")
    # The label is the ceiling on the audience (PRODUCT.md, "Access control").
    _check(
        tlp != Tlp.RED or not groups,
        _("TLP:RED goes to named people only."),
        "tlp_red",
        "people",
    )
    _check(
        tlp != Tlp.AMBER_STRICT or not (audience.all_ci or audience.sectors or audience.organization_types),
        _("TLP:AMBER+STRICT goes to named organizations and people only."),
        "tlp_ceiling",
        "audience",
    )
    public = (
        [
            str(OrganizationType.PUBLIC.label)
            for t in audience.organization_types
            if t == OrganizationType.PUBLIC
        ]
        + [str(org) for org in audience.organizations if org.type == OrganizationType.PUBLIC]
        + [
            person.get_username()
            for person in audience.people
            if not person.memberships.exclude(organization__type=OrganizationType.PUBLIC).exists()
        ]
    )
    _check(
        tlp == Tlp.CLEAR or not public,
        _("Only TLP:CLEAR may reach outside the critical-infrastructure community: %(names)s.")
        % {"names": ", ".join(public)},
        "tlp_ceiling",
        "audience",
    )
    _check(
        all(org.active for org in audience.organizations) and all(p.is_active for p in audience.people),
        _("Inactive organizations and people cannot be recipients."),
        "inactive",
        "audience",
    )
    return audience


def _check_issuer_scope(organization: Organization, audience: Audience) -> None:
    """The national centre may address anyone; a ministry its sectors and their organizations; a
    CEPTOAR its member organizations."""
    if organization.type == OrganizationType.NATIONAL_CENTER:
        return
    _check(
        not audience.all_ci and not audience.organization_types,
        _("Only the national centre can address all critical infrastructure or organization types."),
        "audience_scope",
        "audience",
    )
    if organization.type == OrganizationType.SECTOR_MINISTRY:
        overseen = organization.overseen_sectors.all()
        outside_sectors = [s for s in audience.sectors if not overseen.filter(pk=s.pk).exists()]
        _check(
            not outside_sectors,
            _("%(organization)s does not oversee %(sectors)s.")
            % {"organization": organization, "sectors": ", ".join(map(str, outside_sectors))},
            "audience_scope",
            "sectors",
        )
        reachable = Organization.objects.filter(sectors__in=overseen)
    else:
        _check(
            not audience.sectors,
            _("A CEPTOAR addresses its member organizations, not whole sectors."),
            "audience_scope",
            "sectors",
        )
        reachable = Organization.objects.filter(parent=organization)
    outside_orgs = [org for org in audience.organizations if not reachable.filter(pk=org.pk).exists()]
    _check(
        not outside_orgs,
        _("%(organizations)s are outside the audience %(issuer)s may address.")
        % {"organizations": ", ".join(map(str, outside_orgs)), "issuer": organization},
        "audience_scope",
        "organizations",
    )
    outside_people = [
        person
        for person in audience.people
        if not person.memberships.filter(organization__in=reachable).exists()
    ]
    _check(
        not outside_people,
        _("%(people)s are outside the audience %(issuer)s may address.")
        % {"people": ", ".join(p.get_username() for p in outside_people), "issuer": organization},
        "audience_scope",
        "people",
    )


@transaction.atomic
def advisory_issue(*, issuer: User, organization: Organization, data: AdvisoryInput) -> Advisory:
    """Issue an advisory to its audience; delivery (inbox, e-mail, webhooks) is queued with it.

    Audience values may be objects or their codes: sector codes, organization ids, usernames.
    """
    _check(
        organization.active
        and organization.type in ISSUER_TYPES
        and _member_of(issuer, organization, FORWARD_ROLES),
        _(
            "Advisories are issued by the coordinators and officers of the national centre, "
            "a ministry or a CEPTOAR."
        ),
        "not_issuer",
    )
    title, body = (data.title or "").strip(), (data.body or "").strip()
    _check(bool(title), _("A title is required."), "title", "title")
    _check(len(title) <= 200, _("The title is longer than 200 characters."), "title", "title")
    _check(bool(body), _("The advisory needs a body."), "body", "body")
    _check(
        data.severity in Severity.values,
        _("Unknown severity %(value)s.") % {"value": data.severity},
        "severity",
        "severity",
    )
    _check(data.tlp in Tlp.values, _("Unknown TLP label %(tlp)s.") % {"tlp": data.tlp}, "tlp", "tlp")
    audience = _audience_resolve(
        tlp=data.tlp,
        all_ci=data.all_ci,
        sectors=data.sectors,
        organization_types=data.organization_types,
        organizations=data.organizations,
        people=data.people,
    )
    _check_issuer_scope(organization, audience)
    if data.ack_due is not None:
        _check(data.ack_required, _("A due time needs acknowledgement to be required."), "ack_due", "ack_due")
        _check(timezone.is_aware(data.ack_due), _("The due time needs a time zone."), "ack_due", "ack_due")
        _check(data.ack_due > timezone.now(), _("The due time is in the past."), "ack_due", "ack_due")
    report_ids = list(
        dict.fromkeys(str(r.pk) if isinstance(r, Report) else str(r) for r in data.source_reports)
    )
    try:
        source_reports = list(Report.objects.restrict(issuer).filter(pk__in=report_ids))
    except ValidationError:  # a malformed UUID: as unknown as a report that is not visible
        source_reports = []
    missing = sorted(set(report_ids) - {str(r.pk) for r in source_reports})
    # A report the issuer may not see gets the same answer as one that does not exist.
    _check(
        not missing,
        _("Unknown report: %(values)s") % {"values": ", ".join(missing)},
        "source_reports",
        "source_reports",
    )
    _validate_attachments(data.attachments)
    observables = _normalized_observables(data.observables)

    advisory = Advisory.objects.create(
        issuer=organization,
        issued_by=issuer,
        title=title,
        body=body,
        severity=data.severity,
        tlp=data.tlp,
        ack_required=data.ack_required,
        ack_due=data.ack_due,
    )
    advisory.source_reports.set(source_reports)
    AdvisoryAudience.objects.bulk_create(audience.entries(AdvisoryAudience, advisory=advisory))
    AdvisoryObservable.objects.bulk_create(
        AdvisoryObservable(advisory=advisory, type=o.type, value=o.value) for o in observables
    )
    index_sightings(SourceKind.ADVISORY, advisory.pk, [(o.type, o.value) for o in observables])
    attachments = [
        _store_attachment(AdvisoryAttachment, advisory=advisory, uploader=issuer, attachment=attachment)
        for attachment in data.attachments
    ]
    audit_write(
        actor=issuer,
        action=AuditAction.CREATE,
        obj=advisory,
        after=snapshot(advisory)
        | {
            "audience": [snapshot(entry) for entry in advisory.audience.all()],
            "observables": [[o.type, o.value] for o in observables],
            "attachments": [[a.filename, a.blob_id] for a in attachments],
        },
    )
    advisory_fan_out.enqueue(advisory_id=str(advisory.pk))  # in this transaction, as _follow_up
    return advisory


def advisory_addresses(advisory: Advisory, organization: Organization, user: User) -> bool:
    """Whether the advisory's audience names `organization` (or `user` as one of its people).
    The issuer is never its own audience, even when it addresses all CI."""
    if organization.pk == advisory.issuer_id:
        return False
    named = Q(user=user)
    if advisory.tlp == Tlp.RED:
        entries = named
    else:
        entries = (
            named
            | Q(organization=organization)
            | Q(organization_type=organization.type)
            | Q(sector__in=organization.sectors.all())
        )
        if organization.type in COMMUNITY_TYPES:
            entries |= Q(all_ci=True)
    return advisory.audience.filter(entries).exists()


@transaction.atomic
def advisory_acknowledge(
    *, user: User, advisory: Advisory, organization: Organization | None = None
) -> Acknowledgement:
    """Acknowledge an advisory for one of the user's organizations in its audience. One
    acknowledgement per organization: acknowledging again returns the first one."""
    _check(
        Advisory.objects.restrict(user, Action.ACKNOWLEDGE).filter(pk=advisory.pk).exists(),
        _("You cannot acknowledge this advisory."),
        "not_allowed",
    )
    memberships = Organization.objects.filter(memberships__user=user, active=True).distinct().order_by("pk")
    _check(
        organization is None or memberships.filter(pk=organization.pk).exists(),
        _("You do not belong to %(organization)s.") % {"organization": organization},
        "not_member",
        "organization",
    )
    candidates = [organization] if organization is not None else list(memberships)
    acting = next((org for org in candidates if advisory_addresses(advisory, org, user)), None)
    _check(
        acting is not None,
        _("Your organization is not in this advisory's audience."),
        "not_in_audience",
        "organization",
    )
    existing = Acknowledgement.objects.filter(advisory=advisory, organization=acting).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            acknowledgement = Acknowledgement.objects.create(
                advisory=advisory, organization=acting, user=user
            )
    except IntegrityError:  # a colleague acknowledged at the same moment
        return Acknowledgement.objects.get(advisory=advisory, organization=acting)
    audit_write(actor=user, action=AuditAction.CREATE, obj=acknowledgement, after=snapshot(acknowledgement))
    return acknowledgement


# --- Anonymized cross-sector copies ------------------------------------------------------------------

ANONYMIZER_ROLES = (Role.COORDINATOR, Role.ANALYST)


def _identifying_strings(report: Report) -> list[str]:
    """Names that single out the source, which a redacted copy must not contain."""
    reporter = report.reporter
    organization = report.organization
    candidates = [
        organization.name_ja,
        organization.name_en,
        reporter.get_username(),
        reporter.email,
        reporter.get_full_name(),
        reporter.last_name,
    ]
    if "@" in reporter.email:
        candidates.append(reporter.email.rsplit("@", 1)[1])
    return [c for c in dict.fromkeys(c.strip() for c in candidates if c) if len(c) >= 2]


def _kept_observables(source: Report, chosen) -> list[tuple[str, str]]:
    """The chosen observables, re-validated and normalized; each must come from the original."""
    in_source = set(Observable.objects.filter(version__report=source).values_list("type", "value"))
    kept = []
    for item in chosen:
        observable_type, value = (item.type, item.value) if isinstance(item, ObservableInput) else item
        try:
            normalized = normalize_observable(observable_type, value)
        except ValidationError as error:
            raise ValidationError({"observables": error.messages}, code="observable") from None
        _check(
            (observable_type, normalized) in in_source,
            _("%(value)s is not an observable of the original report.") % {"value": value},
            "observable",
            "observables",
        )
        kept.append((observable_type, normalized))
    return list(dict.fromkeys(kept))


@transaction.atomic
def anonymized_copy_create(*, actor: User, source: Report, data: AnonymizedInput) -> AnonymizedReport:
    """Publish a sanitized copy of a report that consented to one: no organization or reporter,
    the month of occurrence only, the sector kept or generalized away, the narrative as redacted by
    `actor`, the observables they chose to keep (re-validated). It has its own id, label and
    audience, and its timestamps are its own."""
    _check(
        source.anonymized_copy_consent,
        _("The reporting organization has not consented to an anonymized copy."),
        "no_consent",
    )
    visible = _may(actor, source, Action.VIEW)
    by_centre = actor.memberships.filter(
        organization__type=OrganizationType.NATIONAL_CENTER,
        organization__active=True,
        role__in=ANONYMIZER_ROLES,
    ).exists()
    _check(
        visible and (by_centre or _member_of(actor, source.organization, REPORTING_ROLES)),
        _("Only the national centre or the reporting organization can create an anonymized copy."),
        "not_allowed",
    )
    title, narrative = (data.title or "").strip(), (data.narrative or "").strip()
    _check(bool(title), _("A title is required."), "title", "title")
    _check(len(title) <= 200, _("The title is longer than 200 characters."), "title", "title")
    _check(bool(narrative), _("The copy needs a narrative."), "narrative", "narrative")
    kept = _kept_observables(source, data.observables)
    published = {"title": title, "narrative": narrative, "observables": " ".join(v for _t, v in kept)}
    for identifying in _identifying_strings(source):
        for field_name, text in published.items():
            _check(
                identifying.casefold() not in text.casefold(),
                _("The copy still contains %(value)s, which identifies the source; redact it.")
                % {"value": identifying},
                "identifying",
                field_name,
            )
    _check(data.tlp in Tlp.values, _("Unknown TLP label %(tlp)s.") % {"tlp": data.tlp}, "tlp", "tlp")
    audience = _audience_resolve(
        tlp=data.tlp,
        all_ci=data.all_ci,
        sectors=data.sectors,
        organizations=data.organizations,
        people=data.people,
    )
    occurred = timezone.localtime(source.occurred_at or source.detected_at).date()

    copy = AnonymizedReport.objects.create(
        source=source,
        sector=source.sector if data.keep_sector else None,
        kind=source.kind,
        cause=source.cause,
        title=title,
        narrative=narrative,
        occurred_month=occurred.replace(day=1),
        tlp=data.tlp,
    )
    AnonymizedObservable.objects.bulk_create(
        AnonymizedObservable(copy=copy, type=t, value=v) for t, v in kept
    )
    index_sightings(SourceKind.ANONYMIZED, copy.pk, kept)
    AnonymizedReportAudience.objects.bulk_create(audience.entries(AnonymizedReportAudience, copy=copy))
    audit_write(
        actor=actor,
        action=AuditAction.CREATE,
        obj=copy,
        after=snapshot(copy) | {"audience": [snapshot(entry) for entry in copy.audience.all()]},
    )
    return copy
