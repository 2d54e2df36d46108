"""The whole path through the task worker and a real SMTP server: reports are evaluated after they
commit, a proposal reaches the national centre's coordinators, and joining reaches the roster."""

import pytest
from django_tasks_db.models import DBTaskResult

from renkei.sharing.choices import ServiceState
from renkei.sharing.services import report_reclassify
from renkei.sharing.tests.delivery_support import failed_tasks
from renkei.sharing.tests.factories import cause, report_for
from renkei.sharing.tests.test_delivery import subject_of
from renkei.situations import services
from renkei.situations.models import Proposal, Situation, SpilloverProposal
from renkei.situations.services import Declaration

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_storm_reaches_the_duty_team_and_the_declaration_reaches_the_roster(crisis, inbox, run_worker):
    c = crisis
    for reporter in (c.bank_a_reporter, c.hospital_reporter, c.power_reporter):
        report_for(reporter, cause="intentional.malware")
    run_worker()
    assert failed_tasks() == []
    proposal = Proposal.objects.get()
    assert proposal.reports.count() == 3, "the worker evaluated each report after it committed"

    def proposal_mail():
        return {
            recipient
            for delivery in inbox.deliveries
            if "事態の提案" in subject_of(delivery.message)
            for recipient in delivery.recipients
        }

    inbox.wait_for(1)
    run_worker()
    assert proposal_mail() == {c.nisc_coordinator.email, c.nisc_coordinator_2.email}

    situation = services.situation_declare(
        actor=c.nisc_coordinator,
        data=Declaration(title="同時多発攻撃", reason="3分野", level=proposal.level),
        proposal=proposal,
    )
    services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)
    before = len(inbox.deliveries)
    run_worker()
    assert failed_tasks() == []
    notices = [
        delivery
        for delivery in inbox.wait_for(before + 1)[before:]
        if "同時多発攻撃" in subject_of(delivery.message)
    ]
    told = {recipient for delivery in notices for recipient in delivery.recipients}
    assert c.ceptoar_officer.email in told, "the finance CEPTOAR joins at 警戒 and is told"
    assert c.bank_b_reporter.email not in told
    notice = Situation.objects.get().participants.get(organization=c.bank_ceptoar).notice
    assert notice.ack_required


def test_each_report_event_queues_one_follow_up_that_the_rules_see(crisis, run_worker):
    c = crisis
    report_for(c.bank_a_reporter, cause="intentional.malware")
    report_for(c.hospital_reporter, cause="intentional.malware")
    unclassified = report_for(c.power_reporter, cause="unknown")
    follow_ups = DBTaskResult.objects.filter(task_path="renkei.sharing.tasks.report_follow_up")
    assert follow_ups.count() == 3, "one task per submission, for the e-mail and the rules alike"
    assert DBTaskResult.objects.count() == 3
    run_worker()
    assert not Proposal.objects.exists(), "two sectors are not yet a storm"

    report_reclassify(actor=c.nisc_coordinator, report=unclassified, cause=cause("intentional.malware"))
    assert follow_ups.count() == 4
    run_worker()
    assert failed_tasks() == []
    assert Proposal.objects.get().reports.count() == 3, "the worker looked again at the reclassified report"


def test_a_spillover_draft_reaches_the_duty_team(crisis, inbox, run_worker):
    c = crisis
    report_for(c.water_reporter, cause="accidental.equipment_failure", service_state=ServiceState.OUTAGE)
    run_worker()
    assert failed_tasks() == []
    run_worker()  # the mail task the evaluation queued
    inbox.wait_for(1)
    told = {
        recipient
        for delivery in inbox.deliveries
        if "波及のおそれ" in subject_of(delivery.message)
        for recipient in delivery.recipients
    }
    assert told == {c.nisc_coordinator.email, c.nisc_coordinator_2.email}
    [delivery] = [
        d
        for d in inbox.deliveries
        if c.nisc_coordinator.email in d.recipients and "波及" in subject_of(d.message)
    ]
    assert "しずく水道" not in delivery.message.get_body().get_content()
    assert (
        f"/situations/spillover/{SpilloverProposal.objects.get().pk}/"
        in delivery.message.get_body().get_content()
    )
