"""Reads of shared data that apply the access rules: what a user may see, and figures over it.

Every figure is an aggregation over `restrict(user)`: visibility is decided by the database filter,
never by Python afterwards, so a chart, a table and a download can only count what the user may see.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from renkei.core.access import principal_for
from renkei.core.choices import Action
from renkei.directory.choices import OrganizationType
from renkei.directory.models import Membership, Organization, Sector, User
from renkei.sharing.choices import Tlp
from renkei.sharing.deadlines import overdue_reports
from renkei.sharing.models import (
    COMMUNITY_TYPES,
    FORWARD_ROLES,
    Acknowledgement,
    Advisory,
    AdvisoryAudience,
    AnonymizedReport,
    CauseCategory,
    Report,
)
from renkei.sharing.services import forward_ceiling

# Who gets the dashboard: the national centre and the ministries (government duty staff).
DASHBOARD_ORGANIZATION_TYPES = (
    OrganizationType.NATIONAL_CENTER,
    OrganizationType.SECTOR_MINISTRY,
    OrganizationType.SECURITY_MINISTRY,
)
TREND_MONTHS = 12


def reports_visible_to(user, action: str = Action.VIEW) -> QuerySet[Report]:
    return Report.objects.restrict(user, action)


def advisories_visible_to(user, action: str = Action.VIEW) -> QuerySet[Advisory]:
    return Advisory.objects.restrict(user, action)


def anonymized_reports_visible_to(user) -> QuerySet[AnonymizedReport]:
    return AnonymizedReport.objects.restrict(user)


# --- Whom a user may address -------------------------------------------------------------------------
# Each mirrors what the matching service accepts (sharing/services.py), narrowed to what the user may
# see, so a form's picker offers, and its validation takes, exactly what the service would.


def addressable_organizations(user) -> QuerySet[Organization]:
    """The organizations `user` may name: those they may see that are active."""
    return Organization.objects.restrict(user).filter(active=True)


def addressable_people(user) -> QuerySet[User]:
    """The people `user` may name: those they may see whose accounts are active."""
    return User.objects.restrict(user).filter(is_active=True)


def _members_of(organizations: QuerySet[Organization]) -> Q:
    return Q(pk__in=Membership.objects.filter(organization__in=organizations).values("user_id"))


def _issuer_reach(issuers) -> Q:
    """Organizations an advisory from any of `issuers` may address (services._check_issuer_scope):
    the national centre anyone, a ministry the organizations of the sectors it oversees, any other
    issuer (a CEPTOAR) its member organizations."""
    issuers = list(issuers)
    if any(issuer.type == OrganizationType.NATIONAL_CENTER for issuer in issuers):
        return Q()
    ministries = [issuer for issuer in issuers if issuer.type == OrganizationType.SECTOR_MINISTRY]
    overseen = Organization.sectors.through.objects.filter(sector__ministries__in=ministries)
    others = [issuer for issuer in issuers if issuer.type != OrganizationType.SECTOR_MINISTRY]
    return Q(pk__in=overseen.values("organization_id")) | Q(parent__in=others)


def advisory_organizations(user, *, issuers, tlp: str | None = None) -> QuerySet[Organization]:
    """Organizations `user` may name that an advisory from one of `issuers` may address. Given a
    `tlp`, also within that label's ceiling: none for TLP:RED (named people only), and the public
    only for TLP:CLEAR."""
    organizations = addressable_organizations(user).filter(_issuer_reach(issuers))
    if tlp == Tlp.RED:
        return organizations.none()
    if tlp and tlp != Tlp.CLEAR:
        organizations = organizations.exclude(type=OrganizationType.PUBLIC)
    return organizations


def advisory_people(user, *, issuers, tlp: str | None = None) -> QuerySet[User]:
    """People `user` may name who belong to an organization an advisory from one of `issuers` may
    address. Given a `tlp` other than TLP:CLEAR, only those with a place in the community, not the
    public alone."""
    reach = _issuer_reach(issuers)
    people = addressable_people(user)
    if reach:
        people = people.filter(_members_of(Organization.objects.filter(reach)))
    if tlp and tlp != Tlp.CLEAR:
        people = people.filter(_members_of(Organization.objects.exclude(type=OrganizationType.PUBLIC)))
    return people


def report_forwarders(user, report: Report) -> QuerySet[Organization]:
    """The user's active organizations that hold the report and may pass it on (services.report_forward)."""
    return Organization.objects.filter(
        pk__in=Membership.objects.filter(user=user, role__in=FORWARD_ROLES).values("organization_id"),
        active=True,
        report_grants__report=report,
    ).distinct()


