"""Information-sharing pages: who sees what, what each form says when input is wrong, and downloads."""

import datetime as dt
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.audit.models import AuditRecord
from renkei.directory.choices import Role
from renkei.directory.models import Membership
from renkei.directory.tests.factories import OrganizationFactory, member
from renkei.sharing.choices import CommentKind, GrantReason, Tlp
from renkei.sharing.models import (
    Acknowledgement,
    Advisory,
    AdvisoryAttachment,
    AdvisoryObservable,
    AnonymizedReport,
    Attachment,
    Blob,
    Report,
    ReportComment,
)
from renkei.sharing.services import AttachmentInput
from renkei.sharing.tests.factories import advisory_for, anonymized_copy_for, report_for


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def signed_in(user, language: str = "en") -> Client:
    """A client for `user` (in `language`), past two-factor authentication where it is required."""
    user.language = language
    user.save(update_fields=["language"])
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def same_page(first, second) -> bool:
    """Identical apart from the page's own address and the per-render CSRF token."""

    def normalized(response) -> str:
        html = response.content.decode().replace(response.request["PATH_INFO"], "")
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)

    return normalized(first) == normalized(second)


def detail(report) -> str:
    return reverse("sharing:report_detail", kwargs={"pk": report.pk})


def observable_rows(*rows: tuple[str, str], initial: int = 0) -> dict:
    """Observable rows as the report forms post them: `(type, value)` per row, in order."""
    data = {"observables-TOTAL_FORMS": str(len(rows)), "observables-INITIAL_FORMS": str(initial)}
    for index, (kind, value) in enumerate(rows):
        data |= {f"observables-{index}-type": kind, f"observables-{index}-value": value}
    return data


