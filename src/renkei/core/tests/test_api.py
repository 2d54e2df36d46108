"""The API's foundations: authentication, problem details, `/me`, the OpenAPI schema and its docs page."""

import datetime as dt
import json
import re

import pytest
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, RequestFactory
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from ninja import NinjaAPI
from ninja.testing import TestClient

from renkei.api import OPENAPI_SNAPSHOT, openapi_document
from renkei.core.api import SessionAuth
from renkei.core.models import ApiToken
from renkei.core.problems import PROBLEM_CONTENT_TYPE, Problem, ProblemType, install_problem_handlers
from renkei.core.services import token_create, token_revoke
from renkei.directory.choices import Role
from renkei.directory.tests.factories import MembershipFactory, UserFactory

ME = "/api/v1/me"


def bearer(user, **token_options) -> dict:
    _token, secret = token_create(actor=user, user=user, **token_options)
    return {"Authorization": f"Bearer {secret}"}


def assert_problem(response, status: int, problem_type: str = ProblemType.BLANK) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"] == problem_type
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


# --- Authentication -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_no_credentials_is_401_with_a_bearer_challenge(client):
    response = client.get(ME)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="renkei"'


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["garbage", "rk_not-a-real-token", ""])
def test_unknown_token_is_401(client, token):
    response = client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, ProblemType.INVALID_TOKEN)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_expired_token_is_401(client, community):
    token, secret = token_create(actor=None, user=community.bank_a_reporter, expires_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = client.get(ME, headers={"Authorization": f"Bearer {secret}"})
    assert_problem(response, 401, ProblemType.INVALID_TOKEN)


def test_revoked_token_is_401(client, community):
    token, secret = token_create(actor=None, user=community.bank_a_reporter)
    assert client.get(ME, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    token_revoke(actor=None, token=token)
    response = client.get(ME, headers={"Authorization": f"Bearer {secret}"})
    assert_problem(response, 401, ProblemType.INVALID_TOKEN)


def test_token_of_a_deactivated_user_is_401(client, community):
    headers = bearer(community.bank_a_reporter)
    community.bank_a_reporter.is_active = False
    community.bank_a_reporter.save()
    assert_problem(client.get(ME, headers=headers), 401, ProblemType.INVALID_TOKEN)


def test_a_token_whose_audit_record_fails_is_not_created(community, monkeypatch):
    def audit_refused(**_record):
        raise RuntimeError("the audit trail refused the record")

    monkeypatch.setattr("renkei.core.services.audit_write", audit_refused)
    with pytest.raises(RuntimeError):
        token_create(actor=None, user=community.bank_a_reporter)
    assert not ApiToken.objects.filter(user=community.bank_a_reporter).exists()


def test_token_use_is_recorded(client, community):
    token, secret = token_create(actor=None, user=community.bank_a_reporter)
    assert token.last_used_at is None
    before = timezone.now()
    assert client.get(ME, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at >= before


def test_bad_token_does_not_fall_back_to_the_session(client, community):
    client.force_login(community.bank_a_reporter)
    assert client.get(ME).status_code == 200
    response = client.get(ME, headers={"Authorization": "Bearer rk_wrong"})
    assert_problem(response, 401, ProblemType.INVALID_TOKEN)


def test_other_authorization_schemes_are_left_to_the_session(client, community):
    # A proxy's Basic auth in front of the site must not lock the web interface out of its API.
    client.force_login(community.bank_a_reporter)
    assert client.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 200
    client.logout()
    assert_problem(client.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)


def test_session_works_for_safe_methods_with_csrf_enforced(community):
    client = Client(enforce_csrf_checks=True)
    client.force_login(community.bank_a_reporter)
    response = client.get(ME)
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "bank_a_reporter"


def test_session_requires_csrf_token_for_unsafe_methods(community, settings):
    request = RequestFactory().post("/api/v1/anything")
    request.user = community.bank_a_reporter
    request.COOKIES[settings.CSRF_COOKIE_NAME] = "x" * 32
    with pytest.raises(Problem) as raised:
        SessionAuth()(request)
    assert raised.value.status == 403
    assert raised.value.type == ProblemType.CSRF_FAILED

    accepted = RequestFactory().post("/api/v1/anything", headers={"X-CSRFToken": "x" * 32})
    accepted.user = community.bank_a_reporter
    accepted.COOKIES[settings.CSRF_COOKIE_NAME] = "x" * 32
    assert SessionAuth()(accepted) == community.bank_a_reporter


def test_session_of_staff_without_second_factor_is_401(client, community):
    # A ministry coordinator signed in with a password only must not reach the API through the session.
    client.force_login(community.fsa_coordinator)
    assert_problem(client.get(ME), 401, ProblemType.TWO_FACTOR_REQUIRED)


def test_session_of_enrolled_user_without_second_factor_is_401(client, community):
    TOTPDevice.objects.create(user=community.bank_a_reporter, name="phone", confirmed=True)
    client.force_login(community.bank_a_reporter)
    assert_problem(client.get(ME), 401, ProblemType.TWO_FACTOR_REQUIRED)


def test_staff_use_tokens_without_second_factor(client, community):
    response = client.get(ME, headers=bearer(community.fsa_coordinator))
    assert response.status_code == 200
    assert response.json()["two_factor_required"] is True


def test_answers_in_the_token_users_language(client, community):
    user = community.bank_a_reporter
    headers = bearer(user)
    assert client.get(ME, headers=headers)["Content-Language"] == "ja"
    user.language = "en"
    user.save()
    response = client.get("/api/v1/organizations?limit=0", headers=headers)
    assert response["Content-Language"] == "en"
    assert response.json()["title"] == "Invalid request"


# --- /me ------------------------------------------------------------------------------------------


def test_me_describes_the_user_their_organizations_and_roles(client, community):
    user = community.bank_a_reporter
    user.display_name = "佐藤 花子"
    user.language = "en"
    user.save()
    MembershipFactory(user=user, organization=community.bank_a, role=Role.OFFICER)
    MembershipFactory(user=user, organization=community.bank_ceptoar, role=Role.REPORTER)

    response = client.get(ME, headers=bearer(user))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["user"] == {
        "id": user.pk,
        "username": "bank_a_reporter",
        "display_name": "佐藤 花子",
        "email": "bank_a_reporter@example.jp",
        "language": "en",
    }
    organizations = {org["id"]: org for org in body["organizations"]}
    assert organizations[community.bank_a.pk] == {
        "id": community.bank_a.pk,
        "name_ja": "さくら銀行",
        "name_en": "Sakura Bank",
        "type": "operator",
        "sectors": ["finance"],
        "roles": ["officer", "reporter"],
    }
    assert organizations[community.bank_ceptoar.pk]["type"] == "ceptoar"
    assert organizations[community.bank_ceptoar.pk]["roles"] == ["reporter"]
    assert body["two_factor_required"] is False


def test_me_of_a_user_without_organizations(client, db):
    user = UserFactory(username="newcomer")
    body = client.get(ME, headers=bearer(user)).json()
    assert body["organizations"] == []
    assert body["user"]["language"] is None


# --- Problem details ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unknown_api_address_is_a_problem_404(client):
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404)
    assert set(body) == {"type", "title", "status", "detail"}


def test_wrong_method_is_a_problem_405(client, community):
    response = client.post(ME, headers=bearer(community.bank_a_reporter))
    assert_problem(response, 405)
    assert response["Allow"] == "GET"


def test_validation_errors_list_the_invalid_parameters(client, community):
    headers = bearer(community.bank_a_reporter)
    response = client.get("/api/v1/organizations?limit=abc&offset=-1", headers=headers)
    body = assert_problem(response, 422, ProblemType.VALIDATION)
    assert {(param["name"], param["location"]) for param in body["invalid_params"]} == {
        ("limit", "query"),
        ("offset", "query"),
    }
    assert all(param["reason"] for param in body["invalid_params"])


@pytest.fixture
def failing_api():
    """A throwaway API whose endpoints raise what services and helpers may raise."""
    api = NinjaAPI(urls_namespace="failing-api-test")
    install_problem_handlers(api)

    @api.get("/service-rejects")
    def service_rejects(request):
        raise DjangoValidationError({"name_ja": ["A name is required."]})

    @api.get("/service-rejects-plainly")
    def service_rejects_plainly(request):
        raise DjangoValidationError("A token must be valid for at least one day.")

    @api.get("/denied")
    def denied(request):
        raise PermissionDenied

    @api.get("/broken")
    def broken(request):
        raise RuntimeError("bug")

    return TestClient(api)


def test_service_validation_errors_are_422_problems(failing_api):
    body = assert_problem(failing_api.get("/service-rejects"), 422, ProblemType.VALIDATION)
    assert body["detail"] == "A name is required."
    assert body["invalid_params"] == [
        {"name": "name_ja", "location": "body", "reason": "A name is required."}
    ]

    body = assert_problem(failing_api.get("/service-rejects-plainly"), 422, ProblemType.VALIDATION)
    assert body["detail"] == "A token must be valid for at least one day."
    assert body["invalid_params"] == []


def test_permission_denied_is_a_problem_403(failing_api):
    assert_problem(failing_api.get("/denied"), 403)


def test_unexpected_errors_are_logged_and_answered_with_a_problem_500(failing_api, caplog):
    body = assert_problem(failing_api.get("/broken"), 500)
    assert "bug" not in body["detail"]
    assert "RuntimeError: bug" in caplog.text


# --- OpenAPI and docs -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_openapi_schema_matches_the_committed_snapshot(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    snapshot = json.loads(OPENAPI_SNAPSHOT.read_text(encoding="utf-8"))
    assert response.json() == snapshot, (
        "The API's OpenAPI schema changed. If the change is deliberate, run "
        "`renkei api_schema --update` and commit src/renkei/core/tests/openapi.snapshot.json."
    )
    assert openapi_document() == OPENAPI_SNAPSHOT.read_text(encoding="utf-8")


def test_openapi_documents_errors_as_problem_details(client, db):
    schema = client.get("/api/v1/openapi.json").json()
    organization_detail = schema["paths"]["/api/v1/organizations/{organization_id}"]["get"]
    assert set(organization_detail["responses"]["404"]["content"]) == {PROBLEM_CONTENT_TYPE}
    assert set(organization_detail["responses"]["200"]["content"]) == {"application/json"}
    assert set(schema["components"]["securitySchemes"]) == {"BearerTokenAuth", "SessionAuth"}
    assert schema["components"]["securitySchemes"]["BearerTokenAuth"] == {"type": "http", "scheme": "bearer"}


def test_api_schema_command_checks_the_snapshot(tmp_path, monkeypatch):
    call_command("api_schema", "--check")
    stale = tmp_path / "openapi.snapshot.json"
    stale.write_text("{}\n")
    monkeypatch.setattr("renkei.core.management.commands.api_schema.OPENAPI_SNAPSHOT", stale)
    with pytest.raises(CommandError, match="api_schema --update"):
        call_command("api_schema", "--check")
    call_command("api_schema", "--update")
    assert stale.read_text(encoding="utf-8") == openapi_document()


@pytest.mark.django_db
def test_docs_page_loads_only_local_assets_and_no_inline_script(client, settings):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    html = response.content.decode()

    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert asset.startswith(settings.STATIC_URL), f"{asset} is not served by Renkei"
        assert client.get(asset).status_code == 200, asset

    # Under `script-src 'self'` inline code would not run: every script is a file or inert data.
    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.DOTALL):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
        if "src=" in attributes:
            assert not body.strip()
    assert "style=" not in html and "<style" not in html
    settings_json = re.search(r'id="swagger-settings">(.*?)</script>', html, flags=re.DOTALL)
    swagger_settings = json.loads(settings_json.group(1))
    assert swagger_settings["url"] == "/api/v1/openapi.json"
    assert swagger_settings["validatorUrl"] is None  # otherwise Swagger UI calls validator.swagger.io


@pytest.mark.browser
def test_docs_page_renders_in_chromium_without_csp_violations(live_server, tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the live server's ORM use is sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    console_errors: list[str] = []
    foreign_requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
        page.on(
            "request",
            lambda request: request.url.startswith(live_server.url) or foreign_requests.append(request.url),
        )
        try:
            page.goto(f"{live_server.url}/api/v1/docs")
            page.get_by_text("Renkei API").first.wait_for()
            page.locator(".opblock-summary-path", has_text="/api/v1/organizations").first.wait_for()
        finally:
            page.screenshot(path=tmp_path / "api-docs.png", full_page=True)
            browser.close()
    assert foreign_requests == []
    assert console_errors == []
