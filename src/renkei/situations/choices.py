from django.db import models
from django.utils.translation import gettext_lazy as _

from renkei.directory.choices import Role


class RuleKind(models.TextChoices):
    """What a recognition rule watches for; each kind reads its own thresholds (see RULE_PARAMETERS)."""

    CAUSE_ACROSS_SECTORS = "cause_across_sectors", _("Reports with a cause from several sectors within hours")
    OUTAGE_USERS = "outage_users", _("An outage affecting many users")
    SHARED_OBSERVABLE = "shared_observable", _("The same observable reported by several organizations")
    DEPENDED_ON_SECTOR = "depended_on_sector", _("An outage in a sector others depend on")


# The thresholds each kind needs; the others stay empty.
RULE_PARAMETERS = {
    RuleKind.CAUSE_ACROSS_SECTORS: ("cause_code", "min_reports", "min_sectors", "window_hours"),
    RuleKind.OUTAGE_USERS: ("min_users",),
    RuleKind.SHARED_OBSERVABLE: ("min_organizations", "window_hours"),
    RuleKind.DEPENDED_ON_SECTOR: ("min_dependents",),
}


class ProposalStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DECLARED = "declared", _("Declared")
    DISMISSED = "dismissed", _("Dismissed")


class SituationStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", _("Awaiting approval")
    ACTIVE = "active", _("Active")
    ENDED = "ended", _("Ended")


class DecisionKind(models.TextChoices):
    DECLARE = "declare", _("Declare")
    RAISE = "raise", _("Raise")
    LOWER = "lower", _("Lower")
    END = "end", _("End")


class DecisionStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting approval")
    APPROVED = "approved", _("Approved")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class ParticipantSource(models.TextChoices):
    ROSTER = "roster", _("Roster of the level")
    NAMED = "named", _("Named for this situation")


class LogKind(models.TextChoices):
    NOTE = "note", _("Note")
    QUESTION = "question", _("Open question")


class SpilloverStatus(models.TextChoices):
    OPEN = "open", _("Open")
    SENT = "sent", _("Sent")
    DISMISSED = "dismissed", _("Dismissed")


# National-centre roles that declare, approve, raise, lower and end situations (two different people).
DECISION_ROLES = (Role.COORDINATOR,)
