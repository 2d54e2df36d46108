"""The queue's entry points for situations (queued in the report change's own transaction)."""

from django_tasks import task

from renkei.situations import services


@task()
def report_evaluate(report_id: str) -> int:
    """Run the active recognition rules over a new or changed report. Returns the proposals touched."""
    return len(services.evaluate_report(report_id))
