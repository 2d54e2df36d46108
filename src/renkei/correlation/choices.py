from django.db import models
from django.utils.translation import gettext_lazy as _


class SourceKind(models.TextChoices):
    """Where an observable was seen: the object that holds it."""

    REPORT = "report", _("Incident report")
    ADVISORY = "advisory", _("Advisory")
    ANONYMIZED = "anonymized", _("Anonymized report")
    STIX = "stix", _("Imported STIX object")


class Suppression(models.TextChoices):
    """Why an observable does not correlate."""

    WARNING_LIST = "warning_list", _("On the warning list (too common to mean anything)")
    TOO_COMMON = "too_common", _("Seen in too many places to correlate")
