"""Reports, advisories and anonymized copies: what every user sees, on every channel, equals what the
rules allow — checked against an independent statement of the rules on random communities.

Hypothesis builds sectors, ministries overseeing them, CEPTOARs, operators with parents, a national
centre, inactive organizations and people with random roles (superusers included: they get no
automatic access). It then submits random reports (random labels, CEPTOAR sharing, named RED
recipients), forwards them, issues advisories to random audiences and publishes anonymized copies,
all through the services; an action the services refuse simply does not happen. For every user the
database's answer (`restrict`, search, the dashboard's figures and the CSV download) must equal the
plain-Python oracle below.
"""

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from renkei.core.choices import Action
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Membership, Organization, Sector, User
from renkei.sharing.choices import ReportKind, Tlp
from renkei.sharing.models import (
    COMMUNITY_TYPES,
    FORWARD_ROLES,
    REPORTING_ROLES,
    Advisory,
    AnonymizedReport,
    CauseCategory,
    Report,
)
from renkei.sharing.search import search_anonymized, search_reports, search_terms
from renkei.sharing.selectors import (
    DASHBOARD_ORGANIZATION_TYPES,
    reports_by_month_and_sector,
    unacknowledged_advisories,
)
from renkei.sharing.services import (
    ISSUER_TYPES,
    AdvisoryInput,
    AnonymizedInput,
    ReportInput,
    advisory_issue,
    anonymized_copy_create,
    report_forward,
    report_submit,
)

ORG_TYPES = [
    OrganizationType.NATIONAL_CENTER,
    OrganizationType.SECTOR_MINISTRY,
    OrganizationType.CEPTOAR,
    OrganizationType.OPERATOR,
    OrganizationType.OPERATOR,
    OrganizationType.OPERATOR,
    OrganizationType.RELATED_AGENCY,
]
# Every role appears; those that act (report, forward, issue) more often.
ROLES = [Role.REPORTER, Role.REPORTER, Role.OFFICER, Role.COORDINATOR, Role.COORDINATOR, *Role.values]
MAX_ORGS = 7
MAX_PEOPLE = 6
# Texts of reports and copies, and the queries searched for: long terms, short terms, Latin.
WORDS = ["不正アクセス", "停電", "ランサムウェア", "障害", "DDoS攻撃", "設定誤り"]
QUERIES = ["不正アクセス", "停電", "障害", "ddos", "ランサム 障害", "電", "誤り 不正", '"不正" OR 停電']

org_index = st.integers(min_value=0, max_value=MAX_ORGS - 1)
person_index = st.integers(min_value=0, max_value=MAX_PEOPLE - 1)
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map("・".join)
audience = {
    "all_ci": st.sampled_from([True, True, False]),
    "sectors": st.sets(st.integers(min_value=0, max_value=1), max_size=2),
    "organizations": st.sets(org_index, max_size=2),
    "people": st.sets(person_index, max_size=2),
}
action_by = st.integers(min_value=0, max_value=20)

scenarios = st.fixed_dictionaries(
    {
        "sector_count": st.integers(min_value=1, max_value=2),
        "organizations": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(ORG_TYPES),
                    "sectors": st.sets(st.integers(min_value=0, max_value=1), min_size=1, max_size=2),
                    "parent": st.none() | org_index,
                    "active": st.sampled_from([True, True, True, False]),
                }
            ),
            min_size=2,
            max_size=MAX_ORGS,
        ),
        "people": st.lists(
            st.fixed_dictionaries(
                {
                    "memberships": st.sets(
                        st.tuples(org_index, st.sampled_from(ROLES)), min_size=1, max_size=2
                    ),
                    "superuser": st.sampled_from([False, False, False, True]),
                }
            ),
            min_size=3,
            max_size=MAX_PEOPLE,
        ),
        "reports": st.lists(
            st.fixed_dictionaries(
                {
                    "reporter": action_by,
                    "tlp": st.sampled_from(Tlp.values),
                    "share_with_ceptoar": st.sampled_from([False, False, True]),
                    "consent": st.sampled_from([True, True, False]),
                    "recipients": st.sets(person_index, max_size=2),
                    "title": text,
                    "narrative": text,
                }
            ),
            min_size=2,
            max_size=5,
        ),
        "forwards": st.lists(
            st.fixed_dictionaries(
                {
                    "actor": action_by,
                    "report": st.integers(min_value=0, max_value=4),
                    "organizations": st.sets(org_index, min_size=1, max_size=2),
                    "users": st.sets(person_index, max_size=1),
                }
            ),
            min_size=1,
            max_size=3,
        ),
        "advisories": st.lists(
            st.fixed_dictionaries(
                {
                    "issuer": action_by,
                    "tlp": st.sampled_from(Tlp.values),
                    "organization_types": st.sets(st.sampled_from(ORG_TYPES), max_size=1),
                    "ack_required": st.booleans(),
                    **audience,
                    # Ministries address their sectors: an advisory always names one or two.
                    "sectors": st.sets(st.integers(min_value=0, max_value=1), min_size=1, max_size=2),
                    "all_ci": st.booleans(),
                }
            ),
            min_size=1,
            max_size=3,
        ),
        "copies": st.lists(
            st.fixed_dictionaries(
                {
                    "actor": action_by,
                    "report": st.integers(min_value=0, max_value=4),
                    "tlp": st.sampled_from(Tlp.values),
                    "title": text,
                    "narrative": text,
                    **audience,
                }
            ),
            min_size=1,
            max_size=2,
        ),
    }
)


