from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InteropConfig(AppConfig):
    name = "renkei.interop"
    label = "interop"
    verbose_name = _("Interoperability (STIX, TAXII, MISP)")

    def ready(self):
        from django.db.models.signals import post_save

        from renkei.directory.models import Organization
        from renkei.interop.services import submissions_collection_for_new_organization

        post_save.connect(
            submissions_collection_for_new_organization,
            sender=Organization,
            dispatch_uid="interop_submissions_collection",
        )
