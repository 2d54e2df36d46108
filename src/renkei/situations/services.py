"""Situations: proposals from the rules, two-person decisions, the response structure and its access.

Every decision (declare, raise, lower, end) is asked by one national-centre coordinator and takes
effect when a different one approves it. Taking effect brings the roster of the new level into the
situation: organizations join, are told by an advisory they acknowledge, and receive report grants
for the situation's reports up to the label their roster entry allows. Leaving (a lower level, the
end) withdraws exactly the grants the situation gave.
"""

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.core.choices import Action
from renkei.core.reference_cache import cached_reference
from renkei.core.services import check as _check
from renkei.directory.choices import OrganizationType
from renkei.directory.models import Organization, Sector, User
from renkei.sharing.choices import TLP_ORDER, GrantReason, ServiceState, Severity, Tlp
from renkei.sharing.delivery import absolute_url
from renkei.sharing.models import CauseCategory, Observable, Report, ReportGrant
from renkei.sharing.services import AdvisoryInput, advisory_issue
from renkei.situations import rules
from renkei.situations.choices import (
    DECISION_ROLES,
    RULE_PARAMETERS,
    DecisionKind,
    DecisionStatus,
    LogKind,
    ParticipantSource,
    ProposalStatus,
    RuleKind,
    SituationStatus,
    SpilloverStatus,
)
from renkei.situations.models import (
    ROSTER_TLP,
    AlertLevel,
    Decision,
    Finding,
    LogEntry,
    Participant,
    Proposal,
    ProposalReport,
    RecognitionRule,
    RosterEntry,
    SectorDependency,
    Situation,
    SituationGrant,
    SituationReport,
    SpilloverProposal,
)
from renkei.situations.tasks import duty_team_notify

REFERENCE_DATA = Path(__file__).parent / "referencedata" / "situations.json"
# How long a joining organization has to acknowledge the notice.
ACKNOWLEDGE_WITHIN = dt.timedelta(hours=2)


# --- Reference data -----------------------------------------------------------------------------


@transaction.atomic
def situations_reference_data_load(*, actor=None, path: Path = REFERENCE_DATA) -> dict[str, int]:
    """Create the levels, rules, rosters and sector dependencies that are missing; never overwrite edits."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    created = {"alert_levels": 0, "recognition_rules": 0, "roster_entries": 0, "sector_dependencies": 0}
    for item in data["levels"]:
        level, new = AlertLevel.objects.get_or_create(code=item["code"], defaults=item)
        if new:
            audit_write(actor=actor, action=AuditAction.CREATE, obj=level, after=snapshot(level))
            created["alert_levels"] += 1
    levels = {level.code: level for level in AlertLevel.objects.all()}
    for item in data["rules"]:
        values = {key: value for key, value in item.items() if key != "level"} | {
            "level": levels[item["level"]]
        }
        rule, new = RecognitionRule.objects.get_or_create(code=item["code"], defaults=values)
        if new:
            audit_write(actor=actor, action=AuditAction.CREATE, obj=rule, after=snapshot(rule))
            created["recognition_rules"] += 1
    if not RosterEntry.objects.exists():  # a roster edited down to nothing stays so only if rows remain
        for item in data["roster"]:
            entry = RosterEntry.objects.create(
                level=levels[item["level"]],
                organization_type=item["organization_type"],
                affected_sectors_only=item.get("affected_sectors_only", False),
                max_tlp=item["max_tlp"],
            )
            audit_write(actor=actor, action=AuditAction.CREATE, obj=entry, after=snapshot(entry))
            created["roster_entries"] += 1
    sectors = {sector.code: sector for sector in Sector.objects.all()}
    for item in data["dependencies"]:
        if item["depended_on"] not in sectors:
            continue
        for dependent in item["dependents"]:
            if dependent not in sectors:
                continue
            _dependency, new = SectorDependency.objects.get_or_create(
                depended_on=sectors[item["depended_on"]],
                dependent=sectors[dependent],
                defaults={"strength": item["strength"], "note": item["note"]},
            )
            if new:
                created["sector_dependencies"] += 1
    return created


# --- Levels, rosters and dependencies (data the national centre keeps) --------------------------


def _saved(actor: User, instance, before: dict | None) -> None:
    """Save `instance` after checking its fields and constraints, and audit the change."""
    try:
        instance.full_clean()
    except ValidationError as error:
        raise ValidationError(error.message_dict) from None
    instance.save()
    audit_write(
        actor=actor,
        action=AuditAction.CREATE if before is None else AuditAction.UPDATE,
        obj=instance,
        before=before,
        after=snapshot(instance),
    )


@transaction.atomic
def level_save(*, actor: User, values: dict, level: AlertLevel | None = None) -> AlertLevel:
    """Create or change an alert level (code only at creation; rank orders the levels)."""
    _check_decider(actor)
    before = snapshot(level) if level else None
    level = level or AlertLevel(code=values.get("code") or "")
    level.rank, level.colour = values["rank"], values["colour"]
    level.name_ja, level.name_en = values["name_ja"].strip(), (values.get("name_en") or "").strip()
    _saved(actor, level, before)
    return level


@transaction.atomic
def roster_entry_add(*, actor: User, values: dict) -> RosterEntry:
    """Add to a level's roster: an organization type (optionally only the affected sectors' ones) or
    one organization, and the label up to which it then sees the situation's reports."""
    _check_decider(actor)
    _check(
        bool(values.get("organization_type")) != bool(values.get("organization")),
        _("Choose an organization type or one organization."),
        "roster_target",
    )
    entry = RosterEntry(
        level=values["level"],
        organization_type=values.get("organization_type") or "",
        organization=values.get("organization"),
        affected_sectors_only=bool(values.get("affected_sectors_only")),
        max_tlp=values["max_tlp"],
    )
    _saved(actor, entry, None)
    return entry


