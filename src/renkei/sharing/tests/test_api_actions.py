"""The report actions over the API: linking, reclassifying the cause, relabelling, publishing an
anonymized copy. Who may (404 for those who may not see, 403 for those who see but may not act),
bad input that writes nothing, and Idempotency-Key replays."""

import json
import uuid

import pytest

from renkei.audit.models import AuditRecord
from renkei.core.idempotency import REPLAYED_HEADER
from renkei.core.models import IdempotencyKey
from renkei.core.problems import PROBLEM_CONTENT_TYPE, ProblemType
from renkei.core.services import token_create
from renkei.sharing.models import (
    AnonymizedObservable,
    AnonymizedReport,
    AnonymizedReportAudience,
    CauseCategory,
    CauseClassification,
    Report,
    ReportGrant,
)
from renkei.sharing.tests.factories import report_for

REPORTS = "/api/v1/reports"
COPIES = "/api/v1/anonymized-reports"


def post_json(client, url, body, headers):
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=headers)


def invalid_names(response) -> set[str]:
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"] == ProblemType.VALIDATION
    assert {p["location"] for p in body["invalid_params"]} <= {"body"}
    return {p["name"] for p in body["invalid_params"]}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["status"] == status
    return body


def state() -> dict:
    """Everything these endpoints may write, so a refusal can be shown to have written nothing."""
    return {
        "links": Report.linked.through.objects.count(),
        "classifications": CauseClassification.objects.count(),
        "labels_and_causes": sorted(Report.objects.values_list("pk", "tlp", "cause__code")),
        "grants": ReportGrant.objects.count(),
        "copies": AnonymizedReport.objects.count(),
        "copy_observables": AnonymizedObservable.objects.count(),
        "copy_audience": AnonymizedReportAudience.objects.count(),
        "audit": AuditRecord.objects.count(),
        "keys": IdempotencyKey.objects.count(),
    }


@pytest.fixture
def auth(sharing_community):
    """Bearer headers for every person of the community, made up front: creating a token is
    audited, and the tests count audit records."""
    c = sharing_community
    people = [
        c.nisc_coordinator,
        c.nisc_analyst,
        c.fsa_coordinator,
        c.fsa_analyst,
        c.mhlw_coordinator,
        c.bank_a_reporter,
        c.bank_a_admin,
        c.bank_a_officer,
        c.bank_b_reporter,
        c.hospital_reporter,
    ]
    headers = {}
    for person in people:
        _token, secret = token_create(actor=person, user=person)
        headers[person.username] = {"Authorization": f"Bearer {secret}"}
    return headers


def not_found_body(client, headers, path: str, method: str = "post", body=None) -> bytes:
    """The answer for a report that does not exist, to compare a forbidden one with."""
    url = f"{REPORTS}/{uuid.uuid4()}{path}"
    if method == "delete":
        response = client.delete(url, headers=headers)
    else:
        response = post_json(client, url, body or {}, headers)
    assert_problem(response, 404)
    return response.content


# --- Links ------------------------------------------------------------------------------------------


def test_link_and_unlink_show_on_both_reports(client, sharing_community, auth):
    c = sharing_community
    first = report_for(c.bank_a_reporter)
    second = report_for(c.bank_b_reporter)
    fsa = auth["fsa_coord"]
    before = AuditRecord.objects.count()

    linked = post_json(client, f"{REPORTS}/{first.pk}/links", {"report": str(second.pk)}, fsa)
    assert linked.status_code == 200, linked.content
    assert linked.json() == {"report": str(first.pk), "linked": [str(second.pk)]}
    assert client.get(f"{REPORTS}/{second.pk}", headers=fsa).json()["linked"] == [str(first.pk)]
    assert AuditRecord.objects.count() == before + 1

    # Linking again, from either side, changes nothing.
    again = post_json(client, f"{REPORTS}/{second.pk}/links", {"report": str(first.pk)}, fsa)
    assert again.json() == {"report": str(second.pk), "linked": [str(first.pk)]}
    assert AuditRecord.objects.count() == before + 1

    # bank A's reporter sees the first report but not bank B's: the link is not shown to them.
    assert client.get(f"{REPORTS}/{first.pk}", headers=auth["bank_a_reporter"]).json()["linked"] == []

    unlinked = client.delete(f"{REPORTS}/{second.pk}/links/{first.pk}", headers=fsa)
    assert unlinked.status_code == 200, unlinked.content
    assert unlinked.json() == {"report": str(second.pk), "linked": []}
    assert not first.linked.exists()
    assert AuditRecord.objects.count() == before + 2
    # Removing a link that is not there changes nothing.
    assert client.delete(f"{REPORTS}/{second.pk}/links/{first.pk}", headers=fsa).status_code == 200
    assert AuditRecord.objects.count() == before + 2


