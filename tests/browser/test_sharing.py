"""Information sharing in a real browser, in Japanese: a report goes up the chain with a file, the
ministry asks, the operator answers; an advisory comes down and its acknowledgement shows up live on
the issuer's page."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from renkei.directory.models import User
from renkei.sharing.choices import GrantReason
from renkei.sharing.models import Acknowledgement, Advisory, Attachment, Report, ReportComment
from renkei.sharing.tests.factories import report_for

pytestmark = pytest.mark.browser

OPERATOR = "finance-op1-reporter"
OPERATOR_ORGANIZATION = "株式会社さきがけ銀行"
REPORT_TITLE = "インターネットバンキングへの不正アクセス"
ADVISORY_TITLE = "金融機関を狙う不正ログインへの注意"
RED_TITLE = "勘定系システムの障害（TLP:RED）"
# Polling every few seconds, plus a margin for a slow machine.
LIVE_UPDATE_TIMEOUT_MS = 20_000


def current_code(username: str) -> str:
    device = TOTPDevice.objects.get(user__username=username, confirmed=True)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def sign_in(visitor, username: str) -> None:
    visitor.open("/accounts/login/", f"login-{username}")
    visitor.login(username)
    if "/accounts/2fa/verify/" in visitor.page.url:
        visitor.page.get_by_label("6桁の確認コード").fill(current_code(username))
        visitor.page.get_by_role("button", name="確認").click()
    expect(visitor.page).to_have_url(re.compile(r"/$"))


def sign_out(visitor) -> None:
    visitor.page.get_by_role("button", name="ログアウト").click()
    visitor.page.wait_for_load_state()


def menu_link(visitor, path: str):
    """A main-menu entry, found by where it leads (its wording belongs to the catalogue)."""
    return visitor.page.get_by_role("navigation", name="メインメニュー").locator(f'a[href="{path}"]')


def fill_report(page, title: str) -> None:
    """What every report needs: a title, the kind, when, and the cause."""
    detected = timezone.localtime(timezone.now() - dt.timedelta(hours=1))
    page.get_by_label("件名").fill(title)
    page.locator("input[name=kind][value=failure]").check()
    page.get_by_label("発生日時").fill((detected - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("検知日時").fill(detected.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("原因", exact=True).select_option("intentional.intrusion")


def picker(page, name: str):
    """The picker whose field is `name` (as the form posts it), found by its search box's name."""
    return page.locator("fieldset[data-picker]").filter(has=page.locator(f'input[name="{name}_q"]'))


def organization_picker(page):
    return picker(page, "organizations")


def operators_report(title: str) -> Report:
    """A TLP:AMBER report from the operator's bank, as if filed a moment ago."""
    return report_for(User.objects.get(username=OPERATOR), title=title)


