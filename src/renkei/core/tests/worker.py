"""Running the task worker from a test, as `renkei worker --batch` would."""

import io
import signal

from django.core.management import call_command


def run_worker_until_idle() -> None:
    """Run every task that is ready, then return.

    The worker installs its own SIGINT/SIGTERM handlers (right for a worker process); put pytest's back.
    """
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]
    saved = {number: signal.getsignal(number) for number in signals}
    try:
        call_command("worker", batch=True, startup_delay=False, stdout=io.StringIO())
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