# --- The oracle: the rules of PRODUCT.md as a person would state them -----------------------------


@dataclass
class Community:
    sectors: list[Sector]
    orgs: list[Organization]
    people: list[User]
    org_sectors: dict[int, set[int]]
    ministries_of: dict[int, set[int]]  # sector pk → active ministries overseeing it


@dataclass
class SharedReport:
    report: Report
    organizations: set[int]  # organizations in the audience
    named: set[int]  # people in the audience


@dataclass
class Audience:
    tlp: str
    all_ci: bool
    sectors: set[int]
    organization_types: set[str]
    organizations: set[int]
    people: set[int]
    issuer: int | None = None


@dataclass
class Viewer:
    """A user as the rules see them: their roles in active organizations."""

    user: User
    roles: set[tuple[int, str]] = field(default_factory=set)
    orgs: set[int] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    sectors: set[int] = field(default_factory=set)


def viewer(user: User, community: Community) -> Viewer:
    seen = Viewer(user)
    for membership in Membership.objects.filter(user=user).select_related("organization"):
        if membership.organization.active:
            seen.roles.add((membership.organization_id, membership.role))
            seen.orgs.add(membership.organization_id)
            seen.types.add(membership.organization.type)
            seen.sectors |= community.org_sectors[membership.organization_id]
    return seen


def may_see_report(who: Viewer, shared: SharedReport) -> bool:
    report = shared.report
    if who.user.pk in shared.named:
        return True
    if report.tlp == Tlp.RED:
        # Named people, the reporter, and the reporting organization's officers; never organizations.
        return report.reporter_id == who.user.pk or (report.organization_id, Role.OFFICER) in who.roles
    return bool(who.orgs & shared.organizations)


def addressed(who: Viewer, to: Audience) -> bool:
    if who.user.pk in to.people:
        return True
    if to.tlp == Tlp.RED:
        return False
    return bool(
        (to.all_ci and who.types & set(COMMUNITY_TYPES))
        or to.sectors & who.sectors
        or to.organization_types & who.types
        or to.organizations & who.orgs
    )


def may_see_advisory(who: Viewer, to: Audience) -> bool:
    return to.issuer in who.orgs or addressed(who, to)


def matches(query: str, *texts: str) -> bool:
    return all(any(term.casefold() in t.casefold() for t in texts) for term in search_terms(query))


# --- Building a scenario through the services --------------------------------------------------------


def build_community(spec) -> Community:
    sectors = [Sector.objects.create(code=f"s{i}", name_ja=f"分野{i}") for i in range(spec["sector_count"])]
    orgs = []
    for index, item in enumerate(spec["organizations"]):
        org = Organization.objects.create(type=item["type"], name_ja=f"組織{index}", active=item["active"])
        org.sectors.set([sectors[s % len(sectors)] for s in item["sectors"]])
        orgs.append(org)
    for org, item in zip(orgs, spec["organizations"], strict=True):
        if item["parent"] is not None and item["parent"] < len(orgs) and orgs[item["parent"]] != org:
            org.parent = orgs[item["parent"]]
            org.save()
    org_sectors = {org.pk: set(org.sectors.values_list("pk", flat=True)) for org in orgs}
    ministries_of: dict[int, set[int]] = {sector.pk: set() for sector in sectors}
    for org in orgs:
        if org.type == OrganizationType.SECTOR_MINISTRY:
            for sector_pk in org_sectors[org.pk]:
                Sector.objects.get(pk=sector_pk).ministries.add(org)
                if org.active:
                    ministries_of[sector_pk].add(org.pk)
    people = []
    for index, person in enumerate(spec["people"]):
        user = User.objects.create(username=f"u{index}", is_superuser=person["superuser"])
        for org_position, role in sorted(person["memberships"]):
            if org_position < len(orgs):
                Membership.objects.create(user=user, organization=orgs[org_position], role=role)
        people.append(user)
    return Community(sectors, orgs, people, org_sectors, ministries_of)


def _pick(items: list, index: int):
    return items[index] if index < len(items) else None