def test_only_triage_may_link_and_outsiders_get_the_missing_answer(client, sharing_community, auth):
    c = sharing_community
    first = report_for(c.bank_a_reporter)
    second = report_for(c.bank_a_reporter)
    hospital = report_for(c.hospital_reporter)
    body = {"report": str(second.pk)}
    before = state()

    missing = not_found_body(client, auth["bank_b_reporter"], "/links", body=body)
    hidden = post_json(client, f"{REPORTS}/{first.pk}/links", body, auth["bank_b_reporter"])
    assert (hidden.status_code, hidden.content) == (404, missing)
    # The reporting organization sees both reports but does not triage them.
    refused = post_json(client, f"{REPORTS}/{first.pk}/links", body, auth["bank_a_reporter"])
    assert_problem(refused, 403)
    # The other report must be one the caller may see: one they may not is as unknown as none.
    for other in (hospital.pk, uuid.uuid4()):
        unknown = post_json(client, f"{REPORTS}/{first.pk}/links", {"report": str(other)}, auth["fsa_coord"])
        assert invalid_names(unknown) == {"report"}
    assert state() == before


def test_only_triage_may_unlink(client, sharing_community, auth):
    c = sharing_community
    first = report_for(c.bank_a_reporter)
    second = report_for(c.bank_a_reporter)
    hospital = report_for(c.hospital_reporter)
    assert post_json(
        client, f"{REPORTS}/{first.pk}/links", {"report": str(second.pk)}, auth["nisc_coord"]
    ).json()["linked"] == [str(second.pk)]
    before = state()

    missing = not_found_body(client, auth["bank_b_reporter"], f"/links/{second.pk}", "delete")
    hidden = client.delete(f"{REPORTS}/{first.pk}/links/{second.pk}", headers=auth["bank_b_reporter"])
    assert (hidden.status_code, hidden.content) == (404, missing)
    assert_problem(client.delete(f"{REPORTS}/{first.pk}/links/{hospital.pk}", headers=auth["fsa_coord"]), 404)
    assert_problem(
        client.delete(f"{REPORTS}/{first.pk}/links/{second.pk}", headers=auth["bank_a_reporter"]), 403
    )
    assert state() == before


def test_bad_link_requests_write_nothing(client, sharing_community, auth):
    report = report_for(sharing_community.bank_a_reporter)
    url = f"{REPORTS}/{report.pk}/links"
    fsa = auth["fsa_coord"]
    before = state()
    assert invalid_names(post_json(client, url, {"report": str(report.pk)}, fsa)) == {"report"}
    assert invalid_names(post_json(client, url, {"report": "not-a-uuid"}, fsa)) == {"report"}
    assert invalid_names(post_json(client, url, {}, fsa)) == {"report"}
    broken = client.post(url, data="{", content_type="application/json", headers=fsa)
    assert_problem(broken, 400)
    assert state() == before


# --- Cause classification ---------------------------------------------------------------------------


def test_reclassify_keeps_the_history(client, sharing_community, auth):
    report = report_for(sharing_community.bank_a_reporter)
    before = AuditRecord.objects.count()
    response = post_json(
        client,
        f"{REPORTS}/{report.pk}/classifications",
        {"cause": "intentional.malware", "note": "検体解析でマルウェアを確認"},
        auth["fsa_analyst"],
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["cause"], body["classified_by"], body["note"]) == (
        "intentional.malware",
        "fsa_analyst",
        "検体解析でマルウェアを確認",
    )
    detail = client.get(f"{REPORTS}/{report.pk}", headers=auth["bank_a_reporter"]).json()
    assert detail["cause"] == "intentional.malware"
    assert [(c["cause"], c["classified_by"]) for c in detail["cause_history"]] == [
        ("intentional.intrusion", "bank_a_reporter"),
        ("intentional.malware", "fsa_analyst"),
    ]
    assert AuditRecord.objects.count() == before + 1


