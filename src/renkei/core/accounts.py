"""Writes people make to their own account: language preference and two-factor devices.

Like every other write in Renkei these are services: keyword-only, atomic, audited in the same
transaction as the change.
"""

from base64 import b32encode

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write
from renkei.core.tasks import send_email
from renkei.directory.choices import Language

TOTP_DEVICE_NAME = "authenticator"


@transaction.atomic
def user_language_set(*, user, language: str) -> None:
    """Save the language the user chose; the UserLanguageMiddleware applies it on every request."""
    if language not in Language.values:
        raise ValueError(f"unsupported language {language!r}")
    if user.language == language:
        return
    before = {"language": user.language}
    user.language = language
    user.save(update_fields=["language"])
    audit_write(actor=user, action=AuditAction.UPDATE, obj=user, before=before, after={"language": language})


def totp_device_confirmed(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


@transaction.atomic
def totp_device_start(*, user) -> TOTPDevice:
    """The user's pending authenticator enrolment, created on first use.

    The same unconfirmed device is returned until it is confirmed, so reloading the set-up page
    does not invalidate a QR code that the user has already scanned.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


@transaction.atomic
def totp_device_confirm(*, user, device: TOTPDevice, token: str) -> bool:
    """Confirm a pending device with a code from the authenticator app; False if the code is wrong."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user, confirmed=False)
    if not device.verify_token(token):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    # One authenticator per person: earlier pending enrolments are now meaningless.
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    audit_write(
        actor=user,
        action=AuditAction.CREATE,
        obj=device,
        object_repr=f"{user.get_username()} two-factor device",
        after={"device": device.persistent_id, "confirmed": True},
    )
    _tell_owner_about_new_device(user)
    return True


def _tell_owner_about_new_device(user) -> None:
    """Whoever enrols the first authenticator owns the account from then on, so its owner hears of it
    at once: an enrolment they did not make is a stolen password."""
    if not user.email:
        return
    with translation.override(user.language or settings.LANGUAGE_CODE):
        context = {"user": user, "base_url": settings.RENKEI_BASE_URL}
        subject = render_to_string("core/email/device_added_subject.txt", context).strip()
        body = render_to_string("core/email/device_added_body.txt", context)
    transaction.on_commit(lambda: send_email.enqueue(subject=subject, body=body, recipients=[user.email]))


def totp_secret_for_display(device: TOTPDevice) -> str:
    """The base32 secret in groups of four, for typing into an authenticator by hand."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
