from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SharingConfig(AppConfig):
    name = "renkei.sharing"
    label = "sharing"
    verbose_name = _("Information sharing")

    def ready(self):
        from renkei.core.reference_cache import forget_references_when_changed
        from renkei.directory.models import Sector
        from renkei.sharing.models import CauseCategory, DeadlineProfile

        forget_references_when_changed(
            Sector, CauseCategory, DeadlineProfile, Sector.default_deadline_profiles.through
        )
