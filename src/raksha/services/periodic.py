"""A job that runs in a daemon thread every few seconds until stopped: the escalation timer
and the retention timer are two. A round that raises is logged with its traceback and the
next round runs as planned: nothing ends the thread but `stop`."""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger(__name__)


class Periodic:
    """Subclasses give `tick` (one round) and a thread `name`; `every_s` apart, the first
    round `first_after_s` after `start` (0: at once). `every_s <= 0` never starts."""

    name = "raksha-periodic"

    def __init__(self, every_s: float, *, first_after_s: float = 0.0) -> None:
        self.every_s = every_s
        self.first_after_s = first_after_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> object:
        raise NotImplementedError

    def start(self) -> Self:
        if self._thread is None and self.every_s > 0:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        wait = self.first_after_s
        while not self._stop.wait(wait):
            try:
                self.tick()
            except Exception:  # the last guard of the thread: the next round tries again
                log.exception("%s: the round failed; the next round tries again", self.name)
            wait = self.every_s
