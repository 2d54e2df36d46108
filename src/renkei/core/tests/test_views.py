"""Sign-in, two-factor authentication, profile, health check and the policies every page follows."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.audit.models import AuditRecord
from renkei.directory.tests.factories import UserFactory

PASSWORD = "renkei-test-password"


def verified_client(user) -> Client:
    """A client signed in as `user` who has passed two-factor authentication."""
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def wrong_code(device: TOTPDevice) -> str:
    return f"{(int(current_code(device)) + 500_000) % 1_000_000:06d}"


# --- Health check -----------------------------------------------------------------------------------


def test_healthz_answers_ok_and_nothing_else(client, db):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"]
    assert "Server" not in response and "X-Powered-By" not in response


def test_healthz_needs_no_login_even_for_staff_without_2fa(community):
    client = Client()
    client.force_login(community.nisc_coordinator)
    assert client.get(reverse("healthz")).status_code == 200


# --- Anonymous access -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_name, kwargs",
    [
        ("home", {}),
        ("profile", {}),
        ("two_factor_setup", {}),
        ("two_factor_verify", {}),
        ("directory:sector_list", {}),
        ("directory:sector_detail", {"code": "finance"}),
        ("directory:organization_list", {}),
        ("directory:organization_detail", {"pk": 1}),
        ("directory:organization_edit", {"pk": 1}),
        ("directory:contact_routes_edit", {"pk": 1}),
        ("directory:member_add", {"pk": 1}),
        ("directory:person_list", {}),
        ("directory:person_detail", {"pk": 1}),
    ],
)
def test_anonymous_visitors_are_sent_to_login(client, reference_data, url_name, kwargs):
    url = reverse(url_name, kwargs=kwargs)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


# --- Login, lockout and logout ---------------------------------------------------------------------


def test_login_page_is_a_plain_form_that_works_without_javascript(client, db):
    response = client.get(reverse("login"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'autocomplete="username"' in html
    assert 'autocomplete="current-password"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_operator_logs_in_and_reaches_the_dashboard(community):
    client = Client()
    response = client.post(
        reverse("login"), {"username": "bank_a_reporter", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("home")
    html = response.content.decode()
    assert "さくら銀行" in html
    assert "銀行等セプター" in html  # the reporting chain: parent body
    assert "金融庁" in html  # sector ministry
    assert "国家サイバー統括室" in html  # national centre


def test_wrong_password_shows_a_readable_error(community):
    client = Client()
    response = client.post(reverse("login"), {"username": "bank_a_reporter", "password": "nope"})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_repeated_failures_lock_sign_in_with_a_translated_page(community, settings):
    client = Client()
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "bank_a_reporter", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "bank_a_reporter", "password": PASSWORD})
    html = response.content.decode()
    assert response.status_code in (403, 429)
    assert "ログインを一時的に停止しています" in html
    assert f"{settings.AXES_FAILURE_LIMIT}回" in html
    assert "_auth_user_id" not in client.session


def test_an_expired_form_gets_a_readable_page_within_the_csp(db):
    response = Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "x", "password": "y"})
    html = response.content.decode()
    assert response.status_code == 403
    assert "フォームの有効期限が切れました" in html
    assert "<style" not in html and " style=" not in html


def test_logout_requires_post(community):
    client = Client()
    client.force_login(community.bank_a_reporter)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


# --- Two-factor authentication ---------------------------------------------------------------------


def test_national_centre_staff_without_a_device_must_set_one_up(community):
    client = Client()
    client.force_login(community.nisc_coordinator)
    response = client.get(reverse("directory:sector_list"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('two_factor_setup')}?next=%2Fdirectory%2Fsectors%2F"


def test_ministry_staff_with_a_device_must_enter_a_code(community):
    TOTPDevice.objects.create(user=community.fsa_coordinator, name="phone", confirmed=True)
    client = Client()
    client.force_login(community.fsa_coordinator)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor_verify"))


def test_operators_are_not_asked_for_a_second_factor(community):
    client = Client()
    client.force_login(community.bank_a_reporter)
    assert client.get(reverse("home")).status_code == 200


def test_an_operator_who_enrolled_a_device_is_asked_for_it(community):
    TOTPDevice.objects.create(user=community.bank_a_reporter, name="phone", confirmed=True)
    client = Client()
    client.force_login(community.bank_a_reporter)
    response = client.get(reverse("home"))
    assert response["Location"].startswith(reverse("two_factor_verify"))


def test_setup_shows_qr_code_and_secret_and_confirms_with_a_code(community):
    user = community.nisc_coordinator
    client = Client()
    client.force_login(user)
    response = client.get(reverse("two_factor_setup"), {"next": "/directory/sectors/"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html and "<path" in html
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    secret_text = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html).group(1)
    assert secret_text.replace(" ", "") in device.config_url

    # Reloading keeps the same key, so an already scanned QR code stays valid.
    client.get(reverse("two_factor_setup"))
    assert TOTPDevice.objects.filter(user=user).count() == 1

    wrong = client.post(reverse("two_factor_setup"), {"token": wrong_code(device)})
    assert wrong.status_code == 200
    assert 'aria-invalid="true"' in wrong.content.decode()
    # django-otp makes the next attempt wait a second after a wrong code; a person never notices.
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )

    response = client.post(
        reverse("two_factor_setup"), {"token": current_code(device), "next": "/directory/sectors/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/directory/sectors/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/directory/sectors/").status_code == 200
    assert AuditRecord.objects.filter(object_type="otp_totp.totpdevice", object_id=str(device.pk)).exists()


def test_verify_accepts_the_current_code_once(community):
    user = community.nisc_coordinator
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)
    code = current_code(device)

    response = client.post(reverse("two_factor_verify"), {"token": code, "next": "/directory/people/"})
    assert response.status_code == 302
    assert response["Location"] == "/directory/people/"
    assert client.get("/directory/people/").status_code == 200

    # The same code is refused in a second session: a code overheard once cannot be replayed.
    other = Client()
    other.force_login(user)
    replay = other.post(reverse("two_factor_verify"), {"token": code})
    assert replay.status_code == 200
    assert 'aria-invalid="true"' in replay.content.decode()


def test_repeated_wrong_codes_explain_the_wait(community):
    user = community.nisc_coordinator
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    # As after three wrong codes in a row: django-otp now makes every attempt wait four seconds.
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=3, throttling_failure_timestamp=timezone.now()
    )
    client = Client()
    client.force_login(user)
    refused = client.post(reverse("two_factor_verify"), {"token": current_code(device)})
    assert refused.status_code == 200
    assert "誤ったコードが続いたため" in refused.content.decode()
    assert client.get(reverse("home")).status_code == 302


def test_verify_refuses_to_redirect_off_site(community):
    user = community.nisc_coordinator
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)
    response = client.post(
        reverse("two_factor_verify"), {"token": current_code(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("home")


def test_setup_with_a_confirmed_device_does_not_create_another(community):
    client = verified_client(community.nisc_coordinator)
    response = client.get(reverse("two_factor_setup"))
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=community.nisc_coordinator).count() == 1


# --- Profile and language ---------------------------------------------------------------------------


def test_profile_shows_roles_and_two_factor_status(community):
    client = Client()
    client.force_login(community.bank_a_admin)
    html = client.get(reverse("profile")).content.decode()
    assert "さくら銀行" in html
    assert "組織管理者" in html  # Organization administrator
    assert reverse("two_factor_setup") in html


def test_profile_saves_the_language_preference(community):
    user = community.bank_a_reporter
    client = Client()
    client.force_login(user)
    response = client.post(reverse("profile"), {"language": "en"}, follow=True)
    user.refresh_from_db()
    assert user.language == "en"
    assert "Your language preference has been saved." in response.content.decode()


# --- Page policies ----------------------------------------------------------------------------------

EXTERNAL_URL = re.compile(r"""(?:https?:)?//(?!testserver[/"'])[a-z0-9.-]+""", re.IGNORECASE)


