from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SituationsConfig(AppConfig):
    name = "renkei.situations"
    label = "situations"
    verbose_name = _("Situations")

    def ready(self):
        from renkei.core.reference_cache import forget_references_when_changed
        from renkei.sharing.signals import report_changed, report_event_committed
        from renkei.situations.models import AlertLevel, RecognitionRule, SectorDependency
        from renkei.situations.services import report_changed_withdraw, report_event_evaluate

        report_changed.connect(report_changed_withdraw, dispatch_uid="situations_withdraw_above_ceiling")
        report_event_committed.connect(report_event_evaluate, dispatch_uid="situations_evaluate_rules")
        # Every report is evaluated against the active rules, the cause taxonomy and the dependencies.
        forget_references_when_changed(AlertLevel, RecognitionRule, SectorDependency)
