from django.db import models
from django.utils.translation import gettext_lazy as _


class Tlp(models.TextChoices):
    """Traffic Light Protocol 2.0 (FIRST). Codes are the labels themselves, everywhere."""

    CLEAR = "CLEAR", "TLP:CLEAR"
    GREEN = "GREEN", "TLP:GREEN"
    AMBER = "AMBER", "TLP:AMBER"
    AMBER_STRICT = "AMBER+STRICT", "TLP:AMBER+STRICT"
    RED = "RED", "TLP:RED"


# From the widest to the narrowest: a label may only be lowered (widened) by the source.
TLP_ORDER = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED]


def narrowest(labels) -> str:
    """The label of `labels` that reaches the fewest people."""
    return max(labels, key=TLP_ORDER.index)


def is_narrower(label: str, than: str) -> bool:
    """Whether `label` reaches fewer people than `than`."""
    return TLP_ORDER.index(label) > TLP_ORDER.index(than)


class ReportKind(models.TextChoices):
    FAILURE = "failure", _("IT failure")
    SIGN = "sign", _("Sign or near miss")


class ReportStatus(models.TextChoices):
    OPEN = "open", _("Open")
    INVESTIGATING = "investigating", _("Under investigation")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


class VersionStage(models.TextChoices):
    INITIAL = "initial", _("Initial report")
    UPDATE = "update", _("Update")
    FINAL = "final", _("Final report")


class ServiceState(models.TextChoices):
    OUTAGE = "outage", _("Outage")
    DEGRADED = "degraded", _("Degraded")
    NONE = "none", _("No service impact")


class GrantReason(models.TextChoices):
    """Why someone is in a report's audience."""

    SOURCE = "source", _("Reporting organization")
    MANDATED = "mandated", _("Mandated reporting chain")
    CEPTOAR = "ceptoar", _("CEPTOAR chosen by the reporter")
    NAMED = "named", _("Named recipient")
    FORWARDED = "forwarded", _("Forwarded")
    SITUATION = "situation", _("Joined a situation's response")


class CommentKind(models.TextChoices):
    COMMENT = "comment", _("Comment")
    QUESTION = "question", _("Question")
    ANSWER = "answer", _("Answer")


class Severity(models.TextChoices):
    INFO = "info", _("Information")
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


class ObservableType(models.TextChoices):
    """STIX 2.1 names, so that import and export need no mapping."""

    IPV4 = "ipv4-addr", "ipv4-addr"
    IPV6 = "ipv6-addr", "ipv6-addr"
    DOMAIN = "domain-name", "domain-name"
    URL = "url", "url"
    EMAIL = "email-addr", "email-addr"
    MAC = "mac-addr", "mac-addr"
    ASN = "autonomous-system", "autonomous-system"
    MD5 = "file:hashes.MD5", "file:hashes.MD5"
    SHA1 = "file:hashes.SHA-1", "file:hashes.SHA-1"
    SHA256 = "file:hashes.SHA-256", "file:hashes.SHA-256"


class StageAnchor(models.TextChoices):
    DETECTION = "detection", _("after detection")
    PREVIOUS = "previous", _("after the previous stage")


class NotificationKind(models.TextChoices):
    AUDIENCE_TOLD = "audience_told", _("Audience told")
    DEADLINE_REMINDER = "deadline_reminder", _("Deadline reminder")
    ACKNOWLEDGEMENT_REMINDER = "acknowledgement_reminder", _("Acknowledgement reminder")
