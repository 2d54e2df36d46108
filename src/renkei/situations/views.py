"""Situation pages: the national centre's proposals and decisions, and the situation room.

Every page reads through the access function; the services refuse what a person may not decide, and
their refusal is shown on the page that asked (with a 400, so nothing looks done).
"""

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from renkei.core.access import get_restricted_or_404, principal_for, restrict
from renkei.core.choices import Action
from renkei.directory.choices import OrganizationType
from renkei.sharing.models import Report
from renkei.sharing.views import _add_service_error
from renkei.situations import selectors, services
from renkei.situations.after_action import after_action_context
from renkei.situations.after_action import after_action_pdf as after_action_pdf_bytes
from renkei.situations.choices import DECISION_ROLES, DecisionStatus, ProposalStatus, SituationStatus
from renkei.situations.forms import (
    DecisionForm,
    DeclareForm,
    DependencyForm,
    FindingForm,
    LevelForm,
    LogForm,
    ParticipantForm,
    ReasonForm,
    ReplayForm,
    RosterEntryForm,
    RuleForm,
    SituationReportForm,
    SpilloverForm,
)
from renkei.situations.models import (
    AlertLevel,
    LogEntry,
    Proposal,
    RecognitionRule,
    RosterEntry,
    SectorDependency,
    Situation,
    SpilloverProposal,
)
from renkei.situations.rules import replay


def _decides(user) -> bool:
    return principal_for(user).has_role(*DECISION_ROLES, org_types=(OrganizationType.NATIONAL_CENTER,))


@login_required
def situation_list(request):
    situations = restrict(Situation.objects.select_related("level"), request.user)
    context = {
        "situations": situations,
        "open_proposals": restrict(Proposal.objects.filter(status=ProposalStatus.OPEN), request.user).count(),
        "is_national_centre": principal_for(request.user).is_national_center,
        "nav_section": "situations",
    }
    return render(request, "situations/situation_list.html", context)


@login_required
def rule_list(request):
    """The rules, switched on or not, and what they would have proposed over a past period."""
    rules = list(restrict(RecognitionRule.objects.select_related("level"), request.user))
    form = ReplayForm(request.GET or None)
    firings = None
    if rules and form.is_valid():
        since = _start_of_day(form.cleaned_data["since"])
        until = (
            _start_of_day(form.cleaned_data["until"] + dt.timedelta(days=1))
            if form.cleaned_data["until"]
            else timezone.now()
        )
        firings = replay(rules, since=since, until=until)
    context = {
        "rules": rules,
        "form": form,
        "firings": firings,
        "decides": _decides(request.user),
        "nav_section": "situations",
    }
    return render(request, "situations/rule_list.html", context, status=400 if form.errors else 200)