def test_report_up_question_answer_advisory_down_and_live_acknowledgement(
    demo, visitor, chromium, live_server
):
    page = visitor.page

    # 1. The operator files a report with an observable and a file, in Japanese.
    sign_in(visitor, OPERATOR)
    menu_link(visitor, "/sharing/reports/").click()
    visitor.checkpoint("report-list-empty")
    page.get_by_role("link", name="新規の情報連絡").click()
    visitor.checkpoint("report-form")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    fill_report(page, REPORT_TITLE)
    page.get_by_label("事案の詳細").fill("不審なログインを検知した。\n<script>alert('x')</script>")
    # Observables: one empty row to start with; rows are added (and one removed) with the buttons.
    # Rows and buttons are found by their form names, as their wording belongs to the catalogue.
    observables = page.get_by_role("group", name="観測情報")
    rows = observables.locator("[data-row]")
    expect(rows).to_have_count(1)
    rows.nth(0).get_by_role("combobox").select_option("ipv4-addr")
    rows.nth(0).get_by_role("textbox").fill("203.0.113.77")
    add_row = observables.locator("button[data-rows-add]")
    add_row.click()
    expect(rows).to_have_count(2)
    expect(rows.nth(1).get_by_role("combobox")).to_be_focused()
    page.keyboard.press("Tab")  # the keyboard goes on to the value
    page.keyboard.type("should-not-stay.example.jp")
    add_row.click()
    rows.nth(2).get_by_role("combobox").select_option("domain-name")
    rows.nth(2).get_by_role("textbox").fill("Phish.Example.NET")
    rows.nth(1).locator("button[data-rows-remove]").click()
    expect(rows).to_have_count(2)
    visitor.checkpoint("report-form-observable-rows")
    page.get_by_label("添付ファイル").set_input_files(
        [{"name": "access.log", "mimeType": "text/plain", "buffer": b"203.0.113.77 - - login\n"}]
    )
    expect(page.get_by_role("radio", name=re.compile(r"^TLP:AMBER "))).to_be_checked()
    page.get_by_role("button", name="情報連絡を提出").click()
    visitor.checkpoint("report-detail")
    expect(page.get_by_role("heading", level=1)).to_have_text(REPORT_TITLE)
    expect(page.get_by_role("status")).to_contain_text("情報連絡を提出しました。")
    expect(page.get_by_role("note", name="共有ラベル")).to_contain_text("TLP:AMBER")
    current_state = page.get_by_role("region", name="現在の状況")
    expect(current_state.get_by_text("<script>alert('x')</script>")).to_be_visible()  # shown, not run
    expect(page.get_by_role("cell", name="203.0.113.77", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="phish.example.net")).to_be_visible()
    download_link = page.get_by_role("link", name="access.log")
    with page.expect_download() as download:
        download_link.click()
    assert download.value.suggested_filename == "access.log"
    report = Report.objects.get(title=REPORT_TITLE)
    assert Attachment.objects.filter(version__report=report).count() == 1
    assert sorted(report.versions.get().observables.values_list("type", "value")) == [
        ("domain-name", "phish.example.net"),
        ("ipv4-addr", "203.0.113.77"),
    ]
    sign_out(visitor)

    # 2. The finance ministry sees it and asks the reporter a question.
    sign_in(visitor, "fsa-coordinator")
    menu_link(visitor, "/sharing/reports/").click()
    visitor.checkpoint("report-list-ministry")
    page.get_by_role("link", name=REPORT_TITLE).click()
    visitor.checkpoint("report-detail-ministry")
    page.get_by_label("報告者への質問").fill("影響を受けた顧客数を教えてください。")
    page.get_by_role("button", name="報告者に質問").click()
    visitor.checkpoint("question-asked")
    # The page's message comes first; the forward pickers have status regions of their own.
    expect(page.get_by_role("status").first).to_contain_text("質問を報告元組織に送信しました。")
    expect(page.get_by_role("article")).to_contain_text("影響を受けた顧客数を教えてください。")
    sign_out(visitor)

    # 3. The operator answers under the question.
    sign_in(visitor, OPERATOR)
    visitor.open(f"/sharing/reports/{report.pk}/", "report-with-question")
    page.get_by_label("回答", exact=True).fill("約1,200名です。")
    page.get_by_role("button", name="回答を送信").click()
    visitor.checkpoint("question-answered")
    expect(page.locator(".thread__reply").get_by_role("article")).to_contain_text("約1,200名です。")
    assert ReportComment.objects.filter(report=report, kind="answer", parent__kind="question").exists()
    sign_out(visitor)

    # 4. The national centre issues an advisory to the finance sector and keeps its page open.
    sign_in(visitor, "nco-coordinator")
    menu_link(visitor, "/sharing/advisories/").click()
    visitor.checkpoint("advisories")
    page.get_by_role("link", name="情報提供の発出").click()
    visitor.checkpoint("advisory-form")
    page.get_by_label("件名").fill(ADVISORY_TITLE)
    page.get_by_label("本文").fill("インターネットバンキングへの不正ログインが確認されています。")
    page.get_by_label("重要度").select_option("high")
    # The bank is found by part of its name and added as a chip; a second pick is removed again.
    organizations = organization_picker(page)
    search = organizations.get_by_role("searchbox")
    search.fill("さきがけ")
    organizations.get_by_role("button", name=re.compile(OPERATOR_ORGANIZATION)).click()
    chips = organizations.locator(".chip")
    expect(chips).to_have_count(1)
    expect(chips).to_contain_text(OPERATOR_ORGANIZATION)
    expect(organizations.locator('input[type="hidden"][name="organizations"]')).to_have_count(1)
    search.fill("証券")
    search.press("Enter")  # searches at once; it does not submit the form
    organizations.get_by_role("button", name=re.compile("証券セプター")).click()
    expect(chips).to_have_count(2)
    visitor.checkpoint("advisory-form-picker")
    chips.filter(has_text="証券セプター").get_by_role("button").click()
    expect(chips).to_have_count(1)
    expect(search).to_be_focused()
    # Enter in a text field neither issues the advisory nor presses a chip's button.
    page.get_by_label("件名").press("Enter")
    expect(chips).to_have_count(1)
    assert not Advisory.objects.filter(title=ADVISORY_TITLE).exists()
    # An indicator to look for, in a row like the report's, and the list of them as a file.
    advisory_rows = page.get_by_role("group", name="観測情報").locator("[data-row]")
    expect(advisory_rows).to_have_count(1)
    advisory_rows.nth(0).get_by_role("combobox").select_option("ipv4-addr")
    advisory_rows.nth(0).get_by_role("textbox").fill("198.51.100.20")
    page.get_by_label("添付ファイル").set_input_files(
        [{"name": "indicators.csv", "mimeType": "text/csv", "buffer": b"ipv4-addr,198.51.100.20\n"}]
    )
    page.get_by_label("受信者に受領確認を求める").check()
    page.get_by_role("button", name="情報提供を発出").click()
    visitor.checkpoint("advisory-issued")
    expect(page.get_by_role("status").first).to_contain_text("情報提供を発出しました。")
    acknowledgements = page.locator("#ack-table")
    bank_row = acknowledgements.get_by_role("row").filter(has_text=OPERATOR_ORGANIZATION)
    expect(bank_row).to_contain_text("未確認")
    page.evaluate("window.renkeiNoReload = true")

    # 5. Meanwhile, in another browser, an operator finds it in the inbox and acknowledges.
    context = chromium.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    try:
        # The same checks on every page as the main tab (the fixture's Visitor class).
        operator = type(visitor)(context.new_page(), live_server.url, "test_sharing-operator")
        sign_in(operator, OPERATOR)
        menu_link(operator, "/sharing/inbox/").click()
        operator.checkpoint("inbox")
        operator.page.get_by_role("link", name=ADVISORY_TITLE).click()
        operator.checkpoint("advisory-for-operator")
        expect(operator.page.get_by_role("cell", name="198.51.100.20")).to_be_visible()
        with operator.page.expect_download() as download:
            operator.page.get_by_role("link", name="indicators.csv").click()
        assert download.value.suggested_filename == "indicators.csv"
        operator.page.get_by_role("button", name="受領確認").click()
        operator.checkpoint("advisory-acknowledged")
        expect(operator.page.get_by_role("status").first).to_contain_text("受領確認を記録しました。")
    finally:
        context.close()
    assert (
        Acknowledgement.objects.get(advisory__title=ADVISORY_TITLE).organization.name_ja
        == OPERATOR_ORGANIZATION
    )
    advisory = Advisory.objects.get(title=ADVISORY_TITLE)
    assert [entry.organization.name_ja for entry in advisory.audience.all()] == [OPERATOR_ORGANIZATION]
    assert list(advisory.observables.values_list("type", "value")) == [("ipv4-addr", "198.51.100.20")]

    # 6. The issuer's table shows it without a reload.
    expect(bank_row).to_contain_text("受領確認済み", timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(bank_row).to_contain_text(str(Acknowledgement.objects.get(advisory__title=ADVISORY_TITLE).user))
    assert page.evaluate("window.renkeiNoReload") is True
    visitor.checkpoint("acknowledgements-live")


def test_observable_rows_and_the_organization_picker_work_without_javascript(
    demo, visitor_without_javascript
):
    visitor = visitor_without_javascript
    page = visitor.page

    # The report form offers three empty rows; one bad row sends it back with the message on that row.
    sign_in(visitor, OPERATOR)
    visitor.open("/sharing/reports/new/", "report-form")
    observables = page.get_by_role("group", name="観測情報")
    rows = observables.locator("[data-row]")
    expect(rows).to_have_count(3)
    expect(observables.locator("button[data-rows-add]")).to_be_hidden()
    fill_report(page, "制御系ネットワークへの不審な通信")
    rows.nth(0).get_by_role("combobox").select_option("ipv4-addr")
    rows.nth(0).get_by_role("textbox").fill("198.51.100.23")
    rows.nth(2).get_by_role("combobox").select_option("ipv4-addr")
    rows.nth(2).get_by_role("textbox").fill("198.51.100.999")
    page.get_by_role("button", name="情報連絡を提出").click()
    visitor.checkpoint("report-form-bad-row")
    bad = rows.nth(2).get_by_role("textbox")
    expect(bad).to_have_attribute("aria-invalid", "true")
    expect(rows.nth(2)).to_contain_text("198.51.100.999 は正しい ipv4-addr ではありません。")
    expect(rows.nth(0).get_by_role("textbox")).to_have_value("198.51.100.23")
    assert not Report.objects.filter(title="制御系ネットワークへの不審な通信").exists()
    bad.fill("198.51.100.99")
    page.get_by_role("button", name="情報連絡を提出").click()
    visitor.checkpoint("report-detail")
    report = Report.objects.get(title="制御系ネットワークへの不審な通信")
    assert sorted(report.versions.get().observables.values_list("value", flat=True)) == [
        "198.51.100.23",
        "198.51.100.99",
    ]
    sign_out(visitor)

    # The national centre searches (Enter in the search box), adds from the results, and issues.
    sign_in(visitor, "nco-coordinator")
    visitor.open("/sharing/advisories/new/", "advisory-form")
    page.get_by_label("件名").fill("制御系ネットワークの点検のお願い")
    page.get_by_label("本文").fill("不審な通信の有無を確認してください。")
    organizations = organization_picker(page)
    organizations.get_by_role("searchbox").fill("さきがけ")
    organizations.get_by_role("searchbox").press("Enter")
    page.wait_for_load_state()
    visitor.checkpoint("advisory-form-search")
    assert not Advisory.objects.filter(title="制御系ネットワークの点検のお願い").exists()
    expect(page.get_by_label("件名")).to_have_value("制御系ネットワークの点検のお願い")
    organizations.get_by_role("button", name=re.compile(OPERATOR_ORGANIZATION)).click()
    visitor.checkpoint("advisory-form-chosen")
    expect(organizations.locator(".chip")).to_contain_text(OPERATOR_ORGANIZATION)
    # Enter in a text field brings the page back as it was: the chip's remove button is not pressed.
    page.get_by_label("件名").press("Enter")
    page.wait_for_load_state()
    expect(organizations.locator(".chip")).to_have_count(1)
    expect(page.get_by_label("本文")).to_have_value("不審な通信の有無を確認してください。")
    page.get_by_role("button", name="情報提供を発出").click()
    visitor.checkpoint("advisory-issued")
    advisory = Advisory.objects.get(title="制御系ネットワークの点検のお願い")
    assert [entry.organization.name_ja for entry in advisory.audience.all()] == [OPERATOR_ORGANIZATION]


def test_red_recipients_and_forwarding_are_chosen_in_pickers(demo, visitor):
    page = visitor.page

    # 1. The operator names the ministry's coordinator on a TLP:RED report, found by username.
    sign_in(visitor, OPERATOR)
    visitor.open("/sharing/reports/new/", "report-form")
    fill_report(page, RED_TITLE)
    page.get_by_role("radio", name=re.compile(r"^TLP:RED ")).check()
    recipients = picker(page, "recipients")
    search = recipients.get_by_role("searchbox")
    search.fill("fsa-coord")
    search.press("Enter")  # searches at once; it does not submit the report
    recipients.locator("[data-picker-add]").click()
    expect(recipients.locator(".chip")).to_contain_text("fsa-coordinator")
    visitor.checkpoint("report-form-recipients")
    assert not Report.objects.filter(title=RED_TITLE).exists()
    page.get_by_role("button", name="情報連絡を提出").click()
    visitor.checkpoint("red-report")
    named = Report.objects.get(title=RED_TITLE).grants.filter(reason=GrantReason.NAMED)
    assert [grant.user.username for grant in named] == ["fsa-coordinator"]
    sign_out(visitor)

    # 2. The ministry forwards a TLP:AMBER report to a securities company and one of its officers.
    report = operators_report("ネットバンキングへの不審なログイン")
    sign_in(visitor, "fsa-coordinator")
    visitor.open(f"/sharing/reports/{report.pk}/", "report-to-forward")
    organizations = picker(page, "forward-organizations")
    organizations.get_by_role("searchbox").fill("あけぼの")
    organizations.locator("[data-picker-add]").click()
    expect(organizations.locator(".chip")).to_contain_text("あけぼの証券株式会社")
    people = picker(page, "forward-people")
    people.get_by_role("searchbox").fill("finance-op2-off")
    people.locator("[data-picker-add]").click()
    expect(people.locator(".chip")).to_contain_text("finance-op2-officer")
    visitor.checkpoint("forward-pickers")
    page.get_by_role("button", name="転送", exact=True).click()
    visitor.checkpoint("forwarded")
    expect(page.get_by_role("status").first).to_contain_text("情報連絡を転送しました。")
    forwarded = report.grants.filter(reason=GrantReason.FORWARDED)
    assert {str(grant.organization or grant.user.username) for grant in forwarded} == {
        "あけぼの証券株式会社",
        "finance-op2-officer",
    }
    sign_out(visitor)

    # 3. An advisory's organization picker follows the label: under TLP:RED it offers nobody.
    sign_in(visitor, "nco-coordinator")
    visitor.open("/sharing/advisories/new/", "advisory-form")
    organizations = organization_picker(page)
    organizations.get_by_role("searchbox").fill("さきがけ")
    add = organizations.locator("[data-picker-add]")
    expect(add).to_have_count(1)
    page.get_by_role("radio", name=re.compile(r"^TLP:RED ")).check()
    expect(add).to_have_count(0)
    expect(organizations.locator("[data-picker-count]")).to_contain_text("TLP:RED")
    page.get_by_role("radio", name=re.compile(r"^TLP:AMBER ")).check()
    expect(add).to_have_count(1)
    visitor.checkpoint("advisory-picker-follows-label")


def test_forwarding_through_the_pickers_works_without_javascript(demo, visitor_without_javascript):
    visitor = visitor_without_javascript
    page = visitor.page
    report = operators_report("ネットバンキングへの不審なログイン")
    sign_in(visitor, "fsa-coordinator")
    visitor.open(f"/sharing/reports/{report.pk}/", "report-to-forward")
    organizations = picker(page, "forward-organizations")
    organizations.get_by_role("searchbox").fill("あけぼの")
    organizations.get_by_role("searchbox").press("Enter")
    page.wait_for_load_state()
    visitor.checkpoint("forward-search")
    organizations.locator("[data-picker-add]").click()
    page.wait_for_load_state()
    visitor.checkpoint("forward-chosen")
    expect(organizations.locator(".chip")).to_contain_text("あけぼの証券株式会社")
    assert not report.grants.filter(reason=GrantReason.FORWARDED).exists()
    page.get_by_role("button", name="転送", exact=True).click()
    visitor.checkpoint("forwarded")
    expect(page.get_by_role("status").first).to_contain_text("情報連絡を転送しました。")
    assert [str(grant.organization) for grant in report.grants.filter(reason=GrantReason.FORWARDED)] == [
        "あけぼの証券株式会社"
    ]
