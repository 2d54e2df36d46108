from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "renkei.audit"
    label = "audit"
    verbose_name = _("Audit")

    def ready(self) -> None:
        from renkei.audit import signals  # noqa: F401  (connects the sign-in receivers)
