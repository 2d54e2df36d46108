"""Sign-ins belong in the audit trail too.

Failed sign-ins are not chained here: django-axes keeps them for lockout, and what people type into
the username field is sometimes their password, which must not live forever in an append-only log.
"""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write


@receiver(user_logged_in, dispatch_uid="renkei_audit_login")
def record_login(sender, request, user, **kwargs):
    audit_write(actor=user, action=AuditAction.LOGIN, obj=user)
