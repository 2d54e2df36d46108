"""A situation's access, on random rosters and labels: the roster's organizations gain access to exactly
what the roster says while the situation is in force, and lose it, to the last report, after the end.

The oracle below reads the roster, the situation's level and sectors and the directory in plain Python;
it shares no code with services.roster_organizations or services._grant. Each example runs in a
savepoint that is rolled back, because the `crisis` fixture is built once per test function.
"""

from dataclasses import dataclass

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from renkei.core.reference_cache import reference_cache_clear
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization, Sector
from renkei.directory.tests.factories import member
from renkei.sharing.choices import Tlp
from renkei.sharing.models import Report
from renkei.sharing.tests.factories import report_for
from renkei.situations import services
from renkei.situations.choices import DecisionKind
from renkei.situations.models import AlertLevel, RosterEntry, Situation

pytestmark = pytest.mark.django_db

# The labels a roster may open up, widest first; AMBER+STRICT and RED stay with their sources' choice.
ROSTER_ORDER = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER]
LEVELS = ("watch", "heightened", "large_scale")
ROSTER_TYPES = (
    OrganizationType.RELATED_AGENCY,
    OrganizationType.SECURITY_MINISTRY,
    OrganizationType.RESPONSE_AGENCY,
    OrganizationType.CEPTOAR,
    OrganizationType.SECTOR_MINISTRY,
    OrganizationType.DISASTER_AGENCY,
)
# Organizations of the `crisis` fixture a roster entry may name; the national centre must never join.
NAMEABLE = ("bank_a", "hospital", "power", "fsa", "mhlw", "police", "bank_ceptoar", "nisc")
# Organizations that may be switched off before the situation (none of them reports here).
DEACTIVATABLE = (None, "fsa", "mhlw", "police", "bank_ceptoar")
REPORTERS = ("bank_a_reporter", "bank_b_reporter", "hospital_reporter", "power_reporter", "water_reporter")
CAUSES = ("intentional.malware", "intentional.dos", "accidental.operation_error", "environmental.disaster")
SECTOR_CODES = ("finance", "medical", "electricity", "water", "info_comm", "gas", "railway")

ROSTER_ENTRY = st.fixed_dictionaries(
    {
        "level": st.sampled_from(LEVELS),
        "target": st.one_of(
            st.tuples(st.just("type"), st.sampled_from(ROSTER_TYPES)),
            st.tuples(st.just("organization"), st.sampled_from(NAMEABLE)),
        ),
        "affected_sectors_only": st.booleans(),
        "max_tlp": st.sampled_from(ROSTER_ORDER),
    }
)
REPORT = st.fixed_dictionaries(
    {
        "reporter": st.sampled_from(REPORTERS),
        "tlp": st.sampled_from(Tlp.values),
        "cause": st.sampled_from(CAUSES),
        # When the coordinator puts it into the situation; "never" reports must stay untouched.
        "added": st.sampled_from(("before_approval", "after_approval", "never")),
    }
)
DECLARATION = st.fixed_dictionaries(
    {
        "level": st.sampled_from(LEVELS),
        "nationwide": st.booleans(),
        "sectors": st.sets(st.sampled_from(SECTOR_CODES), min_size=1, max_size=3),
    }
)


@dataclass(frozen=True)
class OrganizationFacts:
    """What the oracle knows of an organization, read from the directory before the situation."""

    pk: int
    type: str
    active: bool
    sector_ids: frozenset  # its own sectors and, for a ministry, the sectors it oversees


def directory_facts() -> dict[int, OrganizationFacts]:
    sectors: dict[int, set] = {}
    for organization_id, sector_id in Organization.sectors.through.objects.values_list(
        "organization_id", "sector_id"
    ):
        sectors.setdefault(organization_id, set()).add(sector_id)
    for organization_id, sector_id in Sector.ministries.through.objects.values_list(
        "organization_id", "sector_id"
    ):
        sectors.setdefault(organization_id, set()).add(sector_id)
    return {
        pk: OrganizationFacts(pk, kind, active, frozenset(sectors.get(pk, ())))
        for pk, kind, active in Organization.objects.values_list("pk", "type", "active")
    }


def expected_ceilings(
    roster: list[dict],
    level_rank: int,
    nationwide: bool,
    sector_ids: set,
    facts: dict[int, OrganizationFacts],
) -> dict[int, str]:
    """The oracle: organization id → the widest label its matching roster entries allow."""
    ceilings: dict[int, str] = {}
    for entry in roster:
        if entry["level_rank"] > level_rank:
            continue
        for organization in facts.values():
            if not organization.active or organization.type == OrganizationType.NATIONAL_CENTER:
                continue
            if entry["organization_id"] is not None:
                matches = organization.pk == entry["organization_id"]
            else:
                matches = organization.type == entry["organization_type"] and (
                    not entry["affected_sectors_only"]
                    or nationwide
                    or bool(organization.sector_ids & sector_ids)
                )
            if matches:
                widest = max(
                    ceilings.get(organization.pk, entry["max_tlp"]), entry["max_tlp"], key=ROSTER_ORDER.index
                )
                ceilings[organization.pk] = widest
    return ceilings


