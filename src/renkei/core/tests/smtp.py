"""A real SMTP server on the loopback interface, for tests that follow a message out of Renkei."""

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Delivery:
    recipients: list[str]
    message: EmailMessage


class Inbox:
    """aiosmtpd handler keeping every delivery it accepts, parsed with the modern e-mail API."""

    def __init__(self):
        self.deliveries: list[Delivery] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        with self._arrived:
            self.deliveries.append(Delivery(list(envelope.rcpt_tos), message))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30) -> list[Delivery]:
        """The deliveries once at least `count` have arrived; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.deliveries) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = len(self.deliveries)
                    raise AssertionError(f"expected {count} e-mails within {timeout}s, got {got}")
                self._arrived.wait(remaining)
            return list(self.deliveries)


@contextmanager
def smtp_server():
    """Yield (inbox, port) for an SMTP server listening on 127.0.0.1 while the block runs."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()