def test_only_triage_may_reclassify(client, sharing_community, auth):
    report = report_for(sharing_community.bank_a_reporter)
    url = f"{REPORTS}/{report.pk}/classifications"
    body = {"cause": "intentional.malware"}
    before = state()
    missing = not_found_body(client, auth["hospital_reporter"], "/classifications", body=body)
    for outsider in ("hospital_reporter", "mhlw_coord", "bank_b_reporter"):
        hidden = post_json(client, url, body, auth[outsider])
        assert (hidden.status_code, hidden.content) == (404, missing), outsider
    for bystander in ("bank_a_reporter", "bank_a_officer"):
        assert_problem(post_json(client, url, body, auth[bystander]), 403)
    assert state() == before


def test_bad_causes_write_nothing(client, sharing_community, auth):
    report = report_for(sharing_community.bank_a_reporter)
    CauseCategory.objects.filter(code="environmental.disease").update(active=False)
    url = f"{REPORTS}/{report.pk}/classifications"
    fsa = auth["fsa_coord"]
    before = state()
    assert invalid_names(post_json(client, url, {"cause": "aliens"}, fsa)) == {"cause"}
    assert invalid_names(post_json(client, url, {"cause": "intentional.intrusion"}, fsa)) == {"cause"}
    assert invalid_names(post_json(client, url, {"cause": "environmental.disease"}, fsa)) == {"cause"}
    assert invalid_names(post_json(client, url, {"note": "no cause"}, fsa)) == {"cause"}
    assert invalid_names(post_json(client, url, {"cause": "spillover", "note": "x" * 2001}, fsa)) == {"note"}
    assert state() == before


# --- Relabelling ------------------------------------------------------------------------------------


def test_the_source_relabels(client, sharing_community, auth):
    report = report_for(sharing_community.bank_a_reporter)
    before = AuditRecord.objects.count()
    response = post_json(
        client, f"{REPORTS}/{report.pk}/label", {"tlp": "AMBER+STRICT"}, auth["bank_a_reporter"]
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"report": str(report.pk), "tlp": "AMBER+STRICT", "visible": True}
    report.refresh_from_db()
    assert report.tlp == "AMBER+STRICT"
    assert AuditRecord.objects.count() == before + 1


def test_raising_to_red_names_the_duty_coordinators(client, sharing_community, auth):
    report = report_for(sharing_community.bank_a_reporter)
    url = f"{REPORTS}/{report.pk}"
    response = post_json(client, f"{url}/label", {"tlp": "RED"}, auth["bank_a_admin"])
    assert response.status_code == 200, response.content
    # The organization's administrator relabelled it, but TLP:RED reaches named people only.
    assert response.json() == {"report": str(report.pk), "tlp": "RED", "visible": False}
    assert client.get(url, headers=auth["bank_a_admin"]).status_code == 404
    assert client.get(url, headers=auth["fsa_coord"]).json()["recipients"] == ["fsa_coord", "nisc_coord"]
    assert client.get(url, headers=auth["fsa_analyst"]).status_code == 404
    assert client.get(url, headers=auth["bank_a_reporter"]).status_code == 200


def test_the_national_centre_relabels_with_the_sources_consent(client, sharing_community, auth):
    report = report_for(sharing_community.bank_a_reporter)
    url = f"{REPORTS}/{report.pk}/label"
    before = state()
    without = post_json(client, url, {"tlp": "GREEN"}, auth["nisc_analyst"])
    assert invalid_names(without) == {"source_consent"}
    assert state() == before
    with_consent = post_json(client, url, {"tlp": "GREEN", "source_consent": True}, auth["nisc_analyst"])
    assert with_consent.status_code == 200, with_consent.content
    assert with_consent.json()["tlp"] == "GREEN"
    (record,) = AuditRecord.objects.filter(object_id=str(report.pk), action="update")
    assert record.after["source_consent"] is True


