"""Information sharing over the API: reports, advisories, the inbox, anonymized copies; who sees
what; bad input; Idempotency-Key; query counts."""

import datetime as dt
import json
import threading
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone

from renkei.core.idempotency import KEY_LIFETIME, KEY_REUSED, REPLAYED_HEADER
from renkei.core.models import IdempotencyKey
from renkei.core.problems import PROBLEM_CONTENT_TYPE, ProblemType
from renkei.directory.choices import Role
from renkei.directory.tests.factories import member
from renkei.sharing import delivery, services
from renkei.sharing.models import (
    Acknowledgement,
    Advisory,
    Attachment,
    Blob,
    Observable,
    Report,
    ReportComment,
    ReportGrant,
    ReportVersion,
)
from renkei.sharing.tests.factories import (
    advisory_for,
    anonymized_copy_for,
    bearer,
    cause,
    report_for,
    report_input,
)

REPORTS = "/api/v1/reports"
ADVISORIES = "/api/v1/advisories"


def report_body(**overrides) -> dict:
    detected = timezone.now() - dt.timedelta(hours=1)
    return {
        "title": "不正アクセスの疑い",
        "sector": "finance",
        "kind": "failure",
        "occurred_at": (detected - dt.timedelta(hours=2)).isoformat(),
        "detected_at": detected.isoformat(),
        "cause": "intentional.intrusion",
        "tlp": "AMBER",
        "narrative": "インターネットバンキングのサーバーに不正アクセスの痕跡を確認した。",
        "observables": [{"type": "ipv4-addr", "value": "203.0.113.7"}],
    } | overrides


def post_json(client, url, body, headers, **extra):
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=headers, **extra)


def invalid_names(response, location="body") -> set[str]:
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    params = response.json()["invalid_params"]
    assert {p["location"] for p in params} == {location}
    return {p["name"] for p in params}


def row_counts() -> dict[str, int]:
    models = (Report, ReportVersion, ReportGrant, Observable, Attachment, ReportComment, IdempotencyKey)
    return {model.__name__: model.objects.count() for model in models}


@pytest.fixture
def small_attachments(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.RENKEI_ATTACHMENT_MAX_BYTES = 1024


# --- Submitting -----------------------------------------------------------------------------------


def test_submit_answers_201_with_the_report(client, community, headers):
    response = post_json(client, REPORTS, report_body(), headers(community.bank_a_reporter))
    assert response.status_code == 201, response.content
    body = response.json()
    report = Report.objects.get(pk=body["id"])
    assert body["organization"]["id"] == community.bank_a.pk
    assert body["reporter"] == "bank_a_reporter"
    assert (body["status"], body["stage"], body["tlp"], body["sector"]) == (
        "open",
        "initial",
        "AMBER",
        "finance",
    )
    assert body["cause"] == "intentional.intrusion"
    assert body["deadline_profile"] == report.deadline_profile.code
    assert "versions" not in body  # the summary; the detail is one GET away
    detail = client.get(f"{REPORTS}/{report.pk}", headers=headers(community.bank_a_reporter)).json()
    assert detail["observables"] == [{"type": "ipv4-addr", "value": "203.0.113.7"}]
    assert [v["number"] for v in detail["versions"]] == [1]
    assert [d["stage"] for d in detail["deadlines"]] == [
        s.code for s in report.deadline_profile.stages.all() if not s.condition
    ]
    audience = set(
        report.grants.filter(organization__isnull=False).values_list("organization__name_ja", flat=True)
    )
    assert audience == {"さくら銀行", "金融庁", community.nisc.name_ja}


def test_submit_takes_times_without_zone_as_japan_time(client, community, headers):
    body = report_body(detected_at="2026-04-01T09:00:00", occurred_at=None)
    response = post_json(client, REPORTS, body, headers(community.bank_a_reporter))
    assert response.status_code == 201, response.content
    assert Report.objects.get().detected_at == dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC)


def test_script_in_the_narrative_round_trips_unchanged_as_json(client, community, headers):
    script = '<script>alert("x")</script><img src=x onerror=alert(1)> & 不正'
    created = post_json(
        client, REPORTS, report_body(narrative=script, title="<b>t</b>"), headers(community.bank_a_reporter)
    )
    assert created.status_code == 201
    read = client.get(f"{REPORTS}/{created.json()['id']}", headers=headers(community.fsa_coordinator))
    assert read["Content-Type"] == "application/json; charset=utf-8"
    assert read.json()["narrative"] == script
    assert read.json()["title"] == "<b>t</b>"
    assert Report.objects.get().narrative == script
    # JSON strings, never markup: the raw text is only inside a JSON string literal.
    assert b"<html" not in read.content.lower()


