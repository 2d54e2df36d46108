from django.db import models
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    """What a user wants to do with an object; access rules answer per action."""

    VIEW = "view", _("View")
    VIEW_CONTACTS = "view_contacts", _("View members and contact routes")
    CHANGE = "change", _("Change")
    COMMENT = "comment", _("Comment or ask")
    TRIAGE = "triage", _("Triage (link, reclassify)")
    FORWARD = "forward", _("Forward within the TLP ceiling")
    ACKNOWLEDGE = "acknowledge", _("Acknowledge")