def _start_of_day(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


@login_required
def rule_edit(request, pk=None):
    """Create a rule (switched off until tried and switched on) or change its thresholds."""
    rule = get_restricted_or_404(RecognitionRule.objects.all(), request.user, pk=pk) if pk else None
    if request.method == "POST":
        form = RuleForm(request.POST)
        if form.is_valid():
            try:
                services.rule_save(actor=request.user, values=form.cleaned_data, rule=rule)
            except ValidationError as error:
                _add_service_error(form, error)
            else:
                messages.success(request, _("The rule was saved."))
                return redirect("situations:rule_list")
    else:
        initial = {name: getattr(rule, name) for name in RuleForm.base_fields} if rule else {}
        form = RuleForm(initial=initial)
    if rule:
        form.fields["code"].disabled = True
    context = {"rule": rule, "form": form, "decides": _decides(request.user), "nav_section": "situations"}
    return render(request, "situations/rule_form.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def rule_switch(request, pk):
    rule = get_restricted_or_404(RecognitionRule.objects.all(), request.user, pk=pk)
    try:
        rule = services.rule_switch(actor=request.user, rule=rule, active=request.POST.get("active") == "on")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("The rule is now switched on.") if rule.active else _("The rule is now switched off.")
        )
    return redirect("situations:rule_list")


def _national_centre_only(request) -> None:
    """Levels, rosters and dependencies are the national centre's working data."""
    if not principal_for(request.user).is_national_center:
        raise Http404(_("Not found."))


def _render_setup(request, status=200, **forms):
    context = {
        "levels": restrict(AlertLevel.objects.all(), request.user),
        "roster": restrict(RosterEntry.objects.select_related("level", "organization"), request.user),
        "dependencies": restrict(
            SectorDependency.objects.select_related("depended_on", "dependent"), request.user
        ),
        "level_form": forms.get("level_form") or LevelForm(),
        "roster_form": forms.get("roster_form") or RosterEntryForm(),
        "dependency_form": forms.get("dependency_form") or DependencyForm(),
        "decides": _decides(request.user),
        "nav_section": "situations",
    }
    return render(request, "situations/setup.html", context, status=status)


@login_required
def setup(request):
    _national_centre_only(request)
    return _render_setup(request)


def _setup_action(request, form, perform, success: str, form_name: str, page=None):
    if form.is_valid():
        try:
            perform(form.cleaned_data)
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            messages.success(request, success)
            return redirect("situations:setup")
    if page:
        return page(form)
    return _render_setup(request, status=400, **{form_name: form})


@login_required
def level_edit(request, pk=None):
    _national_centre_only(request)
    level = get_restricted_or_404(AlertLevel.objects.all(), request.user, pk=pk) if pk else None

    def page(form, status=400):
        if level:
            form.fields["code"].disabled = True
        context = {
            "level": level,
            "form": form,
            "decides": _decides(request.user),
            "nav_section": "situations",
        }
        return render(request, "situations/level_form.html", context, status=status)

    if request.method != "POST":
        initial = {name: getattr(level, name) for name in LevelForm.base_fields} if level else {}
        return page(LevelForm(initial=initial), status=200)
    return _setup_action(
        request,
        LevelForm(request.POST),
        lambda data: services.level_save(actor=request.user, values=data, level=level),
        _("The level was saved."),
        "level_form",
        page=page,
    )


@login_required
@require_POST
def roster_entry_add(request):
    _national_centre_only(request)
    return _setup_action(
        request,
        RosterEntryForm(request.POST),
        lambda data: services.roster_entry_add(actor=request.user, values=data),
        _("Added to the roster."),
        "roster_form",
    )


def _setup_remove(request, model, pk, remove, success: str):
    _national_centre_only(request)
    row = get_restricted_or_404(model.objects.all(), request.user, pk=pk)
    try:
        remove(row)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, success)
    return redirect("situations:setup")


@login_required
@require_POST
def roster_entry_remove(request, pk):
    return _setup_remove(
        request,
        RosterEntry,
        pk,
        lambda entry: services.roster_entry_remove(actor=request.user, entry=entry),
        _("Taken off the roster."),
    )


@login_required
@require_POST
def dependency_save(request):
    _national_centre_only(request)
    return _setup_action(
        request,
        DependencyForm(request.POST),
        lambda data: services.dependency_save(actor=request.user, values=data),
        _("The dependency was saved."),
        "dependency_form",
    )


@login_required
@require_POST
def dependency_remove(request, pk):
    return _setup_remove(
        request,
        SectorDependency,
        pk,
        lambda dependency: services.dependency_remove(actor=request.user, dependency=dependency),
        _("The dependency was removed."),
    )


@login_required
def proposal_list(request):
    proposals = restrict(Proposal.objects.select_related("rule", "level"), request.user)
    context = {"proposals": proposals, "nav_section": "situations"}
    return render(request, "situations/proposal_list.html", context)


def _render_proposal(request, proposal, status=200, declare_form=None, dismiss_form=None):
    context = {
        "proposal": proposal,
        "reports": restrict(proposal.reports.select_related("sector", "cause", "organization"), request.user),
        "declare_form": declare_form
        or DeclareForm(
            initial={
                "level": proposal.level,
                "title": str(proposal.rule),
                "nationwide": False,
                "sectors": list(proposal.sectors.all()),
            }
        ),
        "dismiss_form": dismiss_form or ReasonForm(),
        "decides": _decides(request.user),
        "nav_section": "situations",
    }
    return render(request, "situations/proposal_detail.html", context, status=status)


@login_required
def proposal_detail(request, pk):
    proposal = get_restricted_or_404(Proposal.objects.select_related("rule", "level"), request.user, pk=pk)
    return _render_proposal(request, proposal)