def test_submit_with_attachments_as_multipart(client, community, headers, small_attachments):
    upload = SimpleUploadedFile("ログ.html", b"<script>alert(1)</script>", content_type="text/html")
    response = client.post(
        REPORTS,
        data={"report": json.dumps(report_body()), "attachments": [upload]},
        headers=headers(community.bank_a_reporter),
    )
    assert response.status_code == 201, response.content
    detail = client.get(f"{REPORTS}/{response.json()['id']}", headers=headers(community.bank_a_reporter))
    (attachment,) = detail.json()["attachments"]
    assert attachment["filename"] == "ログ.html"
    assert attachment["size"] == 25
    assert attachment["version"] == 1
    download = client.get(attachment["download_url"], headers=headers(community.fsa_coordinator))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert b"".join(download.streaming_content) == b"<script>alert(1)</script>"


def test_attachments_download_only_for_those_who_see_the_report(
    client, community, headers, small_attachments
):
    upload = SimpleUploadedFile("log.txt", b"secret log")
    created = client.post(
        REPORTS,
        data={"report": json.dumps(report_body(tlp="AMBER+STRICT")), "attachments": [upload]},
        headers=headers(community.bank_a_reporter),
    ).json()
    detail = client.get(f"{REPORTS}/{created['id']}", headers=headers(community.bank_a_reporter)).json()
    url = detail["attachments"][0]["download_url"]
    missing = client.get(
        f"{REPORTS}/{created['id']}/attachments/{uuid.uuid4()}", headers=headers(community.fsa_coordinator)
    )
    for outsider in (community.bank_b_reporter, community.mhlw_coordinator, community.ceptoar_officer):
        response = client.get(url, headers=headers(outsider))
        assert response.status_code == 404
        assert response.content == missing.content


# --- Reading, and who may ---------------------------------------------------------------------------


def test_amber_strict_report_reaches_exactly_the_mandated_chain(client, community, headers):
    created = post_json(client, REPORTS, report_body(tlp="AMBER+STRICT"), headers(community.bank_a_reporter))
    url = f"{REPORTS}/{created.json()['id']}"
    for insider in (community.bank_a_admin, community.fsa_coordinator, community.nisc_coordinator):
        assert client.get(url, headers=headers(insider)).status_code == 200
        assert client.get(REPORTS, headers=headers(insider)).json()["count"] == 1
    missing = client.get(f"{REPORTS}/{uuid.uuid4()}", headers=headers(community.bank_b_reporter))
    for outsider in (community.bank_b_reporter, community.mhlw_coordinator, community.ceptoar_officer):
        response = client.get(url, headers=headers(outsider))
        assert (response.status_code, response.content) == (404, missing.content)
        assert client.get(REPORTS, headers=headers(outsider)).json()["count"] == 0


def test_ceptoar_sees_the_report_only_when_chosen(client, community, headers):
    created = post_json(
        client, REPORTS, report_body(share_with_ceptoar=True), headers(community.bank_a_reporter)
    )
    assert (
        client.get(
            f"{REPORTS}/{created.json()['id']}", headers=headers(community.ceptoar_officer)
        ).status_code
        == 200
    )


def test_red_report_reaches_named_people_only(client, community, headers):
    fsa_colleague = member(community.fsa, Role.COORDINATOR, "fsa_other")
    created = post_json(
        client, REPORTS, report_body(tlp="RED", recipients=["fsa_coord"]), headers(community.bank_a_reporter)
    )
    assert created.status_code == 201, created.content
    url = f"{REPORTS}/{created.json()['id']}"
    assert client.get(url, headers=headers(community.bank_a_reporter)).json()["recipients"] == ["fsa_coord"]
    assert client.get(url, headers=headers(community.fsa_coordinator)).status_code == 200
    for outsider in (fsa_colleague, community.nisc_coordinator, community.bank_a_admin):
        assert client.get(url, headers=headers(outsider)).status_code == 404


def test_every_user_sees_over_the_api_exactly_what_the_access_rules_allow(client, community, headers):
    reporter = community.bank_a_reporter
    reports = [
        report_for(reporter, tlp="GREEN"),
        report_for(reporter, tlp="AMBER", share_with_ceptoar=True),
        report_for(reporter, tlp="AMBER+STRICT"),
        report_for(reporter, tlp="RED", recipients=[community.nisc_coordinator]),
        report_for(community.hospital_reporter, tlp="AMBER"),
    ]
    advisories = [
        advisory_for(community.nisc_coordinator, sectors=[community.finance]),
        advisory_for(community.mhlw_coordinator, sectors=[community.medical]),
        advisory_for(community.nisc_coordinator, tlp="RED", people=[community.bank_b_reporter]),
    ]
    users = [
        community.nisc_coordinator,
        community.fsa_coordinator,
        community.mhlw_coordinator,
        community.ceptoar_officer,
        community.bank_a_reporter,
        community.bank_a_admin,
        community.bank_b_reporter,
        community.hospital_reporter,
    ]
    for user in users:
        auth = headers(user)
        for model, url, objects in ((Report, REPORTS, reports), (Advisory, ADVISORIES, advisories)):
            allowed = {str(pk) for pk in model.objects.restrict(user).values_list("pk", flat=True)}
            listed = {item["id"] for item in client.get(url, headers=auth).json()["items"]}
            assert listed == allowed, (user.username, url)
            for obj in objects:
                status = client.get(f"{url}/{obj.pk}", headers=auth).status_code
                assert status == (200 if str(obj.pk) in allowed else 404), (user.username, url, obj.tlp)