def opened_by(ceiling: str | None, reports: list[Report]) -> set:
    """The situation's reports a participant with `ceiling` may see: up to the label, never
    AMBER+STRICT or RED."""
    if ceiling is None:
        return set()
    return {
        report.pk
        for report in reports
        if report.tlp in ROSTER_ORDER and ROSTER_ORDER.index(report.tlp) <= ROSTER_ORDER.index(ceiling)
    }


def visible(user, report_ids: list) -> set:
    return set(Report.objects.restrict(user).filter(pk__in=report_ids).values_list("pk", flat=True))


def in_situations(user, situation: Situation) -> bool:
    return Situation.objects.restrict(user).filter(pk=situation.pk).exists()


def replace_roster(crisis, drawn: list[dict], levels: dict[str, AlertLevel]) -> list[dict]:
    """Put the drawn roster in place of the reference one; returns it in the oracle's terms."""
    RosterEntry.objects.all().delete()
    roster = []
    for item in drawn:
        kind, target = item["target"]
        organization = getattr(crisis, target) if kind == "organization" else None
        RosterEntry.objects.create(
            level=levels[item["level"]],
            organization=organization,
            organization_type="" if organization else target,
            affected_sectors_only=item["affected_sectors_only"],
            max_tlp=item["max_tlp"],
        )
        roster.append(
            {
                "level_rank": levels[item["level"]].rank,
                "organization_id": organization.pk if organization else None,
                "organization_type": None if organization else target,
                "affected_sectors_only": item["affected_sectors_only"],
                "max_tlp": item["max_tlp"],
            }
        )
    return roster


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    drawn_roster=st.lists(ROSTER_ENTRY, max_size=6),
    drawn_reports=st.lists(REPORT, min_size=1, max_size=5),
    declaration=DECLARATION,
    deactivated=st.sampled_from(DEACTIVATABLE),
)
def test_the_roster_opens_exactly_what_it_says_and_the_end_closes_it(
    crisis, drawn_roster, drawn_reports, declaration, deactivated
):
    c = crisis
    with transaction.atomic():
        # A rollback sends no signals: start each example with nothing cached from the last one.
        reference_cache_clear()
        levels = {level.code: level for level in AlertLevel.objects.all()}
        roster = replace_roster(c, drawn_roster, levels)
        reports = [
            report_for(
                getattr(c, item["reporter"]), title=f"報告 {number}", tlp=item["tlp"], cause=item["cause"]
            )
            for number, item in enumerate(drawn_reports)
        ]
        if deactivated:
            Organization.objects.filter(pk=getattr(c, deactivated).pk).update(active=False)

        # One officer per organization (the national centre sees everything anyway), and what each
        # sees of these reports before any situation exists.
        viewers = {
            organization.pk: member(organization, Role.OFFICER)
            for organization in Organization.objects.exclude(type=OrganizationType.NATIONAL_CENTER)
        }
        all_ids = [report.pk for report in reports]
        before = {pk: visible(user, all_ids) for pk, user in viewers.items()}

        sectors = [Sector.objects.get(code=code) for code in sorted(declaration["sectors"])]
        level = levels[declaration["level"]]
        situation = services.situation_declare(
            actor=c.nisc_coordinator,
            data=services.Declaration(
                title="無作為の事態",
                reason="性質検査",
                level=level,
                nationwide=declaration["nationwide"],
                sectors=tuple(sectors),
            ),
            proposal=None,
        )
        for report, item in zip(reports, drawn_reports, strict=True):
            if item["added"] == "before_approval":
                services.situation_add_report(actor=c.nisc_coordinator, situation=situation, report=report)

        # Awaiting approval, nobody has joined and nothing is opened.
        for pk, user in viewers.items():
            assert visible(user, all_ids) == before[pk], f"organization {pk} gained access before approval"
            assert not in_situations(user, situation)

        services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)
        for report, item in zip(reports, drawn_reports, strict=True):
            if item["added"] == "after_approval":
                services.situation_add_report(actor=c.nisc_coordinator, situation=situation, report=report)

        facts = directory_facts()
        ceilings = expected_ceilings(
            roster, level.rank, declaration["nationwide"], {sector.pk for sector in sectors}, facts
        )
        situation_reports = [
            report for report, item in zip(reports, drawn_reports, strict=True) if item["added"] != "never"
        ]
        event(f"joined: {len(ceilings)}")
        event(f"RED reports in the situation: {sum(r.tlp == Tlp.RED for r in situation_reports)}")

        current = situation.participants.filter(left_at__isnull=True)
        assert dict(current.values_list("organization_id", "max_tlp")) == ceilings
        for pk, user in viewers.items():
            expected = before[pk] | opened_by(ceilings.get(pk), situation_reports)
            assert visible(user, all_ids) == expected, (
                f"organization {pk} ({facts[pk].type}, ceiling {ceilings.get(pk)}) sees the wrong reports"
            )
            assert in_situations(user, situation) == (pk in ceilings)

        services.decision_request(
            actor=c.nisc_coordinator, situation=situation, kind=DecisionKind.END, reason="収束"
        )
        services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)

        # Ended: every organization sees exactly what it saw before the situation, and not the situation.
        assert not situation.participants.filter(left_at__isnull=True).exists()
        for pk, user in viewers.items():
            assert visible(user, all_ids) == before[pk], f"organization {pk} kept access after the end"
            assert not in_situations(user, situation)

        transaction.set_rollback(True)
    reference_cache_clear()
