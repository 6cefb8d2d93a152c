"""What every part of the :class:`~kiosk.store.Store` shares: the data folder's file names, the errors, the
state the parts read and write (declared once here), the audit log and the technician's notes."""
from __future__ import annotations

import contextlib
import logging
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
from tinydb import TinyDB

from kiosk.storage import JournalStorage, RecordLog, SlotFile, StorageError, TemplateFile

if TYPE_CHECKING:
    from kiosk.datakey import DataKey
    from kiosk.roster import Roster

log = logging.getLogger("kiosk.store")

LOCK_FILE = "kiosk.lock"
HOT_FILE = "hot.jsonl"
NUMBERS_FILE = "numbers.bin"
CITIZENS_DIR = "citizens"
CITIZEN_SHARDS = 64  # citizens/00.jsonl .. 3f.jsonl by the first byte of the id: a change rewrites 1/64
TEMPLATES_FILE = "templates.bin"
AUDIT_FILE = "audit.jsonl"
ARCHIVE_DIR = "visits"

CLOCK_TOLERANCE = timedelta(minutes=2)  # NTP nudges are not clock jumps
COMPACT_WIPED_FRACTION = 0.25


class StoreError(Exception):
    """The data folder cannot be used; the message names the path."""


class StoreLocked(StoreError):
    """Another kiosk process holds the data folder."""


class StoreBase:
    """The state shared by the parts of :class:`~kiosk.store.Store` (set by ``Store.__init__`` and ``_load``)."""

    data_dir: Path
    kiosk_id: str
    day_start_hour: int
    readonly: bool
    key: DataKey | None     # seals templates and names (kiosk.datakey); None: the older clear files
    personal: bool          # False: no usable key, no citizen or template file is opened
    problems: list[str]
    repairs: list[str]
    audit: RecordLog
    _clock: Callable[[], datetime]
    _lock_fd: int | None
    _closed: bool
    _archive_lock: threading.Lock
    # numbering (kiosk.store_numbers)
    _numbers: SlotFile
    _marks: dict[str, Any]
    _hot_storage: JournalStorage
    _counters: dict[tuple[str, str], tuple[int | None, int]]
    _floors: dict[tuple[str, str], int]
    _latest: datetime | None
    _latest_day: date | None
    _clock_warned_at: datetime | None
    _clock_problem: str | None
    # visits (kiosk.store_visits)
    _visit_docs: dict[str, int]
    # citizens and templates (kiosk.store_citizens)
    _parsed: dict[int, tuple[JournalStorage, TinyDB]]   # the citizens shards parsed now, most recent last
    _shard_damaged: list[bool]                           # which shards needed more than a torn tail cut at start
    _oldest_receipt: list[str | None]                    # per shard: its oldest deletion receipt (ISO)
    _roster: Roster                                      # every citizen: record id, last active (compact)
    _templates: TemplateFile
    _tpl_parts: list[np.ndarray] | None      # the start-up check's templates until the index takes them
    _tpl_rows: np.ndarray | None
    _tpl_ids: np.ndarray | None
    _sealed_now: bool           # this start sealed a clear templates file (kiosk.store_citizens)

    def _audit(self, event: dict[str, Any]) -> None:
        """Append to the audit log; best effort (a full disk must not stop tickets or undo a saved change)."""
        try:
            self.audit.append([event])
        except StorageError as exc:
            log.warning("audit log: %s", exc)

    def drain_audit_spool(self) -> int:
        """Append the entries commands left while this process held the folder (kiosk.auditspool); how many."""
        from kiosk.auditspool import drain

        return 0 if self.readonly or self._closed else drain(self.data_dir, self._audit)


    def _note(self, message: str, *, level: int = logging.WARNING) -> None:
        """Tell the technician: the journal (log), and the screen (problems) unless it is only a repair (INFO)."""
        log.log(level, "%s", message)
        (self.problems if level >= logging.WARNING else self.repairs).append(message)

    def _open_check(self) -> None:
        if self._closed:
            raise StoreError(f"the store of {self.data_dir} is closed")

    def _writable(self) -> None:
        self._open_check()
        if self.readonly:
            raise StoreError(f"the store of {self.data_dir} is open read-only")


@contextlib.contextmanager
def _saving(what: str) -> Iterator[None]:
    """Turn a storage failure (disk full, read-only file system) into a StoreError saying what was lost."""
    try:
        yield
    except StorageError as exc:
        raise StoreError(f"{what} not saved: {exc}") from exc