def test_list_filters_search_and_paginates(client, community, headers):
    reporter = community.bank_a_reporter
    report_for(
        reporter,
        title="停電による障害",
        narrative="データセンターの停電",
        cause=cause("environmental.disaster"),
    )
    report_for(reporter, title="マルウェア感染", cause=cause("intentional.malware"), tlp="GREEN")
    report_for(reporter, title="設定ミス", narrative="操作ミス", cause=cause("accidental.operation_error"))
    auth = headers(community.fsa_coordinator)

    def titles(query: str) -> set[str]:
        response = client.get(f"{REPORTS}?{query}", headers=auth)
        assert response.status_code == 200, response.content
        return {item["title"] for item in response.json()["items"]}

    assert titles("q=停電") == {"停電による障害"}
    assert titles("q=不正アクセス") == {"マルウェア感染"}
    assert titles("cause=intentional") == {"マルウェア感染"}
    assert titles("tlp=GREEN") == {"マルウェア感染"}
    assert titles("sector=finance&status=open") == {"停電による障害", "マルウェア感染", "設定ミス"}
    assert titles("since=2000-01-01&until=2000-01-02") == set()
    page = client.get(f"{REPORTS}?limit=2", headers=auth).json()
    assert (page["count"], len(page["items"])) == (3, 2)
    assert "offset=2" in page["next"]


def test_unknown_filter_codes_are_422_about_the_query(client, community, headers):
    auth = headers(community.fsa_coordinator)
    assert invalid_names(client.get(f"{REPORTS}?sector=space", headers=auth), "query") == {"sector"}
    assert invalid_names(client.get(f"{REPORTS}?cause=aliens", headers=auth), "query") == {"cause"}
    assert invalid_names(client.get(f"{REPORTS}?tlp=PURPLE", headers=auth), "query") == {"tlp"}
    assert invalid_names(client.get(f"{REPORTS}?since=yesterday", headers=auth), "query") == {"since"}


def test_report_list_has_no_n_plus_one(client, community, headers, django_assert_max_num_queries):
    auth = headers(community.nisc_coordinator)
    client.get(REPORTS, headers=auth)  # the token's first use records itself
    for index in range(12):
        report_for(community.bank_a_reporter if index % 2 else community.hospital_reporter)
    with django_assert_max_num_queries(8):
        response = client.get(REPORTS, headers=auth)
    assert response.json()["count"] == 12


def test_report_detail_has_a_bounded_number_of_queries(
    client, community, headers, django_assert_max_num_queries
):
    report = report_for(community.bank_a_reporter, observables=[("ipv4-addr", "198.51.100.1")])
    for number in range(2, 5):
        services.report_update(
            author=community.bank_a_reporter,
            report=report,
            data=report_input(community.bank_a, observables=[("ipv4-addr", f"198.51.100.{number}")]),
        )
        services.report_comment(author=community.fsa_coordinator, report=report, body=f"コメント {number}")
    auth = headers(community.fsa_coordinator)
    client.get(REPORTS, headers=auth)
    # The same number of queries whatever the number of versions, observables and comments.
    with django_assert_max_num_queries(13):
        body = client.get(f"{REPORTS}/{report.pk}", headers=auth).json()
    assert (len(body["versions"]), len(body["observables"]), len(body["comments"])) == (4, 4, 3)


# --- Updates, comments, forwarding -------------------------------------------------------------------


def test_update_keeps_what_is_left_out_and_adds_observables(client, community, headers):
    report = report_for(community.bank_a_reporter, observables=[("domain-name", "evil.example")])
    response = post_json(
        client,
        f"{REPORTS}/{report.pk}/updates",
        {"status": "investigating", "observables": [{"type": "ipv4-addr", "value": "203.0.113.9"}]},
        headers(community.bank_a_reporter),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["stage"], body["version_count"]) == ("investigating", "update", 2)
    assert body["title"] == report.title and body["narrative"] == report.narrative
    assert body["observables"] == [
        {"type": "domain-name", "value": "evil.example"},
        {"type": "ipv4-addr", "value": "203.0.113.9"},
    ]
    final = post_json(
        client, f"{REPORTS}/{report.pk}/updates", {"stage": "final"}, headers(community.bank_a_reporter)
    )
    assert (final.json()["stage"], final.json()["version_count"]) == ("final", 3)