@transaction.atomic
def roster_entry_remove(*, actor: User, entry: RosterEntry) -> None:
    """Take an entry off the roster; situations in force keep their participants until their level changes."""
    _check_decider(actor)
    audit_write(actor=actor, action=AuditAction.DELETE, obj=entry, before=snapshot(entry))
    entry.delete()


@transaction.atomic
def dependency_save(*, actor: User, values: dict) -> SectorDependency:
    """Record that one sector depends on another (or change how strongly)."""
    _check_decider(actor)
    _check(
        values["depended_on"] != values["dependent"],
        _("A sector does not depend on itself."),
        "dependency_self",
        "dependent",
    )
    dependency = SectorDependency.objects.filter(
        depended_on=values["depended_on"], dependent=values["dependent"]
    ).first()
    before = snapshot(dependency) if dependency else None
    dependency = dependency or SectorDependency(
        depended_on=values["depended_on"], dependent=values["dependent"]
    )
    dependency.strength, dependency.note = values["strength"], (values.get("note") or "").strip()
    _saved(actor, dependency, before)
    return dependency


@transaction.atomic
def dependency_remove(*, actor: User, dependency: SectorDependency) -> None:
    _check_decider(actor)
    audit_write(actor=actor, action=AuditAction.DELETE, obj=dependency, before=snapshot(dependency))
    dependency.delete()


# --- Rules → proposals --------------------------------------------------------------------------


def report_changed_withdraw(sender, *, report: Report, event: str, **kwargs) -> None:
    """In the relabelling's transaction: a stricter label takes the report from participants whose
    roster ceiling it now exceeds, at once."""
    if event == "relabelled":
        _withdraw_above_ceiling(report)


# What a report's follow-up task brings to the rules: the events that change what they count.
EVALUATED_EVENTS = ("submitted", "updated", "reclassified", "relabelled")


def report_event_evaluate(sender, *, report_id: str, event: str, **kwargs) -> None:
    """In the worker, once a new, updated, reclassified or relabelled report has committed: the rules'
    look at it."""
    if event in EVALUATED_EVENTS:
        evaluate_report(report_id)


def _withdraw_above_ceiling(report: Report) -> None:
    held = SituationGrant.objects.filter(grant__report=report).select_related("grant")
    for hold in held:
        participant = Participant.objects.filter(
            situation_id=hold.situation_id, organization_id=hold.grant.organization_id, left_at__isnull=True
        ).first()
        if participant is None or not _within(report.tlp, participant.max_tlp):
            hold.delete()
    ReportGrant.objects.filter(report=report, reason=GrantReason.SITUATION).exclude(
        Exists(SituationGrant.objects.filter(grant=OuterRef("pk")))
    ).delete()


def active_rules() -> list[RecognitionRule]:
    """The rules switched on; every report reads them, so each process keeps them for up to a minute
    (a change saved in this process is seen at once)."""
    return cached_reference(
        ("situations", "active-rules"),
        lambda: list(RecognitionRule.objects.filter(active=True).select_related("level")),
    )


def _lock_rule(rule_id: int) -> None:
    list(RecognitionRule.objects.select_for_update().filter(pk=rule_id).values_list("pk", flat=True))


@transaction.atomic
def propose(firing: rules.Firing) -> tuple[Proposal | None, bool]:
    """The open proposal of the firing's rule, created or grown by the firing's reports; whether it
    is new. One open proposal per rule, held by a unique index even when two workers race. Proposing
    and declaring both lock the rule first: a firing that waited for a declaration of the same rule
    feeds the situation instead (and gives no proposal)."""
    rule = firing.rule
    _lock_rule(rule.pk)
    situation = _situations_by_rule().get(rule.pk)
    if situation is not None:
        _feed(situation, firing.report_ids)
        return None, False
    proposal = Proposal.objects.select_for_update().filter(rule=rule, status=ProposalStatus.OPEN).first()
    created = proposal is None
    if created:
        try:
            with transaction.atomic():
                proposal = Proposal.objects.create(rule=rule, level=rule.level)
        except IntegrityError:  # another worker opened it a moment ago
            proposal = Proposal.objects.select_for_update().get(rule=rule, status=ProposalStatus.OPEN)
            created = False
    ProposalReport.objects.bulk_create(
        [ProposalReport(proposal=proposal, report_id=report_id) for report_id in firing.report_ids],
        ignore_conflicts=True,
    )
    proposal.sectors.add(*firing.sector_ids)
    proposal.save(update_fields=["updated_at"])
    if created:
        audit_write(actor=None, action=AuditAction.CREATE, obj=proposal, after=snapshot(proposal))
        # Queued in this transaction, as report notifications are: the mail exists exactly when the
        # proposal does.
        duty_team_notify.enqueue(kind="proposal", pk=proposal.pk)
    return proposal, created


