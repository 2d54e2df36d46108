import datetime as dt

import pytest
from django.utils import timezone

from renkei.directory.models import Sector
from renkei.sharing.choices import ServiceState
from renkei.sharing.tests.factories import report_for
from renkei.sharing.tests.test_views import signed_in
from renkei.situations.models import (
    AlertLevel,
    LogEntry,
    Proposal,
    RecognitionRule,
    RosterEntry,
    SectorDependency,
    Situation,
    SpilloverProposal,
)
from renkei.situations.tests.test_services import active, storm, submit

pytestmark = pytest.mark.django_db


def browser(user):
    return signed_in(user, language="ja")


def test_declare_approve_and_use_the_room_on_the_web(crisis):
    c = crisis
    storm(c)
    proposal = Proposal.objects.get()
    first, second = browser(c.nisc_coordinator), browser(c.nisc_coordinator_2)
    listed = first.get("/situations/proposals/")
    assert proposal.rule.name_ja in listed.content.decode()

    refused = first.post(f"/situations/proposals/{proposal.pk}/declare/", {"title": "", "reason": ""})
    assert refused.status_code == 400 and not Situation.objects.exists()

    level = AlertLevel.objects.get(code="large_scale")
    declared = first.post(
        f"/situations/proposals/{proposal.pk}/declare/",
        {"title": "同時多発攻撃", "level": level.pk, "reason": "3分野", "nationwide": "on"},
    )
    situation = Situation.objects.get()
    assert declared.status_code == 302 and declared["Location"] == f"/situations/{situation.pk}/"

    own = first.post(f"/situations/{situation.pk}/approve/")
    assert own.status_code == 400
    assert "second person" in own.content.decode() or "別の" in own.content.decode()
    assert second.post(f"/situations/{situation.pk}/approve/").status_code == 302
    situation.refresh_from_db()
    assert situation.status == "active"

    police = browser(c.police_officer)
    room = police.get(f"/situations/{situation.pk}/")
    assert room.status_code == 200
    assert "警察庁" in room.content.decode()
    assert 'hx-trigger="every 10s"' in room.content.decode()
    assert (
        police.post(
            f"/situations/{situation.pk}/log/", {"kind": "question", "text": "被害範囲は？"}
        ).status_code
        == 302
    )
    live = police.get(f"/situations/{situation.pk}/live/")
    assert "被害範囲は？" in live.content.decode()
    assert LogEntry.objects.get().organization == c.police

    outsider = browser(c.bank_b_reporter)
    assert outsider.get(f"/situations/{situation.pk}/").status_code == 404
    assert outsider.get(f"/situations/{situation.pk}/live/").status_code == 404
    assert outsider.get(f"/situations/proposals/{proposal.pk}/").status_code == 404
    assert outsider.post(f"/situations/{situation.pk}/log/", {"kind": "note", "text": "x"}).status_code == 404


def test_a_coordinator_sends_the_spillover_warning(crisis):
    c = crisis
    submit(c.water_reporter, cause="accidental.equipment_failure", service_state=ServiceState.OUTAGE)
    proposal = SpilloverProposal.objects.get()
    page = browser(c.nisc_coordinator).get(f"/situations/spillover/{proposal.pk}/")
    assert page.status_code == 200 and proposal.title in page.content.decode()
    sectors = list(proposal.dependent_sectors.values_list("pk", flat=True))
    sent = browser(c.nisc_coordinator).post(
        f"/situations/spillover/{proposal.pk}/",
        {"title": proposal.title, "body": "確認を", "sectors": sectors},
    )
    assert sent.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == "sent" and proposal.advisory.body == "確認を"
    assert browser(c.water_reporter).get(f"/situations/spillover/{proposal.pk}/").status_code == 404


def test_rules_are_switched_and_tried_on_past_reports_by_the_national_centre(crisis):
    c = crisis
    storm(c)
    coordinator = browser(c.nisc_coordinator)
    page = coordinator.get(f"/situations/rules/?since={timezone.localdate() - dt.timedelta(days=7)}")
    assert page.status_code == 200
    assert 'data-testid="replay"' in page.content.decode()
    outage = RecognitionRule.objects.get(code="outage-100k-users")
    assert coordinator.post(f"/situations/rules/{outage.pk}/switch/", {"active": "on"}).status_code == 302
    outage.refresh_from_db()
    assert outage.active
    coordinator.post(f"/situations/rules/{outage.pk}/switch/")
    outage.refresh_from_db()
    assert not outage.active
    assert coordinator.get("/situations/rules/?since=someday").status_code == 400

    analyst = browser(c.nisc_analyst)
    assert analyst.get("/situations/rules/").status_code == 200
    analyst.post(f"/situations/rules/{outage.pk}/switch/", {"active": "on"})
    outage.refresh_from_db()
    assert not outage.active, "an analyst sees the rules but does not switch them"
    assert (
        browser(c.fsa_coordinator)
        .post(f"/situations/rules/{outage.pk}/switch/", {"active": "on"})
        .status_code
        == 404
    )


