"""Information-sharing pages: reports up the chain, advisories down, anonymized copies across.

Every read goes through `restrict(...)` / `get_restricted_or_404`, so a report, advisory or copy the
user may not see answers with the same 404 as one that does not exist, and every write goes
through sharing/services.py, which decides again (the forms only narrow the choices offered).
"""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from renkei.core.access import get_restricted_or_404
from renkei.core.choices import Action
from renkei.correlation.choices import SourceKind
from renkei.correlation.services import seen_elsewhere
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization
from renkei.sharing import downloads, selectors, services
from renkei.sharing.choices import CommentKind, GrantReason, Tlp, VersionStage
from renkei.sharing.deadlines import stage_deadlines
from renkei.sharing.delivery import acknowledgement_reminders, advisory_recipient_memberships
from renkei.sharing.forms import (
    ISSUER_TYPES,
    PICKER_LIMIT,
    TLP_EXPLANATIONS,
    AcknowledgeForm,
    AdvisoryForm,
    AnonymizedCopyForm,
    AnswerForm,
    CommentForm,
    ForwardForm,
    LinkForm,
    QuestionForm,
    ReclassifyForm,
    RelabelForm,
    ReportFilterForm,
    ReportForm,
    ReportUpdateForm,
    picker_ids,
)
from renkei.sharing.models import (
    REPORTING_ROLES,
    TRIAGE_ROLES,
    Acknowledgement,
    Advisory,
    AnonymizedReport,
    Attachment,
    CauseClassification,
    InboxItem,
    Observable,
    Report,
    ReportComment,
    ReportVersion,
)

PAGE_SIZE = 25
# The issuer's acknowledgement table refreshes itself this often while open.
ACK_POLL_SECONDS = 5
# Fields compared between consecutive versions, so each version shows what it changed.
VERSION_FIELDS = (
    "title",
    "status",
    "cause",
    "occurred_at",
    "detected_at",
    "impact_confidentiality",
    "impact_integrity",
    "impact_availability",
    "service_state",
    "users_affected",
    "duration_minutes",
    "area",
    "affected_services",
    "narrative",
)


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _is_htmx_partial(request) -> bool:
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _user_organizations(user, *roles, types=()):
    """The active organizations where `user` holds one of `roles` (any role when none given)."""
    memberships = {"memberships__user": user}
    if roles:
        memberships["memberships__role__in"] = roles
    organizations = Organization.objects.filter(active=True, **memberships)
    if types:
        organizations = organizations.filter(type__in=types)
    return organizations.distinct().order_by("name_ja")


def _may(model, user, action, pk) -> bool:
    return model.objects.restrict(user, action).filter(pk=pk).exists()