# Each threshold's smallest sensible value (a rule over one organization would not be "shared").
THRESHOLD_MINIMUMS = {
    "min_reports": 1,
    "min_sectors": 1,
    "min_organizations": 2,
    "min_users": 1,
    "min_dependents": 1,
    "window_hours": 1,
}


@transaction.atomic
def rule_save(*, actor: User, values: dict, rule: RecognitionRule | None = None) -> RecognitionRule:
    """Create a rule (switched off, to be tried on past reports first) or change one. `values` holds
    code (creation only), names, kind, level and thresholds: those the kind reads are required, the
    others are cleared."""
    _check_decider(actor)
    kind = values.get("kind")
    _check(kind in RuleKind.values, _("Unknown kind of rule."), "kind", "kind")
    needed = RULE_PARAMETERS[kind]
    for name in needed:
        _check(values.get(name) not in (None, ""), _("This kind of rule needs this value."), "required", name)
        if name in THRESHOLD_MINIMUMS:
            _check(
                values[name] >= THRESHOLD_MINIMUMS[name],
                _("At least %(minimum)d.") % {"minimum": THRESHOLD_MINIMUMS[name]},
                "minimum",
                name,
            )
    if "cause_code" in needed:
        _check(
            CauseCategory.objects.filter(code=values["cause_code"]).exists(),
            _("Unknown cause %(code)s.") % {"code": values["cause_code"]},
            "cause_code",
            "cause_code",
        )
    _check(
        bool((values.get("name_ja") or "").strip()), _("A Japanese name is required."), "name_ja", "name_ja"
    )
    if rule is None:
        code = values.get("code") or ""
        _check(
            bool(code) and not RecognitionRule.objects.filter(code=code).exists(),
            _("Choose a code no other rule has."),
            "code",
            "code",
        )
        rule, before = RecognitionRule(code=code, active=False), None
    else:
        rule = RecognitionRule.objects.select_for_update().get(pk=rule.pk)
        before = snapshot(rule)
    rule.name_ja, rule.name_en = values["name_ja"].strip(), (values.get("name_en") or "").strip()
    rule.kind, rule.level = kind, values["level"]
    rule.cause_code = values["cause_code"] if "cause_code" in needed else ""
    for name in THRESHOLD_MINIMUMS:
        setattr(rule, name, values[name] if name in needed else None)
    rule.save()
    audit_write(
        actor=actor,
        action=AuditAction.CREATE if before is None else AuditAction.UPDATE,
        obj=rule,
        before=before,
        after=snapshot(rule),
    )
    return rule


@transaction.atomic
def rule_switch(*, actor: User, rule: RecognitionRule, active: bool) -> RecognitionRule:
    """Switch a recognition rule on or off (a national-centre coordinator's call)."""
    _check_decider(actor)
    rule = RecognitionRule.objects.select_for_update().get(pk=rule.pk)
    before = snapshot(rule)
    rule.active = active
    rule.save(update_fields=["active", "updated_at"])
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=rule, before=before, after=snapshot(rule))
    return rule


def evaluate_report(report_id: str, *, now: dt.datetime | None = None) -> list[Proposal]:
    """Run the active rules over one report: a report counted by a rule whose situation is in force
    joins that situation; rules that hold open or grow their proposals. Also propose the spill-over
    warning an outage calls for. Returns the proposals touched."""
    report = Report.objects.filter(pk=report_id).first()
    if report is None:
        return []
    context = rules.Context()
    in_force = _situations_by_rule()
    for situation in in_force.values():
        rule = situation.proposal.rule
        if rule.kind == RuleKind.SHARED_OBSERVABLE:
            counted = _shares_an_observable(situation, context.observables_of(report))
        else:
            counted = rules.counts_for(rule, report, context)
        if counted:
            _feed(situation, [report.pk])
    firings = rules.evaluate_report(report, active_rules(), at=now or timezone.now(), context=context)
    proposed = [propose(firing)[0] for firing in firings if firing.rule.pk not in in_force]
    spillover_propose(report, context)
    return [proposal for proposal in proposed if proposal is not None]


def evaluate_schedule(*, now=None) -> int:
    """The windowed rules over their whole window (the upkeep's safety net for anything an event
    missed, e.g. a rule switched on mid-storm). Returns the number of new proposals."""
    firings = rules.evaluate_window(active_rules(), at=now or timezone.now())
    in_force = _situations_by_rule()
    for firing in firings:
        if firing.rule.pk in in_force:
            _feed(in_force[firing.rule.pk], firing.report_ids)
    return sum(propose(firing)[1] for firing in firings if firing.rule.pk not in in_force)


def _situations_by_rule() -> dict[int, Situation]:
    """Rule id → the newest situation not yet ended that was declared from one of its proposals."""
    situations = (
        Situation.objects.filter(proposal__isnull=False)
        .exclude(status=SituationStatus.ENDED)
        .select_related("proposal__rule")
        .order_by("created_at")
    )
    return {situation.proposal.rule_id: situation for situation in situations}


