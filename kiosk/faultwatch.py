"""A fault that repeats on every frame (an unreadable camera, a failing face model), told once when it starts
and once when it ends: one journal line each way and a staff notice while it lasts, never a line a frame."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from kiosk.notices import staff


class FaultWatch:
    """Counts failures of one part; the first of a run is logged (``error``), the recovery once (``info``).

    ``notice`` is the staff notice while the fault lasts (Vietnamese first, as every notice), None otherwise.
    Safe to call from the recognition thread and read from the loop's.
    """

    def __init__(self, part: str, vietnamese: str, *, log: logging.Logger,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.part, self.vietnamese, self._log, self._clock = part, vietnamese, log, clock
        self._lock = threading.Lock()
        self.failures = 0           # in the current run of failures
        self.runs = 0               # runs of failures since start
        self._since: float | None = None
        self._message: str | None = None

    @property
    def failing(self) -> bool:
        return self._since is not None

    @property
    def notice(self) -> str | None:
        message = self._message
        return None if message is None else staff(self.vietnamese, f"{self.part.capitalize()}: {message}")

    def notice_text(self) -> str | None:
        """:attr:`notice` as a callable (the services' list of notices that come and go)."""
        return self.notice

    def failed(self, exc: BaseException, *, trace: bool = False) -> None:
        """One more failure; logged only if it starts a run (``trace``: with the traceback, for a bug)."""
        with self._lock:
            self.failures += 1
            if self._since is not None:
                return
            self._since = self._clock()
            self.runs += 1
            self._message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self._log.error("%s: %s (said once; a line follows when it works again)", self.part, self._message,
                        exc_info=exc if trace else None)

    def ok(self) -> None:
        """A success: ends a run of failures (one line saying how long it lasted)."""
        if self._since is None:
            return
        with self._lock:
            since, count = self._since, self.failures
            self._since, self._message, self.failures = None, None, 0
        if since is not None:
            self._log.info("%s: works again after %d failure(s) in %.0f s", self.part, count, self._clock() - since)
