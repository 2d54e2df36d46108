"""`renkei up`: the embedded run — one process serving the site with its task worker beside it."""

import logging
import os
import signal
import socket
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils.translation import gettext as _
from django_tasks_db.management.commands.db_worker import Worker

from renkei.audit.services import audit_sealer
from renkei.directory.demo import DEMO_PASSWORD
from renkei.sharing.delivery import periodic_upkeep

DEMO_USERNAME = "finance-op1-reporter"
WORKER_STOP_TIMEOUT = 30

logger = logging.getLogger(__name__)


class InProcessWorker:
    """django-tasks-db's worker, run in a daemon thread of the web process.

    Signal handlers can only be installed from the main thread, so unlike `renkei worker` this one
    installs none: `renkei up` stops it by clearing `running` and waiting for the current task.
    """

    def __init__(self, *, interval: float = 1.0):
        self.worker = Worker(
            queue_names=["*"],
            interval=interval,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=f"renkei-up-{socket.gethostname()[:40]}-{os.getpid()}",
            excluded_queue_names=[],
        )
        self.thread = threading.Thread(target=self._run, name="renkei-task-worker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = WORKER_STOP_TIMEOUT) -> None:
        self.worker.running = False
        self.thread.join(timeout)

    def _run(self) -> None:
        try:
            while self.worker.running:
                try:
                    self.worker.run()
                except Exception:
                    # A database hiccup must not silently end background work for the rest of the run.
                    logger.exception("The task worker failed; restarting it in 5 seconds.")
                    connections.close_all()
                    time.sleep(5)
        finally:
            connections.close_all()


def _display_url(host: str, port: int) -> str:
    # Naming the wildcard addresses, not binding to them.
    if host in ("0.0.0.0", "::", ""):  # noqa: S104
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _raise_keyboard_interrupt(signum, frame):
    # waitress shuts down cleanly on KeyboardInterrupt; treat `kill` (SIGTERM) like Ctrl-C.
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = _(
        "Run Renkei on this machine: apply migrations, load the reference data and the demo community, "
        "start a background task worker and serve the site until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help=_("Address to listen on (default: 127.0.0.1).")
        )
        parser.add_argument("--port", type=int, default=8000, help=_("Port to listen on (default: 8000)."))
        parser.add_argument(
            "--no-demo", action="store_true", help=_("Do not load the fictitious demo community.")
        )
        parser.add_argument(
            "--threads", type=int, default=8, help=_("Number of threads serving requests (default: 8).")
        )

    def handle(self, *, host, port, no_demo, threads, verbosity, **options):
        if threads < 1:
            raise CommandError(_("--threads must be at least 1."))
        from waitress import create_server

        from renkei.wsgi import application

        # Take the port first: a busy port is reported at once, not after the data has loaded, and
        # browsers that connect early wait in the queue instead of being refused.
        try:
            server = create_server(application, host=host, port=port, threads=threads, ident="Renkei")
        except OSError as error:
            message = _("Cannot listen on %(host)s:%(port)s: %(error)s")
            raise CommandError(message % {"host": host, "port": port, "error": error}) from error

        quiet = {"verbosity": max(verbosity - 1, 0)}
        self.stdout.write(_("Applying database migrations…"))
        call_command("migrate", interactive=False, **quiet)
        self.stdout.write(_("Loading the reference data…"))
        call_command("referencedata", "load", **quiet)
        if not no_demo:
            self.stdout.write(_("Loading the demo community…"))
            call_command("demo", verbosity=verbosity)  # ends with the demo's sign-ins

        worker = InProcessWorker()
        worker.start()
        sealer = audit_sealer()
        sealer.start()
        upkeep = periodic_upkeep()  # reminders and expired idempotency keys, every 15 minutes
        upkeep.start()
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

        url = _display_url(host, server.effective_port)
        self.stdout.write(self.style.SUCCESS(_("Renkei is running at %(url)s") % {"url": url}))
        if not no_demo:
            self.stdout.write(
                _(
                    "Demo sign-in: %(username)s / %(password)s (every demo user has this password; "
                    "the list is above and in docs/cli.md)."
                )
                % {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
            )
        if host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get("RENKEI_ALLOWED_HOSTS"):
            self.stdout.write(
                self.style.WARNING(
                    _(
                        "Set RENKEI_ALLOWED_HOSTS to the names other machines use to reach this one "
                        "(currently allowed: %(hosts)s)."
                    )
                    % {"hosts": ", ".join(settings.ALLOWED_HOSTS)}
                )
            )
        if settings.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":
            self.stdout.write(
                _("E-mail is written to files in %(path)s (set RENKEI_EMAIL_HOST to send it by SMTP).")
                % {"path": settings.EMAIL_FILE_PATH}
            )
        self.stdout.write(_("Press Ctrl-C to stop."))
        self.stdout.flush()
        try:
            server.run()  # returns after finishing the requests in flight, on Ctrl-C or SIGTERM
            server.close()
            self.stdout.write(_("Stopping the task worker…"))
            worker.stop()
            upkeep.stop()
            sealer.stop()
        except KeyboardInterrupt:
            # A second Ctrl-C while shutting down: leave now, as the user asked.
            self.stderr.write(_("Stopped without waiting for the running task."))
            sys.exit(1)
        self.stdout.write(_("Stopped."))