def _shares_an_observable(situation: Situation, values: set) -> bool:
    if not values:
        return False
    matching = Q()
    for observable_type, value in values:
        matching |= Q(type=observable_type, value=value)
    return Observable.objects.filter(matching, version__report__in=situation.reports.all()).exists()


@transaction.atomic
def _feed(situation: Situation, report_ids: list) -> int:
    """Add reports to a situation; an active one's participants see them as their roster allows."""
    situation = Situation.objects.select_for_update().get(pk=situation.pk)
    existing = set(situation.report_links.values_list("report_id", flat=True))
    new = [report_id for report_id in dict.fromkeys(report_ids) if report_id not in existing]
    SituationReport.objects.bulk_create([SituationReport(situation=situation, report_id=pk) for pk in new])
    if new and situation.status == SituationStatus.ACTIVE:
        reports = list(Report.objects.filter(pk__in=new))
        _grant(situation, list(situation.participants.filter(left_at__isnull=True)), reports=reports)
    return len(new)


def _national_centre_coordinators():
    return User.objects.filter(
        is_active=True,
        memberships__organization__type=OrganizationType.NATIONAL_CENTER,
        memberships__organization__active=True,
        memberships__role__in=DECISION_ROLES,
    ).distinct()


def tell_duty_team(kind: str, pk: int) -> int:
    """E-mail the national centre's coordinators, each in their language, that a rule proposes a level
    (`kind` "proposal") or that an outage calls for a spill-over warning (`kind` "spillover")."""
    if kind == "proposal":
        subject_of = Proposal.objects.select_related("rule", "level").get(pk=pk)
        url = absolute_url("proposal_detail", pk, namespace="situations")
    else:
        subject_of = SpilloverProposal.objects.select_related("source_sector").get(pk=pk)
        url = absolute_url("spillover_detail", pk, namespace="situations")
    messages = []
    for person in _national_centre_coordinators().exclude(email=""):
        with translation.override(person.language or settings.LANGUAGE_CODE):
            context = {kind: subject_of, "url": url}
            subject = " ".join(render_to_string(f"situations/email/{kind}_subject.txt", context).split())
            body = render_to_string(f"situations/email/{kind}_body.txt", context)
        messages.append(mail.EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [person.email]))
    if not messages:
        return 0
    with mail.get_connection() as connection:
        return connection.send_messages(messages)


# --- Decisions ------------------------------------------------------------------------------------


def _check_decider(actor: User) -> None:
    _check(
        actor.memberships.filter(
            organization__type=OrganizationType.NATIONAL_CENTER,
            organization__active=True,
            role__in=DECISION_ROLES,
        ).exists(),
        _("Only the national centre's coordinators decide on situations."),
        "not_decider",
    )


def _national_centre(actor: User) -> Organization:
    return (
        Organization.objects.filter(
            type=OrganizationType.NATIONAL_CENTER,
            active=True,
            memberships__user=actor,
            memberships__role__in=DECISION_ROLES,
        )
        .order_by("pk")
        .first()
    )


@dataclass
class Declaration:
    title: str
    reason: str
    level: AlertLevel
    nationwide: bool = True
    sectors: tuple = ()


@transaction.atomic
def situation_declare(*, actor: User, data: Declaration, proposal: Proposal | None = None) -> Situation:
    """Ask for a situation to be declared: it waits, `pending_approval`, for a second coordinator."""
    _check_decider(actor)
    title, reason = (data.title or "").strip(), (data.reason or "").strip()
    _check(bool(title), _("A title is required."), "title", "title")
    _check(len(title) <= 200, _("The title is longer than 200 characters."), "title", "title")
    _check(bool(reason), _("Give the reason for the decision."), "reason", "reason")
    sectors = list(data.sectors)
    _check(
        data.nationwide or bool(sectors),
        _("A situation is nationwide or names the sectors it covers."),
        "sectors",
        "sectors",
    )
    if proposal is not None:
        _lock_rule(proposal.rule_id)  # see propose()
        proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
        _check(
            proposal.status == ProposalStatus.OPEN,
            _("This proposal was already decided."),
            "proposal_decided",
        )
    situation = Situation.objects.create(
        title=title, level=data.level, nationwide=data.nationwide, proposal=proposal, declared_by=actor
    )
    situation.sectors.set([] if data.nationwide else sectors)
    if proposal is not None:
        SituationReport.objects.bulk_create(
            SituationReport(situation=situation, report_id=link.report_id, added_by=actor)
            for link in proposal.report_links.all()
        )
        before = snapshot(proposal)
        proposal.status = ProposalStatus.DECLARED
        proposal.decided_by, proposal.decided_at, proposal.decision_reason = actor, timezone.now(), reason
        proposal.save()
        audit_write(
            actor=actor, action=AuditAction.UPDATE, obj=proposal, before=before, after=snapshot(proposal)
        )
    decision = Decision.objects.create(
        situation=situation, kind=DecisionKind.DECLARE, level=data.level, reason=reason, requested_by=actor
    )
    audit_write(actor=actor, action=AuditAction.CREATE, obj=situation, after=snapshot(situation))
    audit_write(actor=actor, action=AuditAction.CREATE, obj=decision, after=snapshot(decision))
    return situation


