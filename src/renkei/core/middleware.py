"""Request-wide policies: the content security policy, the user's language, mandatory 2FA."""

from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django_otp import user_has_device

from renkei.directory.choices import TWO_FACTOR_ORGANIZATION_TYPES


class ContentSecurityPolicyMiddleware:
    """Django 5.2 has no CSP support of its own; every page forbids third-party sources."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


def preferred_language(request) -> str:
    """The signed-in user's saved language, else the switcher's cookie, else Japanese.

    The browser's Accept-Language is deliberately not consulted: Renkei is Japanese first, and
    English is a choice a person makes (on the login page or in the header), not a side effect
    of how a shared terminal's browser happens to be configured.
    """
    user = getattr(request, "user", None)
    saved = getattr(user, "language", "") if user is not None and user.is_authenticated else ""
    if saved and translation.check_for_language(saved):
        return saved
    cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    if cookie in dict(settings.LANGUAGES) and translation.check_for_language(cookie):
        return cookie
    return settings.LANGUAGE_CODE


class UserLanguageMiddleware:
    """Activates `preferred_language` for the request (runs after authentication)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = preferred_language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        return self.get_response(request)


def requires_two_factor(user) -> bool:
    """Government staff and administrators must use TOTP; for everyone else it is optional."""
    if not user.is_authenticated:
        return False
    return (
        user.is_superuser
        or user.is_staff
        or user.memberships.filter(
            organization__active=True, organization__type__in=TWO_FACTOR_ORGANIZATION_TYPES
        ).exists()
    )


def must_pass_two_factor(user) -> bool:
    """Staff who must use 2FA, and anyone who enrolled an authenticator: an enrolled second factor
    that is never asked for would protect nothing. The web pages and the API both apply this."""
    return requires_two_factor(user) or user_has_device(user)


class TwoFactorRequiredMiddleware:
    """Sends people who must pass 2FA (see `must_pass_two_factor`) to set it up or to enter a code
    before any other page."""

    EXEMPT_URL_NAMES = ("two_factor_verify", "two_factor_setup", "logout", "set_language", "healthz", "login")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not user.is_verified()
            and not self._exempt(request.path_info)
            and must_pass_two_factor(user)
        ):
            target = "two_factor_verify" if user_has_device(user) else "two_factor_setup"
            return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)

    def _exempt(self, path: str) -> bool:
        # The API and TAXII authenticate with tokens, not sessions; static files carry nothing.
        if path.startswith((settings.STATIC_URL, "/api/", "/taxii2/")):
            return True
        return any(path == reverse(name) for name in self.EXEMPT_URL_NAMES)