def may_forward(user, report: Report) -> bool:
    """Whether the user may widen the report's audience: through an organization that holds it, and
    for TLP:RED only as the reporting organization (which alone names more people)."""
    if not reports_visible_to(user, Action.FORWARD).filter(pk=report.pk).exists():
        return False
    return report.tlp != Tlp.RED or report_forwarders(user, report).filter(pk=report.organization_id).exists()


def forward_organizations(user, report: Report) -> QuerySet[Organization]:
    """Organizations `user` may name that the report's label lets them add, not yet in its audience
    (none for TLP:RED, which reaches named people only)."""
    if report.tlp == Tlp.RED:
        return Organization.objects.none()
    already = report.grants.filter(organization__isnull=False).values("organization_id")
    return (
        addressable_organizations(user)
        .filter(forward_ceiling(report, list(report_forwarders(user, report))))
        .exclude(pk__in=already)
    )


def forward_people(user, report: Report) -> QuerySet[User]:
    """People `user` may name that the report's label lets them add, not yet named: for TLP:CLEAR and
    TLP:RED anyone (TLP:RED only for the reporting organization), otherwise members of an active
    organization under the label's ceiling."""
    if not may_forward(user, report):
        return User.objects.none()
    people = addressable_people(user).exclude(
        pk__in=report.grants.filter(user__isnull=False).values("user_id")
    )
    if report.tlp in (Tlp.CLEAR, Tlp.RED):
        return people
    ceiling = Organization.objects.filter(
        forward_ceiling(report, list(report_forwarders(user, report))), active=True
    )
    return people.filter(_members_of(ceiling))


def may_see_dashboard(user) -> bool:
    return bool(principal_for(user).org_types & set(DASHBOARD_ORGANIZATION_TYPES))


# --- Trends ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    code: str
    label: str
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class MonthlyTrend:
    """Counts per month (oldest first) for each series (a sector, a cause …) with any reports."""

    months: list[dt.date]
    series: list[Series]

    @property
    def month_totals(self) -> list[int]:
        return [sum(column) for column in zip(*(s.counts for s in self.series), strict=True)] or [
            0 for _month in self.months
        ]

    @property
    def total(self) -> int:
        return sum(s.total for s in self.series)


def trend_months(now: dt.datetime | None = None, months: int = TREND_MONTHS) -> list[dt.date]:
    """The first days of the last `months` months in local time, this month last."""
    today = timezone.localtime(now or timezone.now()).date()
    first = []
    year, month = today.year, today.month
    for _step in range(months):
        first.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return first[::-1]


def _monthly(reports: QuerySet[Report], key, labels: dict[str, str], now, months: int) -> MonthlyTrend:
    month_starts = trend_months(now, months)
    start = timezone.make_aware(dt.datetime.combine(month_starts[0], dt.time.min))
    rows = (
        reports.filter(detected_at__gte=start)
        .order_by()
        .annotate(month=TruncMonth("detected_at"), key=key)
        .values("month", "key")
        .annotate(count=Count("pk"))
    )
    index = {month: position for position, month in enumerate(month_starts)}
    counts: dict[str, list[int]] = {}
    for row in rows:
        month = timezone.localtime(row["month"]).date()
        if month in index:
            counts.setdefault(row["key"], [0] * len(month_starts))[index[month]] += row["count"]
    series = [Series(code, labels.get(code, code), counts[code]) for code in labels if code in counts]
    series += [Series(code, code, values) for code, values in counts.items() if code not in labels]
    return MonthlyTrend(month_starts, series)


