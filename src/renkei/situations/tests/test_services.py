import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from renkei.sharing import services as sharing_services
from renkei.sharing.choices import ServiceState, Tlp
from renkei.sharing.models import Advisory, Report
from renkei.sharing.tests.factories import report_for
from renkei.situations import selectors, services
from renkei.situations.choices import DecisionKind, ProposalStatus, SituationStatus, SpilloverStatus
from renkei.situations.models import (
    AlertLevel,
    Decision,
    Participant,
    Proposal,
    RecognitionRule,
    SpilloverProposal,
)
from renkei.situations.services import Declaration

pytestmark = pytest.mark.django_db


def submit(reporter, **fields):
    """A report, evaluated by the rules as the worker would right after it commits."""
    report = report_for(reporter, **fields)
    services.evaluate_report(str(report.pk))
    return report


def storm(c, cause="intentional.malware"):
    return [
        submit(c.bank_a_reporter, cause=cause, title="不審な通信 銀行"),
        submit(c.hospital_reporter, cause=cause, title="不審な通信 病院"),
        submit(c.power_reporter, cause=cause, title="不審な通信 電力"),
    ]


def level(code):
    return AlertLevel.objects.get(code=code)


def test_the_default_rule_ships_switched_on(reference_data):
    rule = RecognitionRule.objects.get(active=True)
    assert (rule.cause_code, rule.min_sectors, rule.window_hours, rule.level.code) == (
        "intentional",
        3,
        6,
        "heightened",
    )


def test_a_storm_across_three_sectors_opens_exactly_one_proposal(crisis):
    c = crisis
    first, second, third = storm(c)
    proposal = Proposal.objects.get()
    assert proposal.rule.code == "intentional-3-sectors-6h"
    assert proposal.level.code == "heightened"
    assert set(proposal.reports.all()) == {first, second, third}
    assert set(proposal.sectors.values_list("code", flat=True)) == {"finance", "medical", "electricity"}

    fourth = submit(c.bank_b_reporter, cause="intentional.dos")
    accidental = submit(c.water_reporter, cause="accidental.operation_error")
    assert Proposal.objects.count() == 1, "the storm grows its proposal instead of opening another"
    assert set(Proposal.objects.get().reports.all()) == {first, second, third, fourth}
    assert accidental not in Proposal.objects.get().reports.all()


def test_two_sectors_are_not_enough(crisis):
    c = crisis
    submit(c.bank_a_reporter, cause="intentional.malware")
    submit(c.bank_b_reporter, cause="intentional.malware")
    submit(c.hospital_reporter, cause="intentional.malware")
    assert not Proposal.objects.exists()


def test_reports_outside_the_window_do_not_count(crisis):
    c = crisis
    old = [submit(c.bank_a_reporter), submit(c.hospital_reporter)]
    Report.objects.filter(pk__in=[r.pk for r in old]).update(
        created_at=timezone.now() - dt.timedelta(hours=7)
    )
    submit(c.power_reporter)
    assert not Proposal.objects.exists()


def test_a_dismissed_storm_proposes_again_only_on_new_reports(crisis):
    c = crisis
    storm(c)
    services.proposal_dismiss(actor=c.nisc_coordinator, proposal=Proposal.objects.get(), reason="訓練の通信")
    submit(c.bank_b_reporter)
    assert Proposal.objects.filter(status=ProposalStatus.OPEN).count() == 0
    storm(c)
    reopened = Proposal.objects.get(status=ProposalStatus.OPEN)
    assert reopened.reports.count() == 4


def test_the_database_holds_one_open_proposal_per_rule(crisis):
    storm(crisis)
    rule = RecognitionRule.objects.get(code="intentional-3-sectors-6h")
    with pytest.raises(IntegrityError), transaction.atomic():
        Proposal.objects.create(rule=rule, level=rule.level)


def test_an_outage_rule_needs_the_users_it_names(crisis):
    c = crisis
    RecognitionRule.objects.filter(code="outage-100k-users").update(active=True)
    submit(
        c.power_reporter,
        cause="accidental.equipment_failure",
        service_state=ServiceState.OUTAGE,
        impact_availability=True,
        users_affected=99_999,
    )
    assert not Proposal.objects.exists()
    big = submit(
        c.power_reporter,
        cause="accidental.equipment_failure",
        service_state=ServiceState.OUTAGE,
        impact_availability=True,
        users_affected=250_000,
    )
    proposal = Proposal.objects.get()
    assert list(proposal.reports.all()) == [big] and proposal.level.code == "watch"