@transaction.atomic
def proposal_dismiss(*, actor: User, proposal: Proposal, reason: str) -> Proposal:
    """Decide that a proposal calls for no situation; its reports will not propose this rule again."""
    _check_decider(actor)
    _check(bool((reason or "").strip()), _("Give the reason for the decision."), "reason", "reason")
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    _check(
        proposal.status == ProposalStatus.OPEN, _("This proposal was already decided."), "proposal_decided"
    )
    before = snapshot(proposal)
    proposal.status = ProposalStatus.DISMISSED
    proposal.decided_by, proposal.decided_at, proposal.decision_reason = actor, timezone.now(), reason.strip()
    proposal.save()
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=proposal, before=before, after=snapshot(proposal))
    return proposal


@transaction.atomic
def decision_request(*, actor: User, situation: Situation, kind: str, reason: str, level=None) -> Decision:
    """Ask to raise, lower or end an active situation; a second coordinator approves it."""
    _check_decider(actor)
    situation = Situation.objects.select_for_update().get(pk=situation.pk)
    _check(
        situation.status == SituationStatus.ACTIVE, _("Only an active situation can change."), "not_active"
    )
    _check(bool((reason or "").strip()), _("Give the reason for the decision."), "reason", "reason")
    _check(
        not situation.decisions.filter(status=DecisionStatus.PENDING).exists(),
        _("A decision on this situation already awaits approval."),
        "decision_pending",
    )
    if kind == DecisionKind.RAISE:
        _check(
            level is not None and level.rank > situation.level.rank,
            _("Choose a higher level."),
            "level",
            "level",
        )
    elif kind == DecisionKind.LOWER:
        _check(
            level is not None and level.rank < situation.level.rank,
            _("Choose a lower level."),
            "level",
            "level",
        )
    else:
        _check(kind == DecisionKind.END, _("Unknown decision."), "kind", "kind")
        level = None
    decision = Decision.objects.create(
        situation=situation, kind=kind, level=level, reason=reason.strip(), requested_by=actor
    )
    audit_write(actor=actor, action=AuditAction.CREATE, obj=decision, after=snapshot(decision))
    return decision


@transaction.atomic
def decision_approve(*, actor: User, situation: Situation) -> Situation:
    """Approve the decision that awaits approval; a second person, never the one who asked."""
    _check_decider(actor)
    situation = Situation.objects.select_for_update().select_related("level").get(pk=situation.pk)
    decision = situation.decisions.filter(status=DecisionStatus.PENDING).first()
    _check(decision is not None, _("Nothing on this situation awaits approval."), "nothing_pending")
    _check(
        decision.requested_by_id != actor.pk,
        _("A second person must approve: you asked for this decision yourself."),
        "same_person",
    )
    before, decision_before = snapshot(situation), snapshot(decision)
    now = timezone.now()
    decision.status, decision.approved_by, decision.approved_at = DecisionStatus.APPROVED, actor, now
    decision.save()
    audit_write(
        actor=actor, action=AuditAction.UPDATE, obj=decision, before=decision_before, after=snapshot(decision)
    )
    if decision.kind == DecisionKind.END:
        situation.status, situation.ended_at = SituationStatus.ENDED, now
        situation.save()
        for participant in situation.participants.filter(left_at__isnull=True):
            _leave(participant, now, actor=actor)
    else:
        if decision.kind == DecisionKind.DECLARE:
            situation.status, situation.activated_at = SituationStatus.ACTIVE, now
        situation.level = decision.level
        situation.save()
        roster_apply(situation, actor=actor, decision=decision)
    audit_write(
        actor=actor, action=AuditAction.UPDATE, obj=situation, before=before, after=snapshot(situation)
    )
    return situation


@transaction.atomic
def decision_withdraw(*, actor: User, situation: Situation) -> Decision:
    """Take back a decision that still awaits approval (a declaration also closes its situation)."""
    _check_decider(actor)
    situation = Situation.objects.select_for_update().get(pk=situation.pk)
    decision = situation.decisions.filter(status=DecisionStatus.PENDING).first()
    _check(decision is not None, _("Nothing on this situation awaits approval."), "nothing_pending")
    before = snapshot(decision)
    decision.status = DecisionStatus.WITHDRAWN
    decision.save()
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=decision, before=before, after=snapshot(decision))
    if decision.kind == DecisionKind.DECLARE:
        before = snapshot(situation)
        proposal = situation.proposal
        situation.status, situation.ended_at, situation.proposal = SituationStatus.ENDED, timezone.now(), None
        situation.save()
        audit_write(
            actor=actor, action=AuditAction.UPDATE, obj=situation, before=before, after=snapshot(situation)
        )
        if proposal is not None:
            _reopen(actor, proposal)
    return decision