def test_a_coordinator_creates_a_rule_switched_off_and_changes_its_thresholds(crisis):
    c = crisis
    coordinator = browser(c.nisc_coordinator)
    level = AlertLevel.objects.get(code="watch")
    missing = coordinator.post(
        "/situations/rules/new/",
        {"code": "dos-2-sectors", "name_ja": "DoS 2分野", "kind": "cause_across_sectors", "level": level.pk},
    )
    assert missing.status_code == 400 and not RecognitionRule.objects.filter(code="dos-2-sectors").exists()
    created = coordinator.post(
        "/situations/rules/new/",
        {
            "code": "dos-2-sectors",
            "name_ja": "DoS 2分野",
            "kind": "cause_across_sectors",
            "level": level.pk,
            "cause_code": "intentional.dos",
            "min_reports": 2,
            "min_sectors": 2,
            "window_hours": 3,
            "min_users": 5,
        },
    )
    assert created.status_code == 302
    rule = RecognitionRule.objects.get(code="dos-2-sectors")
    assert not rule.active, "a new rule is tried before it is switched on"
    assert rule.min_users is None, "thresholds the kind does not read are cleared"
    bad_cause = coordinator.post(
        f"/situations/rules/{rule.pk}/",
        {
            "name_ja": "DoS",
            "kind": "cause_across_sectors",
            "level": level.pk,
            "cause_code": "nonsense",
            "min_reports": 2,
            "min_sectors": 2,
            "window_hours": 3,
        },
    )
    assert bad_cause.status_code == 400
    changed = coordinator.post(
        f"/situations/rules/{rule.pk}/",
        {"code": "renamed", "name_ja": "DoS", "kind": "outage_users", "level": level.pk, "min_users": 1000},
    )
    assert changed.status_code == 302
    rule.refresh_from_db()
    assert (rule.code, rule.kind, rule.min_users, rule.window_hours) == (
        "dos-2-sectors",
        "outage_users",
        1000,
        None,
    )
    assert (
        browser(c.nisc_analyst)
        .post(
            f"/situations/rules/{rule.pk}/",
            {"name_ja": "x", "kind": "outage_users", "level": level.pk, "min_users": 1},
        )
        .status_code
        == 400
    )
    rule.refresh_from_db()
    assert rule.name_ja == "DoS"


def test_the_national_centre_keeps_levels_rosters_and_dependencies(crisis):
    c = crisis
    coordinator = browser(c.nisc_coordinator)
    page = coordinator.get("/situations/setup/")
    assert page.status_code == 200 and "大規模サイバー攻撃事態" in page.content.decode()
    assert browser(c.fsa_coordinator).get("/situations/setup/").status_code == 404

    watch = AlertLevel.objects.get(code="watch")
    assert (
        coordinator.post(
            f"/situations/setup/levels/{watch.pk}/",
            {"rank": 1, "name_ja": "注意", "name_en": "Watch", "colour": "#123456"},
        ).status_code
        == 302
    )
    watch.refresh_from_db()
    assert watch.colour == "#123456" and watch.code == "watch"
    clash = coordinator.post(
        "/situations/setup/levels/", {"code": "extra", "rank": 1, "name_ja": "重複", "colour": "#000000"}
    )
    assert clash.status_code == 400, "two levels cannot share a rank"

    both = coordinator.post(
        "/situations/setup/roster/",
        {"level": watch.pk, "organization_type": "vendor", "organization": c.power.pk, "max_tlp": "GREEN"},
    )
    assert both.status_code == 400
    before = RosterEntry.objects.count()
    assert (
        coordinator.post(
            "/situations/setup/roster/", {"level": watch.pk, "organization": c.power.pk, "max_tlp": "GREEN"}
        ).status_code
        == 302
    )
    entry = RosterEntry.objects.get(organization=c.power)
    assert RosterEntry.objects.count() == before + 1
    assert coordinator.post(f"/situations/setup/roster/{entry.pk}/remove/").status_code == 302
    assert not RosterEntry.objects.filter(pk=entry.pk).exists()

    water, medical = Sector.objects.get(code="water"), Sector.objects.get(code="medical")
    assert (
        coordinator.post(
            "/situations/setup/dependencies/",
            {"dependent": medical.pk, "depended_on": water.pk, "strength": 5, "note": "透析"},
        ).status_code
        == 302
    )
    assert SectorDependency.objects.get(dependent=medical, depended_on=water).strength == 5
    itself = coordinator.post(
        "/situations/setup/dependencies/", {"dependent": water.pk, "depended_on": water.pk, "strength": 2}
    )
    assert itself.status_code == 400
    analyst = browser(c.nisc_analyst)
    analyst.post(
        "/situations/setup/roster/", {"level": watch.pk, "organization": c.power.pk, "max_tlp": "GREEN"}
    )
    assert not RosterEntry.objects.filter(organization=c.power).exists(), "analysts see, coordinators change"


def test_coordinators_add_reports_to_the_room_and_the_after_action_waits_for_the_end(crisis):
    c = crisis
    situation = active(c)
    coordinator = browser(c.nisc_coordinator)
    later = report_for(c.water_reporter, cause="accidental.operation_error")
    assert (
        coordinator.post(f"/situations/{situation.pk}/reports/", {"report": str(later.pk)}).status_code == 302
    )
    assert later in situation.reports.all()
    unknown = coordinator.post(
        f"/situations/{situation.pk}/reports/", {"report": "7f1d0b1e-0000-4000-8000-000000000000"}
    )
    assert unknown.status_code == 400
    assert coordinator.get(f"/situations/{situation.pk}/after-action/").status_code == 404
    assert coordinator.get("/situations/rules/?since=2000-01-01").status_code == 400, "too long for a page"
    assert coordinator.get("/situations/rules/?since=2030-01-01&until=2029-01-01").status_code == 400
