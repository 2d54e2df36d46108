"""Situations in a real browser, in Japanese: a storm of intentional-cause reports from three sectors
makes a rule propose a situation; one national-centre coordinator declares it at the large-scale
level, a second one approves it, and the police (a response agency on that level's roster) find the
situation room, see themselves among the participants and read the storm's reports in the timeline."""

import re

import pytest
from playwright.sync_api import expect
from test_sharing import menu_link, sign_in, sign_out

from renkei.directory.models import Organization, User
from renkei.sharing.choices import Tlp
from renkei.sharing.tests.factories import report_for
from renkei.situations import services
from renkei.situations.choices import ProposalStatus, SituationStatus
from renkei.situations.models import AlertLevel, Participant, Proposal, Situation

pytestmark = pytest.mark.browser

FIRST_COORDINATOR = "nco-coordinator"
SECOND_COORDINATOR = "nco-coordinator-2"  # the demo's second duty coordinator
POLICE_OFFICER = "npa-officer"
POLICE = "警察庁"
SITUATION_TITLE = "重要インフラ3分野への同時多発攻撃"
# One operator in each of three sectors: the default rule wants intentional causes from 3 sectors.
STORM = {
    "finance-op1-reporter": "不審な通信の検知（金融）",
    "medical-op1-reporter": "不審な通信の検知（医療）",
    "electricity-op1-reporter": "不審な通信の検知（電力）",
}


def report_storm() -> list:
    """TLP:AMBER reports (which the police may see at the large-scale level), each evaluated by the
    rules as the worker would right after it commits."""
    reports = []
    for username, title in STORM.items():
        report = report_for(
            User.objects.get(username=username), title=title, cause="intentional.malware", tlp=Tlp.AMBER
        )
        services.evaluate_report(str(report.pk))
        reports.append(report)
    return reports


def main_content(visitor):
    return visitor.page.locator("main")


def test_coordinator_declares_second_approves_and_the_police_see_the_room(demo, visitor):
    page = visitor.page
    storm = report_storm()
    proposal = Proposal.objects.get(status=ProposalStatus.OPEN)
    assert {report.pk for report in storm} <= set(proposal.reports.values_list("pk", flat=True))
    large_scale = AlertLevel.objects.get(code="large_scale")
    assert proposal.level.rank < large_scale.rank, "the rule proposes less than the level declared here"

    # 1. The first coordinator finds the proposal and declares a large-scale situation.
    sign_in(visitor, FIRST_COORDINATOR)
    menu_link(visitor, "/situations/").click()
    visitor.checkpoint("situations")
    main_content(visitor).locator('a[href="/situations/proposals/"]').click()
    visitor.checkpoint("proposals")
    main_content(visitor).locator(f'a[href="/situations/proposals/{proposal.pk}/"]').click()
    visitor.checkpoint("proposal")
    for report in storm:
        expect(main_content(visitor).locator(f'a[href="/sharing/reports/{report.pk}/"]')).to_have_text(
            report.title
        )
    declare = page.locator(f'form[action="/situations/proposals/{proposal.pk}/declare/"]')
    declare.locator("[name=title]").fill(SITUATION_TITLE)
    declare.locator("select[name=level]").select_option(str(large_scale.pk))
    declare.locator("[name=reason]").fill("6時間以内に3分野から意図的要因の報告。全国的な対応が必要。")
    declare.locator("button[type=submit]").click()
    visitor.checkpoint("declared")
    situation = Situation.objects.get()
    expect(page).to_have_url(re.compile(rf"/situations/{situation.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(SITUATION_TITLE)
    assert situation.status == SituationStatus.PENDING_APPROVAL
    pending_text = page.locator("#situation-status").inner_text()
    # Nothing is in force yet: the roster joins only once a second coordinator approves.
    assert not Participant.objects.filter(situation=situation).exists()
    sign_out(visitor)

    # 2. A second coordinator opens the situation and approves: it is in force.
    sign_in(visitor, SECOND_COORDINATOR)
    menu_link(visitor, "/situations/").click()
    visitor.checkpoint("situations-second-coordinator")
    main_content(visitor).locator(f'a[href="/situations/{situation.pk}/"]').click()
    visitor.checkpoint("pending-situation")
    expect(page.locator("#situation-status")).to_have_text(pending_text)
    page.locator(f'form[action="/situations/{situation.pk}/approve/"] button[type=submit]').click()
    visitor.checkpoint("approved")
    expect(page).to_have_url(re.compile(rf"/situations/{situation.pk}/$"))
    expect(page.locator("#situation-status")).not_to_have_text(pending_text)
    expect(page.locator(f'form[action="/situations/{situation.pk}/approve/"]')).to_have_count(0)
    situation.refresh_from_db()
    assert situation.status == SituationStatus.ACTIVE
    assert situation.level == large_scale
    police = Organization.objects.get(name_ja=POLICE)
    assert Participant.objects.filter(situation=situation, organization=police, left_at=None).exists()
    sign_out(visitor)

    # 3. The police, on the large-scale roster, find the situation and read the storm in its room.
    sign_in(visitor, POLICE_OFFICER)
    menu_link(visitor, "/situations/").click()
    visitor.checkpoint("situations-police")
    # The proposals are the national centre's working material, not the police's.
    expect(main_content(visitor).locator('a[href="/situations/proposals/"]')).to_have_count(0)
    main_content(visitor).locator(f'a[href="/situations/{situation.pk}/"]').click()
    visitor.checkpoint("room-police")
    expect(page.get_by_role("heading", level=1)).to_have_text(SITUATION_TITLE)
    participants = page.locator("section[aria-labelledby=participants-heading] table")
    expect(participants.get_by_role("cell", name=POLICE, exact=True)).to_be_visible()
    timeline = page.locator("section[aria-labelledby=timeline-heading] ol.timeline")
    for report in storm:
        expect(timeline.locator(f'a[href="/sharing/reports/{report.pk}/"]')).to_have_text(report.title)
    # Only coordinators decide: the police have neither the approval nor the decision form.
    expect(page.locator(f'form[action="/situations/{situation.pk}/decide/"]')).to_have_count(0)
    timeline.locator(f'a[href="/sharing/reports/{storm[0].pk}/"]').click()
    visitor.checkpoint("report-through-situation")
    expect(page.get_by_role("heading", level=1)).to_have_text(storm[0].title)