def _reopen(actor: User, proposal: Proposal) -> None:
    """A withdrawn declaration gives its proposal back to the duty team's list, open again (or
    merged into the rule's proposal that opened meanwhile), so no alert is lost."""
    before = snapshot(proposal)
    open_one = (
        Proposal.objects.select_for_update()
        .filter(rule_id=proposal.rule_id, status=ProposalStatus.OPEN)
        .first()
    )
    if open_one is None:
        proposal.status, proposal.decided_by, proposal.decided_at = ProposalStatus.OPEN, None, None
        proposal.decision_reason = ""
        proposal.save()
        audit_write(
            actor=actor, action=AuditAction.UPDATE, obj=proposal, before=before, after=snapshot(proposal)
        )
        return
    ProposalReport.objects.bulk_create(
        [ProposalReport(proposal=open_one, report_id=link.report_id) for link in proposal.report_links.all()],
        ignore_conflicts=True,
    )
    open_one.sectors.add(*proposal.sectors.all())
    audit_write(actor=actor, action=AuditAction.DELETE, obj=proposal, before=before)
    proposal.delete()


# --- The response structure ---------------------------------------------------------------------


def _within(label: str, ceiling: str) -> bool:
    """Whether a report labelled `label` may reach a participant whose roster allows up to `ceiling`."""
    return label in ROSTER_TLP and TLP_ORDER.index(label) <= TLP_ORDER.index(ceiling)


def _higher_ceiling(first: str, second: str) -> str:
    """Of two roster ceilings, the one that lets more reports through."""
    return max(first, second, key=TLP_ORDER.index)


def roster_organizations(situation: Situation) -> dict[int, str]:
    """Organization id → the label up to which it may see reports, for the situation's level and
    every level below it. The national centre is not listed: it sees every report already."""
    sector_ids = set(situation.sectors.values_list("pk", flat=True))
    wanted: dict[int, str] = {}
    entries = RosterEntry.objects.filter(level__rank__lte=situation.level.rank)
    for entry in entries:
        if entry.organization_id:
            organizations = Organization.objects.filter(pk=entry.organization_id, active=True)
        else:
            organizations = Organization.objects.filter(type=entry.organization_type, active=True)
            if entry.affected_sectors_only and not situation.nationwide:
                organizations = organizations.filter(
                    Q(overseen_sectors__in=sector_ids) | Q(sectors__in=sector_ids)
                ).distinct()
        for organization_id in organizations.exclude(type=OrganizationType.NATIONAL_CENTER).values_list(
            "pk", flat=True
        ):
            wanted[organization_id] = _higher_ceiling(
                wanted.get(organization_id, entry.max_tlp), entry.max_tlp
            )
    return wanted


def roster_apply(situation: Situation, *, actor: User, decision: Decision | None = None) -> list[Participant]:
    """Bring the participants in line with the roster of the situation's level: join the new ones
    (told by an advisory they acknowledge), let go of those the level no longer calls for, and
    grant each the situation's reports up to its ceiling. Organizations named for the situation stay."""
    now = timezone.now()
    wanted = roster_organizations(situation)
    current = {p.organization_id: p for p in situation.participants.filter(left_at__isnull=True)}
    joined = []
    for organization_id, participant in current.items():
        if participant.source == ParticipantSource.ROSTER and organization_id not in wanted:
            _leave(participant, now, actor=actor)
        elif (
            participant.source == ParticipantSource.ROSTER
            and organization_id in wanted
            and participant.max_tlp != wanted[organization_id]
        ):
            before = snapshot(participant)
            participant.max_tlp = wanted[organization_id]
            participant.save(update_fields=["max_tlp"])
            _withdraw_grants(situation, [organization_id])
            _grant(situation, [participant])
            audit_write(
                actor=actor,
                action=AuditAction.UPDATE,
                obj=participant,
                before=before,
                after=snapshot(participant),
            )
    for organization_id, max_tlp in wanted.items():
        if organization_id not in current:
            joined.append(
                Participant.objects.create(
                    situation=situation,
                    organization_id=organization_id,
                    source=ParticipantSource.ROSTER,
                    max_tlp=max_tlp,
                )
            )
    for participant in joined:
        audit_write(actor=actor, action=AuditAction.CREATE, obj=participant, after=snapshot(participant))
    _grant(situation, joined)
    _send_notice(situation, actor=actor, decision=decision)
    return joined


@transaction.atomic
def participant_add(
    *, actor: User, situation: Situation, organization: Organization, max_tlp: str
) -> Participant:
    """Name an organization for this situation (a vendor, say) beyond the roster of its level."""
    _check_decider(actor)
    situation = Situation.objects.select_for_update().get(pk=situation.pk)
    _check(
        situation.status == SituationStatus.ACTIVE, _("Only an active situation can change."), "not_active"
    )
    _check(
        max_tlp in ROSTER_TLP,
        _("Choose TLP:AMBER or a wider label."),
        "max_tlp",
        "max_tlp",
    )
    _check(organization.active, _("That organization is not active."), "organization", "organization")
    _check(
        not situation.participants.filter(organization=organization, left_at__isnull=True).exists(),
        _("%(organization)s already takes part.") % {"organization": organization},
        "already_joined",
        "organization",
    )
    participant = Participant.objects.create(
        situation=situation, organization=organization, source=ParticipantSource.NAMED, max_tlp=max_tlp
    )
    _grant(situation, [participant])
    _send_notice(situation, actor=actor, decision=None)
    audit_write(actor=actor, action=AuditAction.CREATE, obj=participant, after=snapshot(participant))
    return participant


