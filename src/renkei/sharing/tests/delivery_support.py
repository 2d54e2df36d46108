"""What the delivery tests share besides the root conftest's `inbox` (SMTP) and `run_worker`: a webhook
receiver that checks signatures, and helpers over the task queue. Import the fixtures by name."""

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

# The fields of a webhook's JSON document, as docs/cli.md lists them.
WEBHOOK_PAYLOAD_FIELDS = {
    "type",
    "id",
    "title",
    "severity",
    "tlp",
    "issued_at",
    "issuer",
    "url",
    "observables",
    "attachments",
}


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
def webhook_receiver(loopback_allowed):
    with WebhookReceiver() as receiver:
        yield receiver