def test_the_same_observable_from_three_organizations(crisis):
    c = crisis
    RecognitionRule.objects.filter(code="shared-observable-3-organizations").update(active=True)
    beacon = [("ipv4-addr", "198.51.100.23")]
    submit(c.bank_a_reporter, cause="unknown", observables=beacon)
    submit(c.bank_a_reporter, cause="unknown", observables=beacon)
    submit(c.bank_b_reporter, cause="unknown", observables=[*beacon, ("domain-name", "c2.example.net")])
    assert not Proposal.objects.exists(), "two organizations so far"
    third = submit(c.hospital_reporter, cause="unknown", observables=[("ipv4-addr", "198.51.100.23")])
    proposal = Proposal.objects.get(rule__code="shared-observable-3-organizations")
    assert proposal.reports.count() == 4 and third in proposal.reports.all()


def test_an_outage_in_a_sector_others_depend_on(crisis):
    c = crisis
    RecognitionRule.objects.filter(code="depended-on-sector-outage").update(active=True)
    submit(c.hospital_reporter, cause="accidental.program_defect", service_state=ServiceState.OUTAGE)
    assert not Proposal.objects.exists(), "few sectors depend on hospitals"
    submit(c.power_reporter, cause="accidental.program_defect", service_state=ServiceState.DEGRADED)
    assert Proposal.objects.get().rule.code == "depended-on-sector-outage"


def test_the_scheduled_check_finds_a_storm_a_rule_was_switched_on_for(crisis):
    rule = RecognitionRule.objects.get(code="intentional-3-sectors-6h")
    rule.active = False
    rule.save()
    storm(crisis)
    assert not Proposal.objects.exists()
    rule.active = True
    rule.save()
    assert services.evaluate_schedule() == 1
    assert services.evaluate_schedule() == 0
    assert Proposal.objects.get().reports.count() == 3


# --- Declaration: two people --------------------------------------------------------------------


def declared(c, **overrides):
    storm(c)
    proposal = Proposal.objects.get()
    data = Declaration(title="複数分野への同時攻撃", reason="3分野で同種のマルウェア", level=proposal.level)
    for key, value in overrides.items():
        setattr(data, key, value)
    return services.situation_declare(actor=c.nisc_coordinator, data=data, proposal=proposal)


def test_declaring_needs_a_second_coordinator(crisis):
    c = crisis
    situation = declared(c)
    assert situation.status == SituationStatus.PENDING_APPROVAL
    assert Proposal.objects.get().status == ProposalStatus.DECLARED
    assert situation.reports.count() == 3
    with pytest.raises(ValidationError) as same:
        services.decision_approve(actor=c.nisc_coordinator, situation=situation)
    assert same.value.code == "same_person"
    with pytest.raises(ValidationError) as analyst:
        services.decision_approve(actor=c.nisc_analyst, situation=situation)
    assert analyst.value.code == "not_decider"
    situation = services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)
    assert situation.status == SituationStatus.ACTIVE
    decision = situation.decisions.get()
    assert (decision.requested_by, decision.approved_by) == (c.nisc_coordinator, c.nisc_coordinator_2)


def test_the_database_refuses_one_person_approving_their_own_decision(crisis):
    situation = declared(crisis)
    with pytest.raises(IntegrityError), transaction.atomic():
        Decision.objects.filter(situation=situation).update(approved_by=crisis.nisc_coordinator)


def test_only_national_centre_coordinators_declare(crisis):
    c = crisis
    storm(c)
    for outsider in (c.fsa_coordinator, c.bank_a_reporter, c.nisc_analyst):
        with pytest.raises(ValidationError) as refused:
            services.situation_declare(
                actor=outsider,
                data=Declaration(title="x", reason="y", level=level("heightened")),
                proposal=Proposal.objects.get(),
            )
        assert refused.value.code == "not_decider"


def test_a_decided_proposal_cannot_be_declared_twice(crisis):
    c = crisis
    situation = declared(c)
    with pytest.raises(ValidationError) as twice:
        services.situation_declare(
            actor=c.nisc_coordinator_2,
            data=Declaration(title="x", reason="y", level=situation.level),
            proposal=situation.proposal,
        )
    assert twice.value.code == "proposal_decided"


# --- Joining and access ---------------------------------------------------------------------------


def active(c, **overrides):
    situation = declared(c, **overrides)
    return services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)


def visible(user):
    return set(Report.objects.restrict(user).values_list("pk", flat=True))


def test_the_roster_of_the_level_joins_and_sees_the_situation_reports(crisis):
    c = crisis
    situation = active(c, nationwide=False, sectors=[c.finance, c.medical, c.electricity])
    joined = set(situation.participants.values_list("organization__name_ja", flat=True))
    assert "銀行等セプター" in joined, "a CEPTOAR of an affected sector joins at 警戒"
    assert "JPCERTコーディネーションセンター" in joined
    assert "警察庁" not in joined, "response agencies join at the large-scale level only"
    assert "水道セプター" not in joined, "CEPTOARs of unaffected sectors stay out"
    hospital_report = situation.reports.get(organization=c.hospital)
    assert hospital_report.pk in visible(c.ceptoar_officer), "the finance CEPTOAR sees the medical report now"
    notice = Participant.objects.get(situation=situation, organization=c.bank_ceptoar).notice
    assert notice.ack_required and set(notice.audience.values_list("organization", flat=True)) >= {
        c.bank_ceptoar.pk
    }