@transaction.atomic
def situation_add_report(*, actor: User, situation: Situation, report: Report) -> SituationReport:
    """Put a report the coordinator can see into the situation; the participants may then see it too."""
    _check_decider(actor)
    situation = Situation.objects.select_for_update().get(pk=situation.pk)
    _check(situation.status != SituationStatus.ENDED, _("This situation has ended."), "ended")
    _check(
        Report.objects.restrict(actor).filter(pk=report.pk).exists(), _("Unknown report."), "report", "report"
    )
    link, created = SituationReport.objects.get_or_create(
        situation=situation, report=report, defaults={"added_by": actor}
    )
    if created and situation.status == SituationStatus.ACTIVE:
        _grant(situation, list(situation.participants.filter(left_at__isnull=True)), reports=[report])
    return link


def _grant(situation: Situation, participants: list[Participant], reports=None) -> int:
    """Report grants for `participants` on the situation's reports their ceiling allows. An
    organization already in a report's audience keeps the grant it had; TLP:RED is never granted."""
    if not participants:
        return 0
    reports = reports if reports is not None else situation.reports.all()
    made = 0
    for participant in participants:
        candidates = [report for report in reports if _within(report.tlp, participant.max_tlp)]
        if not candidates:
            continue
        held = set(
            ReportGrant.objects.filter(
                organization_id=participant.organization_id, report__in=candidates
            ).values_list("report_id", flat=True)
        )
        new = ReportGrant.objects.bulk_create(
            ReportGrant(
                report=report,
                organization_id=participant.organization_id,
                reason=GrantReason.SITUATION,
                report_is_red=False,
            )
            for report in candidates
            if report.pk not in held
        )
        # A grant another situation gave stays shared: this situation holds it too.
        shared = ReportGrant.objects.filter(
            organization_id=participant.organization_id,
            report__in=candidates,
            reason=GrantReason.SITUATION,
        ).exclude(pk__in=[grant.pk for grant in new])
        SituationGrant.objects.bulk_create(
            [SituationGrant(situation=situation, grant=grant) for grant in new]
            + [SituationGrant(situation=situation, grant=grant) for grant in shared],
            ignore_conflicts=True,
        )
        made += len(new)
    return made


def _withdraw_grants(situation: Situation, organization_ids: list[int]) -> int:
    """Drop this situation's hold on those organizations' grants, and the grants no situation holds."""
    SituationGrant.objects.filter(situation=situation, grant__organization_id__in=organization_ids).delete()
    orphaned = ReportGrant.objects.filter(
        organization_id__in=organization_ids, reason=GrantReason.SITUATION
    ).exclude(Exists(SituationGrant.objects.filter(grant=OuterRef("pk"))))
    deleted, _per_model = orphaned.delete()
    return deleted


def _leave(participant: Participant, now: dt.datetime, *, actor: User) -> None:
    before = snapshot(participant)
    participant.left_at = now
    participant.save(update_fields=["left_at"])
    _withdraw_grants(participant.situation, [participant.organization_id])
    audit_write(
        actor=actor, action=AuditAction.UPDATE, obj=participant, before=before, after=snapshot(participant)
    )


def _send_notice(situation: Situation, *, actor: User, decision: Decision | None) -> None:
    """One advisory to the participants not yet told at this level: every channel, acknowledged."""
    untold = list(
        situation.participants.filter(left_at__isnull=True, notice__isnull=True).select_related(
            "organization"
        )
    )
    if not untold:
        return
    with translation.override(settings.LANGUAGE_CODE):
        title = _("%(level)s: %(title)s — your organization joins the response") % {
            "level": situation.level,
            "title": situation.title,
        }
        body = render_to_string(
            "situations/notice_body.txt",
            {
                "situation": situation,
                "decision": decision,
                "url": absolute_url("situation_detail", situation.pk, namespace="situations"),
            },
        )
    advisory = advisory_issue(
        issuer=actor,
        organization=_national_centre(actor),
        data=AdvisoryInput(
            title=title[:200],
            body=body,
            severity=Severity.HIGH,
            tlp=Tlp.AMBER,
            organizations=[participant.organization for participant in untold],
            ack_required=True,
            ack_due=timezone.now() + ACKNOWLEDGE_WITHIN,
        ),
    )
    Participant.objects.filter(pk__in=[participant.pk for participant in untold]).update(notice=advisory)


# --- The room -------------------------------------------------------------------------------------


@transaction.atomic
def log_write(*, actor: User, situation: Situation, text: str, kind: str = LogKind.NOTE) -> LogEntry:
    """Add a note or an open question to the room's log; anyone in the room may."""
    text = (text or "").strip()
    _check(bool(text), _("Write something first."), "text", "text")
    _check(len(text) <= 4000, _("A log entry is at most 4,000 characters."), "text", "text")
    _check(kind in LogKind.values, _("Unknown kind of entry."), "kind", "kind")
    _check(
        Situation.objects.restrict(actor, Action.COMMENT).filter(pk=situation.pk).exists(),
        _("Not found."),
        "not_found",
    )
    _check(situation.status != SituationStatus.ENDED, _("This situation has ended."), "ended")
    organization = (
        Organization.objects.filter(memberships__user=actor, active=True)
        .filter(
            Q(type=OrganizationType.NATIONAL_CENTER)
            | Q(pk__in=situation.participants.filter(left_at__isnull=True).values("organization_id"))
        )
        .first()
    )
    entry = LogEntry.objects.create(
        situation=situation, kind=kind, author=actor, organization=organization, text=text
    )
    audit_write(actor=actor, action=AuditAction.CREATE, obj=entry, after=snapshot(entry))
    return entry