def _candidate(index: int, *where: Q, **conditions) -> Membership | None:
    """One of the memberships that could perform an action (so that most generated actions are
    attempted by someone plausible); the services still decide."""
    candidates = list(
        Membership.objects.filter(*where, organization__active=True, **conditions)
        .select_related("organization", "user")
        .order_by("pk")
    )
    return candidates[index % len(candidates)] if candidates else None


def submit_reports(spec, community: Community, cause: CauseCategory) -> list[SharedReport]:
    shared = []
    for item in spec["reports"]:
        membership = _candidate(item["reporter"], role__in=REPORTING_ROLES)
        if membership is None:
            continue
        reporter, organization = membership.user, membership.organization
        sector_pks = sorted(community.org_sectors[organization.pk])
        recipients = [p for p in (_pick(community.people, i) for i in item["recipients"]) if p]
        tlp = item["tlp"]
        try:
            report = report_submit(
                reporter=reporter,
                organization=organization,
                data=ReportInput(
                    title=item["title"],
                    narrative=item["narrative"],
                    sector=Sector.objects.get(pk=sector_pks[0]),
                    kind=ReportKind.FAILURE,
                    detected_at=timezone.now(),
                    cause=cause,
                    tlp=tlp,
                    share_with_ceptoar=item["share_with_ceptoar"],
                    anonymized_copy_consent=item["consent"],
                    recipients=recipients if tlp == Tlp.RED else (),
                ),
            )
        except ValidationError as error:
            event(f"report refused: {error.messages[0]}")
            continue
        shared.append(routed(report, community, recipients))
    return shared


def routed(report: Report, community: Community, recipients: list[User]) -> SharedReport:
    """The audience the rules give a new report: its organization, the sector's ministries and the
    national centre, the parent CEPTOAR if chosen, and for RED the named people (by default the
    coordinators of that chain)."""
    organization = report.organization
    centres = {o.pk for o in community.orgs if o.type == OrganizationType.NATIONAL_CENTER and o.active}
    chain = community.ministries_of[report.sector_id] | centres
    audience = {organization.pk} | chain
    parent = organization.parent
    if report.share_with_ceptoar and parent is not None and parent.type == OrganizationType.CEPTOAR:
        audience.add(parent.pk)
    named = set()
    if report.tlp == Tlp.RED:
        named = {p.pk for p in recipients}
        if not named:
            named = set(
                Membership.objects.filter(
                    organization_id__in=chain | (audience - {organization.pk}), role=Role.COORDINATOR
                ).values_list("user_id", flat=True)
            )
    return SharedReport(report, audience, named)


def forward_reports(spec, community: Community, shared: list[SharedReport]) -> int:
    forwarded = 0
    for item in spec["forwards"]:
        target = _pick(shared, item["report"])
        if target is None:
            continue
        membership = _candidate(
            item["actor"], role__in=FORWARD_ROLES, organization_id__in=target.organizations
        )
        if membership is None:
            continue
        actor = membership.user
        organizations = [o for o in (_pick(community.orgs, i) for i in item["organizations"]) if o]
        users = [u for u in (_pick(community.people, i) for i in item["users"]) if u]
        try:
            report_forward(actor=actor, report=target.report, organizations=organizations, users=users)
        except ValidationError as error:
            event(f"forward refused: {error.messages[0]}")
            continue
        target.organizations |= {o.pk for o in organizations}
        target.named |= {u.pk for u in users}
        forwarded += 1
    return forwarded


def _audience_of(item, community: Community, *, tlp: str, issuer: int | None = None) -> Audience:
    return Audience(
        tlp=tlp,
        all_ci=item["all_ci"],
        sectors={community.sectors[i].pk for i in item["sectors"] if i < len(community.sectors)},
        organization_types=set(item.get("organization_types", ())),
        organizations={o.pk for o in (_pick(community.orgs, i) for i in item["organizations"]) if o},
        people={p.pk for p in (_pick(community.people, i) for i in item["people"]) if p},
        issuer=issuer,
    )


def issue_advisories(spec, community: Community) -> dict[Advisory, Audience]:
    issued = {}
    for item in spec["advisories"]:
        membership = _candidate(item["issuer"], role__in=FORWARD_ROLES, organization__type__in=ISSUER_TYPES)
        if membership is None:
            continue
        issuer = membership.user
        to = _audience_of(item, community, tlp=item["tlp"], issuer=membership.organization_id)
        try:
            advisory = advisory_issue(
                issuer=issuer,
                organization=membership.organization,
                data=AdvisoryInput(
                    title="注意喚起",
                    body="本文",
                    tlp=to.tlp,
                    all_ci=to.all_ci,
                    sectors=list(Sector.objects.filter(pk__in=to.sectors)),
                    organization_types=sorted(to.organization_types),
                    organizations=list(Organization.objects.filter(pk__in=to.organizations)),
                    people=list(User.objects.filter(pk__in=to.people)),
                    ack_required=item["ack_required"],
                ),
            )
        except ValidationError as error:
            event(f"advisory refused: {error.messages[0]}")
            continue
        issued[advisory] = to
    return issued


