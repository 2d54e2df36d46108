"""`renkei worker`: the background task worker for deployments (`renkei up` runs one in-process)."""

from django.utils.translation import gettext as _
from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand


class Command(DatabaseWorkerCommand):
    """django-tasks-db's `db_worker`, with every option passed through.

    It differs in one default: it serves every queue, so that a queue added by a later module is
    not silently left unprocessed by a deployment that runs a single worker.
    """

    help = _(
        "Run the background task worker: sends e-mail and does other deferred work. "
        "Run at least one beside the web servers. Stops gracefully on Ctrl-C or SIGTERM."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(queue_name="*")
