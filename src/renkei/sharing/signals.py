"""Signals for the apps that build on sharing (they may import sharing; sharing never imports them)."""

from django.dispatch import Signal

# Sent inside the transaction that submits, updates or reclassifies a report, with `report` and
# `event` ("submitted", "updated", "reclassified", "relabelled"); receivers queue their work in that
# transaction, or do it there when access depends on it.
report_changed = Signal()
