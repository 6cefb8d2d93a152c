"""The kiosk's data: citizens, face templates, visits, per-category daily counters, consents and receipts.

A ticket number, once handed out, is never handed out again — after a power cut at any instant, a corrupt file,
or a clock that jumps backwards. How:

* ``issue_ticket`` inserts the visit and bumps the counter in ONE durable record of the hot file
  (``hot.jsonl``, a :class:`~kiosk.storage.JournalStorage`) and returns only after ``fsync``; the printer is
  called after it returns, so a ticket that reached paper is on disk.
* The hot file holds only today's and yesterday's visits; older ones move to ``visits/YYYY-MM.jsonl``
  (append-only), so writing a ticket never rewrites history.
* Before the hot record, the number is also written to ``numbers.bin`` (a :class:`~kiosk.storage.SlotFile`,
  one 4 KiB block in place): if the hot file is ever lost or cut short, numbering resumes above every number
  that could have been printed.
* The service day never goes backwards: a clock earlier than the last ticket keeps counting on the last day and
  says so (log ``kiosk.store`` + :attr:`Store.problems`).

The parts live in their own modules: numbering and the clock (:mod:`kiosk.store_numbers`), visits
and the month files (:mod:`kiosk.store_visits`), citizens and templates (:mod:`kiosk.store_citizens`), the
shared state and file names (:mod:`kiosk.store_base`); `kiosk visits` / `kiosk clock` output is in
:mod:`kiosk.cli_store`.

Layout of the data folder::

    kiosk.lock         one writer (flock); holds the writer's PID
    hot.jsonl          visits of today and yesterday, counters, last issue time
    numbers.bin        last number taken per category of the last service day, last issue time
    citizens/00..3f.jsonl  citizens (with their consent), consent texts, deletion receipts; 64 shards
    templates.bin      face templates, binary records (see TemplateFile)
    visits/2026-11.jsonl  older visits, append-only (+ 2026-11.sum: size and crc32 of the whole file)
    audit.jsonl        append-only audit log (enrol, forget, purges, card reads, exports, imports, config, ...)
    audit-spool/       audit entries from commands run beside the kiosk, until it appends them (kiosk.auditspool)
    audit-config.sha256  the effective config's hash when last audited (a change is audited at start)
    ratings/2026-11.jsonl  satisfaction ratings, append-only (kiosk.store_ratings)
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tinydb import TinyDB

from kiosk.audit import AuditLog
from kiosk.audit import AuditState
from kiosk.audit import state as audit_state
from kiosk.audit import verify as verify_audit
from kiosk.auditspool import SPOOL_DIR
from kiosk.storage import JournalStorage, RecordLog, SlotFile, fsync_dir, remove_stale_temps, set_aside
from kiosk.store_base import (
    ARCHIVE_DIR,
    AUDIT_FILE,
    CITIZEN_SHARDS,
    CITIZENS_DIR,
    CLOCK_TOLERANCE,
    COMPACT_WIPED_FRACTION,
    HOT_FILE,
    LOCK_FILE,
    NUMBERS_FILE,
    TEMPLATES_FILE,
    StoreError,
    StoreLocked,
)
from kiosk.store_citizens import Citizen, CitizenRecords
from kiosk.store_numbers import ClockRepair, Numbering, service_day_of
from kiosk.store_ratings import Rating, RatingRecords
from kiosk.store_visits import Visit
from kiosk.tickets import format_ticket

if TYPE_CHECKING:
    from kiosk.datakey import DataKey


__all__ = [  # the store's names, importable from kiosk.store as before the split
    "ARCHIVE_DIR", "AUDIT_FILE", "CITIZEN_SHARDS", "CITIZENS_DIR", "CLOCK_TOLERANCE", "COMPACT_WIPED_FRACTION",
    "HOT_FILE", "LOCK_FILE", "NUMBERS_FILE", "TEMPLATES_FILE", "Citizen", "ClockRepair", "Store", "StoreError",
    "StoreLocked", "Visit", "format_ticket", "service_day_of", "Rating",
]


class Store(Numbering, CitizenRecords, RatingRecords):
    """Citizens, templates, visits and counters in one data folder; one writer process at a time.

    Open with :meth:`open` (the kiosk: lock + integrity check + repairs) or :meth:`open_readonly` (tools that
    run beside the kiosk: no lock, no repairs, no writes). Opening never fails because of a damaged file: the
    file is set aside, the last good state is used and :attr:`problems` says what happened (:attr:`repairs`
    lists what was put right with nothing lost, which needs nobody's attention).
    Not thread-safe: the loop thread owns the store.
    """

    def __init__(self, data_dir: Path, *, kiosk_id: str, day_start_hour: int, readonly: bool,
                 clock: Callable[[], datetime], key: DataKey | None = None, personal: bool = True):
        self.data_dir = Path(data_dir)
        self.key = key                   # seals templates and names (kiosk.datakey); None: the older clear files
        self.personal = personal         # False: no data key, so no citizen or template file is even read
        self.kiosk_id = kiosk_id
        self.day_start_hour = day_start_hour
        self.readonly = readonly
        self.problems: list[str] = []    # for staff and technician: something was lost, set aside or is wrong
        self.repairs: list[str] = []     # put right with nothing lost (journal only, not a staff notice)
        self._clock = clock
        self._lock_fd: int | None = None
        self._clock_warned_at: datetime | None = None
        self._clock_problem: str | None = None   # the "clock went back" line in problems, until accept_clock
        self._closed = False
        self._archives_at_open = True
        self._audit_at_open: AuditState | None = None
        self._archive_lock = threading.Lock()    # month files: check_archives may run on another thread

    # ------------------------------------------------------------------------------------------------ opening
    @classmethod
    def open(cls, data_dir: Path, *, kiosk_id: str, day_start_hour: int = 0,
             clock: Callable[[], datetime] = datetime.now, check_archives: bool = True, key: DataKey | None = None,
             personal: bool = True) -> "Store":
        """Lock the folder, check every file, repair what a crash left behind; ``clock`` is read once.

        ``check_archives=False`` (the kiosk's start-up): the month files' full scan is left to
        :meth:`check_archives`, which the kiosk runs on a thread once it is ready. ``key``: the data key; clear
        templates and names found are sealed with it at once. ``personal=False`` (the kiosk has no usable key):
        tickets only, no citizen or template file is read or written.
        """
        if not 0 <= day_start_hour <= 23:
            raise StoreError(f"day_start_hour must be 0..23, got {day_start_hour}")
        data_dir = Path(data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data folder {data_dir}: {exc}") from exc
        store = cls(data_dir, kiosk_id=kiosk_id, day_start_hour=day_start_hour, readonly=False, clock=clock,
                    key=key, personal=personal)
        store._archives_at_open = check_archives
        store._lock()
        try:
            store._load()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_readonly(cls, data_dir: Path, *, key: DataKey | None = None) -> "Store":
        """Read the folder of a possibly running kiosk: no lock, nothing repaired, nothing written."""
        data_dir = Path(data_dir)
        if not any((data_dir / name).exists() for name in (LOCK_FILE, HOT_FILE, CITIZENS_DIR, ARCHIVE_DIR)):
            raise StoreError(f"{data_dir} holds no kiosk data ({LOCK_FILE} and {HOT_FILE} not found)")
        store = cls(data_dir, kiosk_id="", day_start_hour=0, readonly=True, clock=datetime.now, key=key)
        store._load()
        return store

    def _lock(self) -> None:
        path = self.data_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"the data folder {self.data_dir} is in use by another kiosk process (pid {holder}); "
                f"stop it first (systemctl stop kiosk) or give this one another data folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _load(self) -> None:
        repair = not self.readonly
        if repair:
            for folder in (self.data_dir, self.data_dir / CITIZENS_DIR, self.data_dir / ARCHIVE_DIR,
                           self.data_dir / SPOOL_DIR):
                remove_stale_temps(folder)
            _, notes = RecordLog.load(self.data_dir / AUDIT_FILE, repair=True, decode=False)
            for n in notes:
                self._note(n)
            self.audit = AuditLog(self.data_dir / AUDIT_FILE)      # hash-chained (kiosk.audit)
            self._audit_at_open = audit_state(self.data_dir / AUDIT_FILE)
            if self._archives_at_open:
                self.check_audit()

        # Numbers taken (survive the loss of the hot file).
        self._numbers = SlotFile(self.data_dir / NUMBERS_FILE)
        marks, damaged = self._numbers.read()
        self._marks = marks or {"day": None, "last": {}, "latest": None}
        if damaged and repair:
            if marks is None:
                kept = set_aside(self._numbers.path)
                self._numbers.path.unlink()
                fsync_dir(self.data_dir)
                self._note(f"{NUMBERS_FILE}: unreadable, set aside as {kept.name}", level=logging.ERROR)
            else:
                self._note(f"{NUMBERS_FILE}: one copy damaged (power cut while writing?), the other one used",
                           level=logging.INFO)

        # Hot file: today's visits and counters.
        hot_existed = (self.data_dir / HOT_FILE).exists()
        # Written through JournalStorage.apply, one record per ticket (no tinydb: its writes copy whole tables).
        self._hot_storage = JournalStorage(self.data_dir / HOT_FILE, readonly=self.readonly)
        for n in self._hot_storage.problems:
            self._note(n, level=logging.ERROR if self._hot_storage.damaged else logging.WARNING)
        self._index_hot()
        lost = {k: n for k, n in self._floors.items() if n > self._counters.get(k, (None, 0))[1] + 1}
        if (lost or self._hot_storage.damaged or not hot_existed and self._marks["day"]) and repair:
            held: dict[tuple[str, str], int] = {}
            for doc in self._hot_storage.peek().get("visits", {}).values():
                key = (doc["service_day"], doc["category"])
                held[key] = held.get(key, 0) + 1
            detail = ", ".join(f"{c} up to {n} on {d}: {max(0, n - held.get((d, c), 0))} visit(s) lost"
                               for (d, c), n in sorted(lost.items()))
            hot_path = self.data_dir / HOT_FILE
            if hot_existed and not self._hot_storage.damaged and hot_path.exists():   # damaged: set aside already
                detail += f"; the file was set aside as {set_aside(hot_path, copy=True).name}"
            self._note(f"{HOT_FILE}: tickets are missing ({detail or 'file lost or damaged'}); numbering "
                       f"continues above every number taken, none will repeat", level=logging.ERROR)
        if repair:
            self._check_numbers(marks, damaged)
            self._acknowledge_taken_numbers()

        # Citizens and templates (none at all without the data key: kiosk.store_citizens).
        self._open_citizens(repair)
        self._open_ratings(repair)

        if repair and self._archives_at_open:
            self.check_archives()

        if repair:
            now = self._clock()
            if self._latest is not None and now < self._latest - CLOCK_TOLERANCE:
                self._clock_went_back(now)
            self._audit({"at": now.isoformat(timespec="seconds"), "event": "open", "pid": os.getpid(),
                         "problems": list(self.problems), "repairs": list(self.repairs)})
            self.drain_audit_spool()     # entries left by commands while the kiosk ran
    def check_audit(self) -> list[str]:
        """Check the audit log's hash chain as it was at open (kiosk.audit); the problem found, if any.

        Done while opening, or (``check_archives=False``, the kiosk) on the archive-check thread after READY:
        at 100,000 enrolments it reads 23 MB of entries. Safe beside appends: only the bytes there at open count.
        """
        chain = verify_audit(self.data_dir / AUDIT_FILE, self._audit_at_open)
        if not chain.problem:
            return []
        problem = f"audit log tampered with or damaged: {chain.problem}"
        self._note(problem, level=logging.ERROR)
        return [problem]

    def check_archives(self) -> list[str]:
        """Check every month file (whole-file checksums: reads all history), set damage aside; the new problems.

        Safe on another thread than the store's owner: month files are written only under the archive lock.
        """
        found: list[str] = []
        folder = self.data_dir / ARCHIVE_DIR
        # A month file gone while its .sum proves it held visits is a loss too.
        months = {p.with_suffix(".jsonl") for pattern in ("*.jsonl", "*.sum") for p in folder.glob(pattern)}
        for month_file in sorted(months):
            with self._archive_lock:
                if self._closed:
                    break
                _, notes = RecordLog.load(month_file, repair=True, decode=False, checksum=True)
            for n in notes:
                self._note(f"{ARCHIVE_DIR}/{n}", level=logging.ERROR)
                found.append(f"{ARCHIVE_DIR}/{n}")
        return found

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in ("_hot_storage", "_templates", "_numbers", "audit"):  # _templates is None without a key
            obj = getattr(self, name, None)
            if obj is not None:
                obj.close()
        for shard, _ in getattr(self, "_parsed", {}).values():     # the citizens shards parsed now
            shard.close()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def audit_records(self) -> list[dict[str, Any]]:
        """The good records of the audit log, oldest first (USB export); damaged lines are skipped, never repaired."""
        self._open_check()
        records, _ = RecordLog.load(self.data_dir / AUDIT_FILE, repair=False)
        return records
