"""Writes for authentication objects: API tokens."""

import datetime as dt
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write
from renkei.core.models import TOKEN_PREFIX, ApiToken, hash_token


def check(condition: bool, message: str, code: str, field_name: str | None = None) -> None:
    """Refuse with a ValidationError the API and the pages show: on `field_name` when given."""
    if not condition:
        raise ValidationError(
            {field_name: [ValidationError(message, code=code)]} if field_name else message, code=code
        )


@transaction.atomic
def token_create(*, actor, user, name: str = "", expires_days: int | None = 90) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns it with the secret, which is never stored or shown again."""
    if expires_days is not None and expires_days <= 0:
        raise ValidationError(_("A token must be valid for at least one day."), code="expires")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        key_hash=hash_token(secret),
        name=name,
        expires_at=timezone.now() + dt.timedelta(days=expires_days) if expires_days else None,
    )
    audit_write(
        actor=actor,
        action=AuditAction.TOKEN_CREATE,
        obj=token,
        after={"user": user.pk, "name": name, "expires_at": token.expires_at},
    )
    return token, secret


@transaction.atomic
def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_write(
        actor=actor, action=AuditAction.TOKEN_REVOKE, obj=token, after={"revoked_at": token.revoked_at}
    )
    return token


def token_authenticate(secret: str) -> ApiToken | None:
    """The usable token for `secret`, with its last use recorded; None if unknown, expired or revoked."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.usable().select_related("user").filter(key_hash=hash_token(secret)).first()
    if token is None:
        return None
    now = timezone.now()
    # Record last use at most once a minute, so busy clients do not turn every read into a write.
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