@transaction.atomic
def question_answered(*, actor: User, entry: LogEntry) -> LogEntry:
    _check(
        LogEntry.objects.restrict(actor, Action.COMMENT).filter(pk=entry.pk).exists(),
        _("Not found."),
        "not_found",
    )
    _check(
        entry.kind == LogKind.QUESTION and entry.answered_at is None,
        _("This is not an open question."),
        "not_open",
    )
    _check(
        not Situation.objects.filter(pk=entry.situation_id, status=SituationStatus.ENDED).exists(),
        _("This situation has ended."),
        "ended",
    )
    before = snapshot(entry)
    entry.answered_at = timezone.now()
    entry.save(update_fields=["answered_at"])
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=entry, before=before, after=snapshot(entry))
    return entry


@transaction.atomic
def finding_add(*, actor: User, situation: Situation, text: str) -> Finding:
    """Record a lesson of the situation for its after-action report (the national centre's staff)."""
    text = (text or "").strip()
    _check(bool(text), _("Write something first."), "text", "text")
    _check(len(text) <= 4000, _("A finding is at most 4,000 characters."), "text", "text")
    _check(
        actor.memberships.filter(
            organization__type=OrganizationType.NATIONAL_CENTER, organization__active=True
        ).exists(),
        _("Findings are recorded by the national centre."),
        "not_decider",
    )
    finding = Finding.objects.create(situation=situation, text=text, author=actor)
    audit_write(actor=actor, action=AuditAction.CREATE, obj=finding, after=snapshot(finding))
    return finding


# --- Spill-over warnings ------------------------------------------------------------------------


# Labels that let the national centre pass on what a report says to other sectors, sanitized.
SPILLOVER_LABELS = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER)


def spillover_propose(report: Report, context: rules.Context | None = None) -> SpilloverProposal | None:
    """An outage in a sector others depend on: pre-fill a warning for the dependent sectors, without
    the reporting operator's name or narrative (a coordinator reviews and sends it). Reports labelled
    AMBER+STRICT or RED stay with their audience: no warning is drafted from them."""
    if report.tlp not in SPILLOVER_LABELS:
        return None
    impact = (context or rules.Context()).impact(report)
    if impact.service_state != ServiceState.OUTAGE:
        return None
    dependents = list(
        Sector.objects.filter(dependencies__depended_on_id=report.sector_id).order_by("display_order")
    )
    if not dependents:
        return None
    with translation.override(settings.LANGUAGE_CODE):
        context = {"sector": report.sector, "dependents": dependents, "report": report}
        title = _("Possible spill-over: service outage in the %(sector)s sector") % {"sector": report.sector}
        body = render_to_string("situations/spillover_body.txt", context)
    try:
        with transaction.atomic():  # one proposal per report, even when it is evaluated twice at once
            proposal = SpilloverProposal.objects.create(
                report=report, source_sector=report.sector, title=title[:200], body=body
            )
            proposal.dependent_sectors.set(dependents)
            audit_write(actor=None, action=AuditAction.CREATE, obj=proposal, after=snapshot(proposal))
            duty_team_notify.enqueue(kind="spillover", pk=proposal.pk)
    except IntegrityError:
        return None
    return proposal


@transaction.atomic
def spillover_send(
    *, actor: User, proposal: SpilloverProposal, title: str, body: str, sectors, tlp: str = Tlp.GREEN
) -> SpilloverProposal:
    """Send the (reviewed) warning as an advisory from the national centre to the chosen sectors."""
    _check_decider(actor)
    proposal = SpilloverProposal.objects.select_for_update().get(pk=proposal.pk)
    _check(
        proposal.status == SpilloverStatus.OPEN, _("This proposal was already decided."), "proposal_decided"
    )
    advisory = advisory_issue(
        issuer=actor,
        organization=_national_centre(actor),
        data=AdvisoryInput(title=title, body=body, severity=Severity.HIGH, tlp=tlp, sectors=list(sectors)),
    )
    before = snapshot(proposal)
    proposal.status, proposal.decided_by, proposal.advisory = SpilloverStatus.SENT, actor, advisory
    proposal.save()
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=proposal, before=before, after=snapshot(proposal))
    return proposal


@transaction.atomic
def spillover_dismiss(*, actor: User, proposal: SpilloverProposal) -> SpilloverProposal:
    _check_decider(actor)
    proposal = SpilloverProposal.objects.select_for_update().get(pk=proposal.pk)
    _check(
        proposal.status == SpilloverStatus.OPEN, _("This proposal was already decided."), "proposal_decided"
    )
    proposal.status, proposal.decided_by = SpilloverStatus.DISMISSED, actor
    proposal.save()
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=proposal, after=snapshot(proposal))
    return proposal
