from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CorrelationConfig(AppConfig):
    name = "renkei.correlation"
    label = "correlation"
    verbose_name = _("Indicator correlation")
