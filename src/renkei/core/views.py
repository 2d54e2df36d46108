"""Pages every user meets: home, sign-in, two-factor authentication, profile, language."""

import django_otp
import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from renkei.core.accounts import (
    totp_device_confirm,
    totp_device_confirmed,
    totp_device_start,
    totp_secret_for_display,
    user_language_set,
)
from renkei.core.forms import LanguageForm, LoginForm, PasswordLinkRequestForm, PasswordSetForm, TokenForm
from renkei.core.middleware import requires_two_factor
from renkei.directory.choices import OrganizationType
from renkei.directory.models import Membership, Organization, Sector, User
from renkei.directory.views import memberships_by_organization, reporting_chain


@require_GET
@never_cache
def healthz(request):
    """For load balancers: 200 when the database answers, 503 otherwise, and nothing more."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return HttpResponse("unavailable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


def _safe_next(request, default: str) -> str:
    """The `next` target if it stays on this site, so no link can bounce users elsewhere."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@login_required
def home(request):
    """The dashboard: where the user stands in the community and what the directory holds."""
    user = request.user
    own_memberships = Membership.objects.restrict(user).filter(user=user).select_related("organization")
    positions = [
        {"organization": organization, "roles": roles, "chain": reporting_chain(organization, user)}
        for organization, roles in memberships_by_organization(own_memberships)
    ]
    organizations = Organization.objects.restrict(user).filter(active=True)
    counts = {
        "sectors": Sector.objects.restrict(user).filter(active=True).count(),
        "organizations": organizations.count(),
        "operators": organizations.filter(type=OrganizationType.OPERATOR).count(),
        "ceptoars": organizations.filter(type=OrganizationType.CEPTOAR).count(),
        "people": User.objects.restrict(user).filter(is_active=True).count(),
    }
    return render(request, "core/home.html", {"positions": positions, "counts": counts})


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "core/login.html"
    redirect_authenticated_user = True


class PasswordLinkRequestView(auth_views.PasswordResetView):
    form_class = PasswordLinkRequestForm
    template_name = "core/password_link_request.html"
    subject_template_name = "core/email/password_link_subject.txt"
    email_template_name = "core/email/password_link_body.txt"


class PasswordLinkSentView(auth_views.PasswordResetDoneView):
    template_name = "core/password_link_sent.html"


class PasswordSetView(auth_views.PasswordResetConfirmView):
    form_class = PasswordSetForm
    template_name = "core/password_set.html"


class PasswordSetDoneView(auth_views.PasswordResetCompleteView):
    template_name = "core/password_set_done.html"


def _remember_language(response, language: str) -> None:
    """The language cookie keeps the choice after sign-out, e.g. for the login page."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


@require_POST
def set_language(request):
    """Switch the language, signed in or not; a signed-in user's choice is also saved to the account."""
    default = reverse("home") if request.user.is_authenticated else reverse("login")
    response = redirect(_safe_next(request, default))
    form = LanguageForm(request.POST)
    if not form.is_valid():
        return response
    language = form.cleaned_data["language"]
    if request.user.is_authenticated:
        user_language_set(user=request.user, language=language)
    _remember_language(response, language)
    return response


@login_required
def profile(request):
    user = request.user
    form = LanguageForm(request.POST or None, initial={"language": user.language or request.LANGUAGE_CODE})
    if request.method == "POST" and form.is_valid():
        language = form.cleaned_data["language"]
        user_language_set(user=user, language=language)
        response = redirect("profile")
        _remember_language(response, language)
        # The confirmation is shown on the next page, which is already in the chosen language.
        with translation.override(language):
            messages.success(request, _("Your language preference has been saved."))
        return response
    own_memberships = Membership.objects.restrict(user).filter(user=user).select_related("organization")
    context = {
        "form": form,
        "positions": memberships_by_organization(own_memberships),
        "two_factor_device": totp_device_confirmed(user),
        "two_factor_required": requires_two_factor(user),
    }
    return render(request, "core/profile.html", context)


# From the third wrong code in a row the enforced wait is long enough to be worth explaining.
THROTTLE_NOTICE_AFTER_FAILURES = 3


def _wrong_code_message(device) -> str:
    """Why a code was refused. After each wrong code django-otp makes the next attempt wait
    (1, 2, 4, 8 … seconds), so say until when rather than let a correct code fail unexplained."""
    device.refresh_from_db()
    allowed, details = device.verify_is_allowed()
    if not allowed and details.get("failure_count", 0) >= THROTTLE_NOTICE_AFTER_FAILURES:
        return _("Too many wrong codes. Wait until %(time)s, then enter the current code.") % {
            "time": date_format(localtime(details["locked_until"]), "G:i:s")
        }
    return _(
        "That code is not right. Enter the code currently shown in your app, and check that "
        "your phone's clock is correct."
    )


@login_required
def two_factor_setup(request):
    """Enrol an authenticator app: scan the QR code (or type the secret), then prove it with a code."""
    user = request.user
    next_url = _safe_next(request, reverse("profile"))
    if totp_device_confirmed(user) is not None:
        messages.info(request, _("Two-factor authentication is already set up for your account."))
        return redirect(next_url)
    device = totp_device_start(user=user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp_device_confirm(user=user, device=device, token=form.cleaned_data["token"]):
            django_otp.login(request, device)
            messages.success(request, _("Two-factor authentication is now on for your account."))
            return redirect(next_url)
        form.add_error("token", _wrong_code_message(device))
    qr_code = segno.make(device.config_url, error="m")
    context = {
        "form": form,
        "next": next_url,
        # segno writes plain SVG paths (no style attributes), so the page stays within our CSP.
        "qr_svg": mark_safe(  # noqa: S308 - generated by segno from our own data, not user input
            qr_code.svg_inline(
                scale=5, dark="#1a1a1c", light="#ffffff", title=_("QR code for your authenticator app")
            )
        ),
        "secret": totp_secret_for_display(device),
        "issuer": settings.OTP_TOTP_ISSUER,
        "required": requires_two_factor(user),
    }
    return render(request, "core/two_factor_setup.html", context)


@login_required
def two_factor_verify(request):
    """Ask for the current code once per session, after the password."""
    user = request.user
    next_url = _safe_next(request, reverse("home"))
    device = totp_device_confirmed(user)
    if device is None:
        return redirect(f"{reverse('two_factor_setup')}?{request.GET.urlencode()}")
    if user.is_verified():
        return redirect(next_url)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        verified = django_otp.verify_token(user, device.persistent_id, form.cleaned_data["token"])
        if verified is not None:
            django_otp.login(request, verified)
            return redirect(next_url)
        form.add_error("token", _wrong_code_message(device))
    return render(request, "core/two_factor_verify.html", {"form": form, "next": next_url})