def test_raising_brings_in_the_response_agencies_and_ending_takes_access_away(crisis):
    c = crisis
    situation = active(c)
    services.decision_request(
        actor=c.nisc_coordinator,
        situation=situation,
        kind=DecisionKind.RAISE,
        level=level("large_scale"),
        reason="拡大",
    )
    services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)
    assert situation.reports.values_list("pk", flat=True).first() in visible(c.police_officer)
    before = visible(c.police_officer)
    services.decision_request(
        actor=c.nisc_coordinator_2, situation=situation, kind=DecisionKind.END, reason="収束"
    )
    assert Situation_status(situation) == SituationStatus.ACTIVE, "ending waits for its approval too"
    services.decision_approve(actor=c.nisc_coordinator, situation=situation)
    assert Situation_status(situation) == SituationStatus.ENDED
    assert not (before & visible(c.police_officer))
    assert not situation.participants.filter(left_at__isnull=True).exists()


def Situation_status(situation):
    situation.refresh_from_db()
    return situation.status


def test_lowering_lets_go_of_those_the_lower_level_does_not_call(crisis):
    c = crisis
    situation = active(c)
    services.decision_request(
        actor=c.nisc_coordinator,
        situation=situation,
        kind=DecisionKind.LOWER,
        level=level("watch"),
        reason="沈静化",
    )
    services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)
    assert not situation.participants.filter(organization=c.bank_ceptoar, left_at__isnull=True).exists()
    assert not (
        visible(c.ceptoar_officer)
        & set(situation.reports.exclude(organization__parent=c.bank_ceptoar).values_list("pk", flat=True))
    )


def test_red_reports_never_reach_the_roster(crisis):
    c = crisis
    storm(c)
    red = submit(c.water_reporter, cause="intentional.malware", tlp=Tlp.RED)
    situation = active(c, nationwide=True)
    assert red in situation.reports.all()
    assert red.pk not in visible(c.ceptoar_officer)


def test_a_grant_the_organization_already_had_is_left_alone(crisis):
    c = crisis
    situation = active(c)
    bank_report = situation.reports.get(organization=c.bank_a)
    assert bank_report.grants.filter(organization=c.bank_ceptoar).count() <= 1
    services.decision_request(
        actor=c.nisc_coordinator, situation=situation, kind=DecisionKind.END, reason="収束"
    )
    services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)
    assert bank_report.pk in visible(c.bank_a_reporter)
    assert bank_report.pk in visible(c.fsa_coordinator), "the mandated chain keeps its own grant"


# --- Spill-over -----------------------------------------------------------------------------------


def test_an_outage_proposes_a_warning_to_the_dependent_sectors_only(crisis):
    c = crisis
    report = submit(
        c.water_reporter,
        cause="accidental.equipment_failure",
        service_state=ServiceState.OUTAGE,
        narrative="しずく水道の浄水場で制御システムが停止",
    )
    proposal = SpilloverProposal.objects.get(report=report)
    assert set(proposal.dependent_sectors.values_list("code", flat=True)) == {
        "medical",
        "chemical",
        "government",
        "electricity",
    }
    assert "しずく水道" not in proposal.body and "浄水場" not in proposal.body, (
        "sanitized: no operator, no narrative"
    )
    services.spillover_send(
        actor=c.nisc_coordinator,
        proposal=proposal,
        title=proposal.title,
        body=proposal.body,
        sectors=proposal.dependent_sectors.all(),
    )
    proposal.refresh_from_db()
    assert proposal.status == SpilloverStatus.SENT
    advisory = proposal.advisory
    assert set(advisory.audience.values_list("sector__code", flat=True)) == {
        "medical",
        "chemical",
        "government",
        "electricity",
    }
    assert Advisory.objects.restrict(c.hospital_reporter).filter(pk=advisory.pk).exists()
    assert not Advisory.objects.restrict(c.bank_a_reporter).filter(pk=advisory.pk).exists()


def test_no_spillover_without_an_outage_or_without_dependents(crisis):
    c = crisis
    submit(c.water_reporter, cause="accidental.equipment_failure", service_state=ServiceState.DEGRADED)
    submit(c.hospital_reporter, cause="accidental.equipment_failure", service_state=ServiceState.OUTAGE)
    assert not SpilloverProposal.objects.exists()


