"""Free space on the data folder: staff hear of it well before a full disk stops the tickets.

A ticket's number is written to disk before it is printed; on a full SD card that write fails and the
citizen gets the failsafe screen instead of a ticket. So the kiosk looks at the free space (one cheap
``statvfs``) at start and once a minute, and while it is below the configured minimum the staff notice
says so in plain words; the journal gets one line each time the state changes, never a flood.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

from kiosk.notices import join, staff

log = logging.getLogger("kiosk.disk")

MB = 1024 * 1024
CHECK_EVERY = 60.0      # seconds between two looks at the free space


def free_bytes(path: Path, statvfs: Callable[[Any], Any] = os.statvfs) -> tuple[int, int]:
    """(free, total) bytes of the file system holding ``path`` (or its nearest existing parent), as an
    unprivileged user sees them (``f_bavail``: root's reserved blocks do not count)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    st = statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def low_space_notice(free: int, minimum_mb: int, path: Path) -> str:
    return staff(f"Sắp hết bộ nhớ: còn {free // MB} MB; vui lòng báo kỹ thuật viên",
                 f"Disk almost full: {free // MB} MB free in {path} (warning below {minimum_mb} MB); "
                 f"free some space before tickets stop")


class DiskWatch:
    """Looks at the free space when due and keeps the staff notice that goes with it.

    ``poll()`` is cheap to call every loop turn: it reads the disk only when ``next_due`` has come (or when
    forced, e.g. after a failed ticket). ``notice`` only reads what the last look found.
    """

    def __init__(self, path: Path, *, min_free_mb: int, clock: Callable[[], float],
                 statvfs: Callable[[Any], Any] | None = None, every: float = CHECK_EVERY) -> None:
        self.path = Path(path)
        self.min_free_mb = min_free_mb
        self._clock = clock
        self._statvfs = statvfs or os.statvfs
        self._every = every
        self.next_due = float("-inf")      # the first poll looks at once
        self.free: int | None = None
        self._low = False
        self._notice: str | None = None
        self._full: str | None = None       # why the last ticket was not saved on a full disk, until one is

    @property
    def notice(self) -> str | None:
        """The staff notice while space is low or since a ticket could not be saved on a full disk, else None."""
        if self._full is None:
            return self._notice
        full = staff("Bộ nhớ đầy: kiosk không lưu được số, đang thử lại; vui lòng báo kỹ thuật viên",
                     f"Disk full: a ticket could not be saved ({self._full}); the kiosk keeps trying: free some space")
        return join([full, self._notice])

    def write_failed(self, reason: str) -> None:
        """A ticket was not saved because the disk is full: staff are told until a ticket is saved again."""
        if self._full is None:
            log.error("disk full: a ticket could not be saved (%s); the kiosk keeps trying", reason)
        self._full = reason.rsplit(": ", 1)[-1] or reason

    def write_ok(self) -> None:
        """A ticket was saved: the disk takes writes again."""
        if self._full is not None:
            log.info("disk: tickets are saved again")
        self._full = None

    def poll(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now < self.next_due:
            return
        self.next_due = now + self._every
        try:
            self.free, _total = free_bytes(self.path, self._statvfs)
        except OSError as exc:
            log.warning("cannot read the free space of %s: %s", self.path, exc)
            return
        low = self.free < self.min_free_mb * MB
        if low:
            self._notice = low_space_notice(self.free, self.min_free_mb, self.path)
            if not self._low:
                log.warning("only %d MB free in %s (warning below %d MB): free some space before the disk fills "
                            "and tickets stop", self.free // MB, self.path, self.min_free_mb)
        else:
            self._notice = None
            if self._low:
                log.info("free space back to %d MB in %s", self.free // MB, self.path)
        self._low = low