def _pages_of(client, urls):
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        yield url, response


def test_every_page_has_a_strict_csp_and_no_external_urls_or_inline_code(community):
    bank = community.bank_a
    anonymous_pages = [reverse("login")]
    operator_pages = [
        reverse("home"),
        reverse("profile"),
        reverse("two_factor_setup"),
        reverse("directory:sector_list"),
        reverse("directory:sector_detail", kwargs={"code": "finance"}),
        reverse("directory:organization_list"),
        reverse("directory:organization_list") + "?type=operator&sector=finance&q=銀行",
        reverse("directory:organization_detail", kwargs={"pk": bank.pk}),
        reverse("directory:organization_detail", kwargs={"pk": community.bank_ceptoar.pk}),
        reverse("directory:organization_edit", kwargs={"pk": bank.pk}),
        reverse("directory:contact_routes_edit", kwargs={"pk": bank.pk}),
        reverse("directory:member_add", kwargs={"pk": bank.pk}),
        reverse("directory:person_list"),
        reverse("directory:person_detail", kwargs={"pk": community.bank_a_admin.pk}),
    ]
    operator = Client()
    operator.force_login(community.bank_a_admin)
    pages = [*_pages_of(Client(), anonymous_pages), *_pages_of(operator, operator_pages)]
    for url, response in pages:
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        html = response.content.decode()
        assert not EXTERNAL_URL.search(html), (url, EXTERNAL_URL.search(html).group(0))
        assert " style=" not in html and "<style" not in html, url
        for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL):
            assert 'src="/static/' in attributes and not body.strip(), (url, attributes)
        assert not re.search(r"\son[a-z]+=", html), url


def test_pages_declare_the_active_language_and_offer_a_skip_link(community):
    client = Client()
    client.force_login(community.bank_a_reporter)
    html = client.get(reverse("home")).content.decode()
    assert '<html lang="ja">' in html
    assert 'href="#main"' in html and 'id="main"' in html
    assert '<nav class="main-nav" aria-label=' in html


def test_missing_pages_use_the_site_layout(community):
    client = Client()
    client.force_login(community.bank_a_reporter)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "ページが見つかりません" in response.content.decode()


def test_users_without_any_membership_see_an_explanation(db):
    user = UserFactory()
    client = Client()
    client.force_login(user)
    html = client.get(reverse("home")).content.decode()
    assert "まだどの組織にも所属していません" in html
