"""The queue's entry points for situations, queued by services.py in the change's own transaction
(so services imports this module, and the work is looked up in services when a task runs)."""

from django_tasks import task


@task()
def duty_team_notify(kind: str, pk: int) -> int:
    """E-mail the national centre's coordinators about a new proposal ("proposal") or spill-over
    warning draft ("spillover"). Returns the messages sent."""
    from renkei.situations.services import tell_duty_team

    return tell_duty_team(kind, pk)
