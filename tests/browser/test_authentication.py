"""Signing in with the keyboard alone, two-factor codes, language on the login page, lockout."""

import re

import pytest
from django.conf import settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from renkei.directory.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_keyboard_only_login(demo, visitor):
    page = visitor.page
    visitor.open("/accounts/login/", "login")
    # The username field has focus on arrival; from there on, only keys.
    expect(page.locator("#id_username")).to_be_focused()
    page.keyboard.type("finance-op1-reporter")
    page.keyboard.press("Tab")
    expect(page.locator("#id_password")).to_be_focused()
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/$"))
    visitor.checkpoint("home")

    # The first Tab reaches the skip link, which appears and leads to the main content.
    page.keyboard.press("Tab")
    skip_link = page.get_by_role("link", name="本文へスキップ")
    expect(skip_link).to_be_focused()
    expect(skip_link).to_be_in_viewport()
    visitor.screenshot("skip-link-focused")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_language_can_be_chosen_on_the_login_page(demo, visitor):
    page = visitor.page
    visitor.open("/accounts/login/", "login-ja")
    page.get_by_role("button", name="English").click()
    visitor.checkpoint("login-en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to Renkei")
    visitor.login("finance-op3-reporter")
    visitor.checkpoint("home-en")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def test_national_centre_coordinator_passes_totp(demo, visitor):
    page = visitor.page
    visitor.open("/accounts/login/", "login")
    visitor.login("nco-coordinator")
    expect(page).to_have_url(re.compile(r"/accounts/2fa/verify/\?next=%2F$"))
    visitor.checkpoint("verify")
    device = TOTPDevice.objects.get(user__username="nco-coordinator", confirmed=True)
    page.get_by_label("6桁の確認コード").fill(current_code(device))
    page.get_by_role("button", name="確認").click()
    expect(page).to_have_url(re.compile(r"/$"))
    visitor.checkpoint("home")
    expect(page.get_by_role("link", name="国家サイバー統括室").first).to_be_visible()


def test_operator_turns_on_optional_two_factor_from_the_profile(demo, visitor):
    page = visitor.page
    visitor.open("/accounts/login/", "login")
    visitor.login("finance-op3-reporter")
    visitor.open("/accounts/profile/", "profile")
    page.get_by_role("link", name="二要素認証を設定する").click()
    visitor.checkpoint("setup")
    expect(page.locator("svg title")).to_have_text("認証アプリ用のQRコード")
    device = TOTPDevice.objects.get(user__username="finance-op3-reporter", confirmed=False)
    page.get_by_label("6桁の確認コード").fill(current_code(device))
    page.get_by_role("button", name="確認して有効にする").click()
    visitor.checkpoint("profile-with-2fa")
    expect(page.get_by_role("status")).to_contain_text("二要素認証を有効にしました")


def test_repeated_failures_show_the_lockout_page(demo, visitor):
    page = visitor.page
    visitor.open("/accounts/login/", "login")
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        visitor.login("finance-op1-reporter", password="not-the-password")
    expect(page.get_by_role("heading", level=1)).to_have_text("ログインを一時的に停止しています")
    visitor.checkpoint("locked-out")
    expect(page.get_by_role("alert")).to_contain_text(f"{settings.AXES_FAILURE_LIMIT}回")
