"""Work repeated every few seconds or minutes in a daemon thread of a long-running process."""

import logging
import threading
from collections.abc import Callable

from django.db import connections

logger = logging.getLogger(__name__)


class Periodic:
    """Calls `step` every `interval` seconds until `stop`, and once more on the way out when
    `run_on_stop` (work written just before a shutdown is not left for the next start).

    A step that raises is logged and tried again at the next tick: a database hiccup must not end
    the work for the rest of the process's life. The thread's connections are closed after each
    step, so a long-lived thread never holds one between ticks.
    """

    def __init__(self, step: Callable[[], object], *, interval: float, name: str, run_on_stop: bool = False):
        self.step, self.interval, self.run_on_stop = step, interval, run_on_stop
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            self._step()
        if self.run_on_stop:
            self._step()

    def _step(self) -> None:
        try:
            self.step()
        except Exception:
            logger.exception("%s failed; it runs again in %s seconds.", self.thread.name, self.interval)
        finally:
            connections.close_all()