def test_update_with_attachments_as_multipart(client, community, headers, small_attachments):
    report = report_for(community.bank_a_reporter)
    response = client.post(
        f"{REPORTS}/{report.pk}/updates",
        data={
            "update": json.dumps({"narrative": "ログを添付します。"}),
            "attachments": [SimpleUploadedFile("a.log", b"line 1"), SimpleUploadedFile("b.log", b"line 2")],
        },
        headers=headers(community.bank_a_reporter),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert sorted((a["filename"], a["version"]) for a in body["attachments"]) == [("a.log", 2), ("b.log", 2)]
    assert body["narrative"] == "ログを添付します。"


def test_only_the_reporting_organization_updates(client, community, headers):
    report = report_for(community.bank_a_reporter)
    url = f"{REPORTS}/{report.pk}/updates"
    assert post_json(client, url, {"status": "closed"}, headers(community.fsa_coordinator)).status_code == 403
    assert post_json(client, url, {"status": "closed"}, headers(community.bank_b_reporter)).status_code == 404
    assert ReportVersion.objects.filter(report=report).count() == 1


def test_question_and_answer(client, community, headers):
    report = report_for(community.bank_a_reporter)
    url = f"{REPORTS}/{report.pk}/comments"
    question = post_json(
        client, url, {"kind": "question", "body": "影響範囲は？"}, headers(community.fsa_coordinator)
    )
    assert question.status_code == 201, question.content
    assert question.json()["organization"]["id"] == community.fsa.pk
    answer = post_json(
        client,
        url,
        {"kind": "answer", "body": "約1万人です。", "parent": question.json()["id"]},
        headers(community.bank_a_reporter),
    )
    assert answer.status_code == 201, answer.content
    comments = client.get(f"{REPORTS}/{report.pk}", headers=headers(community.nisc_coordinator)).json()[
        "comments"
    ]
    assert [(c["kind"], c["parent"]) for c in comments] == [
        ("question", None),
        ("answer", question.json()["id"]),
    ]
    # The reporter cannot ask; an outsider gets the same 404 as for a missing report.
    assert (
        post_json(
            client, url, {"kind": "question", "body": "?"}, headers(community.bank_a_reporter)
        ).status_code
        == 403
    )
    assert post_json(client, url, {"body": "hi"}, headers(community.bank_b_reporter)).status_code == 404
    assert invalid_names(
        post_json(
            client, url, {"kind": "answer", "body": "x", "parent": 999999}, headers(community.bank_a_reporter)
        )
    ) == {"parent"}


def test_forward_within_the_ceiling(client, community, headers):
    report = report_for(community.bank_a_reporter)
    url = f"{REPORTS}/{report.pk}/forward"
    response = post_json(
        client, url, {"organizations": [community.bank_b.pk]}, headers(community.fsa_coordinator)
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "organizations": [
            {"id": community.bank_b.pk, "name_ja": "もみじ銀行", "name_en": "Momiji Bank", "type": "operator"}
        ],
        "people": [],
    }
    assert client.get(f"{REPORTS}/{report.pk}", headers=headers(community.bank_b_reporter)).status_code == 200
    beyond = post_json(
        client, url, {"organizations": [community.hospital.pk]}, headers(community.fsa_coordinator)
    )
    assert invalid_names(beyond) == {"organizations"}


# --- Bad input ----------------------------------------------------------------------------------------


def test_malformed_observables_and_unknown_codes_name_their_fields(client, community, headers):
    before = row_counts()
    body = report_body(
        sector="space",
        cause="aliens",
        observables=[
            {"type": "ipv4-addr", "value": "203.0.113.7"},
            {"type": "ipv4-addr", "value": "999.1.1.1"},
            {"type": "file:hashes.SHA-256", "value": "abc"},
        ],
        recipients=["nobody"],
    )
    response = post_json(client, REPORTS, body, headers(community.bank_a_reporter))
    assert invalid_names(response) == {
        "sector",
        "cause",
        "observables.1.value",
        "observables.2.value",
        "recipients",
    }
    bad_type = post_json(
        client,
        REPORTS,
        report_body(observables=[{"type": "ip", "value": "1.2.3.4"}]),
        headers(community.bank_a_reporter),
    )
    assert invalid_names(bad_type) == {"observables.0.type"}
    bad_labels = post_json(
        client, REPORTS, report_body(tlp="AMBER STRICT", kind="outage"), headers(community.bank_a_reporter)
    )
    assert invalid_names(bad_labels) == {"tlp", "kind"}
    assert row_counts() == before


def test_service_refusals_write_nothing(client, community, headers):
    before = row_counts()
    future = (timezone.now() + dt.timedelta(days=2)).isoformat()
    response = post_json(client, REPORTS, report_body(detected_at=future), headers(community.bank_a_reporter))
    assert invalid_names(response) == {"detected_at"}
    not_a_reporter = post_json(client, REPORTS, report_body(), headers(community.fsa_coordinator))
    assert not_a_reporter.status_code == 403
    assert row_counts() == before


def test_wrong_content_type_is_415(client, community, headers):
    report = report_for(community.bank_a_reporter)
    before = row_counts()
    response = client.post(
        REPORTS,
        data=json.dumps(report_body()),
        content_type="text/plain",
        headers=headers(community.bank_a_reporter),
    )
    assert response.status_code == 415
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    # Multipart goes only where an operation documents it.
    comment = client.post(
        f"{REPORTS}/{report.pk}/comments", data={"body": "x"}, headers=headers(community.bank_a_reporter)
    )
    assert comment.status_code == 415
    assert row_counts() == before


def test_oversized_json_body_is_413(client, community, headers, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    before = row_counts()
    response = post_json(
        client, REPORTS, report_body(narrative="あ" * 1000), headers(community.bank_a_reporter)
    )
    assert response.status_code == 413
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert row_counts() == before


def test_oversized_attachment_is_413(client, community, headers, small_attachments):
    before = row_counts()
    response = client.post(
        REPORTS,
        data={
            "report": json.dumps(report_body()),
            "attachments": [SimpleUploadedFile("big.bin", b"x" * 1025)],
        },
        headers=headers(community.bank_a_reporter),
    )
    assert response.status_code == 413
    assert "big.bin" in response.json()["detail"]
    too_many = client.post(
        REPORTS,
        data={
            "report": json.dumps(report_body()),
            "attachments": [SimpleUploadedFile(f"{n}.txt", b"x") for n in range(11)],
        },
        headers=headers(community.bank_a_reporter),
    )
    assert too_many.status_code == 413
    missing_part = client.post(
        REPORTS,
        data={"attachments": [SimpleUploadedFile("a.txt", b"x")]},
        headers=headers(community.bank_a_reporter),
    )
    assert invalid_names(missing_part) == {"report"}
    assert row_counts() == before


# --- Idempotency-Key -----------------------------------------------------------------------------------


def test_same_key_returns_the_first_result(client, community, headers):
    auth = headers(community.bank_a_reporter) | {"Idempotency-Key": "key-1"}
    body = report_body()
    first = post_json(client, REPORTS, body, auth)
    before = row_counts()
    again = post_json(client, REPORTS, body, auth)
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again[REPLAYED_HEADER] == "true"
    assert row_counts() == before


def test_same_key_with_another_body_is_422(client, community, headers):
    auth = headers(community.bank_a_reporter) | {"Idempotency-Key": "key-1"}
    post_json(client, REPORTS, report_body(), auth)
    before = row_counts()
    response = post_json(client, REPORTS, report_body(title="別の報告"), auth)
    assert response.status_code == 422
    assert response.json()["type"] == KEY_REUSED
    assert row_counts() == before


def test_multipart_repeats_are_told_apart_by_their_files(client, community, headers, small_attachments):
    auth = headers(community.bank_a_reporter) | {"Idempotency-Key": "with-file"}
    report = json.dumps(report_body())

    def submit(content: bytes):
        return client.post(
            REPORTS,
            data={"report": report, "attachments": [SimpleUploadedFile("a.log", content)]},
            headers=auth,
        )

    first = submit(b"line 1")
    assert first.status_code == 201
    again = submit(b"line 1")
    assert (again.json(), again[REPLAYED_HEADER]) == (first.json(), "true")
    assert submit(b"line 2").json()["type"] == KEY_REUSED
    assert (Report.objects.count(), Attachment.objects.count()) == (1, 1)


def test_keys_belong_to_one_user(client, community, headers):
    post_json(client, REPORTS, report_body(), headers(community.bank_a_reporter) | {"Idempotency-Key": "k"})
    other = post_json(
        client, REPORTS, report_body(), headers(community.bank_a_admin) | {"Idempotency-Key": "k"}
    )
    assert other.status_code == 201
    assert REPLAYED_HEADER not in other
    assert Report.objects.count() == 2


def test_an_expired_key_is_free_for_a_new_request(client, community, headers):
    auth = headers(community.bank_a_reporter) | {"Idempotency-Key": "monthly"}
    post_json(client, REPORTS, report_body(), auth)
    IdempotencyKey.objects.update(created_at=timezone.now() - KEY_LIFETIME - dt.timedelta(minutes=1))
    again = post_json(client, REPORTS, report_body(title="翌月の報告"), auth)
    assert again.status_code == 201
    assert REPLAYED_HEADER not in again
    assert Report.objects.count() == 2
    assert IdempotencyKey.objects.get().response_body["id"] == again.json()["id"]


def test_the_upkeep_purges_expired_keys_only(client, community, headers):
    for key in ("old", "fresh"):
        auth = headers(community.bank_a_reporter) | {"Idempotency-Key": key}
        post_json(client, REPORTS, report_body(title=key), auth)
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - KEY_LIFETIME * 2)
    assert delivery.run_upkeep()["idempotency_keys_purged"] == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]


