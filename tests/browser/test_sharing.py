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

from renkei.sharing.models import Acknowledgement, Attachment, Report, ReportComment

pytestmark = pytest.mark.browser

OPERATOR = "finance-op1-reporter"
OPERATOR_ORGANIZATION = "株式会社さきがけ銀行"
REPORT_TITLE = "インターネットバンキングへの不正アクセス"
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
    detected = timezone.localtime(timezone.now() - dt.timedelta(hours=1))
    page.get_by_label("件名").fill(REPORT_TITLE)
    page.locator("input[name=kind][value=failure]").check()
    page.get_by_label("発生日時").fill((detected - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("検知日時").fill(detected.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("原因", exact=True).select_option("intentional.intrusion")
    page.get_by_label("事案の詳細").fill("不審なログインを検知した。\n<script>alert('x')</script>")
    page.get_by_label("観測情報", exact=True).fill("ipv4-addr 203.0.113.77")
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
    expect(page.get_by_role("cell", name="203.0.113.77")).to_be_visible()
    download_link = page.get_by_role("link", name="access.log")
    with page.expect_download() as download:
        download_link.click()
    assert download.value.suggested_filename == "access.log"
    report = Report.objects.get(title=REPORT_TITLE)
    assert Attachment.objects.filter(version__report=report).count() == 1
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
    expect(page.get_by_role("status")).to_contain_text("質問を報告元組織に送信しました。")
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
    page.get_by_label("件名").fill("金融機関を狙う不正ログインへの注意")
    page.get_by_label("本文").fill("インターネットバンキングへの不正ログインが確認されています。")
    page.get_by_label("重要度").select_option("high")
    page.get_by_role("group", name="重要インフラ分野").get_by_label("金融", exact=True).check()
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
        operator.page.get_by_role("link", name="金融機関を狙う不正ログインへの注意").click()
        operator.checkpoint("advisory-for-operator")
        operator.page.get_by_role("button", name="受領確認").click()
        operator.checkpoint("advisory-acknowledged")
        expect(operator.page.get_by_role("status").first).to_contain_text("受領確認を記録しました。")
    finally:
        context.close()
    assert Acknowledgement.objects.get().organization.name_ja == OPERATOR_ORGANIZATION

    # 6. The issuer's table shows it without a reload.
    expect(bank_row).to_contain_text("受領確認済み", timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(bank_row).to_contain_text(str(Acknowledgement.objects.get().user))
    assert page.evaluate("window.renkeiNoReload") is True
    visitor.checkpoint("acknowledgements-live")
