"""Background delivery of sharing notifications and reports' follow-ups (queued by services inside
the change's transaction).

The work itself lives in delivery.py and webhooks.py; these are the queue's entry points.
"""

from django_tasks import task

from renkei.sharing import delivery, webhooks
from renkei.sharing.models import Report
from renkei.sharing.signals import report_event_committed


@task()
def report_follow_up(report_id: str, event: str) -> int:
    """After a report event committed: e-mail the people concerned who may see the report (for the
    events in delivery.REPORT_EVENTS), then let the other apps react (`report_event_committed`: the
    situation rules look at the report). Returns the number of recipients queued."""
    queued = 0
    if event in delivery.REPORT_EVENTS:
        queued = delivery.notify_report(report_id=report_id, event=event)
    report_event_committed.send(sender=Report, report_id=report_id, event=event)
    return queued


@task()
def advisory_fan_out(advisory_id: str) -> int:
    """Deliver an issued advisory to its whole audience: inbox rows, e-mail and webhook tasks.
    Returns the number of new inbox rows."""
    return delivery.fan_out_advisory(advisory_id=advisory_id)


@task()
def email_report_batch(report_id: str, event: str, user_ids: list[int], comment_id: int | None = None) -> int:
    return delivery.send_report_emails(
        report_id=report_id, event=event, user_ids=user_ids, comment_id=comment_id
    )


@task()
def email_advisory_batch(advisory_id: str, user_ids: list[int], reminder: bool = False) -> int:
    return delivery.send_advisory_emails(advisory_id=advisory_id, user_ids=user_ids, reminder=reminder)


@task()
def webhook_deliver(endpoint_id: int, advisory_id: str, attempt: int, delivery_id: str) -> bool:
    return webhooks.deliver(
        endpoint_id=endpoint_id, advisory_id=advisory_id, attempt=attempt, delivery_id=delivery_id
    )