def reports_by_month_and_sector(
    reports: QuerySet[Report], *, now: dt.datetime | None = None, months: int = TREND_MONTHS
) -> MonthlyTrend:
    """Reports per month of detection and sector, in the sectors' display order."""
    labels = {sector.code: sector.name for sector in Sector.objects.all()}
    return _monthly(reports, F("sector__code"), labels, now, months)


def reports_by_month_and_cause(
    reports: QuerySet[Report], *, now: dt.datetime | None = None, months: int = TREND_MONTHS
) -> MonthlyTrend:
    """Reports per month of detection and top-level cause (a subcategory counts for its parent)."""
    labels = {cause.code: str(cause) for cause in CauseCategory.objects.filter(parent__isnull=True)}
    # The taxonomy has two levels: a category's parent is its top level.
    return _monthly(reports, Coalesce("cause__parent__code", "cause__code"), labels, now, months)


# --- Overdue reports --------------------------------------------------------------------------------


def overdue_reports_visible_to(user, *, now: dt.datetime | None = None) -> QuerySet[Report]:
    """Visible, unclosed reports with a stage past its deadline (see deadlines.py), oldest detection
    first."""
    return (
        overdue_reports(reports_visible_to(user), now=now)
        .select_related("organization", "sector", "deadline_profile")
        .order_by("detected_at", "pk")
    )


# --- Unacknowledged advisories ------------------------------------------------------------------------


class _CountRows(Subquery):
    """The number of rows a subquery returns (one per organization here)."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) counted)"
    output_field = IntegerField()


def _reached_memberships(*, named_only: bool) -> QuerySet[Membership]:
    """Memberships of active people in active organizations reached by the outer advisory (the same
    audience expansion as delivery.advisory_recipient_memberships, written as a correlated subquery
    so that a list of advisories costs one query)."""
    entries = AdvisoryAudience.objects.filter(advisory_id=OuterRef(OuterRef("pk")))
    reached = Exists(entries.filter(user_id=OuterRef("user_id")))
    if not named_only:
        reached |= (
            Exists(entries.filter(organization_id=OuterRef("organization_id")))
            | Exists(entries.filter(organization_type=OuterRef("organization__type")))
            | Exists(entries.filter(sector__organizations=OuterRef("organization_id")))
            | (Q(organization__type__in=COMMUNITY_TYPES) & Exists(entries.filter(all_ci=True)))
        )
    return Membership.objects.filter(reached, user__is_active=True, organization__active=True)


def _organization_count(*, named_only: bool, pending: bool) -> _CountRows:
    memberships = _reached_memberships(named_only=named_only).exclude(organization_id=OuterRef("issuer_id"))
    if pending:
        memberships = memberships.exclude(
            organization_id__in=Acknowledgement.objects.filter(advisory_id=OuterRef(OuterRef("pk"))).values(
                "organization_id"
            )
        )
    return _CountRows(memberships.order_by().values("organization_id").distinct())


def _by_label(*, pending: bool) -> Case:
    # TLP:RED reaches named people only, never whole organizations.
    return Case(
        When(tlp=Tlp.RED, then=_organization_count(named_only=True, pending=pending)),
        default=_organization_count(named_only=False, pending=pending),
        output_field=IntegerField(),
    )


def unacknowledged_advisories(user) -> QuerySet[Advisory]:
    """Advisories requiring acknowledgement that some addressed organization (issuer excluded) has not
    acknowledged, annotated with `recipient_count` and `pending_count`, soonest due first.

    Acknowledgement figures belong to the issuer's chain (Advisory's CHANGE rule), so these are the
    advisories the user's organizations issued."""
    return (
        advisories_visible_to(user, Action.CHANGE)
        .filter(ack_required=True)
        .annotate(recipient_count=_by_label(pending=False), pending_count=_by_label(pending=True))
        .filter(pending_count__gt=0)
        .select_related("issuer")
        .order_by(Coalesce("ack_due", "created_at"), "pk")
    )
