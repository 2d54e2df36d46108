from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SituationsConfig(AppConfig):
    name = "renkei.situations"
    label = "situations"
    verbose_name = _("Situations")

    def ready(self):
        from renkei.sharing.signals import report_changed
        from renkei.situations.services import report_changed_evaluate

        report_changed.connect(report_changed_evaluate, dispatch_uid="situations_evaluate_rules")