def publish_copies(spec, community: Community, shared: list[SharedReport]) -> dict[AnonymizedReport, tuple]:
    published = {}
    for item in spec["copies"]:
        source = _pick(shared, item["report"])
        if source is None:
            continue
        membership = _candidate(
            item["actor"],
            Q(organization__type=OrganizationType.NATIONAL_CENTER, role__in=(Role.COORDINATOR, Role.ANALYST))
            | Q(organization=source.report.organization, role__in=REPORTING_ROLES),
        )
        if membership is None:
            continue
        actor = membership.user
        to = _audience_of(item, community, tlp=item["tlp"])
        try:
            copy = anonymized_copy_create(
                actor=actor,
                source=source.report,
                data=AnonymizedInput(
                    title=item["title"],
                    narrative=item["narrative"],
                    keep_sector=True,
                    tlp=to.tlp,
                    all_ci=to.all_ci,
                    sectors=list(Sector.objects.filter(pk__in=to.sectors)),
                    organizations=list(Organization.objects.filter(pk__in=to.organizations)),
                    people=list(User.objects.filter(pk__in=to.people)),
                ),
            )
        except ValidationError as error:
            event(f"copy refused: {error.messages[0]}")
            continue
        published[copy] = (to, item["title"], item["narrative"])
    return published


def exported_report_ids(user: User) -> set[str] | None:
    """The report ids in the dashboard's CSV download, or None when the download is a 404."""
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    response = client.get("/dashboard/export/reports.csv")
    if response.status_code == 404:
        return None
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    return {row[0] for row in rows[1:]}


class SharingAccessMatchesTheOracle(TestCase):
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios, st.sampled_from(QUERIES))
    def test_every_user_sees_exactly_what_the_rules_allow(self, spec, query):
        cause = CauseCategory.objects.create(code="intentional", name_ja="意図的要因")
        community = build_community(spec)
        shared = submit_reports(spec, community, cause)
        forwarded = forward_reports(spec, community, shared)
        advisories = issue_advisories(spec, community)
        copies = publish_copies(spec, community, shared)
        # Shown by --hypothesis-show-statistics: how much of each kind the services accepted.
        event(f"reports: {len(shared)}, RED: {sum(s.report.tlp == Tlp.RED for s in shared)}")
        event(f"forwards: {forwarded}")
        event(f"advisories: {len(advisories)}, copies: {len(copies)}")

        for user in community.people:
            user = User.objects.get(pk=user.pk)
            who = viewer(user, community)
            visible_reports = {s.report for s in shared if may_see_report(who, s)}
            restricted = Report.objects.restrict(user)
            assert set(restricted) == visible_reports
            assert restricted.count() == len(visible_reports)  # no row twice

            visible_advisories = {a for a, to in advisories.items() if may_see_advisory(who, to)}
            assert set(Advisory.objects.restrict(user)) == visible_advisories
            assert Advisory.objects.restrict(user).count() == len(visible_advisories)

            visible_copies = {c for c, (to, _t, _n) in copies.items() if addressed(who, to)}
            assert set(AnonymizedReport.objects.restrict(user)) == visible_copies

            # Search: exactly the visible rows whose text matches.
            assert set(search_reports(restricted, query)) == {
                r for r in visible_reports if matches(query, r.title, r.narrative)
            }
            assert set(search_anonymized(AnonymizedReport.objects.restrict(user), query)) == {
                c for c in visible_copies if matches(query, copies[c][1], copies[c][2])
            }

            # The dashboard: its figures count, and its download lists, exactly the visible reports.
            per_sector = {}
            for report in visible_reports:
                code = Sector.objects.get(pk=report.sector_id).code
                per_sector[code] = per_sector.get(code, 0) + 1
            trend = reports_by_month_and_sector(restricted)
            assert {s.code: s.total for s in trend.series} == per_sector
            exported = exported_report_ids(user)
            if who.types & set(DASHBOARD_ORGANIZATION_TYPES):
                assert exported == {str(r.pk) for r in visible_reports}
            else:
                assert exported is None
            issuing = {
                org for org, role in who.roles if role in (Role.OFFICER, Role.COORDINATOR, Role.ANALYST)
            }
            assert set(unacknowledged_advisories(user)) <= {
                a for a in visible_advisories if a.ack_required and a.issuer_id in issuing
            }
            assert set(Advisory.objects.restrict(user, Action.CHANGE)) <= visible_advisories