def test_while_a_situation_is_in_force_its_rule_feeds_it_instead_of_proposing_again(crisis):
    c = crisis
    situation = active(c)
    more = [
        submit(c.bank_b_reporter, cause="intentional.dos"),
        submit(c.water_reporter, cause="intentional.dos"),
        submit(c.hospital_reporter, cause="intentional.dos"),
    ]
    assert not Proposal.objects.filter(status=ProposalStatus.OPEN).exists()
    assert set(more) <= set(situation.reports.all())
    assert more[1].pk in visible(c.ceptoar_officer), "the roster sees the new report as it sees the others"
    services.decision_request(
        actor=c.nisc_coordinator, situation=situation, kind=DecisionKind.END, reason="収束"
    )
    services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)
    storm(c)
    assert Proposal.objects.filter(status=ProposalStatus.OPEN).count() == 1, (
        "after the end, the rule proposes again"
    )


# --- What the review found --------------------------------------------------------------------------


def test_forwarding_to_a_participant_makes_the_grant_its_own_beyond_the_end(crisis):
    c = crisis
    situation = active(c)
    hospital_report = situation.reports.get(organization=c.hospital)
    assert hospital_report.pk in visible(c.ceptoar_officer)
    forwarded = sharing_services.report_forward(
        actor=c.nisc_coordinator, report=hospital_report, organizations=[c.bank_ceptoar]
    )
    assert [grant.reason for grant in forwarded] == ["forwarded"]
    end(c, situation)
    assert hospital_report.pk in visible(c.ceptoar_officer), "the forward outlives the situation"


def test_participants_read_the_situation_reports_but_do_not_pass_them_on(crisis):
    c = crisis
    situation = active(c)
    hospital_report = situation.reports.get(organization=c.hospital)
    with pytest.raises(ValidationError) as refused:
        sharing_services.report_forward(
            actor=c.ceptoar_officer, report=hospital_report, organizations=[c.bank_a]
        )
    assert refused.value.code == "not_allowed"


def end(c, situation):
    services.decision_request(
        actor=c.nisc_coordinator, situation=situation, kind=DecisionKind.END, reason="収束"
    )
    services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)


def test_reports_a_situation_took_in_do_not_propose_again_after_it_ends(crisis):
    c = crisis
    situation = active(c)
    for reporter in (c.bank_b_reporter, c.water_reporter, c.hospital_reporter):
        submit(reporter, cause="intentional.dos")
    assert situation.reports.count() == 6, "each related report joined the situation as it came"
    end(c, situation)
    assert services.evaluate_schedule() == 0


def test_a_withdrawn_declaration_gives_the_proposal_back(crisis):
    c = crisis
    situation = declared(c)
    services.decision_withdraw(actor=c.nisc_coordinator_2, situation=situation)
    proposal = Proposal.objects.get()
    assert proposal.status == ProposalStatus.OPEN and proposal.reports.count() == 3
    assert Situation_status(situation) == SituationStatus.ENDED
    again = services.situation_declare(
        actor=c.nisc_coordinator_2,
        data=Declaration(title="再宣言", reason="r", level=level("heightened")),
        proposal=proposal,
    )
    assert again.reports.count() == 3


def test_no_spillover_warning_is_drafted_from_amber_strict_or_red(crisis):
    c = crisis
    for label in (Tlp.RED, Tlp.AMBER_STRICT):
        submit(
            c.water_reporter,
            cause="accidental.equipment_failure",
            service_state=ServiceState.OUTAGE,
            tlp=label,
        )
    assert not SpilloverProposal.objects.exists()


def test_the_room_shows_no_trace_of_reports_the_viewer_may_not_see(crisis):
    c = crisis
    red = submit(c.water_reporter, cause="intentional.malware", tlp=Tlp.RED)
    situation = active(c, nationwide=True)
    assert red in situation.reports.all()
    texts = [item.text for item in selectors.timeline(situation, c.ceptoar_officer)]
    assert red.title not in texts and not any("水道" in text for text in texts if "report" in text)
    tiles = {
        cell["sector"].code: cell["reports"] for cell in selectors.sector_map(situation, c.ceptoar_officer)
    }
    assert tiles["water"] is False, "no dot for a sector whose only report the viewer may not see"


def test_amber_strict_reports_stay_with_their_audience_and_a_stricter_label_takes_a_report_back(crisis):
    c = crisis
    strict = submit(c.water_reporter, cause="intentional.malware", tlp=Tlp.AMBER_STRICT)
    situation = active(c, nationwide=True, level=level("large_scale"))
    assert strict in situation.reports.all()
    assert strict.pk not in visible(c.police_officer), "the roster never opens AMBER+STRICT"
    bank_report = situation.reports.get(organization=c.bank_a)
    assert bank_report.pk in visible(c.police_officer)
    sharing_services.report_relabel(actor=c.bank_a_reporter, report=bank_report, tlp=Tlp.AMBER_STRICT)
    assert bank_report.pk not in visible(c.police_officer)
