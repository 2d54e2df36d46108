"""The sharing rules as a person would state them, and random communities built through the services.

Shared by the property tests of every channel (test_access_properties.py for `restrict`, search and
the dashboard; test_channel_properties.py for the API, downloads, pages, e-mail and webhooks), so
that all of them are checked against one statement of the rules.

Hypothesis builds sectors, ministries overseeing them, CEPTOARs, operators with parents, a national
centre, inactive organizations and people with random roles (superusers included: they get no
automatic access). Random reports (random labels, CEPTOAR sharing, named RED recipients) are then
submitted, forwarded, advisories issued and anonymized copies published, all through the services;
an action the services refuse simply does not happen.

Every title and text carries a marker (【報3】 for report 3's title, 【述3】 for its narrative …) so
that a channel's output can be searched for what it must not contain.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import event
from hypothesis import strategies as st

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
from renkei.sharing.search import search_terms
from renkei.sharing.services import (
    ISSUER_TYPES,
    AdvisoryInput,
    AnonymizedInput,
    AttachmentInput,
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
MAX_REPORTS = 5
# Texts of reports and copies, and the queries searched for: long terms, short terms, Latin.
WORDS = ["不正アクセス", "停電", "ランサムウェア", "障害", "DDoS攻撃", "設定誤り"]
QUERIES = ["不正アクセス", "停電", "障害", "ddos", "ランサム 障害", "電", "誤り 不正", '"不正" OR 停電']
# Roles of the issuer's chain, which sees an advisory's audience and acknowledgements.
ISSUER_CHAIN_ROLES = (*FORWARD_ROLES, Role.ANALYST)

org_index = st.integers(min_value=0, max_value=MAX_ORGS - 1)
person_index = st.integers(min_value=0, max_value=MAX_PEOPLE - 1)
report_index = st.integers(min_value=0, max_value=MAX_REPORTS - 1)
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map("・".join)
audience = {
    "all_ci": st.sampled_from([True, True, False]),
    "sectors": st.sets(st.integers(min_value=0, max_value=1), max_size=2),
    "organizations": st.sets(org_index, max_size=2),
    "people": st.sets(person_index, max_size=2),
}
action_by = st.integers(min_value=0, max_value=20)

ORGANIZATION = {
    "type": st.sampled_from(ORG_TYPES),
    "sectors": st.sets(st.integers(min_value=0, max_value=1), min_size=1, max_size=2),
    "parent": st.none() | org_index,
    "active": st.sampled_from([True, True, True, False]),
}
PERSON = {
    "memberships": st.sets(st.tuples(org_index, st.sampled_from(ROLES)), min_size=1, max_size=2),
    "superuser": st.sampled_from([False, False, False, True]),
}
REPORT = {
    "reporter": action_by,
    "tlp": st.sampled_from(Tlp.values),
    "share_with_ceptoar": st.sampled_from([False, False, True]),
    "consent": st.sampled_from([True, True, False]),
    "recipients": st.sets(person_index, max_size=2),
    "title": text,
    "narrative": text,
}
ADVISORY = {
    "issuer": action_by,
    "tlp": st.sampled_from(Tlp.values),
    "organization_types": st.sets(st.sampled_from(ORG_TYPES), max_size=1),
    "ack_required": st.booleans(),
    **audience,
    # Ministries address their sectors: an advisory always names one or two.
    "sectors": st.sets(st.integers(min_value=0, max_value=1), min_size=1, max_size=2),
    "all_ci": st.booleans(),
}

COPY = {
    "actor": action_by,
    "report": report_index,
    "tlp": st.sampled_from(Tlp.values),
    "title": text,
    "narrative": text,
    **audience,
}


def within_label(item: dict) -> dict:
    """An audience cut to what its label allows (RED: named people; AMBER+STRICT: named
    organizations and people), so that advisories and copies with those labels occur."""
    if item["tlp"] == Tlp.RED:
        dropped = ("all_ci", "sectors", "organization_types", "organizations")
    elif item["tlp"] == Tlp.AMBER_STRICT:
        dropped = ("all_ci", "sectors", "organization_types")
    else:
        return item
    return item | {key: type(item[key])() for key in dropped if key in item}


def scenarios(**extra) -> st.SearchStrategy[dict]:
    """Random communities and what happens in them; `extra` adds (or replaces) top-level entries."""
    return st.fixed_dictionaries(
        {
            "sector_count": st.integers(min_value=1, max_value=2),
            "organizations": st.lists(st.fixed_dictionaries(ORGANIZATION), min_size=2, max_size=MAX_ORGS),
            "people": st.lists(st.fixed_dictionaries(PERSON), min_size=3, max_size=MAX_PEOPLE),
            "reports": st.lists(st.fixed_dictionaries(REPORT), min_size=2, max_size=MAX_REPORTS),
            "forwards": st.lists(
                st.fixed_dictionaries(
                    {
                        "actor": action_by,
                        "report": report_index,
                        "organizations": st.sets(org_index, min_size=1, max_size=2),
                        "users": st.sets(person_index, max_size=1),
                    }
                ),
                min_size=1,
                max_size=3,
            ),
            "advisories": st.lists(st.fixed_dictionaries(ADVISORY).map(within_label), min_size=1, max_size=3),
            "copies": st.lists(st.fixed_dictionaries(COPY).map(within_label), min_size=1, max_size=2),
            **extra,
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
    marker: int = 0  # the report's markers are 【報n】 (title) and 【述n】 (narrative)


@dataclass
class Audience:
    tlp: str
    all_ci: bool
    sectors: set[int]
    organization_types: set[str]
    organizations: set[int]
    people: set[int]
    issuer: int | None = None
    # Advisories only: the reports it stems from, and its markers 【警n】 (title), 【警文n】 (body).
    source_reports: set = field(default_factory=set)
    marker: int = 0


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


def organization_addressed(organization: Organization, to: Audience, community: Community) -> bool:
    """Whether the audience names an active organization as a whole (not through one of its people)."""
    if to.tlp == Tlp.RED or not organization.active:
        return False
    return bool(
        (to.all_ci and organization.type in COMMUNITY_TYPES)
        or to.sectors & community.org_sectors[organization.pk]
        or organization.type in to.organization_types
        or organization.pk in to.organizations
    )


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


def in_issuer_chain(who: Viewer, to: Audience) -> bool:
    """The issuing organization's officers, coordinators and analysts: they see the audience and
    who acknowledged."""
    return any(org == to.issuer and role in ISSUER_CHAIN_ROLES for org, role in who.roles)


def matches(query: str, *texts: str) -> bool:
    return all(any(term.casefold() in t.casefold() for t in texts) for term in search_terms(query))


def marked(text: str, marker: str) -> str:
    return f"{text}【{marker}】"


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


def pick(items: list, index: int):
    return items[index] if index < len(items) else None


def candidate(index: int, *where: Q, **conditions) -> Membership | None:
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
    for number, item in enumerate(spec["reports"]):
        membership = candidate(item["reporter"], role__in=REPORTING_ROLES)
        if membership is None:
            continue
        reporter, organization = membership.user, membership.organization
        sector_pks = sorted(community.org_sectors[organization.pk])
        recipients = [p for p in (pick(community.people, i) for i in item["recipients"]) if p]
        tlp = item["tlp"]
        try:
            report = report_submit(
                reporter=reporter,
                organization=organization,
                data=ReportInput(
                    title=marked(item["title"], f"報{number}"),
                    narrative=marked(item["narrative"], f"述{number}"),
                    sector=Sector.objects.get(pk=sector_pks[0]),
                    kind=ReportKind.FAILURE,
                    detected_at=timezone.now(),
                    cause=cause,
                    tlp=tlp,
                    share_with_ceptoar=item["share_with_ceptoar"],
                    anonymized_copy_consent=item["consent"],
                    recipients=recipients if tlp == Tlp.RED else (),
                    attachments=[
                        AttachmentInput(filename=name, content_type="application/octet-stream", content=data)
                        for name, data in item.get("attachments", ())
                    ],
                ),
            )
        except ValidationError as error:
            event(f"report refused: {error.messages[0]}")
            continue
        shared.append(routed(report, community, recipients, marker=number))
    return shared


def routed(report: Report, community: Community, recipients: list[User], *, marker: int = 0) -> SharedReport:
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
    return SharedReport(report, audience, named, marker)


def forward_reports(spec, community: Community, shared: list[SharedReport]) -> int:
    forwarded = 0
    for item in spec["forwards"]:
        target = pick(shared, item["report"])
        if target is None:
            continue
        membership = candidate(
            item["actor"], role__in=FORWARD_ROLES, organization_id__in=target.organizations
        )
        if membership is None:
            continue
        actor = membership.user
        organizations = [o for o in (pick(community.orgs, i) for i in item["organizations"]) if o]
        users = [u for u in (pick(community.people, i) for i in item["users"]) if u]
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
        organizations={o.pk for o in (pick(community.orgs, i) for i in item["organizations"]) if o},
        people={p.pk for p in (pick(community.people, i) for i in item["people"]) if p},
        issuer=issuer,
    )


def advisory_file(number: int) -> AttachmentInput:
    """The file every advisory of the spec carries, its bytes telling which advisory it came with."""
    return AttachmentInput(f"警{number}.txt", "text/plain", f"advisory-{number}".encode())


def issue_advisories(spec, community: Community, shared: list[SharedReport] = ()) -> dict[Advisory, Audience]:
    """Advisories as the spec describes them; `sources` (indexes into `shared`) name the reports an
    advisory stems from, of those the issuer may see."""
    issued = {}
    for number, item in enumerate(spec["advisories"]):
        membership = candidate(item["issuer"], role__in=FORWARD_ROLES, organization__type__in=ISSUER_TYPES)
        if membership is None:
            continue
        issuer = membership.user
        to = _audience_of(item, community, tlp=item["tlp"], issuer=membership.organization_id)
        to.marker = number
        issuer_view = viewer(issuer, community)
        sources = [s for s in (pick(list(shared), i) for i in item.get("sources", ())) if s]
        to.source_reports = {s.report.pk for s in sources if may_see_report(issuer_view, s)}
        try:
            advisory = advisory_issue(
                issuer=issuer,
                organization=membership.organization,
                data=AdvisoryInput(
                    title=marked("注意喚起", f"警{number}"),
                    body=marked("本文", f"警文{number}"),
                    tlp=to.tlp,
                    all_ci=to.all_ci,
                    sectors=list(Sector.objects.filter(pk__in=to.sectors)),
                    organization_types=sorted(to.organization_types),
                    organizations=list(Organization.objects.filter(pk__in=to.organizations)),
                    people=list(User.objects.filter(pk__in=to.people)),
                    ack_required=item["ack_required"],
                    source_reports=sorted(str(pk) for pk in to.source_reports),
                    attachments=[advisory_file(number)],
                ),
            )
        except ValidationError as error:
            event(f"advisory refused: {error.messages[0]}")
            continue
        issued[advisory] = to
    return issued


def publish_copies(spec, community: Community, shared: list[SharedReport]) -> dict[AnonymizedReport, tuple]:
    """Anonymized copies: each maps to (audience, title, narrative, source); the markers are
    【匿n】 (title) and 【匿述n】 (narrative)."""
    published = {}
    for number, item in enumerate(spec["copies"]):
        source = pick(shared, item["report"])
        if source is None:
            continue
        membership = candidate(
            item["actor"],
            Q(organization__type=OrganizationType.NATIONAL_CENTER, role__in=(Role.COORDINATOR, Role.ANALYST))
            | Q(organization=source.report.organization, role__in=REPORTING_ROLES),
        )
        if membership is None:
            continue
        actor = membership.user
        to = _audience_of(item, community, tlp=item["tlp"])
        to.marker = number
        title, narrative = marked(item["title"], f"匿{number}"), marked(item["narrative"], f"匿述{number}")
        try:
            copy = anonymized_copy_create(
                actor=actor,
                source=source.report,
                data=AnonymizedInput(
                    title=title,
                    narrative=narrative,
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
        published[copy] = (to, title, narrative, source)
    return published


def signed_in(user: User) -> Client:
    """A web client signed in as `user`, past the two-factor step (a confirmed TOTP device)."""
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
