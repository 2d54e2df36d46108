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

from django.db.models import Q

from renkei.sharing.choices import ServiceState
from renkei.sharing.models import CauseCategory, Observable, Report, ReportVersion
from renkei.situations.choices import ProposalStatus, RuleKind
from renkei.situations.models import ProposalReport, RecognitionRule, SectorDependency


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

    cause_ids: dict = field(default_factory=dict)  # cause code → ids of it and its subcategories
    dependents: dict | None = None  # sector id → number of sectors depending on it
    # Whether reports a closed proposal carried are left out; a replay of the past counts them all.
    skip_judged: bool = True

    def causes(self, code: str) -> set[int]:
        if code not in self.cause_ids:
            self.cause_ids[code] = set(
                CauseCategory.objects.filter(Q(code=code) | Q(code__startswith=f"{code}.")).values_list(
                    "pk", flat=True
                )
            )
        return self.cause_ids[code]

    def dependent_count(self, sector_id: int) -> int:
        if self.dependents is None:
            self.dependents = {}
            for depended_on in SectorDependency.objects.values_list("depended_on_id", flat=True):
                self.dependents[depended_on] = self.dependents.get(depended_on, 0) + 1
        return self.dependents.get(sector_id, 0)


def _window(rule: RecognitionRule, at: dt.datetime, context: Context):
    """Reports submitted in the rule's window ending at `at`, less those a closed proposal of the
    same rule already carried (the duty team judged those; they do not propose again)."""
    reports = Report.objects.filter(
        created_at__gt=at - dt.timedelta(hours=rule.window_hours), created_at__lte=at
    )
    if not context.skip_judged:
        return reports
    judged = ProposalReport.objects.filter(proposal__rule=rule).exclude(proposal__status=ProposalStatus.OPEN)
    return reports.exclude(pk__in=judged.values("report_id"))


def _cause_across_sectors(rule, at, context, report=None) -> Firing | None:
    causes = context.causes(rule.cause_code)
    if report is not None and report.cause_id not in causes:
        return None
    rows = list(_window(rule, at, context).filter(cause_id__in=causes).values_list("pk", "sector_id"))
    sectors = {sector for _pk, sector in rows}
    if len(rows) < rule.min_reports or len(sectors) < rule.min_sectors:
        return None
    return Firing(rule, at, [pk for pk, _sector in rows], sectors)


def _shared_observable(rule, at, context, report=None) -> Firing | None:
    if report is None:
        candidates = Observable.objects.filter(version__report__in=_window(rule, at, context))
    else:
        candidates = Observable.objects.filter(version__report=report)
    values = set(candidates.values_list("type", "value"))
    if not values:
        return None
    matching = Q()
    for observable_type, value in values:
        matching |= Q(type=observable_type, value=value)
    rows = (
        Observable.objects.filter(matching, version__report__in=_window(rule, at, context))
        .values_list(
            "type",
            "value",
            "version__report_id",
            "version__report__organization_id",
            "version__report__sector_id",
        )
        .distinct()
    )
    by_value: dict = {}
    for observable_type, value, report_id, organization_id, sector_id in rows:
        by_value.setdefault((observable_type, value), []).append((report_id, organization_id, sector_id))
    firing = Firing(rule, at)
    for sightings in by_value.values():
        if len({organization for _report, organization, _sector in sightings}) >= rule.min_organizations:
            firing.report_ids += [report_id for report_id, _org, _sector in sightings]
            firing.sector_ids |= {sector for *_rest, sector in sightings}
    firing.report_ids = list(dict.fromkeys(firing.report_ids))
    return firing if firing.report_ids else None


def _current_impact(report: Report) -> ReportVersion:
    return ReportVersion.objects.only("service_state", "users_affected", "impact_availability").get(
        report=report, number=report.version_count
    )


def _outage_users(rule, at, context, report=None) -> Firing | None:
    if report is None:
        return None  # decided per report, on arrival
    impact = _current_impact(report)
    if impact.service_state != ServiceState.OUTAGE or (impact.users_affected or 0) < rule.min_users:
        return None
    return Firing(rule, at, [report.pk], {report.sector_id})


def _depended_on_sector(rule, at, context, report=None) -> Firing | None:
    if report is None or context.dependent_count(report.sector_id) < rule.min_dependents:
        return None
    impact = _current_impact(report)
    if not impact.impact_availability and impact.service_state == ServiceState.NONE:
        return None
    return Firing(rule, at, [report.pk], {report.sector_id})


EVALUATORS = {
    RuleKind.CAUSE_ACROSS_SECTORS: _cause_across_sectors,
    RuleKind.SHARED_OBSERVABLE: _shared_observable,
    RuleKind.OUTAGE_USERS: _outage_users,
    RuleKind.DEPENDED_ON_SECTOR: _depended_on_sector,
}
# Kinds whose window can be checked as a whole, on a schedule, without a report arriving.
WINDOWED_KINDS = (RuleKind.CAUSE_ACROSS_SECTORS, RuleKind.SHARED_OBSERVABLE)


def evaluate_report(report: Report, rules: Iterable[RecognitionRule], *, at: dt.datetime) -> list[Firing]:
    """The rules that hold at `at` now that `report` arrived (or changed)."""
    context = Context()
    firings = [EVALUATORS[rule.kind](rule, at, context, report) for rule in rules]
    return [firing for firing in firings if firing is not None]


def evaluate_window(rules: Iterable[RecognitionRule], *, at: dt.datetime) -> list[Firing]:
    """The windowed rules that hold at `at`, whatever arrived last (the scheduled check)."""
    context = Context()
    firings = [EVALUATORS[rule.kind](rule, at, context) for rule in rules if rule.kind in WINDOWED_KINDS]
    return [firing for firing in firings if firing is not None]


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
        for rule in rules:
            firing = EVALUATORS[rule.kind](rule, at, context, report)
            if firing is None:
                continue
            hold = dt.timedelta(hours=rule.window_hours or 24)
            if rule.pk in open_until and at <= open_until[rule.pk]:
                current = next(f for f in reversed(firings) if f.rule.pk == rule.pk)
                current.report_ids = list(dict.fromkeys(current.report_ids + firing.report_ids))
                current.sector_ids |= firing.sector_ids
            else:
                firings.append(firing)
            open_until[rule.pk] = at + hold
    return firings