@login_required
@require_POST
def proposal_declare(request, pk):
    proposal = get_restricted_or_404(Proposal.objects.all(), request.user, pk=pk)
    form = DeclareForm(request.POST)
    if form.is_valid():
        data = services.Declaration(**form.cleaned_data)
        try:
            situation = services.situation_declare(actor=request.user, data=data, proposal=proposal)
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            messages.success(request, _("Declared. It takes effect when a second coordinator approves it."))
            return redirect("situations:situation_detail", pk=situation.pk)
    return _render_proposal(request, proposal, status=400, declare_form=form)


@login_required
@require_POST
def proposal_dismiss(request, pk):
    proposal = get_restricted_or_404(Proposal.objects.all(), request.user, pk=pk)
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            services.proposal_dismiss(
                actor=request.user, proposal=proposal, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            messages.success(request, _("The proposal was dismissed."))
            return redirect("situations:proposal_list")
    return _render_proposal(request, proposal, status=400, dismiss_form=form)


def _room_context(request, situation) -> dict:
    sector_map = selectors.sector_map(situation, request.user)
    rows = -(-len(sector_map) // selectors.MAP_COLUMNS)
    return {
        "map_height": rows * selectors.MAP_CELL_HEIGHT,
        "situation": situation,
        "pending": situation.decisions.filter(status=DecisionStatus.PENDING)
        .select_related("requested_by", "level")
        .first(),
        "timeline": selectors.timeline(situation, request.user),
        "participants": selectors.participants(situation),
        "sector_map": sector_map,
        "questions": selectors.open_questions(situation),
        "ended": situation.status == SituationStatus.ENDED,
        "decides": _decides(request.user),
    }


def _render_room(request, situation, status=200, **forms):
    context = _room_context(request, situation) | {
        "decision_form": forms.get("decision_form") or DecisionForm(),
        "log_form": forms.get("log_form") or LogForm(),
        "participant_form": forms.get("participant_form") or ParticipantForm(),
        "report_form": forms.get("report_form") or SituationReportForm(),
        "approve_form": forms.get("approve_form"),
        "nav_section": "situations",
    }
    return render(request, "situations/situation_detail.html", context, status=status)


def _visible_situation(request, pk) -> Situation:
    return get_restricted_or_404(
        Situation.objects.select_related("level", "declared_by"), request.user, pk=pk
    )


@login_required
def situation_detail(request, pk):
    return _render_room(request, _visible_situation(request, pk))


@login_required
def situation_live(request, pk):
    """The part of the room that changes, polled by htmx so the duty team never reloads."""
    situation = _visible_situation(request, pk)
    return render(request, "situations/includes/room_live.html", _room_context(request, situation))


def _room_action(request, pk, form, perform, success, form_name):
    situation = _visible_situation(request, pk)
    if form.is_valid():
        try:
            perform(situation, form.cleaned_data)
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            messages.success(request, success)
            if not restrict(Situation.objects.filter(pk=pk), request.user).exists():
                return redirect("situations:situation_list")
            return redirect("situations:situation_detail", pk=pk)
    return _render_room(request, situation, status=400, **{form_name: form})


@login_required
@require_POST
def situation_approve(request, pk):
    return _room_action(
        request,
        pk,
        forms.Form(request.POST),  # nothing to fill in; carries the service's refusal back to the page
        lambda situation, _data: services.decision_approve(actor=request.user, situation=situation),
        _("Approved: the decision is in force."),
        "approve_form",
    )


@login_required
@require_POST
def situation_withdraw(request, pk):
    return _room_action(
        request,
        pk,
        forms.Form(request.POST),
        lambda situation, _data: services.decision_withdraw(actor=request.user, situation=situation),
        _("The decision was withdrawn."),
        "approve_form",
    )


@login_required
@require_POST
def situation_decide(request, pk):
    return _room_action(
        request,
        pk,
        DecisionForm(request.POST),
        lambda situation, data: services.decision_request(actor=request.user, situation=situation, **data),
        _("Asked. It takes effect when a second coordinator approves it."),
        "decision_form",
    )


@login_required
@require_POST
def situation_log(request, pk):
    return _room_action(
        request,
        pk,
        LogForm(request.POST),
        lambda situation, data: services.log_write(actor=request.user, situation=situation, **data),
        _("Added to the log."),
        "log_form",
    )


@login_required
@require_POST
def question_answered(request, pk, entry_pk):
    entry = get_restricted_or_404(
        LogEntry.objects.all(), request.user, Action.COMMENT, pk=entry_pk, situation_id=pk
    )
    try:
        services.question_answered(actor=request.user, entry=entry)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("situations:situation_detail", pk=pk)


@login_required
@require_POST
def situation_report_add(request, pk):
    def perform(situation, data):
        report = Report.objects.filter(pk=data["report"]).first()
        if report is None:  # the service answers a report the person may not see the same way
            raise ValidationError({"report": [ValidationError(_("Unknown report."), code="report")]})
        services.situation_add_report(actor=request.user, situation=situation, report=report)

    return _room_action(
        request,
        pk,
        SituationReportForm(request.POST),
        perform,
        _("The report is part of the situation now."),
        "report_form",
    )


@login_required
@require_POST
def participant_add(request, pk):
    return _room_action(
        request,
        pk,
        ParticipantForm(request.POST),
        lambda situation, data: services.participant_add(actor=request.user, situation=situation, **data),
        _("The organization joins the response and is told so."),
        "participant_form",
    )


def _report_language(request) -> str:
    """The after-action report's language: ?lang=ja or en, else the page's."""
    chosen = request.GET.get("lang", "")
    return chosen if chosen in dict(settings.LANGUAGES) else translation.get_language()


def _ended_situation(request, pk) -> Situation:
    """After-action reports are written about situations that have ended."""
    situation = _visible_situation(request, pk)
    if situation.status != SituationStatus.ENDED:
        raise Http404(_("Not found."))
    return situation


def _render_after_action(request, situation, status=200, finding_form=None):
    language = _report_language(request)
    with translation.override(language):
        context = after_action_context(situation, request.user)
    context |= {
        "language": language,
        "finding_form": finding_form or FindingForm(),
        "may_add_findings": principal_for(request.user).is_national_center,
        "nav_section": "situations",
    }
    return render(request, "situations/after_action.html", context, status=status)


@login_required
def after_action(request, pk):
    return _render_after_action(request, _ended_situation(request, pk))


@login_required
def after_action_pdf(request, pk):
    situation = _ended_situation(request, pk)
    with translation.override(_report_language(request)):
        document = after_action_pdf_bytes(after_action_context(situation, request.user))
    response = HttpResponse(document, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="after-action-{situation.pk}.pdf"'
    return response


@login_required
@require_POST
def finding_add(request, pk):
    situation = _ended_situation(request, pk)
    form = FindingForm(request.POST)
    if form.is_valid():
        try:
            services.finding_add(actor=request.user, situation=situation, text=form.cleaned_data["text"])
        except ValidationError as error:
            _add_service_error(form, error)
        else:
            messages.success(request, _("The finding was recorded."))
            return redirect("situations:after_action", pk=pk)
    return _render_after_action(request, situation, status=400, finding_form=form)


@login_required
def spillover_list(request):
    proposals = restrict(SpilloverProposal.objects.select_related("source_sector", "report"), request.user)
    return render(
        request, "situations/spillover_list.html", {"proposals": proposals, "nav_section": "situations"}
    )


@login_required
def spillover_detail(request, pk):
    proposal = get_restricted_or_404(
        SpilloverProposal.objects.select_related("source_sector"), request.user, pk=pk
    )
    if request.method == "POST":
        form = SpilloverForm(request.POST)
        if form.is_valid():
            try:
                services.spillover_send(actor=request.user, proposal=proposal, **form.cleaned_data)
            except ValidationError as error:
                _add_service_error(form, error)
            else:
                messages.success(request, _("The warning was sent to the dependent sectors."))
                return redirect("situations:spillover_list")
        status = 400
    else:
        form = SpilloverForm(
            initial={
                "title": proposal.title,
                "body": proposal.body,
                "sectors": list(proposal.dependent_sectors.all()),
            }
        )
        status = 200
    context = {
        "proposal": proposal,
        "form": form,
        "report_visible": Report.objects.restrict(request.user).filter(pk=proposal.report_id).exists(),
        "decides": _decides(request.user),
        "nav_section": "situations",
    }
    return render(request, "situations/spillover_detail.html", context, status=status)


@login_required
@require_POST
def spillover_dismiss(request, pk):
    proposal = get_restricted_or_404(SpilloverProposal.objects.all(), request.user, pk=pk)
    try:
        services.spillover_dismiss(actor=request.user, proposal=proposal)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("situations:spillover_detail", pk=pk)
    messages.success(request, _("The proposal was dismissed."))
    return redirect("situations:spillover_list")
