"""Signals for the apps that build on sharing (they may import sharing; sharing never imports them)."""

from django.dispatch import Signal

# Sent inside the transaction that submits, updates, reclassifies or relabels a report, with `report`
# and `event` ("submitted", "updated", "reclassified", "relabelled"): receivers do there what access
# depends on at once.
report_changed = Signal()

# Sent by the task worker once a report event has committed, with `report_id` and `event` (the four
# above, and "question", "answer", "forwarded"): receivers do their deferred work there. Every event
# queues one task, whatever reacts to it, so a report submission writes one task row, not one per app.
report_event_committed = Signal()
