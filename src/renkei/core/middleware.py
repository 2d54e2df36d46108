"""Request-wide policies: the content security policy, the user's language, mandatory 2FA."""

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation

from renkei.directory.choices import TWO_FACTOR_ORGANIZATION_TYPES


class ContentSecurityPolicyMiddleware:
    """Django 5.2 has no CSP support of its own; every page forbids third-party sources."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class UserLanguageMiddleware:
    """A signed-in user's saved language wins over the browser's and the cookie's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = getattr(request.user, "language", "") if request.user.is_authenticated else ""
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


def requires_two_factor(user) -> bool:
    """National-centre and ministry staff must use TOTP; for everyone else it is optional."""
    return user.is_authenticated and user.memberships.filter(
        organization__type__in=TWO_FACTOR_ORGANIZATION_TYPES
    ).exists()


class TwoFactorRequiredMiddleware:
    """Sends staff who must use 2FA to set it up or to enter a code before any other page."""

    EXEMPT_URL_NAMES = ("two_factor_verify", "two_factor_setup", "logout", "set_language", "healthz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        path = request.path_info
        exempt = path.startswith((settings.STATIC_URL, "/api/")) or any(
            path == reverse(name) for name in self.EXEMPT_URL_NAMES
        )
        if not exempt and user.is_authenticated and not user.is_verified() and requires_two_factor(user):
            from django_otp import user_has_device

            target = "two_factor_verify" if user_has_device(user) else "two_factor_setup"
            return redirect(f"{reverse(target)}?next={request.get_full_path()}")
        return self.get_response(request)
