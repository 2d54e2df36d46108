"""Reporting deadlines: when each stage of a report's deadline profile is due, and what met it.

Pure computation, no access decisions: callers pass querysets they have already restricted.

The rules, shared by the Python (`stage_deadlines`) and the database (`reports_with_pending_stages`,
`overdue_reports`) versions:

- A report follows its own deadline profile, or else its sector's default (the first by code).
- A stage applies when it has no condition or the report's flag of that name (e.g. ransom_paid) is set.
- A stage counted from detection is due `hours` after `detected_at`. A stage counted from the
  previous stage is due `hours` after the previous unconditional stage was met (or, while that one
  is still open, after its due time).
- A stage is met by the earliest version of its kind or a later kind (a final report also meets a
  pending update); versions count from when they were submitted.
- An unmet stage past its due time is overdue, unless the report is closed.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import (
    DateTimeField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from renkei.core.reference_cache import cached_reference
from renkei.directory.models import Sector
from renkei.sharing.choices import ReportStatus, StageAnchor, VersionStage
from renkei.sharing.models import DeadlineProfile, DeadlineStage, Report, ReportVersion

STAGE_RANK = {VersionStage.INITIAL: 0, VersionStage.UPDATE: 1, VersionStage.FINAL: 2}


def _meeting_stages(version_stage: str) -> list[str]:
    """Version kinds that meet a stage asking for `version_stage`."""
    return [stage for stage, rank in STAGE_RANK.items() if rank >= STAGE_RANK[version_stage]]


@dataclass(frozen=True)
class StageDeadline:
    stage: DeadlineStage
    starts_at: dt.datetime
    due_at: dt.datetime
    fulfilled_by: ReportVersion | None
    report_closed: bool
    now: dt.datetime

    @property
    def fulfilled_at(self) -> dt.datetime | None:
        return self.fulfilled_by.created_at if self.fulfilled_by else None

    @property
    def overdue(self) -> bool:
        return self.fulfilled_by is None and not self.report_closed and self.now > self.due_at

    @property
    def late(self) -> bool:
        """Met, but after the due time."""
        return self.fulfilled_by is not None and self.fulfilled_by.created_at > self.due_at

    @property
    def remaining(self) -> dt.timedelta:
        return self.due_at - self.now


def profile_for(report: Report) -> DeadlineProfile | None:
    """The report's own profile, or its sector's default."""
    if report.deadline_profile_id:
        return report.deadline_profile
    return sector_default_profile(report.sector)


def sector_default_profile(sector: Sector) -> DeadlineProfile | None:
    """The profile a sector's reports follow unless they name one."""
    return cached_reference(
        ("default_deadline_profile", sector.pk),
        lambda: sector.default_deadline_profiles.order_by("code").first(),
    )


def stage_deadlines(
    report: Report,
    *,
    now: dt.datetime | None = None,
    stages: list[DeadlineStage] | None = None,
    versions: list[ReportVersion] | None = None,
) -> list[StageDeadline]:
    """Each applicable stage of the report's profile with its due time and the version that met it.

    Pass `stages` and `versions` to avoid the queries when listing many reports.
    """
    now = now or timezone.now()
    if stages is None:
        profile = profile_for(report)
        stages = list(profile.stages.all()) if profile else []
    versions = sorted(report.versions.all() if versions is None else versions, key=lambda v: v.number)
    deadlines: list[StageDeadline] = []
    previous: StageDeadline | None = None
    for stage in stages:
        starts_at = report.detected_at
        if stage.anchor == StageAnchor.PREVIOUS and previous is not None:
            starts_at = previous.fulfilled_at or previous.due_at
        meeting = _meeting_stages(stage.version_stage)
        deadline = StageDeadline(
            stage=stage,
            starts_at=starts_at,
            due_at=starts_at + dt.timedelta(hours=stage.hours),
            fulfilled_by=next((v for v in versions if v.stage in meeting), None),
            report_closed=report.status == ReportStatus.CLOSED,
            now=now,
        )
        if not stage.condition:
            previous = deadline
        if not stage.condition or getattr(report, stage.condition, False):
            deadlines.append(deadline)
    return deadlines


def _at(expression, hours: float):
    return ExpressionWrapper(expression + Value(dt.timedelta(hours=hours)), output_field=DateTimeField())


def _default_sectors(profiles: list[DeadlineProfile]) -> dict[int, list[int]]:
    """Sector ids per profile for which that profile is the default (first by code)."""
    chosen: dict[int, int] = {}
    for profile in sorted(profiles, key=lambda p: p.code):
        for sector in profile.sectors.all():
            chosen.setdefault(sector.pk, profile.pk)
    by_profile: dict[int, list[int]] = {}
    for sector_id, profile_id in chosen.items():
        by_profile.setdefault(profile_id, []).append(sector_id)
    return by_profile


def reports_with_pending_stages(queryset: QuerySet, *, now: dt.datetime, fraction: float = 1.0) -> QuerySet:
    """Reports of `queryset` with an applicable, unmet stage of which `fraction` of the window has
    passed by `now` (1.0: overdue). One query, filtered in the database."""
    profiles = list(DeadlineProfile.objects.prefetch_related("stages", "sectors"))
    defaults = _default_sectors(profiles)
    aliases: dict = {}
    pending = Q(pk__in=[])
    for profile in profiles:
        follows = Q(deadline_profile=profile) | Q(
            deadline_profile__isnull=True, sector_id__in=defaults.get(profile.pk, [])
        )
        stage_pending = Q(pk__in=[])
        previous_done = previous_due = None
        for stage in profile.stages.all():
            name = f"deadline_{profile.pk}_{stage.order}"
            done = Subquery(
                ReportVersion.objects.filter(
                    report=OuterRef("pk"), stage__in=_meeting_stages(stage.version_stage)
                )
                .order_by("number")
                .values("created_at")[:1],
                output_field=DateTimeField(),
            )
            start = F("detected_at")
            if stage.anchor == StageAnchor.PREVIOUS and previous_done is not None:
                start = Coalesce(previous_done, previous_due, output_field=DateTimeField())
            aliases[f"{name}_done"] = done
            aliases[f"{name}_threshold"] = _at(start, stage.hours * fraction)
            applies = Q(**{stage.condition: True}) if stage.condition else Q()
            stage_pending |= applies & Q(**{f"{name}_done__isnull": True, f"{name}_threshold__lt": now})
            if not stage.condition:
                previous_done, previous_due = done, _at(start, stage.hours)
        pending |= follows & stage_pending
    return queryset.alias(**aliases).filter(pending)


def overdue_reports(queryset: QuerySet, *, now: dt.datetime | None = None) -> QuerySet:
    """Reports of `queryset` (not closed) with at least one overdue stage."""
    return reports_with_pending_stages(
        queryset.exclude(status=ReportStatus.CLOSED), now=now or timezone.now(), fraction=1.0
    )