def _add_service_error(form, error: ValidationError) -> None:
    """Put a service's refusal on the form: on the field it names when the form has one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


# --- Reports ------------------------------------------------------------------------------------


@login_required
def report_list(request):
    """Reports the user may see. htmx swaps only the results while the user types; without
    JavaScript the same form submits normally and the whole page comes back."""
    user = request.user
    form = ReportFilterForm(request.GET, user=user)
    reports = form.apply(
        Report.objects.restrict(user).select_related("organization", "sector", "cause")
    ).order_by("-created_at")
    context = {
        "form": form,
        "page": _page(request, reports),
        "query": _query_without_page(request),
        "can_report": _user_organizations(user, *REPORTING_ROLES).exists(),
        "nav_section": "reports",
    }
    template = (
        "sharing/includes/report_results.html" if _is_htmx_partial(request) else "sharing/report_list.html"
    )
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
def report_create(request):
    user = request.user
    organizations = _user_organizations(user, *REPORTING_ROLES)
    if not organizations.exists():
        raise PermissionDenied
    form = ReportForm(request.POST or None, request.FILES or None, organizations=organizations, user=user)
    if request.method == "POST" and form.picker_pressed():
        # Without JavaScript: a picker's search, add or remove, not the report yet.
        form = form.picked()
    elif request.method == "POST" and form.is_valid():
        try:
            report = services.report_submit(
                reporter=user, organization=form.cleaned_data["organization"], data=form.report_input()
            )
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            messages.success(request, _("The report has been submitted."))
            return redirect("sharing:report_detail", pk=report.pk)
    return render(request, "sharing/report_form.html", {"form": form, "nav_section": "reports"})


def _versions_with_changes(versions: list[ReportVersion]) -> list[tuple[ReportVersion, set[str]]]:
    """Each version with the names of the fields it changed from the one before."""
    result, previous = [], None
    for version in versions:
        changed = (
            {name for name in VERSION_FIELDS if getattr(version, name) != getattr(previous, name)}
            if previous
            else set()
        )
        previous = version
        result.append((version, changed))
    return result


def _audience(report: Report) -> dict:
    grants = list(report.grants.select_related("organization", "user"))
    return {
        "organizations": [g for g in grants if g.organization_id],
        # The reporter's own grant is not an audience choice; the page names the reporter already.
        "people": [g for g in grants if g.user_id and g.reason != GrantReason.SOURCE],
    }


def _permissions(report: Report, user) -> dict:
    is_source = _user_organizations(user, *REPORTING_ROLES).filter(pk=report.organization_id).exists()
    triage = _may(Report, user, Action.TRIAGE, report.pk)
    centre_triage = (
        triage
        and _user_organizations(user, *TRIAGE_ROLES, types=(OrganizationType.NATIONAL_CENTER,)).exists()
    )
    centre_anonymizer = _user_organizations(
        user, *services.ANONYMIZER_ROLES, types=(OrganizationType.NATIONAL_CENTER,)
    ).exists()
    return {
        "can_update": is_source and _may(Report, user, Action.CHANGE, report.pk),
        "can_comment": _may(Report, user, Action.COMMENT, report.pk),
        "can_triage": triage,
        "can_answer": is_source,
        "can_forward": selectors.may_forward(user, report),
        "can_relabel": is_source or centre_triage,
        "can_anonymize": report.anonymized_copy_consent and (is_source or centre_anonymizer),
        "can_issue_advisory": _issuers(user).exists(),
    }


def _render_report_detail(request, report: Report, status: int = 200, **bound_forms):
    user = request.user
    permissions = _permissions(report, user)
    versions = list(
        report.versions.select_related("author", "cause").prefetch_related(
            Prefetch("observables", queryset=Observable.objects.order_by("pk")),
            Prefetch("attachments", queryset=Attachment.objects.select_related("blob", "version")),
        )
    )
    comments = list(
        report.comments.select_related("author", "author_organization").order_by("created_at", "pk")
    )
    replies: dict[int, list[ReportComment]] = {}
    for comment in comments:
        if comment.parent_id:
            replies.setdefault(comment.parent_id, []).append(comment)
    threads = []
    for comment in comments:
        if comment.parent_id:
            continue
        answer_form = None
        if permissions["can_answer"] and comment.kind == CommentKind.QUESTION:
            answer_form = (
                bound_forms["answer_form"]
                if bound_forms.get("answer_to") == comment.pk
                else AnswerForm(prefix=f"answer-{comment.pk}")
            )
        threads.append((comment, replies.get(comment.pk, []), answer_form))
    visible = Report.objects.restrict(user)
    context = {
        "report": report,
        "current": versions[-1],
        "versions": _versions_with_changes(versions),
        "attachments": [attachment for version in versions for attachment in version.attachments.all()],
        "audience": _audience(report),
        "threads": threads,
        "linked": visible.filter(pk__in=report.linked.values("pk")).select_related("organization"),
        "classifications": CauseClassification.objects.filter(report=report).select_related(
            "cause", "classified_by"
        ),
        "anonymized_copies": AnonymizedReport.objects.restrict(user).filter(source=report),
        "advisories": Advisory.objects.restrict(user).filter(source_reports=report),
        "seen_elsewhere": seen_elsewhere(SourceKind.REPORT, report.pk, user),
        "deadlines": stage_deadlines(report, versions=versions),
        "tlp_explanation": TLP_EXPLANATIONS[Tlp(report.tlp)],
        "nav_section": "reports",
        **permissions,
    }
    if permissions["can_comment"]:
        context["comment_form"] = bound_forms.get("comment_form") or CommentForm()
    if permissions["can_triage"]:
        context["question_form"] = bound_forms.get("question_form") or QuestionForm()
        context["link_form"] = bound_forms.get("link_form") or LinkForm(reports=visible)
        context["reclassify_form"] = bound_forms.get("reclassify_form") or ReclassifyForm(
            initial={"cause": report.cause.code}
        )
    if permissions["can_forward"]:
        context["forward_form"] = bound_forms.get("forward_form") or ForwardForm(report=report, user=user)
    if permissions["can_relabel"]:
        context["relabel_form"] = bound_forms.get("relabel_form") or RelabelForm(initial={"tlp": report.tlp})
    # A refused form is shown with its messages even where the page would not normally offer it.
    context |= {
        name: form for name, form in bound_forms.items() if name.endswith("_form") and name != "answer_form"
    }
    return render(request, "sharing/report_detail.html", context, status=status)


def _visible_report(request, pk, action=Action.VIEW) -> Report:
    return get_restricted_or_404(
        Report.objects.select_related("organization", "sector", "cause", "reporter", "deadline_profile"),
        request.user,
        action,
        pk=pk,
    )


@login_required
def report_detail(request, pk):
    return _render_report_detail(request, _visible_report(request, pk))


@login_required
def report_update(request, pk):
    user = request.user
    report = _visible_report(request, pk, Action.CHANGE)
    if not _permissions(report, user)["can_update"]:
        raise Http404
    form = ReportUpdateForm(request.POST or None, request.FILES or None, report=report)
    if request.method == "POST" and form.is_valid():
        try:
            services.report_update(
                author=user, report=report, data=form.report_input(), stage=form.cleaned_data["stage"]
            )
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            if form.cleaned_data["stage"] == VersionStage.FINAL:
                messages.success(request, _("The final report has been added."))
            else:
                messages.success(request, _("The update has been added."))
            return redirect("sharing:report_detail", pk=report.pk)
    return render(
        request, "sharing/report_update.html", {"report": report, "form": form, "nav_section": "reports"}
    )


def _report_action(request, pk, form_name: str, form, perform, success: str, **extra):
    """Run one detail-page action: on success back to the report (or to the list, when the action
    took the report out of the user's sight), otherwise the report again with the form's messages
    (and a 400, so nothing looks done)."""
    report = _visible_report(request, pk)
    if form.is_valid():
        try:
            perform(report, form.cleaned_data)
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            messages.success(request, success)
            if not _may(Report, request.user, Action.VIEW, report.pk):
                # Relabelling to TLP:RED leaves the report to its named people and the source.
                messages.info(request, _("You are no longer among those who may see this report."))
                return redirect("sharing:report_list")
            return redirect("sharing:report_detail", pk=report.pk)
    return _render_report_detail(request, report, status=400, **{form_name: form}, **extra)


@login_required
@require_POST
def report_comment(request, pk):
    form = CommentForm(request.POST)
    return _report_action(
        request,
        pk,
        "comment_form",
        form,
        lambda report, data: services.report_comment(author=request.user, report=report, body=data["body"]),
        _("Your comment has been added."),
    )


@login_required
@require_POST
def report_question(request, pk):
    form = QuestionForm(request.POST)
    return _report_action(
        request,
        pk,
        "question_form",
        form,
        lambda report, data: services.report_comment(
            author=request.user, report=report, body=data["body"], kind=CommentKind.QUESTION
        ),
        _("Your question has been sent to the reporting organization."),
    )


@login_required
@require_POST
def report_answer(request, pk, question_pk):
    report = _visible_report(request, pk)
    question = report.comments.filter(pk=question_pk, kind=CommentKind.QUESTION).first()
    if question is None:
        raise Http404
    form = AnswerForm(request.POST, prefix=f"answer-{question.pk}")
    return _report_action(
        request,
        pk,
        "answer_form",
        form,
        lambda report, data: services.report_comment(
            author=request.user, report=report, body=data["body"], kind=CommentKind.ANSWER, parent=question
        ),
        _("Your answer has been sent."),
        answer_to=question.pk,
    )


@login_required
@require_POST
def report_forward(request, pk):
    user = request.user
    report = _visible_report(request, pk, Action.FORWARD)
    form = ForwardForm(request.POST, report=report, user=user)
    if form.picker_pressed():
        # Without JavaScript: a picker's search, add or remove, not the forwarding yet.
        return _render_report_detail(request, report, forward_form=form.picked())
    return _report_action(
        request,
        pk,
        "forward_form",
        form,
        lambda report, data: services.report_forward(
            actor=user,
            report=report,
            # A TLP:RED report's form has no organizations to choose.
            organizations=list(data.get("organizations", ())),
            users=list(data["people"]),
        ),
        _("The report has been forwarded."),
    )


@login_required
@require_POST
def report_link(request, pk):
    user = request.user
    _visible_report(request, pk, Action.TRIAGE)
    form = LinkForm(request.POST, reports=Report.objects.restrict(user))
    return _report_action(
        request,
        pk,
        "link_form",
        form,
        lambda report, data: services.report_link(actor=user, report=report, other=data["other"]),
        _("The reports have been linked."),
    )


@login_required
@require_POST
def report_unlink(request, pk, other_pk):
    user = request.user
    report = _visible_report(request, pk, Action.TRIAGE)
    other = _visible_report(request, other_pk, Action.TRIAGE)
    try:
        services.report_unlink(actor=user, report=report, other=other)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("The link has been removed."))
    return redirect("sharing:report_detail", pk=report.pk)


@login_required
@require_POST
def report_reclassify(request, pk):
    user = request.user
    _visible_report(request, pk, Action.TRIAGE)
    form = ReclassifyForm(request.POST)
    return _report_action(
        request,
        pk,
        "reclassify_form",
        form,
        lambda report, data: services.report_reclassify(
            actor=user, report=report, cause=data["cause"], note=data["note"]
        ),
        _("The cause has been reclassified."),
    )


@login_required
@require_POST
def report_relabel(request, pk):
    user = request.user
    report = _visible_report(request, pk)
    if not _permissions(report, user)["can_relabel"]:
        raise Http404
    form = RelabelForm(request.POST)
    return _report_action(
        request,
        pk,
        "relabel_form",
        form,
        lambda report, data: services.report_relabel(
            actor=user, report=report, tlp=data["tlp"], source_consent=data["source_consent"]
        ),
        _("The label has been changed."),
    )


@login_required
def report_attachment_download(request, pk, attachment_pk):
    """An attachment, only ever as a download: a browser must not render what an attacker uploaded."""
    report = _visible_report(request, pk)
    return downloads.report_attachment_download(user=request.user, report=report, attachment_id=attachment_pk)


# --- Advisories -----------------------------------------------------------------------------------


def _issuers(user):
    return _user_organizations(user, Role.OFFICER, Role.COORDINATOR, types=ISSUER_TYPES)


@login_required
def advisory_create(request):
    user = request.user
    issuers = _issuers(user)
    if not issuers.exists():
        raise PermissionDenied
    # Starting from a report's page names it as the advisory's source.
    initial = {"source_reports": request.GET.getlist("report")}
    form = AdvisoryForm(
        request.POST or None, request.FILES or None, issuers=issuers, user=user, initial=initial
    )
    if request.method == "POST" and form.picker_pressed():
        # Without JavaScript: a picker's search, add or remove, not the advisory yet.
        form = form.picked()
    elif request.method == "POST" and form.is_valid():
        try:
            advisory = services.advisory_issue(
                issuer=user, organization=form.cleaned_data["organization"], data=form.advisory_input()
            )
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            messages.success(request, _("The advisory has been issued."))
            return redirect("sharing:advisory_detail", pk=advisory.pk)
    context = {
        "form": form,
        "source_reports": Report.objects.restrict(user).filter(
            pk__in=_valid_ids(form["source_reports"].value())
        ),
        "nav_section": "advisories",
    }
    return render(request, "sharing/advisory_form.html", context)


def _picker_results(request, form, name: str):
    """A picker's matches as you type (htmx): what the form's field accepts, without those already
    chosen. Without JavaScript, the form's own Search button does this."""
    if name not in form.picker_names():
        raise Http404
    key = form.add_prefix(name)
    query = request.GET.get(f"{key}_q", "").strip()[:200]
    context = {
        "name": key,
        "query": query,
        "results": form.picker_search(name, query, exclude=picker_ids(request.GET.getlist(key))),
        "limit": PICKER_LIMIT,
        "notice": form.picker_notice(name),
    }
    return render(request, "sharing/includes/picker_results.html", context)


@login_required
def advisory_picker(request, name):
    user = request.user
    issuers = _issuers(user)
    if not issuers.exists():
        raise PermissionDenied
    # The issuing organization and the label as the page has them now (AdvisoryForm.picker_include).
    initial = {"organization": request.GET.get("organization"), "tlp": request.GET.get("tlp")}
    return _picker_results(request, AdvisoryForm(issuers=issuers, user=user, initial=initial), name)


@login_required
def report_picker(request, name):
    user = request.user
    organizations = _user_organizations(user, *REPORTING_ROLES)
    if not organizations.exists():
        raise PermissionDenied
    return _picker_results(request, ReportForm(organizations=organizations, user=user), name)


@login_required
def forward_picker(request, pk, name):
    user = request.user
    report = _visible_report(request, pk, Action.FORWARD)
    if not selectors.may_forward(user, report):
        raise Http404
    return _picker_results(request, ForwardForm(report=report, user=user), name)


def _valid_ids(values) -> list[uuid.UUID]:
    """The well-formed report ids among `values` (from the query string or the form)."""
    ids = []
    for value in values or ():
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return ids


def _acknowledged_by_my_organizations(user):
    return Exists(
        Acknowledgement.objects.filter(advisory=OuterRef("pk"), organization__memberships__user=user)
    )


@login_required
def inbox(request):
    """Advisories addressed to the user or their organizations (not those they issued), with whether
    one of their organizations has acknowledged each."""
    user = request.user
    received = (
        Advisory.objects.restrict(user)
        .exclude(issuer__in=_user_organizations(user).values("pk"))
        .select_related("issuer")
        .annotate(
            acknowledged=_acknowledged_by_my_organizations(user),
            unread=Exists(InboxItem.objects.filter(advisory=OuterRef("pk"), user=user, read_at__isnull=True)),
        )
        .order_by("-created_at")
    )
    context = {
        "page": _page(request, received),
        "query": _query_without_page(request),
        "nav_section": "inbox",
    }
    return render(request, "sharing/inbox.html", context)


@login_required
def advisory_list(request):
    """Every advisory the user may see, and first those their own organizations issued."""
    user = request.user
    visible = Advisory.objects.restrict(user).select_related("issuer").order_by("-created_at")
    context = {
        "issued": visible.filter(issuer__in=_user_organizations(user).values("pk"))[:PAGE_SIZE],
        "page": _page(request, visible),
        "query": _query_without_page(request),
        "can_issue": _issuers(user).exists(),
        "nav_section": "advisories",
    }
    return render(request, "sharing/advisory_list.html", context)


def recipient_organizations(advisory: Advisory):
    """Organizations the advisory reaches (through any of their active people), issuer excluded."""
    reached = advisory_recipient_memberships(advisory).values("organization_id")
    return (
        Organization.objects.filter(pk__in=reached, active=True)
        .exclude(pk=advisory.issuer_id)
        .order_by("type", "name_ja")
    )


def _acknowledgement_rows(advisory: Advisory) -> list[dict]:
    acknowledgements = {ack.organization_id: ack for ack in advisory.acknowledgements.select_related("user")}
    rows = []
    for organization in recipient_organizations(advisory):
        rows.append(
            {"organization": organization, "acknowledgement": acknowledgements.pop(organization.pk, None)}
        )
    # Someone may have acknowledged for an organization that has since left the audience.
    for ack in acknowledgements.values():
        rows.append({"organization": ack.organization, "acknowledgement": ack})
    rows.sort(key=lambda row: row["acknowledgement"] is not None)
    return rows


def _acknowledgement_context(advisory: Advisory) -> dict:
    rows = _acknowledgement_rows(advisory)
    acknowledged = sum(1 for row in rows if row["acknowledgement"])
    return {
        "advisory": advisory,
        "rows": rows,
        "acknowledged_count": acknowledged,
        "pending_count": len(rows) - acknowledged,
        "reminders": acknowledgement_reminders(advisory),
        "poll_seconds": ACK_POLL_SECONDS,
    }


def _ack_organizations(advisory: Advisory, user):
    """The user's organizations the advisory addresses, i.e. those they may acknowledge for."""
    organizations = _user_organizations(user)
    addressed = [org.pk for org in organizations if services.advisory_addresses(advisory, org, user)]
    return organizations.filter(pk__in=addressed)


def _render_advisory_detail(request, advisory: Advisory, status: int = 200, ack_form=None):
    user = request.user
    ack_organizations = list(_ack_organizations(advisory, user))
    acknowledged = set(
        advisory.acknowledgements.filter(organization__in=ack_organizations).values_list(
            "organization_id", flat=True
        )
    )
    pending = Organization.objects.filter(
        pk__in=[o.pk for o in ack_organizations if o.pk not in acknowledged]
    )
    context = {
        "advisory": advisory,
        "audience": advisory.audience.select_related("sector", "organization", "user"),
        "observables": list(advisory.observables.all()),
        "attachments": list(advisory.attachments.select_related("blob")),
        "source_reports": Report.objects.restrict(user).filter(advisories=advisory),
        "my_acknowledgements": advisory.acknowledgements.filter(
            organization__in=ack_organizations
        ).select_related("organization", "user"),
        "tlp_explanation": TLP_EXPLANATIONS[Tlp(advisory.tlp)],
        "nav_section": "advisories",
    }
    if pending.exists() and _may(Advisory, user, Action.ACKNOWLEDGE, advisory.pk):
        context["ack_form"] = ack_form or AcknowledgeForm(organizations=pending)
    if _may(Advisory, user, Action.CHANGE, advisory.pk):
        context |= {"is_issuer": True, **_acknowledgement_context(advisory)}
    return render(request, "sharing/advisory_detail.html", context, status=status)


@login_required
def advisory_detail(request, pk):
    user = request.user
    advisory = get_restricted_or_404(Advisory.objects.select_related("issuer", "issued_by"), user, pk=pk)
    InboxItem.objects.filter(advisory=advisory, user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    return _render_advisory_detail(request, advisory)


@login_required
@require_POST
def advisory_acknowledge(request, pk):
    user = request.user
    advisory = get_restricted_or_404(
        Advisory.objects.select_related("issuer"), user, Action.ACKNOWLEDGE, pk=pk
    )
    form = AcknowledgeForm(request.POST, organizations=_ack_organizations(advisory, user))
    if form.is_valid():
        try:
            services.advisory_acknowledge(
                user=user, advisory=advisory, organization=form.cleaned_data["organization"]
            )
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            messages.success(request, _("Thank you: the acknowledgement has been recorded."))
            return redirect("sharing:advisory_detail", pk=advisory.pk)
    return _render_advisory_detail(request, advisory, status=400, ack_form=form)


@login_required
def advisory_attachment_download(request, pk, attachment_pk):
    """An advisory's attachment, only ever as a download, like a report's."""
    advisory = get_restricted_or_404(Advisory.objects, request.user, Action.VIEW, pk=pk)
    return downloads.advisory_attachment_download(
        user=request.user, advisory=advisory, attachment_id=attachment_pk
    )


@login_required
def advisory_acknowledgements(request, pk):
    """The issuer's live table; htmx re-fetches it every few seconds."""
    advisory = get_restricted_or_404(Advisory.objects, request.user, Action.CHANGE, pk=pk)
    return render(request, "sharing/includes/ack_table.html", _acknowledgement_context(advisory))


# --- Anonymized copies ------------------------------------------------------------------------


@login_required
def anonymized_create(request, pk):
    user = request.user
    report = _visible_report(request, pk)
    if not _permissions(report, user)["can_anonymize"]:
        raise Http404
    observables = list(
        Observable.objects.filter(version__report=report, version__number=report.version_count)
    )
    form = AnonymizedCopyForm(request.POST or None, source=report, observables=observables, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            copy = services.anonymized_copy_create(actor=user, source=report, data=form.anonymized_input())
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            if _may(AnonymizedReport, user, Action.VIEW, copy.pk):
                messages.success(request, _("The anonymized copy has been published."))
                return redirect("sharing:anonymized_detail", pk=copy.pk)
            # A copy for other sectors need not reach its creator: say where it went instead.
            audience = copy.audience.select_related("sector", "organization", "user")
            messages.success(
                request,
                _(
                    "The anonymized copy has been published to: %(audience)s. "
                    "You are not among its recipients, so you cannot open it."
                )
                % {"audience": ", ".join(str(entry) for entry in audience)},
            )
            return redirect("sharing:report_detail", pk=report.pk)
    context = {"report": report, "form": form, "observables": observables, "nav_section": "reports"}
    return render(request, "sharing/anonymized_form.html", context)


@login_required
def anonymized_list(request):
    copies = (
        AnonymizedReport.objects.restrict(request.user)
        .select_related("sector", "cause")
        .order_by("-created_at")
    )
    return render(
        request,
        "sharing/anonymized_list.html",
        {"page": _page(request, copies), "query": _query_without_page(request), "nav_section": "reports"},
    )


@login_required
def anonymized_detail(request, pk):
    user = request.user
    copy = get_restricted_or_404(AnonymizedReport.objects.select_related("sector", "cause"), user, pk=pk)
    context = {
        "copy": copy,
        "observables": copy.observables.all(),
        # The way back to the source, only for those who may see the source anyway.
        "source_visible": _may(Report, user, Action.VIEW, copy.source_id),
        "tlp_explanation": TLP_EXPLANATIONS[Tlp(copy.tlp)],
        "nav_section": "reports",
    }
    return render(request, "sharing/anonymized_detail.html", context)
