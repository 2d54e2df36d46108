"""A demo operator browses the directory in Japanese and English, in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from renkei.directory.models import User

pytestmark = pytest.mark.browser


def test_operator_switches_language_and_browses_sectors_to_members(demo, visitor):
    page = visitor.page
    visitor.open("/accounts/login/", "login-ja")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text("Renkeiにログイン")

    visitor.login("finance-op1-reporter")
    expect(page).to_have_url(re.compile(r"/$"))
    visitor.checkpoint("home-ja")
    expect(page.get_by_role("heading", name="所属組織と役割")).to_be_visible()
    expect(page.get_by_role("link", name="株式会社さきがけ銀行").first).to_be_visible()

    # ja -> en: the whole page, the header included, changes language and the choice is saved.
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    visitor.checkpoint("home-en")
    expect(page.get_by_role("heading", name="Your organizations and roles")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Sectors")).to_be_visible()
    assert User.objects.get(username="finance-op1-reporter").language == "en"

    # en -> ja
    page.get_by_role("button", name="日本語").click()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    visitor.checkpoint("home-ja-again")
    assert User.objects.get(username="finance-op1-reporter").language == "ja"

    # sectors -> a sector -> an organization -> its members
    page.get_by_role("navigation", name="メインメニュー").get_by_role("link", name="重要インフラ分野").click()
    visitor.checkpoint("sectors")
    expect(page.get_by_role("row")).to_have_count(16)  # header + the 15 sectors
    page.get_by_role("link", name="金融", exact=True).click()
    visitor.checkpoint("sector-finance")
    expect(page.get_by_role("heading", level=1)).to_have_text("金融")
    page.get_by_role("link", name="株式会社さきがけ銀行").click()
    visitor.checkpoint("organization")
    members = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="役割"))
    expect(members.get_by_role("row")).to_have_count(7)  # header + one person per role
    expect(members).to_contain_text("finance-op1-org_admin")
    members.get_by_role("link").first.click()
    visitor.checkpoint("person")
    expect(page.get_by_role("cell", name="株式会社さきがけ銀行")).to_be_visible()


def test_other_operators_members_stay_hidden(demo, visitor):
    page = visitor.page
    visitor.open("/accounts/login/", "login")
    visitor.login("medical-op1-reporter")
    visitor.open("/directory/organizations/?q=さきがけ", "search")
    page.get_by_role("link", name="株式会社さきがけ銀行").click()
    visitor.checkpoint("organization-outside-chain")
    expect(
        page.get_by_text("メンバーと連絡経路は、この組織の情報連絡の経路にある組織にのみ表示されます。")
    ).to_be_visible()
    expect(page.get_by_text("finance-op1-org_admin")).to_have_count(0)


def test_organization_filters_update_live_and_without_reload(demo, visitor):
    page = visitor.page
    visitor.open("/accounts/login/", "login")
    visitor.login("finance-op1-reporter")
    visitor.open("/directory/organizations/", "organizations")
    total = page.locator("#organization-count").inner_text()
    # A marker on the window survives htmx swaps but not a page load.
    page.evaluate("window.renkeiNoReload = true")

    page.get_by_label("名称で検索").press_sequentially("銀行", delay=50)
    expect(page.locator("#organization-count")).not_to_have_text(total)
    expect(page).to_have_url(re.compile(r"q=%E9%8A%80%E8%A1%8C"))
    page.get_by_label("種別").select_option("operator")
    results = page.locator("#organization-results")
    expect(results.get_by_role("cell", name="セプター", exact=True)).to_have_count(0)
    expect(results.get_by_role("cell", name="重要インフラ事業者", exact=True).first).to_be_visible()
    expect(results).to_contain_text("株式会社さきがけ銀行")
    assert page.evaluate("window.renkeiNoReload") is True
    visitor.checkpoint("organizations-filtered")


def test_org_admin_gets_a_readable_message_for_too_few_contact_routes(demo, visitor):
    page = visitor.page
    visitor.open("/accounts/login/", "login")
    visitor.login("finance-op1-org_admin")
    visitor.open("/directory/organizations/?q=さきがけ", "search")
    page.get_by_role("link", name="株式会社さきがけ銀行").click()
    page.get_by_role("link", name="連絡経路の編集").click()
    visitor.checkpoint("contact-routes")
    page.get_by_role("group", name="連絡経路 2").get_by_label("削除").check()
    page.get_by_role("button", name="連絡経路を保存").click()
    visitor.checkpoint("contact-routes-error")
    expect(page.get_by_role("alert")).to_contain_text("組織には少なくとも2つの連絡経路")