def test_a_failed_request_is_not_remembered(client, community, headers):
    auth = headers(community.bank_a_reporter) | {"Idempotency-Key": "retry-me"}
    assert post_json(client, REPORTS, report_body(sector="space"), auth).status_code == 422
    assert post_json(client, REPORTS, report_body(), auth).status_code == 201
    assert IdempotencyKey.objects.count() == 1


def test_unusable_key_is_422(client, community, headers):
    response = post_json(
        client, REPORTS, report_body(), headers(community.bank_a_reporter) | {"Idempotency-Key": "x" * 256}
    )
    assert invalid_names(response, "header") == {"Idempotency-Key"}
    assert Report.objects.count() == 0


def test_every_post_honours_the_key(client, community, headers):
    advisory = advisory_for(community.nisc_coordinator, sectors=[community.finance], ack_required=True)
    report = report_for(community.bank_a_reporter)
    auth = headers(community.fsa_coordinator) | {"Idempotency-Key": "comment-1"}
    url = f"{REPORTS}/{report.pk}/comments"
    assert (
        post_json(client, url, {"body": "確認しました"}, auth).json()
        == post_json(client, url, {"body": "確認しました"}, auth).json()
    )
    assert ReportComment.objects.count() == 1
    ack = headers(community.bank_a_reporter) | {"Idempotency-Key": "ack-1"}
    first = post_json(client, f"{ADVISORIES}/{advisory.pk}/ack", {}, ack)
    assert first.status_code == 200, first.content
    assert post_json(client, f"{ADVISORIES}/{advisory.pk}/ack", {}, ack)[REPLAYED_HEADER] == "true"


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_one_report(community):
    # One token per client, each used once already: nothing else (such as the token's last-use
    # update) serializes the requests, so they race to store the key.
    tokens = [bearer(community.bank_a_reporter) for _ in range(4)]
    for token in tokens:
        Client().get("/api/v1/me", headers=token)
    body = json.dumps(report_body())
    start = threading.Barrier(len(tokens))
    responses = []

    def submit(token):
        try:
            start.wait()
            responses.append(
                Client().post(
                    REPORTS,
                    data=body,
                    content_type="application/json",
                    headers=token | {"Idempotency-Key": "concurrent"},
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.json()["id"] for r in responses}) == 1
    assert Report.objects.count() == ReportVersion.objects.count() == 1
    assert Observable.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1