def test_others_may_not_relabel(client, sharing_community, auth):
    report = report_for(sharing_community.bank_a_reporter)
    url = f"{REPORTS}/{report.pk}/label"
    before = state()
    missing = not_found_body(client, auth["bank_b_reporter"], "/label", body={"tlp": "GREEN"})
    hidden = post_json(client, url, {"tlp": "GREEN"}, auth["bank_b_reporter"])
    assert (hidden.status_code, hidden.content) == (404, missing)
    # A ministry sees and triages the report, but the label is the source's.
    for bystander in ("fsa_coord", "fsa_analyst"):
        refused = post_json(client, url, {"tlp": "GREEN", "source_consent": True}, auth[bystander])
        assert_problem(refused, 403)
    assert state() == before


def test_bad_labels_write_nothing(client, sharing_community, auth):
    report = report_for(sharing_community.bank_a_reporter)
    url = f"{REPORTS}/{report.pk}/label"
    source = auth["bank_a_reporter"]
    before = state()
    for label in ("PURPLE", "AMBER STRICT", "amber", ""):
        assert invalid_names(post_json(client, url, {"tlp": label}, source)) == {"tlp"}, label
    assert invalid_names(post_json(client, url, {"tlp": "AMBER"}, source)) == {"tlp"}
    assert invalid_names(post_json(client, url, {}, source)) == {"tlp"}
    assert invalid_names(post_json(client, url, {"tlp": "GREEN", "source_consent": "maybe"}, source)) == {
        "source_consent"
    }
    assert state() == before


# --- Anonymized copies -----------------------------------------------------------------------------


def copy_body(**overrides) -> dict:
    return {
        "title": "金融機関への不正アクセス事案",
        "narrative": "ある事業者のサーバーに不正アクセスの痕跡が確認された。",
        "keep_sector": False,
        "observables": [{"type": "ipv4-addr", "value": "203.0.113.7"}],
        "tlp": "GREEN",
    } | overrides


@pytest.fixture
def consenting(sharing_community):
    return report_for(
        sharing_community.bank_a_reporter,
        anonymized_copy_consent=True,
        observables=[("ipv4-addr", "203.0.113.7"), ("domain-name", "evil.example")],
    )


def test_the_national_centre_publishes_an_anonymized_copy(client, sharing_community, auth, consenting):
    before = AuditRecord.objects.count()
    response = post_json(
        client, f"{REPORTS}/{consenting.pk}/anonymized-copies", copy_body(), auth["nisc_coord"]
    )
    assert response.status_code == 201, response.content
    body = response.json()
    copy = AnonymizedReport.objects.get()
    assert body["id"] == str(copy.pk)
    assert (body["organization"], body["source"], body["sector"]) == (None, str(consenting.pk), None)
    assert (body["kind"], body["cause"], body["tlp"]) == ("failure", "intentional.intrusion", "GREEN")
    assert body["occurred_month"].endswith("-01")
    assert body["observables"] == [{"type": "ipv4-addr", "value": "203.0.113.7"}]
    assert AuditRecord.objects.count() == before + 1
    # By default every CI organization receives it, and nothing in it names the source.
    seen = client.get(f"{COPIES}/{copy.pk}", headers=auth["hospital_reporter"])
    assert seen.status_code == 200
    assert seen.json() == body | {"source": None}
    assert "さくら銀行" not in seen.content.decode()


def test_the_source_publishes_to_a_chosen_audience(client, sharing_community, auth, consenting):
    c = sharing_community
    response = post_json(
        client,
        f"{REPORTS}/{consenting.pk}/anonymized-copies",
        copy_body(
            keep_sector=True,
            observables=[{"type": "domain-name", "value": "EVIL.example"}],
            tlp="AMBER",
            audience={"sectors": ["medical"], "organizations": [c.bank_b.pk]},
        ),
        auth["bank_a_reporter"],
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["sector"], body["tlp"]) == ("finance", "AMBER")
    assert body["observables"] == [{"type": "domain-name", "value": "evil.example"}]
    url = f"{COPIES}/{body['id']}"
    for recipient in ("hospital_reporter", "bank_b_reporter"):
        assert client.get(url, headers=auth[recipient]).status_code == 200, recipient
    # The copy is not addressed to bank A: its creator got it in the answer, but may not read it.
    assert client.get(url, headers=auth["bank_a_reporter"]).status_code == 404
    assert client.get(url, headers=auth["fsa_coord"]).status_code == 404


