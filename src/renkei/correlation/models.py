"""Where each observable was seen, one row per source and observable, and one row per distinct value.

Storage grows with the observables stored, never with the pairs that match: a match is found by
looking the key (or the address range) up in an index when someone asks, and is not kept.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from renkei.correlation.choices import SourceKind
from renkei.sharing.choices import ObservableType


class Sighting(models.Model):
    """One observable, in canonical form, as held by one source (a report, an advisory …)."""

    source_kind = models.CharField(_("source kind"), max_length=16, choices=SourceKind.choices)
    # Text, so that one column holds the UUIDs of reports and the ids of imported objects alike.
    source_id = models.CharField(_("source id"), max_length=64)
    key = models.CharField(_("key"), max_length=64, help_text=_("SHA-256 of the type and canonical value."))
    type = models.CharField(_("type"), max_length=32, choices=ObservableType.choices)
    value = models.CharField(_("value"), max_length=2048)
    created_at = models.DateTimeField(_("indexed at"), auto_now_add=True)

    class Meta:
        ordering = ["source_kind", "source_id", "pk"]
        verbose_name = _("sighting")
        verbose_name_plural = _("sightings")
        constraints = [
            models.UniqueConstraint(
                fields=["source_kind", "source_id", "key"], name="sighting_once_per_source"
            ),
        ]
        indexes = [models.Index(fields=["key"], name="sighting_key_idx")]

    def __str__(self) -> str:
        return f"{self.type}: {self.value} ({self.source_kind} {self.source_id})"


class CorrelationKey(models.Model):
    """One distinct observable: how many sources hold it, so the over-correlation guard is a single
    lookup, and for IP addresses and CIDR ranges their first and last address, so that "inside a
    range" is an index lookup over distinct values rather than over every sighting."""

    key = models.CharField(_("key"), max_length=64, primary_key=True)
    type = models.CharField(_("type"), max_length=32, choices=ObservableType.choices)
    # Text that sorts like the address: the IP version, then fixed-width hex (see indicators.py).
    # NULL rather than "" for other types, so that the partial index holds addresses only.
    ip_low = models.CharField(_("first address"), max_length=33, null=True, blank=True)  # noqa: DJ001
    ip_high = models.CharField(_("last address"), max_length=33, null=True, blank=True)  # noqa: DJ001
    source_count = models.PositiveIntegerField(_("sources"), default=0)

    class Meta:
        ordering = ["key"]
        verbose_name = _("correlation key")
        verbose_name_plural = _("correlation keys")
        indexes = [
            models.Index(
                fields=["ip_low"], condition=models.Q(ip_low__isnull=False), name="correlation_key_ip_low_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.key[:12]}… × {self.source_count}"
