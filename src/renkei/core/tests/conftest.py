"""Fixtures for tests that follow work through the task worker and out over SMTP."""

import io
import signal

import pytest
from django.core.management import call_command

from .smtp import smtp_server


@pytest.fixture
def inbox(transactional_db, settings):
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


@pytest.fixture
def run_worker():
    return run_worker_until_idle


def run_worker_until_idle() -> None:
    """`renkei worker --batch`: run every queued task, then return.

    The worker installs its own SIGINT/SIGTERM handlers (right for a worker process); put pytest's back.
    """
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]
    saved = {number: signal.getsignal(number) for number in signals}
    try:
        call_command("worker", batch=True, startup_delay=False, stdout=io.StringIO())
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