def test_who_may_publish_an_anonymized_copy(client, sharing_community, auth, consenting):
    url = f"{REPORTS}/{consenting.pk}/anonymized-copies"
    no_consent = report_for(sharing_community.bank_a_reporter)
    before = state()
    missing = not_found_body(client, auth["bank_b_reporter"], "/anonymized-copies", body=copy_body())
    hidden = post_json(client, url, copy_body(), auth["bank_b_reporter"])
    assert (hidden.status_code, hidden.content) == (404, missing)
    # Ministries see the report but do not publish copies of it.
    for bystander in ("fsa_coord", "fsa_analyst"):
        assert_problem(post_json(client, url, copy_body(), auth[bystander]), 403)
    # Without the source's consent nobody may.
    refused = post_json(
        client, f"{REPORTS}/{no_consent.pk}/anonymized-copies", copy_body(), auth["nisc_coord"]
    )
    assert assert_problem(refused, 422)["type"] == ProblemType.VALIDATION
    assert state() == before


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"narrative": "さくら銀行のサーバーに不正アクセス"}, {"narrative"}),
        ({"title": "bank_a_reporter からの報告"}, {"title"}),
        ({"title": ""}, {"title"}),
        ({"title": "x" * 201}, {"title"}),
        ({"narrative": "   "}, {"narrative"}),
        ({"observables": [{"type": "ipv4-addr", "value": "198.51.100.1"}]}, {"observables"}),
        ({"observables": [{"type": "ipv4-addr", "value": "999.1.1.1"}]}, {"observables.0.value"}),
        ({"observables": [{"type": "ip", "value": "203.0.113.7"}]}, {"observables.0.type"}),
        ({"tlp": "PURPLE"}, {"tlp"}),
        (
            {"audience": {"sectors": ["space"], "organizations": [999999], "people": ["nobody"]}},
            {"audience.sectors", "audience.organizations", "audience.people"},
        ),
        ({"audience": {"all_ci": False}}, {"audience"}),
        ({"tlp": "RED", "audience": {"sectors": ["finance"]}}, {"audience.people"}),
        ({"keep_sector": "perhaps"}, {"keep_sector"}),
    ],
)
def test_bad_copies_write_nothing(client, sharing_community, auth, consenting, overrides, names):
    before = state()
    response = post_json(
        client, f"{REPORTS}/{consenting.pk}/anonymized-copies", copy_body(**overrides), auth["nisc_coord"]
    )
    assert invalid_names(response) == names
    assert state() == before


def test_missing_copy_fields_are_named(client, sharing_community, auth, consenting):
    before = state()
    response = post_json(client, f"{REPORTS}/{consenting.pk}/anonymized-copies", {}, auth["nisc_coord"])
    assert invalid_names(response) == {"title", "narrative"}
    assert state() == before


# --- Idempotency-Key -------------------------------------------------------------------------------


def test_every_action_replays_its_first_answer(client, sharing_community, auth, consenting):
    c = sharing_community
    other = report_for(c.bank_a_reporter)
    actions = [
        (f"{REPORTS}/{consenting.pk}/links", {"report": str(other.pk)}, "fsa_coord", 200),
        (f"{REPORTS}/{consenting.pk}/classifications", {"cause": "intentional.dos"}, "fsa_coord", 201),
        (f"{REPORTS}/{consenting.pk}/label", {"tlp": "GREEN"}, "bank_a_reporter", 200),
        (f"{REPORTS}/{consenting.pk}/anonymized-copies", copy_body(), "nisc_coord", 201),
    ]
    for url, body, username, status in actions:
        headers = auth[username] | {"Idempotency-Key": f"action-{url.rsplit('/', 1)[1]}"}
        first = post_json(client, url, body, headers)
        assert first.status_code == status, first.content
        before = state()
        # Run again, reclassifying and relabelling would be refused (same cause, same label).
        again = post_json(client, url, body, headers)
        assert (again.status_code, again.json()) == (status, first.json()), url
        assert again[REPLAYED_HEADER] == "true"
        assert state() == before
    assert AnonymizedReport.objects.count() == 1
    assert consenting.classifications.count() == 2
