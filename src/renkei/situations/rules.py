"""Recognition rules: does the report stream, as of a moment, satisfy a rule?

A rule can only newly hold when a report it counts arrives (windows only lose reports as time passes),
so `evaluate_report` first checks the report against each rule in Python and queries the database only
for the rules the report could complete. Each query reads a time window through the reports' index on
`created_at`, whatever the number of past reports.

Nothing here writes: `Firing`s are turned into proposals by services.propose, or just listed by the
replay (`renkei situations rules test`).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Q

from renkei.core.reference_cache import cached_reference
from renkei.sharing.choices import ServiceState
from renkei.sharing.models import CauseCategory, Observable, Report, ReportVersion
from renkei.situations.choices import ProposalStatus, RuleKind
from renkei.situations.models import (
    Proposal,
    ProposalReport,
    RecognitionRule,
    SectorDependency,
    SituationReport,
)


@dataclass
class Firing:
    """A rule holds at `at`, because of these reports."""

    rule: RecognitionRule
    at: dt.datetime
    report_ids: list = field(default_factory=list)
    sector_ids: set = field(default_factory=set)


@dataclass
class Context:
    """What every rule of one evaluation shares, read once."""

    cause_codes: dict | None = None  # cause id → code
    dependents: dict | None = None  # sector id → number of sectors depending on it
    impacts: dict = field(default_factory=dict)  # report id → its current version's impact
    observables: dict = field(default_factory=dict)  # report id → its (type, value) pairs
    # Whether reports a closed proposal carried are left out; a replay of the past counts them all.
    skip_judged: bool = True
    decided_rules: set | None = None  # ids of rules with a decided (closed) proposal

    def decided_rule_ids(self) -> set[int]:
        if self.decided_rules is None:
            decided = Proposal.objects.exclude(status=ProposalStatus.OPEN).values_list("rule_id", flat=True)
            self.decided_rules = set(decided.distinct())
        return self.decided_rules

    def causes(self, code: str) -> set[int]:
        """The ids of the cause `code` and its subcategories."""
        if self.cause_codes is None:
            self.cause_codes = cached_reference(
                ("situations", "cause-codes"), lambda: dict(CauseCategory.objects.values_list("pk", "code"))
            )
        return {pk for pk, cause in self.cause_codes.items() if cause == code or cause.startswith(f"{code}.")}

    def impact(self, report: Report) -> ReportVersion:
        if report.pk not in self.impacts:
            self.impacts[report.pk] = ReportVersion.objects.only(
                "service_state", "users_affected", "impact_availability"
            ).get(report=report, number=report.version_count)
        return self.impacts[report.pk]

    def observables_of(self, report: Report) -> set[tuple[str, str]]:
        if report.pk not in self.observables:
            self.observables[report.pk] = set(
                Observable.objects.filter(version__report=report).values_list("type", "value")
            )
        return self.observables[report.pk]

    def dependent_count(self, sector_id: int) -> int:
        if self.dependents is None:
            self.dependents = cached_reference(("situations", "dependents"), _dependent_counts)
        return self.dependents.get(sector_id, 0)


def _dependent_counts() -> dict[int, int]:
    """Sector id → how many sectors depend on it."""
    counts: dict[int, int] = {}
    for depended_on in SectorDependency.objects.values_list("depended_on_id", flat=True):
        counts[depended_on] = counts.get(depended_on, 0) + 1
    return counts


def _hours(rule: RecognitionRule) -> dt.timedelta:
    return dt.timedelta(hours=rule.window_hours)


def _judged(rules: list[RecognitionRule], since: dt.datetime, context: Context) -> dict[int, set]:
    """Per rule, the reports since `since` that a closed proposal of it already carried, or a
    situation declared from one of its proposals took in: the duty team judged those, and they do not
    propose that rule again."""
    judged: dict[int, set] = {rule.pk: set() for rule in rules}
    # Decided proposals are few; when there is none, nothing needs asking.
    if context.skip_judged and context.decided_rule_ids() & set(judged):
        carried = ProposalReport.objects.filter(
            proposal__rule__in=rules, report__created_at__gt=since
        ).exclude(proposal__status=ProposalStatus.OPEN)
        taken_in = SituationReport.objects.filter(
            situation__proposal__rule__in=rules, report__created_at__gt=since
        )
        for rule_id, report_id in (
            carried.order_by()
            .values_list("proposal__rule_id", "report_id")
            .union(taken_in.order_by().values_list("situation__proposal__rule_id", "report_id"))
        ):
            judged[rule_id].add(report_id)
    return judged


def _causes_across_sectors(rules: list[RecognitionRule], at: dt.datetime, context: Context) -> list[Firing]:
    """All cause rules in one statement over the widest window: per sector, each rule's filtered
    count of reports; a rule's sectors are those with any. The rules rarely hold, so the reports
    themselves are read only when one does."""
    if not rules:
        return []
    since = at - max(_hours(rule) for rule in rules)
    judged = _judged(rules, since, context)
    causes = {rule.pk: context.causes(rule.cause_code) for rule in rules}
    reports = Report.objects.filter(
        created_at__gt=since, created_at__lte=at, cause_id__in=set().union(*causes.values())
    )
    conditions = {}
    for rule in rules:
        conditions[rule.pk] = Q(cause_id__in=causes[rule.pk], created_at__gt=at - _hours(rule))
        if judged[rule.pk]:
            conditions[rule.pk] &= ~Q(pk__in=judged[rule.pk])
    # Counting a column of the (cause, created_at) index, which carries the sector, lets the database
    # answer from that index alone.
    per_sector = (
        reports.order_by()
        .values("sector_id")
        .annotate(
            **{f"reports_{pk}": Count("cause_id", filter=condition) for pk, condition in conditions.items()}
        )
    )
    counts = {rule.pk: [] for rule in rules}
    for row in per_sector:
        for rule in rules:
            if row[f"reports_{rule.pk}"]:
                counts[rule.pk].append(row[f"reports_{rule.pk}"])
    firings = []
    for rule in rules:
        if sum(counts[rule.pk]) >= rule.min_reports and len(counts[rule.pk]) >= rule.min_sectors:
            rows = list(reports.filter(conditions[rule.pk]).values_list("pk", "sector_id"))
            firings.append(Firing(rule, at, [pk for pk, _sector in rows], {sector for _pk, sector in rows}))
    return firings


def _shared_observables(
    rules: list[RecognitionRule], at: dt.datetime, context: Context, values
) -> list[Firing]:
    """All observable rules from one read of where `values` were reported in the widest window."""
    if not rules or not values:
        return []
    since = at - max(_hours(rule) for rule in rules)
    judged = _judged(rules, since, context)
    matching = Q()
    for observable_type, value in values:
        matching |= Q(type=observable_type, value=value)
    sightings = (
        Observable.objects.filter(
            matching, version__report__created_at__gt=since, version__report__created_at__lte=at
        )
        .values_list(
            "type",
            "value",
            "version__report_id",
            "version__report__organization_id",
            "version__report__sector_id",
            "version__report__created_at",
        )
        .distinct()
    )
    by_value: dict = {}
    for observable_type, value, *sighting in sightings:
        by_value.setdefault((observable_type, value), []).append(sighting)
    firings = []
    for rule in rules:
        start, firing = at - _hours(rule), Firing(rule, at)
        for seen in by_value.values():
            counted = [s for s in seen if s[3] > start and s[0] not in judged[rule.pk]]
            if len({organization for _report, organization, *_rest in counted}) >= rule.min_organizations:
                firing.report_ids += [report_id for report_id, *_rest in counted]
                firing.sector_ids |= {sector for _report, _org, sector, _at in counted}
        if firing.report_ids:
            firing.report_ids = list(dict.fromkeys(firing.report_ids))
            firings.append(firing)
    return firings


def _outage_users(rule, at, context, report) -> Firing | None:
    impact = context.impact(report)
    if impact.service_state != ServiceState.OUTAGE or (impact.users_affected or 0) < rule.min_users:
        return None
    return Firing(rule, at, [report.pk], {report.sector_id})


def _depended_on_sector(rule, at, context, report) -> Firing | None:
    if context.dependent_count(report.sector_id) < rule.min_dependents:
        return None
    impact = context.impact(report)
    if not impact.impact_availability and impact.service_state == ServiceState.NONE:
        return None
    return Firing(rule, at, [report.pk], {report.sector_id})


# Kinds decided by the one report that arrived.
PER_REPORT = {RuleKind.OUTAGE_USERS: _outage_users, RuleKind.DEPENDED_ON_SECTOR: _depended_on_sector}


def _of_kind(rules: Iterable[RecognitionRule], kind: str) -> list[RecognitionRule]:
    return [rule for rule in rules if rule.kind == kind]


def evaluate_report(
    report: Report, rules: Iterable[RecognitionRule], *, at: dt.datetime, context: Context | None = None
) -> list[Firing]:
    """The rules that hold at `at` now that `report` arrived (or changed). Only the rules the report
    itself counts for are looked at: the others cannot have started to hold."""
    context = context or Context()
    rules = list(rules)
    cause_rules = [
        rule
        for rule in _of_kind(rules, RuleKind.CAUSE_ACROSS_SECTORS)
        if report.cause_id in context.causes(rule.cause_code)
    ]
    observable_rules = _of_kind(rules, RuleKind.SHARED_OBSERVABLE)
    firings = _causes_across_sectors(cause_rules, at, context)
    if observable_rules:
        firings += _shared_observables(observable_rules, at, context, context.observables_of(report))
    for rule in rules:
        if rule.kind in PER_REPORT and (firing := PER_REPORT[rule.kind](rule, at, context, report)):
            firings.append(firing)
    return firings


def counts_for(rule: RecognitionRule, report: Report, context: Context) -> bool:
    """Whether `report` is the kind of report `rule` counts (its cause; an observable the rule's
    situation has already seen; the outage or impact it looks for), whatever the thresholds."""
    if rule.kind == RuleKind.CAUSE_ACROSS_SECTORS:
        return report.cause_id in context.causes(rule.cause_code)
    if rule.kind in PER_REPORT:
        return PER_REPORT[rule.kind](rule, report.created_at, context, report) is not None
    return False


def evaluate_window(rules: Iterable[RecognitionRule], *, at: dt.datetime) -> list[Firing]:
    """The windowed rules that hold at `at`, whatever arrived last (the scheduled check)."""
    context = Context()
    rules = list(rules)
    firings = _causes_across_sectors(_of_kind(rules, RuleKind.CAUSE_ACROSS_SECTORS), at, context)
    observable_rules = _of_kind(rules, RuleKind.SHARED_OBSERVABLE)
    if observable_rules:
        since = at - max(_hours(rule) for rule in observable_rules)
        values = set(
            Observable.objects.filter(
                version__report__created_at__gt=since, version__report__created_at__lte=at
            ).values_list("type", "value")
        )
        firings += _shared_observables(observable_rules, at, context, values)
    return firings


def replay(rules: list[RecognitionRule], *, since: dt.datetime, until: dt.datetime) -> list[Firing]:
    """What the rules would have proposed had they watched every report submitted since `since`.

    Each report is evaluated at its own submission time. A rule that fired is taken as proposed
    until its window (a day for rules without one) has passed with nothing new, as a proposal left
    open would have absorbed the reports that followed."""
    firings: list[Firing] = []
    open_until: dict[int, dt.datetime] = {}
    reports = Report.objects.filter(created_at__gte=since, created_at__lte=until).order_by("created_at", "pk")
    context = Context(skip_judged=False)
    for report in reports.iterator(chunk_size=500):
        at = report.created_at
        for firing in evaluate_report(report, rules, at=at, context=context):
            rule = firing.rule
            hold = dt.timedelta(hours=rule.window_hours or 24)
            if rule.pk in open_until and at <= open_until[rule.pk]:
                current = next(f for f in reversed(firings) if f.rule.pk == rule.pk)
                current.report_ids = list(dict.fromkeys(current.report_ids + firing.report_ids))
                current.sector_ids |= firing.sector_ids
            else:
                firings.append(firing)
            open_until[rule.pk] = at + hold
        context.impacts.clear()  # each report is read once; keep memory flat over a year of them
        context.observables.clear()
    return firings