# --- Advisories, inbox, acknowledgements ------------------------------------------------------------------


def advisory_body(**overrides) -> dict:
    return {
        "title": "ランサムウェア攻撃に関する注意喚起",
        "body": "VPN 機器の脆弱性を悪用した侵入が確認されています。",
        "severity": "high",
        "tlp": "AMBER",
        "audience": {"sectors": ["finance"]},
        "ack_required": True,
    } | overrides


def test_issue_an_advisory_to_a_sector(client, community, headers):
    response = post_json(client, ADVISORIES, advisory_body(), headers(community.nisc_coordinator))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["issuer"]["id"] == community.nisc.pk
    assert body["audience"] == {
        "all_ci": False,
        "sectors": ["finance"],
        "organization_types": [],
        "organizations": [],
        "people": [],
    }
    url = f"{ADVISORIES}/{body['id']}"
    seen = client.get(url, headers=headers(community.bank_b_reporter))
    assert seen.status_code == 200
    assert seen.json()["audience"] is None  # recipients do not learn who else received it
    missing = client.get(f"{ADVISORIES}/{uuid.uuid4()}", headers=headers(community.hospital_reporter))
    hidden = client.get(url, headers=headers(community.hospital_reporter))
    assert (hidden.status_code, hidden.content) == (404, missing.content)


