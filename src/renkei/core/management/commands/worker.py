"""`renkei worker`: the background task worker for deployments (`renkei up` runs one in-process)."""

from django.utils.translation import gettext as _
from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from renkei.audit.services import audit_sealer


class Command(DatabaseWorkerCommand):
    """django-tasks-db's `db_worker`, with every option passed through, and the audit sealer beside it.

    It differs in one default: it serves every queue, so that a queue added by a later module is
    not silently left unprocessed by a deployment that runs a single worker.
    """

    help = _(
        "Run the background task worker: sends e-mail, seals the audit trail and does other deferred "
        "work. Run at least one beside the web servers. Stops gracefully on Ctrl-C or SIGTERM."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(queue_name="*")

    def handle(self, *args, **options):
        sealer = audit_sealer()
        sealer.start()
        try:
            super().handle(*args, **options)
        finally:
            sealer.stop()