def report_post(community, **overrides) -> dict:
    detected = timezone.localtime(timezone.now() - dt.timedelta(hours=1))
    data = {
        "title": "勘定系システムへの不正アクセス",
        "sector": community.finance.pk,
        "kind": "failure",
        "detected_at": detected.strftime("%Y-%m-%dT%H:%M"),
        "occurred_at": (detected - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "cause": "intentional.intrusion",
        "service_state": "degraded",
        "narrative": "不審な通信を検知した。",
        "tlp": "AMBER",
        **observable_rows(("ipv4-addr", "203.0.113.5"), ("domain-name", "evil.example.com"), ("", "")),
    }
    return data | overrides


# --- Lists and 404s -----------------------------------------------------------------------------


def test_report_list_shows_what_reached_the_user_and_nothing_else(community):
    mine = report_for(community.bank_a_reporter, community.bank_a, title="さくら銀行の障害")
    report_for(community.hospital_reporter, community.hospital, title="みどり病院の障害")
    for user, expected in (
        (community.bank_a_reporter, {mine.pk}),
        (community.fsa_coordinator, {mine.pk}),
        (community.bank_b_reporter, set()),
        (
            community.mhlw_coordinator,
            set(Report.objects.filter(sector=community.medical).values_list("pk", flat=True)),
        ),
    ):
        response = signed_in(user).get(reverse("sharing:report_list"))
        assert response.status_code == 200
        assert {r.pk for r in response.context["page"]} == expected, user.username


def test_report_list_filters_and_answers_htmx_with_the_results_only(community):
    report_for(
        community.bank_a_reporter, community.bank_a, title="停電による障害", cause="environmental.disaster"
    )
    report_for(community.bank_a_reporter, community.bank_a, title="不正アクセス")
    client = signed_in(community.fsa_coordinator)
    response = client.get(reverse("sharing:report_list"), {"q": "停電"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "停電による障害" in html and "不正アクセス" not in html
    assert "<html" not in html and 'hx-swap-oob="innerHTML"' in html
    assert response["Vary"] == "HX-Request" or "HX-Request" in response["Vary"]
    by_cause = client.get(reverse("sharing:report_list"), {"cause": "environmental"})
    assert [r.title for r in by_cause.context["page"]] == ["停電による障害"]


def test_forbidden_report_is_the_same_404_as_a_missing_one(community):
    report = report_for(community.bank_a_reporter, community.bank_a, tlp=Tlp.AMBER_STRICT)
    client = signed_in(community.bank_b_reporter)
    forbidden = client.get(detail(report))
    missing = client.get(reverse("sharing:report_detail", kwargs={"pk": uuid.uuid4()}))
    assert forbidden.status_code == missing.status_code == 404
    assert same_page(forbidden, missing)
    assert signed_in(community.ceptoar_officer).get(detail(report)).status_code == 404
    assert signed_in(community.mhlw_coordinator).get(detail(report)).status_code == 404
    assert signed_in(community.fsa_coordinator).get(detail(report)).status_code == 200


def test_narrative_is_rendered_escaped(community):
    report = report_for(
        community.bank_a_reporter, community.bank_a, narrative="<script>alert(1)</script>\n二行目"
    )
    html = signed_in(community.fsa_coordinator).get(detail(report)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>二行目" in html


# --- Submitting and updating --------------------------------------------------------------------


def test_operator_submits_a_report_with_observables_and_attachments(community):
    client = signed_in(community.bank_a_reporter)
    files = [
        SimpleUploadedFile("log.txt", b"suspicious", content_type="text/plain"),
        SimpleUploadedFile("page.html", b"<script>x</script>", content_type="text/html"),
    ]
    response = client.post(reverse("sharing:report_create"), report_post(community) | {"attachments": files})
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"] == detail(report)
    assert report.organization == community.bank_a and report.tlp == Tlp.AMBER
    # Entered in Japan Standard Time, stored as the same moment.
    assert timezone.localtime(report.detected_at).utcoffset() == dt.timedelta(hours=9)
    version = report.versions.get()
    assert sorted(version.observables.values_list("type", "value")) == [
        ("domain-name", "evil.example.com"),
        ("ipv4-addr", "203.0.113.5"),
    ]
    assert sorted(version.attachments.values_list("filename", flat=True)) == ["log.txt", "page.html"]
    page = client.get(detail(report)).content.decode()
    assert "203.0.113.5" in page and "page.html" in page


def test_report_form_offers_empty_observable_rows_without_javascript(community):
    response = signed_in(community.bank_a_reporter, "ja").get(reverse("sharing:report_create"))
    rows = response.context["form"].observable_rows
    assert len(rows.forms) == 3 and not rows.initial_form_count()
    html = response.content.decode()
    # Three rows a browser without JavaScript can fill in; the buttons to add and remove rows
    # are hidden until the script shows them.
    assert len(re.findall(r'<select name="observables-\d-type"', html)) == 3
    assert "data-rows-add hidden" in html and "__prefix__" in html  # the template for added rows
    assert 'value="ipv4-addr"' in html and 'src="/static/renkei/js/forms.js"' in html


def test_observable_rows_skip_empty_and_removed_rows(community):
    client = signed_in(community.bank_a_reporter)
    # Row 1 was removed in the page (its index is simply missing); rows 2 and 4 were left empty.
    rows = observable_rows(
        ("domain-name", "EVIL.example.com."), ("", ""), ("url", "https://evil.example.com/x"), ("", "")
    )
    rows |= {
        "observables-TOTAL_FORMS": "5",
        "observables-4-type": "ipv4-addr",
        "observables-4-value": " 203.0.113.5",
    }
    del rows["observables-1-type"], rows["observables-1-value"]
    response = client.post(reverse("sharing:report_create"), report_post(community) | rows)
    assert response.status_code == 302
    version = Report.objects.get().versions.get()
    assert list(version.observables.order_by("pk").values_list("type", "value")) == [
        ("domain-name", "evil.example.com"),
        ("url", "https://evil.example.com/x"),
        ("ipv4-addr", "203.0.113.5"),
    ]


def test_bad_observable_rows_are_shown_on_their_rows_and_nothing_is_written(community):
    client = signed_in(community.bank_a_reporter)
    rows = observable_rows(
        ("ipv4-addr", "203.0.113.5"),
        ("ipv4-addr", "999.1.1.1"),
        ("", ""),
        ("", "198.51.100.7"),
        ("domain-name", ""),
        ("hostname", "a.example"),
    )
    response = client.post(reverse("sharing:report_create"), report_post(community) | rows)
    assert response.status_code == 200
    form = response.context["form"]
    errors = form.observable_rows.errors
    assert errors[0] == {} and errors[2] == {}
    assert errors[1] == {"value": ["999.1.1.1 is not a valid ipv4-addr."]}
    assert errors[3] == {"type": ["Choose the type of this observable."]}
    assert errors[4] == {"value": ["Enter the value of this observable."]}
    assert list(errors[5]) == ["type"]
    assert form.non_field_errors() == [
        "The observables in rows 2, 4, 5, 6 need attention; see the messages there."
    ]
    assert not Report.objects.exists()
    # Each message sits under its own row, tied to the field it is about; what was typed stays.
    html = response.content.decode()
    assert re.search(r'name="observables-1-value" value="999.1.1.1"[^>]*aria-invalid="true"', html)
    assert 'aria-describedby="id_observables-1-value_error"' in html
    assert (
        '<ul class="errorlist" id="id_observables-1-value_error"><li>999.1.1.1 is not a valid ipv4-addr.'
        in html
    )

    # In Japanese, the default.
    response = signed_in(community.bank_a_reporter, "ja").post(
        reverse("sharing:report_create"), report_post(community) | rows
    )
    assert "999.1.1.1 は正しい ipv4-addr ではありません。" in response.content.decode()
    assert not Report.objects.exists()


def test_observable_rows_without_their_management_data_or_too_many_are_refused(community):
    client = signed_in(community.bank_a_reporter)
    data = {k: v for k, v in report_post(community).items() if not k.startswith("observables-")}
    data["observables"] = "ipv4-addr 203.0.113.5"  # the old one-line-each text is not read
    response = client.post(reverse("sharing:report_create"), data)
    assert response.status_code == 200 and "ManagementForm" in str(
        response.context["form"].non_field_errors()
    )
    many = observable_rows(*[("ipv4-addr", f"198.51.100.{n}") for n in range(101)])
    response = client.post(reverse("sharing:report_create"), report_post(community) | many)
    assert response.context["form"].non_field_errors() == [
        "Enter at most 100 observables; attach longer lists as a file."
    ]
    assert not Report.objects.exists()


def test_report_form_errors_are_readable(community, settings):
    settings.RENKEI_ATTACHMENT_MAX_BYTES = 1024 * 1024
    client = signed_in(community.bank_a_reporter)
    future = timezone.localtime(timezone.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    big = SimpleUploadedFile("dump.bin", b"x" * (1024 * 1024 + 1))
    response = client.post(
        reverse("sharing:report_create"),
        report_post(community, title="", detected_at=future, recipients="nobody-here")
        | {"attachments": [big]},
    )
    errors = response.context["form"].errors
    assert response.status_code == 200
    assert "title" in errors
    assert errors["attachments"] == ["dump.bin is larger than the limit of 1 MB."]
    assert errors["recipients"] == ["“nobody-here” is not a person's id."]
    assert not Report.objects.exists()
    # The service's refusal lands on its field.
    response = client.post(reverse("sharing:report_create"), report_post(community, detected_at=future))
    assert response.context["form"].errors["detected_at"] == ["The detection time is in the future."]
    assert not Report.objects.exists()


def test_only_reporting_roles_get_the_report_form(community):
    assert signed_in(community.fsa_coordinator).get(reverse("sharing:report_create")).status_code == 403
    assert signed_in(community.bank_a_reporter).get(reverse("sharing:report_create")).status_code == 200


def test_reporter_adds_an_update_and_the_versions_show_what_changed(community):
    report = report_for(
        community.bank_a_reporter,
        community.bank_a,
        observables=[("ipv4-addr", "203.0.113.5"), ("domain-name", "evil.example.com")],
    )
    client = signed_in(community.bank_a_reporter)
    form = client.get(reverse("sharing:report_update", kwargs={"pk": report.pk})).context["form"]
    # The current observables fill the first rows; empty ones follow for more.
    rows = form.observable_rows
    assert [(row["type"].value(), row["value"].value()) for row in rows][:3] == [
        ("ipv4-addr", "203.0.113.5"),
        ("domain-name", "evil.example.com"),
        (None, None),
    ]
    data = {name: form[name].value() for name in form.fields if name != "attachments"}
    data = {k: v for k, v in data.items() if v not in (None, False)}
    data |= {
        "stage": "final",
        "status": "resolved",
        "narrative": "原因を特定し対処した。",
        "detected_at": timezone.localtime(report.detected_at).strftime("%Y-%m-%dT%H:%M"),
        "occurred_at": timezone.localtime(report.occurred_at).strftime("%Y-%m-%dT%H:%M"),
    }
    # The first row is cleared (left out), the second kept, one added in an empty row.
    data |= observable_rows(
        ("", ""), ("domain-name", "evil.example.com"), ("file:hashes.SHA-256", "A" * 64), initial=2
    )
    response = client.post(reverse("sharing:report_update", kwargs={"pk": report.pk}), data)
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.version_count == 2 and report.stage == "final" and report.status == "resolved"
    latest = report.versions.get(number=2)
    assert list(latest.observables.order_by("pk").values_list("type", "value")) == [
        ("domain-name", "evil.example.com"),
        ("file:hashes.SHA-256", "a" * 64),
    ]
    versions = signed_in(community.fsa_coordinator).get(detail(report)).context["versions"]
    assert "narrative" in versions[1][1] and "title" not in versions[1][1]
    # A bad row in an update: nothing is added.
    data |= observable_rows(("mac-addr", "not-a-mac"), initial=2)
    response = client.post(reverse("sharing:report_update", kwargs={"pk": report.pk}), data)
    assert response.status_code == 200
    assert response.context["form"].observable_rows.errors[0] == {
        "value": ["not-a-mac is not a valid mac-addr."]
    }
    report.refresh_from_db()
    assert report.version_count == 2
    # The ministry may read the report but not add versions to it.
    assert (
        signed_in(community.fsa_coordinator)
        .get(reverse("sharing:report_update", kwargs={"pk": report.pk}))
        .status_code
        == 404
    )


# --- Attachments ----------------------------------------------------------------------------------


def test_attachment_downloads_only_as_octet_stream_and_only_for_those_who_see_the_report(community):
    report = report_for(
        community.bank_a_reporter,
        community.bank_a,
        attachments=[AttachmentInput("evil.html", "text/html", b"<script>alert(1)</script>")],
    )
    attachment = Attachment.objects.get()
    url = reverse(
        "sharing:report_attachment_download", kwargs={"pk": report.pk, "attachment_pk": attachment.pk}
    )
    response = signed_in(community.fsa_coordinator).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert (
        response["Content-Disposition"].startswith("attachment;")
        and "evil.html" in response["Content-Disposition"]
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"
    assert AuditRecord.objects.filter(action="read", object_id=str(attachment.pk)).exists()

    assert signed_in(community.bank_b_reporter).get(url).status_code == 404
    other = report_for(community.bank_b_reporter, community.bank_b)
    # An attachment is only reachable through its own report.
    wrong_pair = reverse(
        "sharing:report_attachment_download", kwargs={"pk": other.pk, "attachment_pk": attachment.pk}
    )
    assert signed_in(community.bank_b_reporter).get(wrong_pair).status_code == 404


# --- Questions, answers, comments, triage ------------------------------------------------------------


def test_ministry_asks_and_the_reporter_answers(community):
    report = report_for(community.bank_a_reporter, community.bank_a)
    ministry = signed_in(community.fsa_coordinator)
    assert "question_form" in ministry.get(detail(report)).context
    response = ministry.post(
        reverse("sharing:report_question", kwargs={"pk": report.pk}), {"question-body": "影響範囲は？"}
    )
    assert response.status_code == 302
    question = ReportComment.objects.get(kind=CommentKind.QUESTION)

    reporter = signed_in(community.bank_a_reporter)
    page = reporter.get(detail(report))
    assert "question_form" not in page.context
    assert page.context["threads"][0][2] is not None  # an answer form under the question
    response = reporter.post(
        reverse("sharing:report_answer", kwargs={"pk": report.pk, "question_pk": question.pk}),
        {f"answer-{question.pk}-body": "約千件の取引に遅延。"},
    )
    assert response.status_code == 302
    answer = ReportComment.objects.get(kind=CommentKind.ANSWER)
    assert answer.parent == question and answer.author_organization == community.bank_a


def test_question_and_comment_refusals(community):
    report = report_for(community.bank_a_reporter, community.bank_a)
    # The reporter cannot ask itself questions: the service's message is shown, nothing is written.
    response = signed_in(community.bank_a_reporter).post(
        reverse("sharing:report_question", kwargs={"pk": report.pk}), {"question-body": "?"}
    )
    assert response.status_code == 400
    assert "Only the ministries and the national centre" in response.content.decode()
    # An empty comment is a form error.
    response = signed_in(community.fsa_coordinator).post(
        reverse("sharing:report_comment", kwargs={"pk": report.pk}), {"comment-body": ""}
    )
    assert response.status_code == 400 and response.context["comment_form"].errors["body"]
    # Someone who cannot see the report gets the 404 of a missing one.
    response = signed_in(community.bank_b_reporter).post(
        reverse("sharing:report_comment", kwargs={"pk": report.pk}), {"comment-body": "hello"}
    )
    assert response.status_code == 404
    assert not ReportComment.objects.exists()


def test_forward_form_offers_only_what_the_label_allows(community):
    report = report_for(community.bank_a_reporter, community.bank_a)
    client = signed_in(community.fsa_coordinator)
    offered = set(client.get(detail(report)).context["forward_form"].fields["organizations"].queryset)
    assert community.bank_b in offered
    assert community.hospital not in offered and community.fsa not in offered
    response = client.post(
        reverse("sharing:report_forward", kwargs={"pk": report.pk}),
        {"forward-organizations": [community.hospital.pk]},
    )
    assert response.status_code == 400
    assert not report.grants.filter(organization=community.hospital).exists()
    response = client.post(
        reverse("sharing:report_forward", kwargs={"pk": report.pk}),
        {"forward-organizations": [community.bank_b.pk]},
    )
    assert response.status_code == 302
    assert signed_in(community.bank_b_reporter).get(detail(report)).status_code == 200
    # An operator has no forward permission at all.
    assert (
        signed_in(community.bank_b_reporter)
        .post(reverse("sharing:report_forward", kwargs={"pk": report.pk}), {"forward-organizations": []})
        .status_code
        == 404
    )


def test_national_centre_links_and_reclassifies(community):
    first = report_for(community.bank_a_reporter, community.bank_a)
    second = report_for(community.hospital_reporter, community.hospital)
    client = signed_in(community.nisc_coordinator)
    response = client.post(
        reverse("sharing:report_link", kwargs={"pk": first.pk}), {"link-other": str(second.pk)}
    )
    assert response.status_code == 302 and first.linked.filter(pk=second.pk).exists()
    response = client.post(
        reverse("sharing:report_reclassify", kwargs={"pk": first.pk}),
        {"reclassify-cause": "intentional.malware", "reclassify-note": "検体解析の結果"},
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.cause.code == "intentional.malware"
    assert first.classifications.count() == 2
    # The FSA cannot see the hospital's report, so linking it is as if it did not exist.
    response = signed_in(community.fsa_coordinator).post(
        reverse("sharing:report_link", kwargs={"pk": first.pk}), {"link-other": str(second.pk)}
    )
    assert response.status_code == 400
    assert response.context["link_form"].errors["other"] == ["No report with this ID is visible to you."]
    # Operators do not triage.
    response = signed_in(community.bank_a_reporter).post(
        reverse("sharing:report_reclassify", kwargs={"pk": first.pk}), {"reclassify-cause": "unknown"}
    )
    assert response.status_code == 404


# --- Advisories -------------------------------------------------------------------------------------


def test_national_centre_issues_an_advisory_and_sees_acknowledgements(community):
    client = signed_in(community.nisc_coordinator)
    assert client.get(reverse("sharing:advisory_create")).status_code == 200
    due = timezone.localtime(timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("sharing:advisory_create"),
        {
            "organization": community.nisc.pk,
            "title": "VPN機器の脆弱性",
            "body": "至急パッチを適用してください。",
            "severity": "high",
            "tlp": "AMBER",
            "sectors": [community.finance.pk],
            "ack_required": "on",
            "ack_due": due,
            **observable_rows(),
        },
    )
    advisory = Advisory.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/advisories/{advisory.pk}/")

    operator = signed_in(community.bank_a_reporter)
    assert advisory in operator.get(reverse("sharing:inbox")).context["page"]
    page = operator.get(reverse("sharing:advisory_detail", kwargs={"pk": advisory.pk}))
    assert "ack_form" in page.context
    response = operator.post(
        reverse("sharing:advisory_acknowledge", kwargs={"pk": advisory.pk}),
        {"ack-organization": community.bank_a.pk},
    )
    assert response.status_code == 302
    assert Acknowledgement.objects.get().user == community.bank_a_reporter
    assert (
        "ack_form" not in operator.get(reverse("sharing:advisory_detail", kwargs={"pk": advisory.pk})).context
    )

    table = client.get(reverse("sharing:advisory_acknowledgements", kwargs={"pk": advisory.pk}))
    rows = {row["organization"]: row["acknowledgement"] for row in table.context["rows"]}
    assert rows[community.bank_a].user == community.bank_a_reporter
    assert rows[community.bank_b] is None
    assert community.hospital not in rows
    assert 'hx-trigger="every 5s"' in table.content.decode()

    # Outside the audience: the same 404 as a missing advisory, and no acknowledgement table.
    assert (
        signed_in(community.hospital_reporter)
        .get(reverse("sharing:advisory_detail", kwargs={"pk": advisory.pk}))
        .status_code
        == 404
    )
    assert (
        operator.get(reverse("sharing:advisory_acknowledgements", kwargs={"pk": advisory.pk})).status_code
        == 404
    )


def test_advisory_form_errors_and_who_may_issue(community):
    assert signed_in(community.bank_a_reporter).get(reverse("sharing:advisory_create")).status_code == 403
    client = signed_in(community.fsa_coordinator)
    response = client.post(
        reverse("sharing:advisory_create"),
        {"organization": community.fsa.pk, "title": "t", "body": "b", "severity": "low", "tlp": "GREEN"}
        | observable_rows(),
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["Choose who receives the advisory."]
    # The ministry may address only the sectors it oversees; the service says so on the form.
    response = client.post(
        reverse("sharing:advisory_create"),
        {
            "organization": community.fsa.pk,
            "title": "t",
            "body": "b",
            "severity": "low",
            "tlp": "GREEN",
            "sectors": [community.medical.pk],
            **observable_rows(),
        },
    )
    assert response.status_code == 200 and response.context["form"].errors
    assert not Advisory.objects.exists()


def advisory_post(organization, **audience) -> dict:
    return {
        "organization": organization.pk,
        "title": "VPN機器の脆弱性",
        "body": "至急パッチを適用してください。",
        "severity": "high",
        "tlp": "AMBER",
        **observable_rows(),
    } | audience


def picker(client, name: str, query: str, *, url: str = "", key: str = "", **params):
    """A picker's matches as htmx asks for them: the advisory form's, unless `url` names another
    (with `key`, the field's name in its form, for a prefixed form)."""
    url = url or reverse("sharing:advisory_picker", kwargs={"name": name})
    return client.get(url, {f"{key or name}_q": query, **params}, HTTP_HX_REQUEST="true")


def found(response) -> set[int]:
    return {item.pk for item in response.context["results"]}


def test_picker_finds_organizations_by_japanese_or_english_name(sharing_community):
    c = sharing_community
    closed = OrganizationFactory(name_ja="閉鎖した銀行", name_en="Closed Bank", active=False)
    client = signed_in(c.nisc_coordinator)
    response = picker(client, "organizations", "銀行")
    found = {item.pk for item in response.context["results"]}
    assert {c.bank_a.pk, c.bank_b.pk, c.bank_ceptoar.pk} <= found and closed.pk not in found
    assert "<html" not in response.content.decode()  # a fragment for htmx
    # By English name, every word; and without those already chosen.
    response = picker(client, "organizations", "bank momiji")
    assert [item.pk for item in response.context["results"]] == [c.bank_b.pk]
    response = picker(client, "organizations", "Bank", organizations=[c.bank_a.pk, "junk"])
    found = {item.pk for item in response.context["results"]}
    assert c.bank_b.pk in found and c.bank_a.pk not in found
    html = response.content.decode()
    assert f'name="organizations_add" value="{c.bank_b.pk}"' in html
    assert f'<input type="hidden" name="organizations" value="{c.bank_b.pk}">' in html  # its chip
    assert "Nothing matches" in picker(client, "organizations", "存在しない組織").content.decode()
    # Nothing typed, nothing listed; an unknown picker is missing; the advisory form's pickers are
    # for those who may issue advisories; signed-out people go to log in.
    assert picker(client, "organizations", " ").context["results"] == []
    assert picker(client, "sectors", "金融").status_code == 404
    assert picker(signed_in(c.bank_a_reporter), "organizations", "銀行").status_code == 403
    assert picker(Client(), "organizations", "銀行").status_code == 302


def test_picker_finds_people_by_username_or_name_within_the_users_chain(sharing_community):
    c = sharing_community
    c.bank_b_officer.display_name = "山田 花子"
    c.bank_b_officer.save(update_fields=["display_name"])
    fsa = signed_in(c.fsa_coordinator)
    assert [item.pk for item in picker(fsa, "people", "山田").context["results"]] == [c.bank_b_officer.pk]
    assert [item.label for item in picker(fsa, "people", "bank_b_off").context["results"]] == ["山田 花子"]
    # The hospital is outside the finance ministry's chain: its people are not found.
    assert picker(fsa, "people", "hospital").context["results"] == []
    nisc = signed_in(c.nisc_coordinator)
    assert [item.pk for item in picker(nisc, "people", "hospital").context["results"]] == [
        c.hospital_reporter.pk
    ]


def test_many_matches_are_cut_short_with_a_request_for_more_of_the_name(community):
    for number in range(25):
        OrganizationFactory(name_ja=f"信用金庫{number:02d}", name_en=f"Shinkin {number:02d}")
    response = picker(signed_in(community.nisc_coordinator), "organizations", "信用金庫")
    html = response.content.decode()
    assert html.count('name="organizations_add"') == 20
    assert "More than 20 match" in html


def test_advisory_to_organizations_and_people_chosen_in_the_pickers(sharing_community):
    c = sharing_community
    client = signed_in(c.nisc_coordinator)
    response = client.post(
        reverse("sharing:advisory_create"),
        advisory_post(c.nisc, organizations=[c.bank_b.pk, c.hospital.pk], people=[c.bank_a_officer.pk]),
    )
    advisory = Advisory.objects.get()
    assert response.status_code == 302
    assert {entry.organization for entry in advisory.audience.filter(organization__isnull=False)} == {
        c.bank_b,
        c.hospital,
    }
    assert [entry.user for entry in advisory.audience.filter(user__isnull=False)] == [c.bank_a_officer]


def test_advisory_refuses_ids_posted_by_hand_that_the_issuer_may_not_name(sharing_community):
    c = sharing_community
    closed = OrganizationFactory(name_ja="閉鎖した銀行", active=False)
    fsa = signed_in(c.fsa_coordinator)
    # An inactive organization, never offered by the picker, and a person outside the ministry's chain.
    response = fsa.post(
        reverse("sharing:advisory_create"),
        advisory_post(c.fsa, organizations=[c.bank_b.pk, closed.pk], people=[c.hospital_reporter.pk]),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["organizations"] == [f"Organization {closed.pk} is not one you can choose."]
    assert errors["people"] == [f"Person {c.hospital_reporter.pk} is not one you can choose."]
    # Back on the page, only what the issuer may name is still chosen.
    pickers = response.context["form"].pickers
    assert [item.pk for item in pickers["organizations"]["chosen"]] == [c.bank_b.pk]
    assert pickers["people"]["chosen"] == []
    # An organization the ministry may see but not address (outside the sectors it oversees): as
    # refused as one it cannot see, and never offered.
    response = fsa.post(
        reverse("sharing:advisory_create"), advisory_post(c.fsa, organizations=[c.hospital.pk])
    )
    assert response.status_code == 200
    assert response.context["form"].errors["organizations"] == [
        f"Organization {c.hospital.pk} is not one you can choose."
    ]
    assert found(picker(fsa, "organizations", c.hospital.name_ja)) == set()
    response = fsa.post(reverse("sharing:advisory_create"), advisory_post(c.fsa, organizations=["x"]))
    assert response.context["form"].errors["organizations"] == ["“x” is not an organization id."]
    assert not Advisory.objects.exists()


def test_pickers_work_without_javascript_through_the_forms_own_buttons(sharing_community):
    c = sharing_community
    client = signed_in(c.nisc_coordinator)
    url = reverse("sharing:advisory_create")
    typed = advisory_post(c.nisc, title="", sectors=[c.finance.pk])  # half-filled: no messages yet
    # Search: the page comes back with the matches, focus on the search box, and nothing issued.
    response = client.post(url, typed | {"organizations_q": "銀行", "organizations_search": "1"})
    assert response.status_code == 200
    form = response.context["form"]
    assert not form.is_bound and not form.errors
    assert {c.bank_a.pk, c.bank_b.pk} <= {item.pk for item in form.pickers["organizations"]["results"]}
    html = response.content.decode()
    assert re.search(r'name="organizations_q" value="銀行"[^>]*autofocus', html)
    assert 'value="VPN機器の脆弱性"' not in html and "至急パッチを適用してください。" in html  # as typed
    assert re.search(rf'name="sectors" value="{c.finance.pk}"[^>]*checked', html)
    # Add, then another, then remove the first: each time the page keeps what was typed.
    response = client.post(url, typed | {"organizations_q": "銀行", "organizations_add": str(c.bank_a.pk)})
    form = response.context["form"]
    assert [item.pk for item in form.pickers["organizations"]["chosen"]] == [c.bank_a.pk]
    assert c.bank_a.pk not in {item.pk for item in form.pickers["organizations"]["results"]}
    chosen = {"organizations": [c.bank_a.pk]}
    response = client.post(url, typed | chosen | {"organizations_add": str(c.bank_b.pk)})
    assert [item.pk for item in response.context["form"].pickers["organizations"]["chosen"]] == [
        c.bank_a.pk,
        c.bank_b.pk,
    ]
    chosen = {"organizations": [c.bank_a.pk, c.bank_b.pk]}
    response = client.post(url, typed | chosen | {"organizations_remove": str(c.bank_a.pk)})
    assert [item.pk for item in response.context["form"].pickers["organizations"]["chosen"]] == [c.bank_b.pk]
    # People the same way.
    response = client.post(url, typed | {"people_q": "bank_a_off", "people_search": "1"})
    assert [item.pk for item in response.context["form"].pickers["people"]["results"]] == [
        c.bank_a_officer.pk
    ]
    # Enter in a text field presses the first, hidden button: the page comes back, nothing issued.
    response = client.post(url, advisory_post(c.nisc, all_ci="on") | {"_refresh": "1"})
    assert response.status_code == 200 and not response.context["form"].errors
    assert not Advisory.objects.exists()
    # The real button issues it, with the chips' ids.
    response = client.post(url, advisory_post(c.nisc, organizations=[c.bank_b.pk]))
    assert response.status_code == 302
    assert Advisory.objects.get().audience.get().organization == c.bank_b


def test_advisory_form_has_labelled_pickers_and_no_inline_code(community):
    response = signed_in(community.nisc_coordinator, "ja").get(reverse("sharing:advisory_create"))
    html = response.content.decode()
    for name in ("organizations", "people"):
        assert f'<label class="picker__label" for="id_{name}_q">' in html
        assert f'hx-get="/sharing/advisories/new/pickers/{name}/"' in html
        # The matches depend on the issuing organization and the label, so the search sends them.
        assert f'hx-include="#id_{name}_chosen, #id_organization, [name=tlp]:checked"' in html
        assert f'<button class="button button--secondary" type="submit" name="{name}_search"' in html
    assert "<select" not in html.split('id="id_organizations_chosen"')[1].split("</fieldset>")[0]
    for page in (reverse("sharing:advisory_create"), reverse("sharing:report_create")):
        user = community.nisc_coordinator if "advisories" in page else community.bank_a_reporter
        html = signed_in(user).get(page).content.decode()
        assert " style=" not in html and "<style" not in html and not re.search(r"\son[a-z]+=", html)
        for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL):
            assert 'src="/static/' in attributes and not body.strip()
    # The script is served from here, like htmx.
    script = Client().get("/static/renkei/js/forms.js")
    assert script.status_code == 200 and b"data-picker" in b"".join(script.streaming_content)


def advisory_attachment_url(advisory_pk, attachment_pk) -> str:
    return reverse(
        "sharing:advisory_attachment_download", kwargs={"pk": advisory_pk, "attachment_pk": attachment_pk}
    )


def test_advisory_carries_observables_and_files_that_recipients_download(community):
    client = signed_in(community.nisc_coordinator)
    rows = observable_rows(("domain-name", "Evil.Example.COM."), ("", ""), ("ipv4-addr", " 203.0.113.5"))
    files = [
        SimpleUploadedFile("iocs.csv", b"203.0.113.5,evil.example.com\n", content_type="text/csv"),
        SimpleUploadedFile("page.html", b"<script>alert(1)</script>", content_type="text/html"),
    ]
    response = client.post(
        reverse("sharing:advisory_create"),
        advisory_post(community.nisc, sectors=[community.finance.pk]) | rows | {"attachments": files},
    )
    advisory = Advisory.objects.get()
    assert response.status_code == 302
    assert list(advisory.observables.values_list("type", "value")) == [
        ("domain-name", "evil.example.com"),
        ("ipv4-addr", "203.0.113.5"),
    ]
    assert sorted(advisory.attachments.values_list("filename", flat=True)) == ["iocs.csv", "page.html"]

    # A recipient sees the observables and each file as a download link with its size, never inline.
    recipient = signed_in(community.bank_a_reporter)
    page = recipient.get(reverse("sharing:advisory_detail", kwargs={"pk": advisory.pk}))
    html = page.content.decode()
    attachment = advisory.attachments.get(filename="page.html")
    url = advisory_attachment_url(advisory.pk, attachment.pk)
    assert [(o.type, o.value) for o in page.context["observables"]] == [
        ("domain-name", "evil.example.com"),
        ("ipv4-addr", "203.0.113.5"),
    ]
    assert '<code class="observable">evil.example.com</code>' in html
    assert f'<a href="{url}" download>page.html</a>' in html and "25\xa0bytes" in html
    assert "<script>alert(1)</script>" not in html
    response = recipient.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert (
        response["Content-Disposition"].startswith("attachment;")
        and "page.html" in response["Content-Disposition"]
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"
    assert AuditRecord.objects.filter(action="read", object_id=str(attachment.pk)).exists()

    # Outside the audience: the same 404 as for an advisory that does not exist.
    outsider = signed_in(community.hospital_reporter)
    forbidden = outsider.get(url)
    missing = outsider.get(advisory_attachment_url(uuid.uuid4(), attachment.pk))
    assert forbidden.status_code == missing.status_code == 404 and same_page(forbidden, missing)
    # A file is only reachable through its own advisory, even for someone who may see both.
    other = advisory_for(
        community.nisc_coordinator,
        community.nisc,
        sectors=[community.finance],
        attachments=[AttachmentInput("other.txt", "text/plain", b"other")],
    )
    wrong_pair = recipient.get(advisory_attachment_url(advisory.pk, other.attachments.get().pk))
    unknown = recipient.get(advisory_attachment_url(advisory.pk, uuid.uuid4()))
    assert wrong_pair.status_code == unknown.status_code == 404 and same_page(wrong_pair, unknown)
    # Without observables or files, the page has no section for them.
    page = recipient.get(reverse("sharing:advisory_detail", kwargs={"pk": other.pk})).content.decode()
    assert "other.txt" in page and 'class="observable"' not in page


def test_bad_observable_or_file_on_an_advisory_is_explained_and_nothing_is_written(community, settings):
    settings.RENKEI_ATTACHMENT_MAX_BYTES = 1024 * 1024
    client = signed_in(community.nisc_coordinator)
    url = reverse("sharing:advisory_create")
    html = client.get(url).content.decode()
    assert 'enctype="multipart/form-data"' in html and "each up to 1 MB" in html
    assert len(re.findall(r'<select name="observables-\d-type"', html)) == 3
    data = advisory_post(community.nisc, sectors=[community.finance.pk])
    rows = observable_rows(("ipv4-addr", "203.0.113.5"), ("ipv4-addr", "999.1.1.1"))
    files = {"attachments": [SimpleUploadedFile("iocs.csv", b"203.0.113.5\n")]}
    response = client.post(url, data | rows | files)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.observable_rows.errors[1] == {"value": ["999.1.1.1 is not a valid ipv4-addr."]}
    assert form.non_field_errors() == ["The observable in row 2 needs attention; see the message there."]
    html = response.content.decode()
    assert re.search(r'name="observables-1-value" value="999.1.1.1"[^>]*aria-invalid="true"', html)
    big = {"attachments": [SimpleUploadedFile("dump.bin", b"x" * (1024 * 1024 + 1))]}
    response = client.post(url, data | observable_rows() | big)
    assert response.context["form"].errors["attachments"] == ["dump.bin is larger than the limit of 1 MB."]
    # In Japanese, the default.
    response = signed_in(community.nisc_coordinator, "ja").post(url, data | rows | files)
    assert "999.1.1.1 は正しい ipv4-addr ではありません。" in response.content.decode()
    assert not Advisory.objects.exists() and not AdvisoryAttachment.objects.exists()
    assert not AdvisoryObservable.objects.exists() and not Blob.objects.exists()


def test_advisory_picker_buttons_keep_the_observable_rows_and_ask_for_the_files_again(community):
    client = signed_in(community.nisc_coordinator)
    rows = observable_rows(("ipv4-addr", "203.0.113.5"), ("", ""), ("domain-name", "not a domain"))
    search = {"organizations_q": "銀行", "organizations_search": "1"}
    files = {"attachments": [SimpleUploadedFile("iocs.csv", b"203.0.113.5\n")]}
    response = client.post(
        reverse("sharing:advisory_create"), advisory_post(community.nisc) | rows | search | files
    )
    form = response.context["form"]
    assert not form.is_bound and form.files_dropped
    # As entered, the empty row left out and the bad one kept for its message later.
    assert [(row["type"].value(), row["value"].value()) for row in form.observable_rows][:3] == [
        ("ipv4-addr", "203.0.113.5"),
        ("domain-name", "not a domain"),
        (None, None),
    ]
    assert "The files chosen before were not kept" in response.content.decode()
    assert not Advisory.objects.exists()


def test_ceptoar_member_acknowledges_from_the_inbox(community):
    advisory = advisory_for(
        community.ceptoar_officer, community.bank_ceptoar, organizations=[community.bank_b]
    )
    client = signed_in(community.bank_b_reporter)
    assert list(client.get(reverse("sharing:inbox")).context["page"]) == [advisory]
    assert list(signed_in(community.bank_a_reporter).get(reverse("sharing:inbox")).context["page"]) == []
    listed = signed_in(community.ceptoar_officer).get(reverse("sharing:advisory_list"))
    assert list(listed.context["issued"]) == [advisory]


# --- Anonymized copies --------------------------------------------------------------------------


def test_anonymized_copy_is_created_beside_the_original_and_hides_the_way_back(community):
    report = report_for(
        community.bank_a_reporter,
        community.bank_a,
        anonymized_copy_consent=True,
        observables=[("ipv4-addr", "203.0.113.9"), ("domain-name", "c2.example.net")],
    )
    centre = signed_in(community.nisc_coordinator)
    form_page = centre.get(reverse("sharing:anonymized_create", kwargs={"pk": report.pk}))
    assert form_page.status_code == 200
    assert report.narrative in form_page.content.decode()  # the original, beside the copy
    response = centre.post(
        reverse("sharing:anonymized_create", kwargs={"pk": report.pk}),
        {
            "title": "金融機関への不正アクセス",
            "narrative": "ある事業者で不正アクセスの痕跡を確認。",
            "keep_sector": "on",
            "observables": ["ipv4-addr 203.0.113.9"],
            "tlp": "GREEN",
            "all_ci": "on",
        },
    )
    copy = AnonymizedReport.objects.get()
    assert response.status_code == 302
    assert list(copy.observables.values_list("value", flat=True)) == ["203.0.113.9"]

    hospital = signed_in(community.hospital_reporter).get(
        reverse("sharing:anonymized_detail", kwargs={"pk": copy.pk})
    )
    html = hospital.content.decode()
    assert hospital.status_code == 200 and not hospital.context["source_visible"]
    assert str(report.pk) not in html and "さくら銀行" not in html
    assert centre.get(reverse("sharing:anonymized_detail", kwargs={"pk": copy.pk})).context["source_visible"]
    listed = signed_in(community.hospital_reporter).get(reverse("sharing:anonymized_list"))
    assert list(listed.context["page"]) == [copy]


def test_anonymized_copy_refusals(community):
    without_consent = report_for(community.bank_a_reporter, community.bank_a)
    url = reverse("sharing:anonymized_create", kwargs={"pk": without_consent.pk})
    assert signed_in(community.nisc_coordinator).get(url).status_code == 404
    consenting = report_for(community.bank_a_reporter, community.bank_a, anonymized_copy_consent=True)
    url = reverse("sharing:anonymized_create", kwargs={"pk": consenting.pk})
    assert signed_in(community.fsa_coordinator).get(url).status_code == 404
    # Leaving the reporter's name in the text is refused with the service's message.
    response = signed_in(community.nisc_coordinator).post(
        url, {"title": "事案", "narrative": "さくら銀行で発生", "tlp": "GREEN", "all_ci": "on"}
    )
    assert response.status_code == 200
    assert "identifies the source" in " ".join(response.context["form"].errors["narrative"])
    assert not AnonymizedReport.objects.exists()


def test_anonymized_copy_of_an_unseen_report_is_hidden_from_a_ministry_elsewhere(community):
    report = report_for(community.bank_a_reporter, community.bank_a, anonymized_copy_consent=True)
    copy = anonymized_copy_for(community.nisc_coordinator, report)
    response = signed_in(community.mhlw_coordinator).get(
        reverse("sharing:anonymized_detail", kwargs={"pk": copy.pk})
    )
    assert response.status_code == 200 and not response.context["source_visible"]


def test_navigation_links_to_sharing_pages_and_the_dashboard_for_government(community):
    extra = member(community.bank_a, Role.OFFICER)
    html = signed_in(extra, language="ja").get(reverse("sharing:report_list")).content.decode()
    for name in ("sharing:report_list", "sharing:advisory_list", "sharing:inbox"):
        assert f'href="{reverse(name)}"' in html
    assert f'href="{reverse("dashboard:index")}"' not in html
    html = signed_in(community.fsa_coordinator).get(reverse("sharing:report_list")).content.decode()
    assert f'href="{reverse("dashboard:index")}"' in html


def test_report_list_query_count_does_not_grow_with_reports(community):
    client = signed_in(community.fsa_coordinator)
    report_for(community.bank_a_reporter, community.bank_a)
    client.get(reverse("sharing:report_list"))  # warm the session
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("sharing:report_list"))
    for _ in range(5):
        report_for(community.bank_b_reporter, community.bank_b)
    with CaptureQueriesContext(connection) as six:
        response = client.get(reverse("sharing:report_list"))
    assert response.context["page"].paginator.count == 6
    assert len(six) == len(one)


def test_overdue_stages_are_highlighted_for_the_reporter_and_the_chain(community):
    long_ago = timezone.now() - dt.timedelta(days=60)
    report = report_for(
        community.bank_a_reporter, community.bank_a, detected_at=long_ago, occurred_at=long_ago
    )
    for user in (community.bank_a_reporter, community.fsa_coordinator):
        response = signed_in(user).get(detail(report))
        assert any(deadline.overdue for deadline in response.context["deadlines"])
        assert 'class="row--overdue"' in response.content.decode()


def test_advisory_from_a_report_links_back_only_for_those_who_see_the_report(community):
    report = report_for(community.bank_a_reporter, community.bank_a, title="元の報告")
    client = signed_in(community.nisc_coordinator)
    assert "can_issue_advisory" in client.get(detail(report)).context
    url = reverse("sharing:advisory_create") + f"?report={report.pk}&report=not-a-uuid"
    assert list(client.get(url).context["source_reports"]) == [report]
    response = client.post(
        url,
        {
            "title": "注意",
            "body": "本文",
            "severity": "medium",
            "tlp": "GREEN",
            "sectors": [community.finance.pk],
            "source_reports": [str(report.pk)],
            **observable_rows(),
        },
    )
    advisory = Advisory.objects.get()
    assert response.status_code == 302 and list(advisory.source_reports.all()) == [report]
    advisory_url = reverse("sharing:advisory_detail", kwargs={"pk": advisory.pk})
    assert list(signed_in(community.bank_a_reporter).get(advisory_url).context["source_reports"]) == [report]
    other_bank = signed_in(community.bank_b_reporter).get(advisory_url)
    assert other_bank.status_code == 200 and list(other_bank.context["source_reports"]) == []
    assert "元の報告" not in other_bank.content.decode()


def test_relabel_by_the_source_and_by_the_centre_only_with_consent(community):
    report = report_for(community.bank_a_reporter, community.bank_a)
    url = reverse("sharing:report_relabel", kwargs={"pk": report.pk})
    response = signed_in(community.nisc_coordinator).post(url, {"relabel-tlp": "GREEN"})
    assert response.status_code == 400
    assert response.context["relabel_form"].errors["source_consent"] == [
        "The national centre needs the reporting organization's consent to relabel."
    ]
    assert signed_in(community.fsa_coordinator).post(url, {"relabel-tlp": "GREEN"}).status_code == 404
    assert signed_in(community.bank_a_reporter).post(url, {"relabel-tlp": "GREEN"}).status_code == 302
    report.refresh_from_db()
    assert report.tlp == Tlp.GREEN


def test_unlink_removes_the_link_for_the_triaging_body(community):
    first = report_for(community.bank_a_reporter, community.bank_a)
    second = report_for(community.bank_b_reporter, community.bank_b)
    first.linked.add(second)
    url = reverse("sharing:report_unlink", kwargs={"pk": first.pk, "other_pk": second.pk})
    assert signed_in(community.bank_a_reporter).post(url).status_code == 404
    assert signed_in(community.fsa_coordinator).post(url).status_code == 302
    assert not first.linked.exists()


def test_sharing_with_a_ceptoar_is_offered_only_to_members_of_one(community):
    assert (
        "share_with_ceptoar"
        in signed_in(community.bank_a_reporter).get(reverse("sharing:report_create")).context["form"].fields
    )
    hospital = signed_in(community.hospital_reporter)
    assert "share_with_ceptoar" not in hospital.get(reverse("sharing:report_create")).context["form"].fields
    response = hospital.post(
        reverse("sharing:report_create"),
        report_post(community, sector=community.medical.pk, share_with_ceptoar="on"),
    )
    report = Report.objects.get()
    assert response.status_code == 302 and not report.share_with_ceptoar


def messages_shown(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_anonymized_copy_its_creator_may_not_open_leads_back_to_the_report_saying_where_it_went(
    community,
):
    report = report_for(community.bank_a_reporter, community.bank_a, anonymized_copy_consent=True)
    centre = signed_in(community.nisc_coordinator)
    # For the medical sector only: the national centre is not in it, so the copy is not its to open.
    response = centre.post(
        reverse("sharing:anonymized_create", kwargs={"pk": report.pk}),
        {
            "title": "金融機関への不正アクセス",
            "narrative": "ある事業者で不正アクセスの痕跡を確認。",
            "keep_sector": "on",
            "tlp": "GREEN",
            "sectors": [community.medical.pk],
        },
        follow=True,
    )
    copy = AnonymizedReport.objects.get()
    assert response.redirect_chain == [(detail(report), 302)]
    assert messages_shown(response) == [
        f"The anonymized copy has been published to: {community.medical.name_en}. "
        "You are not among its recipients, so you cannot open it."
    ]
    copy_url = reverse("sharing:anonymized_detail", kwargs={"pk": copy.pk})
    assert centre.get(copy_url).status_code == 404
    assert signed_in(community.hospital_reporter).get(copy_url).status_code == 200


def test_relabelling_a_report_out_of_ones_own_sight_leads_back_to_the_list(community):
    report = report_for(community.bank_a_reporter, community.bank_a)
    url = reverse("sharing:report_relabel", kwargs={"pk": report.pk})
    # The bank's administrator may relabel its reports; under TLP:RED it is neither the reporter, an
    # officer nor named, so the report leaves its sight.
    admin = signed_in(community.bank_a_admin)
    response = admin.post(url, {"relabel-tlp": "RED"}, follow=True)
    assert response.redirect_chain == [(reverse("sharing:report_list"), 302)]
    assert messages_shown(response) == [
        "The label has been changed.",
        "You are no longer among those who may see this report.",
    ]
    report.refresh_from_db()
    assert report.tlp == Tlp.RED
    assert admin.get(detail(report)).status_code == 404
    # The national centre's coordinator is named when a report turns TLP:RED: it stays on the report.
    other = report_for(community.bank_a_reporter, community.bank_a)
    response = signed_in(community.nisc_coordinator).post(
        reverse("sharing:report_relabel", kwargs={"pk": other.pk}),
        {"relabel-tlp": "RED", "relabel-source_consent": "on"},
    )
    assert response.status_code == 302 and response["Location"] == detail(other)


# --- Pickers: only whom the user may address ---------------------------------------------------------


def test_advisory_pickers_offer_only_whom_the_issuing_organization_may_address(sharing_community):
    c = sharing_community
    closed = OrganizationFactory(
        name_ja="閉鎖した銀行", sectors=[c.finance], parent=c.bank_ceptoar, active=False
    )
    # A ministry: the active organizations of the sectors it oversees, and their people.
    fsa = signed_in(c.fsa_coordinator)
    banks = found(picker(fsa, "organizations", "銀行"))
    assert {c.bank_a.pk, c.bank_b.pk, c.bank_ceptoar.pk} <= banks and closed.pk not in banks
    assert found(picker(fsa, "organizations", c.hospital.name_ja)) == set()
    assert found(picker(fsa, "people", "bank_b")) == {c.bank_b_reporter.pk, c.bank_b_officer.pk}
    # A CEPTOAR: its member organizations and their people, not itself, another CEPTOAR or the
    # ministry it can see.
    ceptoar = signed_in(c.ceptoar_officer)
    assert found(picker(ceptoar, "organizations", "銀行")) == {c.bank_a.pk, c.bank_b.pk}
    assert found(picker(ceptoar, "organizations", "証券")) == set()
    assert found(picker(ceptoar, "people", "fsa")) == set()
    offered = found(picker(ceptoar, "people", "bank_a"))
    assert offered == {c.bank_a_reporter.pk, c.bank_a_admin.pk, c.bank_a_officer.pk}
    # What the pickers offer, the service takes.
    response = ceptoar.post(
        reverse("sharing:advisory_create"),
        advisory_post(c.bank_ceptoar, organizations=[c.bank_a.pk, c.bank_b.pk], people=sorted(offered)),
    )
    assert response.status_code == 302
    assert Advisory.objects.get().audience.count() == 5


def test_advisory_pickers_follow_the_chosen_issuer_and_label(sharing_community):
    c = sharing_community
    # Someone issuing for a ministry and for a CEPTOAR: the search sends the one chosen.
    two_hats = member(c.fsa, Role.OFFICER, "two_hats")
    Membership.objects.create(user=two_hats, organization=c.bank_ceptoar, role=Role.OFFICER)
    client = signed_in(two_hats)
    assert found(picker(client, "organizations", "証券", organization=c.bank_ceptoar.pk)) == set()
    assert c.securities_ceptoar.pk in found(picker(client, "organizations", "証券", organization=c.fsa.pk))
    # None chosen yet (or one that is not theirs): whom either may address.
    for organization in ("", "junk", c.nisc.pk):
        assert c.securities_ceptoar.pk in found(
            picker(client, "organizations", "証券", organization=organization)
        )
    # The label: the public only under TLP:CLEAR; under TLP:RED named people only.
    nisc = signed_in(c.nisc_coordinator)
    assert found(picker(nisc, "organizations", "Citizen", tlp="AMBER")) == set()
    assert found(picker(nisc, "organizations", "Citizen", tlp="CLEAR")) == {c.public.pk}
    assert found(picker(nisc, "people", "citizen", tlp="GREEN")) == set()
    assert found(picker(nisc, "people", "citizen", tlp="CLEAR")) == {c.citizen.pk}
    red = picker(nisc, "organizations", "銀行", tlp="RED")
    assert found(red) == set() and "TLP:RED goes to named people only" in red.content.decode()
    assert c.bank_a_officer.pk in found(picker(nisc, "people", "bank_a", tlp="RED"))
    # Without JavaScript, the search runs under the label the form has.
    response = nisc.post(
        reverse("sharing:advisory_create"),
        advisory_post(c.nisc, tlp="RED") | {"organizations_q": "銀行", "organizations_search": "1"},
    )
    assert response.context["form"].pickers["organizations"]["results"] == []
    assert "TLP:RED goes to named people only" in response.content.decode()
    # A public organization chosen under TLP:CLEAR stays chosen when the label changes; the service
    # says why it no longer fits.
    response = nisc.post(
        reverse("sharing:advisory_create"), advisory_post(c.nisc, tlp="AMBER", organizations=[c.public.pk])
    )
    form = response.context["form"]
    assert "Only TLP:CLEAR may reach outside" in form.non_field_errors()[0]
    assert [item.pk for item in form.pickers["organizations"]["chosen"]] == [c.public.pk]
    assert not Advisory.objects.exists()


def forward_picker(client, report, name: str, query: str, **params):
    url = reverse("sharing:forward_picker", kwargs={"pk": report.pk, "name": name})
    return picker(client, name, query, url=url, key=f"forward-{name}", **params)


def test_forward_form_picks_organizations_and_people_within_the_label(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a)
    fsa = signed_in(c.fsa_coordinator)
    html = fsa.get(detail(report)).content.decode()
    for name in ("organizations", "people"):
        assert f'<label class="picker__label" for="id_forward-{name}_q">' in html
        assert f'hx-get="/sharing/reports/{report.pk}/forward/pickers/{name}/"' in html
        assert f'hx-include="#id_forward-{name}_chosen"' in html
        assert f'name="forward-{name}_search"' in html
    assert "<select" not in html.split('name="_refresh"')[1].split("</form>")[0]
    assert 'src="/static/renkei/js/forms.js"' in html
    # TLP:AMBER: the ministry passes it on within the sectors it oversees; not to those who have it.
    banks = found(forward_picker(fsa, report, "organizations", "銀行"))
    assert c.bank_b.pk in banks and c.bank_a.pk not in banks
    assert found(forward_picker(fsa, report, "organizations", c.hospital.name_ja)) == set()
    assert found(forward_picker(fsa, report, "people", "bank_a")) == {c.bank_a_admin.pk, c.bank_a_officer.pk}
    assert found(forward_picker(fsa, report, "people", "hospital")) == set()
    assert found(forward_picker(fsa, report, "people", "securities")) == {c.securities_officer.pk}
    # What the pickers offer, the service takes.
    response = fsa.post(
        reverse("sharing:report_forward", kwargs={"pk": report.pk}),
        {"forward-organizations": [c.bank_b.pk], "forward-people": [c.securities_officer.pk]},
    )
    assert response.status_code == 302
    assert report.grants.filter(organization=c.bank_b).exists()
    assert report.grants.filter(user=c.securities_officer).exists()
    # Those who may not forward get no matches: the same 404 as a missing page.
    assert forward_picker(signed_in(c.bank_b_reporter), report, "people", "bank").status_code == 404
    assert forward_picker(fsa, report, "sectors", "金融").status_code == 404


def test_red_report_names_people_only_and_only_the_source_names_more(sharing_community):
    c = sharing_community
    # The duty coordinators of the ministry and the national centre are named at submission.
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.RED)
    officer = signed_in(c.bank_a_officer)
    form = officer.get(detail(report)).context["forward_form"]
    assert list(form.pickers) == ["people"] and form.fields["people"].label == "Named people"
    assert forward_picker(officer, report, "organizations", "銀行").status_code == 404
    # People the officer may see, not yet named.
    assert found(forward_picker(officer, report, "people", "ceptoar")) == {c.ceptoar_officer.pk}
    assert found(forward_picker(officer, report, "people", "coord")) == set()
    assert found(forward_picker(officer, report, "people", "bank_b")) == set()
    response = officer.post(
        reverse("sharing:report_forward", kwargs={"pk": report.pk}),
        {"forward-people": [c.ceptoar_officer.pk]},
    )
    assert response.status_code == 302
    assert report.grants.get(user=c.ceptoar_officer).reason == GrantReason.NAMED
    response = officer.post(reverse("sharing:report_forward", kwargs={"pk": report.pk}), {})
    assert response.context["forward_form"].non_field_errors() == ["Choose at least one person."]
    # A named ministry coordinator sees the report but may not name more people.
    fsa = signed_in(c.fsa_coordinator)
    assert "forward_form" not in fsa.get(detail(report)).context
    assert forward_picker(fsa, report, "people", "bank").status_code == 404


def test_forward_pickers_work_without_javascript(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a)
    fsa = signed_in(c.fsa_coordinator)
    url = reverse("sharing:report_forward", kwargs={"pk": report.pk})
    response = fsa.post(url, {"forward-people_q": "bank_b_off", "forward-people_search": "1"})
    assert response.status_code == 200
    form = response.context["forward_form"]
    assert not form.is_bound and not form.errors
    assert [item.pk for item in form.pickers["people"]["results"]] == [c.bank_b_officer.pk]
    assert re.search(r'name="forward-people_q" value="bank_b_off"[^>]*autofocus', response.content.decode())
    response = fsa.post(url, {"forward-people_add": str(c.bank_b_officer.pk)})
    assert [item.pk for item in response.context["forward_form"].pickers["people"]["chosen"]] == [
        c.bank_b_officer.pk
    ]
    # Enter presses the hidden first button: the page comes back, nothing forwarded.
    response = fsa.post(url, {"forward-people": [c.bank_b_officer.pk], "_refresh": "1"})
    assert response.status_code == 200 and not response.context["forward_form"].errors
    assert not report.grants.filter(user=c.bank_b_officer).exists()
    response = fsa.post(url, {"forward-people": [c.bank_b_officer.pk]})
    assert response.status_code == 302 and report.grants.filter(user=c.bank_b_officer).exists()


def recipients_picker(client, query: str):
    url = reverse("sharing:report_picker", kwargs={"name": "recipients"})
    return picker(client, "recipients", query, url=url)


def test_red_recipients_are_picked_from_people_the_reporter_may_see(sharing_community):
    c = sharing_community
    client = signed_in(c.bank_a_reporter)
    html = client.get(reverse("sharing:report_create")).content.decode()
    assert '<label class="picker__label" for="id_recipients_q">' in html
    assert 'hx-get="/sharing/reports/new/pickers/recipients/"' in html
    # Enter presses a hidden first button, which never submits the report half-addressed.
    report_form = html.split('enctype="multipart/form-data"')[1]
    assert 'name="_refresh"' in re.search(r"<button[^>]*>", report_form).group(0)
    assert found(recipients_picker(client, "fsa_coord")) == {c.fsa_coordinator.pk}
    assert found(recipients_picker(client, "hospital")) == set()  # outside the bank's chain
    # An international partner sees its own people and the national centre's, in search as elsewhere.
    partner = signed_in(member(c.partner, Role.REPORTER, "partner_reporter"))
    assert found(recipients_picker(partner, "coord")) == {c.nisc_coordinator.pk}
    # Only those who may report get the report form's picker.
    assert recipients_picker(signed_in(c.fsa_coordinator), "bank").status_code == 403
    url = reverse("sharing:report_create")
    response = client.post(url, report_post(c, tlp="RED", recipients=[c.hospital_reporter.pk]))
    assert response.context["form"].errors["recipients"] == [
        f"Person {c.hospital_reporter.pk} is not one you can choose."
    ]
    response = client.post(url, report_post(c, tlp="AMBER", recipients=[c.fsa_coordinator.pk]))
    assert response.context["form"].errors["recipients"] == ["Named recipients are only for TLP:RED reports."]
    assert not Report.objects.exists()
    response = client.post(url, report_post(c, tlp="RED", recipients=[c.fsa_coordinator.pk]))
    assert response.status_code == 302
    named = Report.objects.get().grants.filter(reason=GrantReason.NAMED)
    assert list(named.values_list("user", flat=True)) == [c.fsa_coordinator.pk]


def test_recipients_picker_works_without_javascript_and_keeps_what_was_entered(community):
    client = signed_in(community.bank_a_reporter)
    url = reverse("sharing:report_create")
    typed = report_post(community, tlp="RED")
    log = SimpleUploadedFile("log.txt", b"suspicious", content_type="text/plain")
    response = client.post(
        url, typed | {"recipients_q": "fsa", "recipients_search": "1", "attachments": [log]}
    )
    assert response.status_code == 200 and not Report.objects.exists()
    form = response.context["form"]
    assert not form.is_bound and not form.errors
    assert [item.pk for item in form.pickers["recipients"]["results"]] == [community.fsa_coordinator.pk]
    # What was entered comes back, the observable rows too; a file has to be chosen again.
    assert [(row["type"].value(), row["value"].value()) for row in form.observable_rows.forms][:3] == [
        ("ipv4-addr", "203.0.113.5"),
        ("domain-name", "evil.example.com"),
        (None, None),
    ]
    html = response.content.decode()
    assert 'value="勘定系システムへの不正アクセス"' in html
    assert "The files chosen before were not kept when the page came back: choose them again." in html
    assert re.search(r'name="recipients_q" value="fsa"[^>]*autofocus', html)
    response = client.post(url, typed | {"recipients_add": str(community.fsa_coordinator.pk)})
    assert [item.pk for item in response.context["form"].pickers["recipients"]["chosen"]] == [
        community.fsa_coordinator.pk
    ]
    assert "choose them again" not in response.content.decode()
    # Enter in a text field brings the page back; nothing is submitted.
    response = client.post(url, typed | {"_refresh": "1"})
    assert response.status_code == 200 and not Report.objects.exists()
    response = client.post(url, typed | {"recipients": [community.fsa_coordinator.pk]})
    assert response.status_code == 302
    assert Report.objects.get().grants.filter(user=community.fsa_coordinator, reason=GrantReason.NAMED)