def test_an_advisory_carries_observables_and_attachments_to_its_audience_only(
    client, community, headers, small_attachments
):
    body = advisory_body(
        observables=[
            {"type": "domain-name", "value": "Evil.Example"},
            {"type": "domain-name", "value": "evil.example"},
            {"type": "ipv4-addr", "value": "203.0.113.9"},
        ]
    )
    response = client.post(
        ADVISORIES,
        data={"advisory": json.dumps(body), "attachments": [SimpleUploadedFile("iocs.csv", b"evil.example")]},
        headers=headers(community.nisc_coordinator),
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["observables"] == [
        {"type": "domain-name", "value": "evil.example"},
        {"type": "ipv4-addr", "value": "203.0.113.9"},
    ]
    (attachment,) = created["attachments"]
    assert (attachment["filename"], attachment["size"]) == ("iocs.csv", 12)

    recipient = headers(community.bank_b_reporter)
    seen = client.get(f"{ADVISORIES}/{created['id']}", headers=recipient).json()
    assert (seen["observables"], seen["attachments"]) == (created["observables"], created["attachments"])
    download = client.get(attachment["download_url"], headers=recipient)
    assert download.status_code == 200
    assert download["Content-Type"] == "application/octet-stream"
    assert b"".join(download.streaming_content) == b"evil.example"

    outsider = headers(community.hospital_reporter)
    missing = client.get(f"{ADVISORIES}/{created['id']}/attachments/{uuid.uuid4()}", headers=outsider)
    assert missing.status_code == 404
    forbidden = client.get(attachment["download_url"], headers=outsider)
    assert (forbidden.status_code, forbidden.content) == (404, missing.content)
    # An attachment of another advisory is not reachable through this one.
    other = post_json(client, ADVISORIES, advisory_body(), headers(community.nisc_coordinator)).json()
    crossed = client.get(
        f"{ADVISORIES}/{other['id']}/attachments/{attachment['id']}",
        headers=headers(community.nisc_coordinator),
    )
    assert crossed.status_code == 404


def test_an_advisory_with_a_bad_observable_or_file_writes_nothing(
    client, community, headers, small_attachments
):
    auth = headers(community.nisc_coordinator)
    bad_observable = post_json(
        client, ADVISORIES, advisory_body(observables=[{"type": "ipv4-addr", "value": "999.1.1.1"}]), auth
    )
    assert invalid_names(bad_observable) == {"observables.0.value"}
    too_large = client.post(
        ADVISORIES,
        data={
            "advisory": json.dumps(advisory_body()),
            "attachments": [SimpleUploadedFile("big.bin", b"x" * 2048)],
        },
        headers=auth,
    )
    assert too_large.status_code == 413, too_large.content
    assert (Advisory.objects.count(), Blob.objects.count()) == (0, 0)


def test_advisory_audience_errors_name_the_audience_fields(client, community, headers):
    before = Advisory.objects.count()
    response = post_json(
        client,
        ADVISORIES,
        advisory_body(audience={"sectors": ["space"]}),
        headers(community.nisc_coordinator),
    )
    assert invalid_names(response) == {"audience.sectors"}
    outside = post_json(
        client,
        ADVISORIES,
        advisory_body(audience={"sectors": ["medical"]}),
        headers(community.fsa_coordinator),
    )
    assert invalid_names(outside) == {"audience.sectors"}
    operator = post_json(client, ADVISORIES, advisory_body(), headers(community.bank_a_reporter))
    assert operator.status_code == 403
    assert Advisory.objects.count() == before


def test_advisory_audience_outside_what_the_issuer_may_see_is_unknown(client, community, headers):
    """A person outside the CEPTOAR's chain gets the same answer as one that does not exist."""
    auth = headers(community.ceptoar_officer)

    def people_error(username: str) -> str:
        response = post_json(client, ADVISORIES, advisory_body(audience={"people": [username]}), auth)
        assert response.status_code == 422
        (problem,) = response.json()["invalid_params"]
        assert problem["name"] == "audience.people"
        return problem["reason"].replace(username, "<name>")

    assert people_error("hospital_reporter") == people_error("nobody_at_all")
    assert "<name>" in people_error("nobody_at_all")
    assert not Advisory.objects.exists()


def test_inbox_ack_and_the_issuers_table(client, community, headers, django_assert_max_num_queries):
    advisory = advisory_for(community.nisc_coordinator, sectors=[community.finance], ack_required=True)
    delivery.fan_out_advisory(advisory_id=str(advisory.pk))
    auth = headers(community.bank_a_reporter)
    client.get(REPORTS, headers=auth)
    with django_assert_max_num_queries(6):
        inbox = client.get("/api/v1/inbox", headers=auth).json()
    assert [(i["advisory"]["id"], i["acknowledged"]) for i in inbox["items"]] == [(str(advisory.pk), False)]

    # No body at all: the organization is the caller's one in the audience.
    ack = client.post(
        f"{ADVISORIES}/{advisory.pk}/ack", data=b"", content_type="application/json", headers=auth
    )
    assert ack.status_code == 200, ack.content
    assert ack.json()["organization"]["id"] == community.bank_a.pk
    again = post_json(
        client,
        f"{ADVISORIES}/{advisory.pk}/ack",
        {"organization": community.bank_a.pk},
        headers(community.bank_a_admin),
    )
    assert again.json()["acknowledged_by"] == "bank_a_reporter"
    assert Acknowledgement.objects.count() == 1
    assert client.get("/api/v1/inbox", headers=auth).json()["items"][0]["acknowledged"] is True

    table = client.get(f"{ADVISORIES}/{advisory.pk}/acks", headers=headers(community.nisc_coordinator))
    assert table.status_code == 200
    rows = {row["organization"]["id"]: row["acknowledged_by"] for row in table.json()["organizations"]}
    assert rows[community.bank_a.pk] == "bank_a_reporter"
    assert rows[community.bank_b.pk] is None
    assert community.hospital.pk not in rows
    assert table.json()["organizations"][0]["acknowledged_by"] is None
    for outsider in (community.bank_a_reporter, community.fsa_coordinator):
        assert client.get(f"{ADVISORIES}/{advisory.pk}/acks", headers=headers(outsider)).status_code == 404
    hospital = post_json(client, f"{ADVISORIES}/{advisory.pk}/ack", {}, headers(community.hospital_reporter))
    assert hospital.status_code == 404


def test_inbox_drops_advisories_no_longer_visible(client, community, headers):
    advisory = advisory_for(community.nisc_coordinator, sectors=[community.finance])
    delivery.fan_out_advisory(advisory_id=str(advisory.pk))
    advisory.audience.all().delete()
    assert client.get("/api/v1/inbox", headers=headers(community.bank_a_reporter)).json()["count"] == 0


def test_advisory_list_has_no_n_plus_one(client, community, headers, django_assert_max_num_queries):
    auth = headers(community.nisc_coordinator)
    client.get(ADVISORIES, headers=auth)
    report = report_for(community.bank_a_reporter)
    for _index in range(8):
        advisory_for(
            community.nisc_coordinator,
            sectors=[community.finance],
            organizations=[community.hospital],
            source_reports=[report],
        )
    with django_assert_max_num_queries(11):
        body = client.get(ADVISORIES, headers=auth).json()
    assert body["count"] == 8
    assert all(item["source_reports"] == [str(report.pk)] for item in body["items"])


def test_inbox_has_no_n_plus_one(client, community, headers, django_assert_max_num_queries):
    auth = headers(community.bank_a_reporter)
    client.get(REPORTS, headers=auth)
    for _index in range(6):
        advisory = advisory_for(community.nisc_coordinator, sectors=[community.finance])
        delivery.fan_out_advisory(advisory_id=str(advisory.pk))
    with django_assert_max_num_queries(6):
        body = client.get("/api/v1/inbox", headers=auth).json()
    assert body["count"] == 6


def test_source_reports_are_listed_only_to_those_who_see_them(client, community, headers):
    report = report_for(community.bank_a_reporter)
    advisory = advisory_for(community.nisc_coordinator, sectors=[community.finance], source_reports=[report])
    url = f"{ADVISORIES}/{advisory.pk}"
    assert client.get(url, headers=headers(community.bank_a_reporter)).json()["source_reports"] == [
        str(report.pk)
    ]
    assert client.get(url, headers=headers(community.bank_b_reporter)).json()["source_reports"] == []


# --- Anonymized copies ----------------------------------------------------------------------------------


def test_anonymized_copies_hide_the_source(client, community, headers, django_assert_max_num_queries):
    report = report_for(
        community.bank_a_reporter, anonymized_copy_consent=True, observables=[("ipv4-addr", "203.0.113.7")]
    )
    copy = anonymized_copy_for(community.nisc_coordinator, report, observables=[("ipv4-addr", "203.0.113.7")])
    for _index in range(5):
        anonymized_copy_for(community.nisc_coordinator, report)
    auth = headers(community.hospital_reporter)
    client.get(REPORTS, headers=auth)
    with django_assert_max_num_queries(8):
        listing = client.get("/api/v1/anonymized-reports", headers=auth)
    assert listing.json()["count"] == 6
    body = client.get(f"/api/v1/anonymized-reports/{copy.pk}", headers=auth).json()
    assert body["organization"] is None
    assert body["source"] is None
    assert body["sector"] == "finance"
    assert body["observables"] == [{"type": "ipv4-addr", "value": "203.0.113.7"}]
    assert "さくら銀行" not in json.dumps(body, ensure_ascii=False)
    assert "bank_a_reporter" not in json.dumps(body)
    insider = client.get(f"/api/v1/anonymized-reports/{copy.pk}", headers=headers(community.fsa_coordinator))
    assert insider.json()["source"] == str(report.pk)


def test_problem_type_for_validation_is_shared(client, community, headers):
    response = post_json(client, REPORTS, {"title": "x"}, headers(community.bank_a_reporter))
    assert response.json()["type"] == ProblemType.VALIDATION
    assert {"sector", "kind", "detected_at"} <= invalid_names(response)
