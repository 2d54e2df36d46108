"""What the delivery tests share: a real SMTP server, a webhook receiver that checks signatures, and
running the task worker until the queue is empty. Import the fixtures into a test module by name."""

import hashlib
import hmac
import io
import json
import signal
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from renkei.core.tests.smtp import smtp_server


@pytest.fixture
def mail_inbox(transactional_db, settings):
    """A real SMTP server on 127.0.0.1 that Renkei sends to; its deliveries, parsed."""
    with smtp_server() as (inbox, port):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        settings.DEFAULT_FROM_EMAIL = "renkei@renkei.example.jp"
        settings.RENKEI_BASE_URL = "https://renkei.example.jp"
        yield inbox


def run_worker() -> None:
    """`renkei worker --batch`: run every task that is ready, then return (pytest's signal handlers
    are put back, as the worker installs its own)."""
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]
    saved = {number: signal.getsignal(number) for number in signals}
    try:
        call_command("worker", batch=True, startup_delay=False, stdout=io.StringIO())
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def make_deferred_tasks_ready() -> int:
    """Pretend the backoff has passed: tasks waiting for a later time become ready now."""
    return DBTaskResult.objects.filter(status="READY", run_after__gt=timezone.now()).update(
        run_after=timezone.now()
    )


def failed_tasks() -> list[str]:
    return [
        f"{result.task_path}: {result.traceback}" for result in DBTaskResult.objects.filter(status="FAILED")
    ]


def mail_by_recipient(deliveries) -> dict[str, object]:
    """address → message, asserting that nobody got two."""
    messages: dict[str, object] = {}
    for delivery in deliveries:
        for address in delivery.recipients:
            assert address not in messages, f"{address} got two messages"
            messages[address] = delivery.message
    return messages


@dataclass(frozen=True)
class ReceivedHook:
    headers: dict[str, str]
    body: bytes
    signature_valid: bool
    answered: int

    @property
    def document(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 playing an organization's webhook endpoint.

    It checks X-Renkei-Signature with `secret`, answers 500 to the first `fail_first` requests and
    401 to badly signed ones, and keeps every request.
    """

    def __init__(self):
        self.secret = ""
        self.fail_first = 0
        self.received: list[ReceivedHook] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(expected, self.headers.get("X-Renkei-Signature", ""))
                failing = len(receiver.received) < receiver.fail_first
                status = 500 if failing else (204 if valid else 401)
                receiver.received.append(ReceivedHook(dict(self.headers), body, valid, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/renkei"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver():
    with WebhookReceiver() as receiver:
        yield receiver
