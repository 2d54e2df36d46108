import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from renkei.sharing.tests.factories import bearer
from renkei.situations import services
from renkei.situations.models import Proposal, Situation
from renkei.situations.services import Declaration, situation_declare
from renkei.situations.tests.test_services import level, storm

pytestmark = pytest.mark.django_db


def post(user, path, body=None):
    return Client().post(
        f"/api/v1{path}", json.dumps(body or {}), content_type="application/json", headers=bearer(user)
    )


def get(user, path):
    return Client().get(f"/api/v1{path}", headers=bearer(user))


def test_declare_then_approve_by_a_second_coordinator_then_end(crisis):
    c = crisis
    reports = storm(c)
    proposals = get(c.nisc_coordinator, "/situations/proposals")
    assert proposals.status_code == 200
    [proposal] = proposals.json()
    assert proposal["rule"] == "intentional-3-sectors-6h" and proposal["level"] == "heightened"
    assert sorted(proposal["report_ids"]) == sorted(str(r.pk) for r in reports)

    declared = post(
        c.nisc_coordinator,
        f"/situations/proposals/{proposal['id']}/declare",
        {"title": "同時多発攻撃", "reason": "3分野で同種のマルウェア", "level": "large_scale"},
    )
    assert declared.status_code == 201, declared.json()
    situation = declared.json()
    assert situation["status"] == "pending_approval" and situation["level"] == "large_scale"
    assert sorted(situation["sectors"]) == ["electricity", "finance", "medical"]

    same = post(c.nisc_coordinator, f"/situations/{situation['id']}/approve")
    assert same.status_code == 403
    assert same["Content-Type"] == "application/problem+json"

    approved = post(c.nisc_coordinator_2, f"/situations/{situation['id']}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    assert any(p["name"] == "警察庁" for p in approved.json()["participants"])

    as_police = get(c.police_officer, f"/situations/{situation['id']}")
    assert as_police.status_code == 200
    assert set(as_police.json()["report_ids"]) == {str(r.pk) for r in reports}

    asked = post(c.nisc_coordinator_2, f"/situations/{situation['id']}/end", {"reason": "収束"})
    assert asked.status_code == 200 and asked.json()["status"] == "active"
    assert asked.json()["pending_decision"]["kind"] == "end"
    ended = post(c.nisc_coordinator, f"/situations/{situation['id']}/approve")
    assert ended.json()["status"] == "ended"
    assert get(c.police_officer, f"/situations/{situation['id']}").status_code == 404


def test_others_see_no_proposals_and_cannot_declare(crisis):
    c = crisis
    storm(c)
    proposal = Proposal.objects.get()
    assert get(c.fsa_coordinator, "/situations/proposals").json() == []
    refused = post(
        c.fsa_coordinator, f"/situations/proposals/{proposal.pk}/declare", {"title": "x", "reason": "y"}
    )
    assert refused.status_code == 404, "a proposal outside one's sight is missing"
    analyst = post(
        c.nisc_analyst, f"/situations/proposals/{proposal.pk}/declare", {"title": "x", "reason": "y"}
    )
    assert analyst.status_code == 403
    assert not Situation.objects.exists()


def test_bad_input_is_a_problem_and_writes_nothing(crisis):
    c = crisis
    storm(c)
    proposal = Proposal.objects.get()
    unknown = post(
        c.nisc_coordinator,
        f"/situations/proposals/{proposal.pk}/declare",
        {"title": "x", "reason": "y", "level": "apocalypse"},
    )
    assert unknown.status_code == 422
    assert unknown.json()["invalid_params"][0]["name"] == "level"
    empty = post(
        c.nisc_coordinator, f"/situations/proposals/{proposal.pk}/declare", {"title": "x", "reason": ""}
    )
    assert empty.status_code == 422
    assert not Situation.objects.exists()
    assert Proposal.objects.get().status == "open"


def test_raising_and_lowering_through_the_api(crisis):
    c = crisis
    storm(c)
    proposal = Proposal.objects.get()
    situation = post(
        c.nisc_coordinator, f"/situations/proposals/{proposal.pk}/declare", {"title": "t", "reason": "r"}
    ).json()
    post(c.nisc_coordinator_2, f"/situations/{situation['id']}/approve")
    same_level = post(
        c.nisc_coordinator, f"/situations/{situation['id']}/level", {"level": "heightened", "reason": "r"}
    )
    assert same_level.status_code == 422
    raised = post(
        c.nisc_coordinator, f"/situations/{situation['id']}/level", {"level": "large_scale", "reason": "r"}
    )
    assert raised.json()["pending_decision"] == {"kind": "raise", "level": "large_scale", "reason": "r"}
    assert (
        post(c.nisc_coordinator_2, f"/situations/{situation['id']}/approve").json()["level"] == "large_scale"
    )


def test_rules_test_replays_the_past_without_proposing(crisis):
    c = crisis
    storm(c)
    Proposal.objects.all().delete()
    out = io.StringIO()
    call_command("situations", "rules", "test", "--since", "2020-01-01", "--json", stdout=out)
    [firing] = json.loads(out.getvalue())
    assert firing["rule"] == "intentional-3-sectors-6h" and len(firing["report_ids"]) == 3
    assert not Proposal.objects.exists(), "a replay proposes nothing"
    table = io.StringIO()
    call_command("situations", "rules", "test", "--since", "2020-01-01", stdout=table)
    assert "intentional-3-sectors-6h" in table.getvalue()
    with pytest.raises(CommandError):
        call_command("situations", "rules", "test", "--since", "last year", stdout=io.StringIO())


def test_the_list_costs_the_same_few_queries_for_one_situation_or_many(crisis):
    c = crisis
    reports = storm(c)

    def declare(number):
        situation = situation_declare(
            actor=c.nisc_coordinator,
            data=Declaration(title=f"事態 {number}", reason="r", level=level("large_scale")),
        )
        for report in reports:
            services.situation_add_report(actor=c.nisc_coordinator, situation=situation, report=report)
        services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)

    def queries_for_list():
        client_headers = bearer(c.police_officer)
        with CaptureQueriesContext(connection) as captured:
            answer = Client().get("/api/v1/situations", headers=client_headers)
        return len(captured), answer.json()

    declare(1)
    one, listed = queries_for_list()
    assert len(listed) == 1 and len(listed[0]["report_ids"]) == 3
    declare(2)
    declare(3)
    many, listed = queries_for_list()
    assert len(listed) == 3
    assert many == one


def test_unknown_sectors_are_refused_not_dropped(crisis):
    c = crisis
    storm(c)
    proposal = Proposal.objects.get()
    refused = post(
        c.nisc_coordinator,
        f"/situations/proposals/{proposal.pk}/declare",
        {"title": "t", "reason": "r", "sectors": ["finance", "atlantis"]},
    )
    assert refused.status_code == 422
    assert "atlantis" in refused.json()["invalid_params"][0]["reason"]
    assert not Situation.objects.exists()
