"""Sign-ins and failed sign-ins belong in the audit trail too."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write


@receiver(user_logged_in, dispatch_uid="renkei_audit_login")
def record_login(sender, request, user, **kwargs):
    audit_write(actor=user, action=AuditAction.LOGIN, obj=user)


@receiver(user_login_failed, dispatch_uid="renkei_audit_login_failed")
def record_login_failure(sender, credentials, request=None, **kwargs):
    # Only the username is kept: Django has already masked the password in `credentials`.
    username = str(credentials.get("username", ""))[:150]
    audit_write(actor=None, action=AuditAction.LOGIN_FAILED, object_type="auth.login", object_repr=username)
