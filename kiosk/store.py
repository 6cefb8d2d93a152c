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

Layout of the data folder::

    kiosk.lock         one writer (flock); holds the writer's PID
    hot.jsonl          visits of today and yesterday, counters, last issue time
    numbers.bin        last number taken per category of the last service day, last issue time
    citizens/00..3f.jsonl  citizens (with their consent), consent texts, deletion receipts; 64 shards
    templates.bin      face templates, binary records (see TemplateFile)
    visits/2026-11.jsonl  older visits, append-only (+ 2026-11.sum: size and crc32 of the whole file)
    audit.jsonl        append-only audit log (enrol, forget, repairs, clock jumps)
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

import numpy as np
from tinydb import TinyDB
from tinydb.table import Document

from kiosk.storage import (
    JournalStorage,
    RecordLog,
    SlotFile,
    StorageError,
    TemplateFile,
    fsync_dir,
    hex_ids,
    remove_stale_temps,
    set_aside,
)

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


@dataclass(frozen=True)
class ClockRepair:
    """What :meth:`Store.accept_clock` did: numbering moved back from a future service day to today's."""
    was_latest: datetime            # the latest issue time recorded, read from the wrong clock
    was_day: date                   # the service day numbering was stuck on
    day: date                       # today's service day, numbered from now on
    continues_after: dict[str, int]  # category -> highest number already used today (the next is one more)
    future_visits: int              # visits stored with a service day after today: their dates are wrong


@dataclass(frozen=True)
class Visit:
    id: str  # random hex, encoded in the ticket's QR code
    ticket: str  # "HT-001"
    number: int
    category: str  # category key, "ho-tich"
    issued_at: datetime  # local, naive
    service_day: date  # the day the number belongs to (counters reset at the configured hour)
    citizen_id: str | None
    kiosk_id: str
    printed: bool | None  # None until the printer answered

    def to_json(self) -> dict[str, Any]:
        """The technician's / export view (`kiosk visits --json`)."""
        return {"ticket": self.ticket, "category": self.category, "time": self.issued_at.isoformat(),
                "citizen": self.citizen_id, "printed": self.printed, "id": self.id, "kiosk": self.kiosk_id,
                "number": self.number, "service_day": self.service_day.isoformat()}


@dataclass(frozen=True)
class Citizen:
    id: str
    created_at: datetime
    last_seen: datetime | None
    display_name: str | None  # full name from ID-card data when imported; shown masked only
    consent_id: str


def service_day_of(now: datetime, day_start_hour: int) -> date:
    """The day a ticket issued at ``now`` belongs to, when counters reset at ``day_start_hour`` local time."""
    return (now - timedelta(hours=day_start_hour)).date()


def format_ticket(prefix: str, number: int) -> str:
    """"HT-001": the number zero-padded to 3 digits (more when above 999); the same rule as kiosk.tickets."""
    try:
        from kiosk.tickets import format_ticket as shared
    except ImportError:
        return f"{prefix}-{number:03d}"
    return shared(prefix, number)


def _visit_from_doc(doc: dict) -> Visit:
    return Visit(id=doc["id"], ticket=doc["ticket"], number=doc["number"], category=doc["category"],
                 issued_at=datetime.fromisoformat(doc["issued_at"]),
                 service_day=date.fromisoformat(doc["service_day"]), citizen_id=doc.get("citizen"),
                 kiosk_id=doc.get("kiosk", ""), printed=doc.get("printed"))


def _citizen_from_doc(doc: dict) -> Citizen:
    seen = doc.get("last_seen")
    return Citizen(id=doc["id"], created_at=datetime.fromisoformat(doc["created_at"]),
                   last_seen=datetime.fromisoformat(seen) if seen else None,
                   display_name=doc.get("display_name"), consent_id=doc["consent_id"])


class Store:
    """Citizens, templates, visits and counters in one data folder; one writer process at a time.

    Open with :meth:`open` (the kiosk: lock + integrity check + repairs) or :meth:`open_readonly` (tools that
    run beside the kiosk: no lock, no repairs, no writes). Opening never fails because of a damaged file: the
    file is set aside, the last good state is used and :attr:`problems` says what happened (:attr:`repairs`
    lists what was put right with nothing lost, which needs nobody's attention).
    Not thread-safe: the loop thread owns the store.
    """

    def __init__(self, data_dir: Path, *, kiosk_id: str, day_start_hour: int, readonly: bool,
                 clock: Callable[[], datetime]):
        self.data_dir = Path(data_dir)
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

    # ------------------------------------------------------------------------------------------------ opening
    @classmethod
    def open(cls, data_dir: Path, *, kiosk_id: str, day_start_hour: int = 0,
             clock: Callable[[], datetime] = datetime.now) -> "Store":
        """Lock the folder, check every file, repair what a crash left behind; ``clock`` is read once."""
        if not 0 <= day_start_hour <= 23:
            raise StoreError(f"day_start_hour must be 0..23, got {day_start_hour}")
        data_dir = Path(data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data folder {data_dir}: {exc}") from exc
        store = cls(data_dir, kiosk_id=kiosk_id, day_start_hour=day_start_hour, readonly=False, clock=clock)
        store._lock()
        try:
            store._load()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_readonly(cls, data_dir: Path) -> "Store":
        """Read the folder of a possibly running kiosk: no lock, nothing repaired, nothing written."""
        data_dir = Path(data_dir)
        if not any((data_dir / name).exists() for name in (LOCK_FILE, HOT_FILE, CITIZENS_DIR, ARCHIVE_DIR)):
            raise StoreError(f"{data_dir} holds no kiosk data ({LOCK_FILE} and {HOT_FILE} not found)")
        store = cls(data_dir, kiosk_id="", day_start_hour=0, readonly=True, clock=datetime.now)
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

    def _audit(self, event: dict[str, Any]) -> None:
        """Append to the audit log; best effort (a full disk must not stop tickets or undo a saved change)."""
        try:
            self.audit.append([event])
        except StorageError as exc:
            log.warning("audit log: %s", exc)

    def _note(self, message: str, *, level: int = logging.WARNING) -> None:
        """Tell the technician: the journal (log), and the screen (problems) unless it is only a repair (INFO)."""
        log.log(level, "%s", message)
        (self.problems if level >= logging.WARNING else self.repairs).append(message)

    def _load(self) -> None:
        repair = not self.readonly
        if repair:
            for folder in (self.data_dir, self.data_dir / CITIZENS_DIR, self.data_dir / ARCHIVE_DIR):
                remove_stale_temps(folder)
            self.audit = RecordLog(self.data_dir / AUDIT_FILE)
            _, notes = RecordLog.load(self.data_dir / AUDIT_FILE, repair=True, decode=False)
            for n in notes:
                self._note(n)

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
        self._hot_storage = JournalStorage(self.data_dir / HOT_FILE, readonly=self.readonly)
        self._hot = TinyDB(storage=lambda: self._hot_storage)
        for n in self._hot_storage.problems:
            self._note(n, level=logging.ERROR if self._hot_storage.damaged else logging.WARNING)
        self._index_hot()
        lost = {k: n for k, n in self._floors.items() if n > self._counters.get(k, (None, 0))[1] + 1}
        if (lost or self._hot_storage.damaged or not hot_existed and self._marks["day"]) and repair:
            detail = ", ".join(f"{c} up to {n} on {d}" for (d, c), n in sorted(lost.items()))
            self._note(f"{HOT_FILE}: tickets are missing ({detail or 'file lost or damaged'}); numbering "
                       f"continues above every number taken, none will repeat", level=logging.ERROR)
        if repair:
            self._acknowledge_taken_numbers()

        # Citizens and templates.
        cdir = self.data_dir / CITIZENS_DIR
        if repair and not cdir.is_dir():
            cdir.mkdir()
            fsync_dir(self.data_dir)
        self._shards: list[JournalStorage] = []
        self._cit_dbs: list[TinyDB] = []
        self._citizen_docs: dict[str, int] = {}
        for i in range(CITIZEN_SHARDS):
            shard = JournalStorage(cdir / f"{i:02x}.jsonl", readonly=self.readonly)
            self._shards.append(shard)
            self._cit_dbs.append(TinyDB(storage=lambda shard=shard: shard))
            for n in shard.problems:
                self._note(f"{CITIZENS_DIR}/{n}", level=logging.ERROR if shard.damaged else logging.WARNING)
            self._citizen_docs.update((doc["id"], int(k)) for k, doc in shard.peek().get("citizens", {}).items())
        self._templates = TemplateFile(self.data_dir / TEMPLATES_FILE)
        self._tpl_matrix: np.ndarray | None = None  # loaded at start, handed over by the first templates()
        if repair:
            self._check_templates()
        else:
            self._tpl_rows = self._tpl_ids = None

        # History: every month file is checked (checksums only: fast), damage is set aside.
        if repair:
            for month_file in sorted((self.data_dir / ARCHIVE_DIR).glob("*.jsonl")):
                _, notes = RecordLog.load(month_file, repair=True, decode=False, checksum=True)
                for n in notes:
                    self._note(f"{ARCHIVE_DIR}/{n}", level=logging.ERROR)

        if repair:
            now = self._clock()
            if self._latest is not None and now < self._latest - CLOCK_TOLERANCE:
                self._clock_went_back(now)
            self._audit({"at": now.isoformat(timespec="seconds"), "event": "open", "pid": os.getpid(),
                         "problems": list(self.problems), "repairs": list(self.repairs)})

    def _index_hot(self) -> None:
        state = self._hot_storage.peek()
        self._visit_docs: dict[str, int] = {}
        self._counters: dict[tuple[str, str], tuple[int | None, int]] = {}
        self._floors: dict[tuple[str, str], int] = {}
        highest: dict[tuple[str, str], int] = {}
        for k, doc in state.get("visits", {}).items():
            self._visit_docs[doc["id"]] = int(k)
            key = (doc["service_day"], doc["category"])
            highest[key] = max(highest.get(key, 0), doc["number"])
        for k, doc in state.get("counters", {}).items():
            self._counters[(doc["day"], doc["category"])] = (int(k), doc["last"])
        for key, n in highest.items():  # the visits prove these numbers were taken, whatever the counter says
            if n > self._counters.get(key, (None, 0))[1]:
                self._floors[key] = n
        meta = state.get("meta", {}).get("1")
        self._latest = datetime.fromisoformat(meta["latest"]) if meta else None
        self._latest_day = date.fromisoformat(meta["day"]) if meta else None
        if self._marks["day"]:  # numbers taken, possibly beyond what the hot file kept
            mday = self._marks["day"]
            for category, n in self._marks["last"].items():
                key = (mday, category)
                if n > max(self._counters.get(key, (None, 0))[1], self._floors.get(key, 0)):
                    self._floors[key] = n
            marked_latest = datetime.fromisoformat(self._marks["latest"])
            if self._latest is None or marked_latest > self._latest:
                self._latest = marked_latest
            if self._latest_day is None or date.fromisoformat(mday) > self._latest_day:
                self._latest_day = date.fromisoformat(mday)

    def _acknowledge_taken_numbers(self) -> None:
        """Write into the hot file's counters the numbers known taken only from numbers.bin or from visits.

        A number is taken (numbers.bin) just before its visit is saved; a crash in between leaves the counter
        one behind. Recording it now keeps the hot file the full truth, so that only real loss is reported.
        """
        behind = {k: n for k, n in self._floors.items() if n > self._counters.get(k, (None, 0))[1]}
        if not behind and not (self._latest_day and self._hot_storage.peek().get("meta", {}).get("1") is None):
            return
        try:
            with self._hot_storage.batch():
                updated = self._save_counters(behind, self._latest, self._latest_day)
        except StorageError as exc:  # the numbers stay protected in memory (floors) and in numbers.bin
            log.warning("%s: could not record the numbers taken: %s", HOT_FILE, exc)
            return
        self._counters = updated
        self._floors = {}

    def _check_templates(self) -> None:
        check = self._templates.check(repair=True, collect=True)
        for n in check.problems:
            self._note(n, level=logging.ERROR)
        rows, ids, matrix = check.rows, check.ids, check.matrix
        known = np.array([bytes.fromhex(c) for c in self._citizen_docs], "S16")
        orphan = ~np.isin(ids, known)
        if orphan.any():
            # np "S16" drops trailing zero bytes (an all-zero id reads as b"")
            shard_of = np.array([(i[:1] or b"\0")[0] % CITIZEN_SHARDS for i in ids[orphan].tolist()])
            damaged = np.array([self._shards[k].damaged for k in shard_of], bool)
            if damaged.any():
                # Their consent records may be in a set-aside citizens file: keep them beside it, unused.
                kept = self._templates.set_aside_rows(rows[orphan][damaged], "orphans")
                self._note(f"{TEMPLATES_FILE}: {int(damaged.sum())} template(s) of citizens missing from a "
                           f"damaged {CITIZENS_DIR}/ file are not used; kept in {kept.name}", level=logging.ERROR)
            if (~damaged).any():
                # A crash inside enrol/forget left a face without a consent record: it must not stay.
                self._templates.wipe(rows[orphan][~damaged])
                self._note(f"{TEMPLATES_FILE}: {int((~damaged).sum())} template(s) without a citizen record "
                           f"wiped", level=logging.INFO)
            rows, ids, matrix = rows[~orphan], ids[~orphan], matrix[~orphan]
        size = self._templates.path.stat().st_size if self._templates.path.exists() else 0
        total = self._templates._records_in(size)
        if total >= 1000 and (total - len(rows)) > COMPACT_WIPED_FRACTION * total:
            rows = self._templates.compact(rows)
        self._tpl_rows, self._tpl_ids, self._tpl_matrix = rows, ids, matrix

    # ------------------------------------------------------------------------------------------------ tickets
    @property
    def latest_issued(self) -> datetime | None:
        """The latest issue time ever recorded (the clock-jump reference)."""
        return self._latest

    @property
    def numbering_day(self) -> date | None:
        """The service day of the latest number taken; numbering never goes back before it."""
        return self._latest_day

    def accept_clock(self, now: datetime) -> ClockRepair | None:
        """The technician vouches that ``now`` is right: stop numbering on a service day from a clock that ran ahead.

        A clock that jumped forward (a wrong NTP answer, a typo) leaves a latest issue time in the future, and the
        kiosk keeps numbering on that future day until real time catches up. This moves numbering back to the
        service day of ``now``, continuing above every number already used on that day (in the hot file, the
        month files, the counters and numbers.bin), so no number repeats. The visits issued under the wrong
        clock are kept as they are; they move to their month file. None when the clock is not behind.
        """
        self._writable()
        if self._latest is None or now >= self._latest - CLOCK_TOLERANCE:
            return None
        day = service_day_of(now, self.day_start_hour)
        iso = day.isoformat()
        visits = list(self.visits(since=day))
        taken = [(v.category, v.number) for v in visits if v.service_day == day]
        taken += [(category, last) for (d, category), (_, last) in self._counters.items() if d == iso]
        taken += [(category, number) for (d, category), number in self._floors.items() if d == iso]
        if self._marks["day"] == iso:
            taken += list(self._marks["last"].items())
        used: dict[str, int] = {}
        for category, number in taken:
            used[category] = max(used.get(category, 0), number)
        future = sum(v.service_day > day for v in visits)
        repair = ClockRepair(self._latest, self._latest_day, day, dict(sorted(used.items())), future)
        # Hot file first, then numbers.bin: until both say today, opening takes the later of the two, the
        # future day, so a crash in between leaves the old (safe) state and the repair can simply be run again.
        try:
            with self._hot_storage.batch():
                counters = self._save_counters({(iso, c): n for c, n in used.items()}, now, day)
            self._counters = counters
            marks = {"day": iso, "last": dict(used), "latest": now.isoformat()}
            self._numbers.write(marks)
        except StorageError as exc:
            raise StoreError(f"clock not accepted: {exc}") from exc
        self._marks = marks
        self._latest, self._latest_day, self._clock_warned_at = now, day, None
        if self._clock_problem in self.problems:
            self.problems.remove(self._clock_problem)      # solved: nobody needs to check the clock any more
        self._audit({"at": now.isoformat(timespec="seconds"), "event": "clock_accepted",
                     "was_latest": repair.was_latest.isoformat(timespec="seconds"),
                     "was_day": repair.was_day.isoformat(), "day": iso, "continues_after": repair.continues_after})
        try:
            self._roll_over(day)
        except (StorageError, OSError) as exc:  # the future-dated visits stay in the hot file; harmless
            self._note(f"moving future-dated visits to {ARCHIVE_DIR}/ failed: {exc}")
        return repair

    def issue_ticket(self, category: str, prefix: str, *, citizen_id: str | None, now: datetime) -> Visit:
        """Take the next number of ``category`` for the service day of ``now`` and save the visit durably.

        Returns only after the visit and the counter are on disk (one fsync-ed record): print after this.
        """
        self._writable()
        day = service_day_of(now, self.day_start_hour)
        if self._latest is not None and now < self._latest - CLOCK_TOLERANCE:
            self._clock_went_back(now)
        if self._latest_day is not None and day < self._latest_day:
            day = self._latest_day  # never count again on a day that already has numbers
        if self._latest_day is not None and day > self._latest_day:
            try:
                self._roll_over(day)
            except (StorageError, OSError) as exc:  # the old visits stay in the hot file; tickets go on
                self._note(f"moving old visits to {ARCHIVE_DIR}/ failed (retried at the next day change): {exc}")
        key = (day.isoformat(), category)
        last = self._counters.get(key, (None, 0))[1]
        number = max(last, self._floors.get(key, 0)) + 1
        latest = now if self._latest is None or now > self._latest else self._latest
        self._mark_taken(day, category, number, latest)
        visit = Visit(id=secrets.token_hex(8), ticket=format_ticket(prefix, number), number=number,
                      category=category, issued_at=now, service_day=day, citizen_id=citizen_id,
                      kiosk_id=self.kiosk_id, printed=None)
        doc = {"id": visit.id, "ticket": visit.ticket, "number": number, "category": category,
               "issued_at": now.isoformat(), "service_day": key[0], "citizen": citizen_id,
               "kiosk": self.kiosk_id, "printed": None}
        try:
            with self._hot_storage.batch():        # the visit, its counter and the clock reference: one record
                doc_id = self._hot.table("visits").insert(doc)
                counters = self._save_counters({key: number}, latest, day)
        except StorageError as exc:
            raise StoreError(f"ticket not saved: {exc}") from exc
        self._visit_docs[visit.id] = doc_id
        self._counters = counters
        self._latest, self._latest_day = latest, day
        return visit

    def _save_counters(self, numbers: dict[tuple[str, str], int], latest: datetime | None, day: date | None
                       ) -> dict[tuple[str, str], tuple[int | None, int]]:
        """Inside a hot-file batch: set each (day, category) counter and the latest issue time and day.

        Returns the counters as they will be once the batch is on disk (the caller keeps them only then).
        """
        counters = self._hot.table("counters")
        updated = dict(self._counters)
        for (counter_day, category), number in numbers.items():
            doc_id = updated.get((counter_day, category), (None, 0))[0]
            if doc_id is None:
                doc_id = counters.insert({"day": counter_day, "category": category, "last": number})
            else:
                counters.update({"last": number}, doc_ids=[doc_id])
            updated[(counter_day, category)] = (doc_id, number)
        if latest is not None and day is not None:
            meta = self._hot.table("meta")
            meta_doc = {"latest": latest.isoformat(), "day": day.isoformat()}
            if meta.contains(doc_id=1):
                meta.update(meta_doc, doc_ids=[1])
            else:
                meta.insert(meta_doc)
        return updated

    def _clock_went_back(self, now: datetime) -> None:
        if self._clock_warned_at == self._latest:
            return  # said once per jump
        self._clock_warned_at = self._latest
        msg = (f"clock went back: it reads {now.isoformat(timespec='seconds')}, but a ticket was already issued "
               f"at {self._latest.isoformat(timespec='seconds')}; numbering continues on service day "
               f"{self._latest_day} (check the time / NTP; 'kiosk clock' tells what to do)")
        self._note(msg)
        self._clock_problem = msg
        if not self.readonly:
            self._audit({"at": now.isoformat(timespec="seconds"), "event": "clock_back",
                         "latest": self._latest.isoformat(timespec="seconds")})

    def _mark_taken(self, day: date, category: str, number: int, latest: datetime) -> None:
        """Record the number as taken (second copy, written before the visit) in numbers.bin."""
        iso = day.isoformat()
        last = dict(self._marks["last"]) if self._marks["day"] == iso else {}
        last[category] = number
        marks = {"day": iso, "last": last, "latest": latest.isoformat()}
        try:
            self._numbers.write(marks)
        except StorageError as exc:
            raise StoreError(f"ticket not saved: {exc}") from exc
        self._marks = marks

    def _roll_over(self, day: date) -> None:
        """A new service day: move visits older than yesterday to the month files, drop their counters.

        Visits dated after ``day`` (numbered under a clock that ran ahead, see :meth:`accept_clock`) go too,
        but their counters stay: when that day really comes, its numbering continues above them.
        """
        keep_from, keep_to = (day - timedelta(days=1)).isoformat(), day.isoformat()
        state = self._hot_storage.peek()
        old = [(int(k), doc) for k, doc in state.get("visits", {}).items()
               if not keep_from <= doc["service_day"] <= keep_to]
        old_counters = [int(k) for k, doc in state.get("counters", {}).items() if doc["day"] < keep_from]
        if old:
            by_month: dict[str, list[dict]] = {}
            for _, doc in old:
                by_month.setdefault(doc["service_day"][:7], []).append(doc)
            archive = self.data_dir / ARCHIVE_DIR
            if not archive.is_dir():
                archive.mkdir()
                fsync_dir(self.data_dir)
            for month, docs in sorted(by_month.items()):
                out = RecordLog(archive / f"{month}.jsonl", checksum=True)
                try:
                    out.append(docs)  # durable before the hot copies go (a crash in between: duplicates,
                finally:             # which readers drop by visit id)
                    out.close()
        if old or old_counters:
            with self._hot_storage.batch():
                if old:
                    self._hot.table("visits").remove(doc_ids=[k for k, _ in old])
                if old_counters:
                    self._hot.table("counters").remove(doc_ids=old_counters)
            for _, doc in old:
                self._visit_docs.pop(doc["id"], None)
            self._counters = {k: v for k, v in self._counters.items() if k[0] >= keep_from}
            self._floors = {k: v for k, v in self._floors.items() if k[0] >= keep_from}

    def mark_printed(self, visit_id: str, ok: bool) -> None:
        """Record the printer's answer for a visit."""
        self._writable()
        doc_id = self._visit_docs.get(visit_id)
        if doc_id is not None:
            with _saving("printer answer"):
                self._hot.table("visits").update({"printed": bool(ok)}, doc_ids=[doc_id])
            return
        for month_file in sorted((self.data_dir / ARCHIVE_DIR).glob("*.jsonl"), reverse=True):
            records, _ = RecordLog.load(month_file, repair=False)
            if any(r.get("id") == visit_id and "patch" not in r for r in records):
                out = RecordLog(month_file, checksum=True)
                try:
                    with _saving("printer answer"):
                        out.append([{"patch": visit_id, "printed": bool(ok)}])
                finally:
                    out.close()
                return
        raise StoreError(f"unknown visit {visit_id} in {self.data_dir}")

    def visits(self, since: date | None = None) -> Iterator[Visit]:
        """Stored visits of service days from ``since`` on (all when None), oldest month first."""
        self._open_check()
        since_iso = since.isoformat() if since else ""
        hot = self._hot_storage.peek().get("visits", {})
        in_hot = {doc["id"] for doc in hot.values()}  # a crash while archiving leaves copies in both
        for month_file in sorted((self.data_dir / ARCHIVE_DIR).glob("*.jsonl")):
            if since and month_file.stem < since_iso[:7]:
                continue
            records, _ = RecordLog.load(month_file, repair=False)
            docs: dict[str, dict] = {}
            for r in records:
                if "patch" in r:
                    if r["patch"] in docs:
                        docs[r["patch"]] = {**docs[r["patch"]], "printed": r["printed"]}
                else:
                    docs[r["id"]] = r
            for doc in docs.values():
                if doc["service_day"] >= since_iso and doc["id"] not in in_hot:
                    yield _visit_from_doc(doc)
        for k in sorted(hot, key=int):
            if hot[k]["service_day"] >= since_iso:
                yield _visit_from_doc(hot[k])

    # ----------------------------------------------------------------------------------------------- citizens
    def enrol(self, encodings: np.ndarray, *, now: datetime, consent_text: str,
              display_name: str | None = None) -> Citizen:
        """Create a consenting citizen with k x 128 face templates; the consent record is written first."""
        self._writable()
        enc = np.asarray(encodings, dtype=np.float32)
        if enc.ndim == 1:
            enc = enc[None, :]
        if enc.ndim != 2 or enc.shape[1] != 128 or not len(enc) or not np.isfinite(enc).all():
            raise ValueError(f"encodings must be k x 128 finite floats, got shape {np.shape(encodings)}")
        if not consent_text.strip():
            raise ValueError("consent_text is empty: no templates without the consent the citizen saw")
        cid_raw = secrets.token_bytes(16)
        cid = cid_raw.hex()
        sha = hashlib.sha256(consent_text.encode("utf-8")).hexdigest()[:16]
        doc = {"id": cid, "created_at": now.isoformat(), "last_seen": None, "display_name": display_name,
               "consent_id": secrets.token_hex(8), "consent_at": now.isoformat(), "consent_text": sha}
        shard, db = self._shards[_shard_index(cid)], self._cit_dbs[_shard_index(cid)]
        texts = db.table("consent_texts")
        try:
            with shard.batch():
                if str(_text_doc_id(sha)) not in shard.peek().get("consent_texts", {}):
                    texts.insert(Document({"sha": sha, "text": consent_text}, doc_id=_text_doc_id(sha)))
                doc_id = db.table("citizens").insert(doc)
            rows = self._templates.append(cid_raw, enc)
        except StorageError as exc:
            raise StoreError(f"enrolment not saved: {exc}") from exc
        self._citizen_docs[cid] = doc_id
        self._tpl_matrix = None  # templates() reads the file again
        self._tpl_rows = np.concatenate([self._tpl_rows, rows])
        self._tpl_ids = np.concatenate([self._tpl_ids, np.array([cid_raw] * len(rows), "S16")])
        self._audit({"at": now.isoformat(timespec="seconds"), "event": "enrol", "citizen": cid,
                     "consent": doc["consent_id"], "templates": len(rows)})
        return _citizen_from_doc(doc)

    def citizen(self, citizen_id: str) -> Citizen | None:
        self._open_check()
        doc_id = self._citizen_docs.get(citizen_id)
        if doc_id is None:
            return None
        return _citizen_from_doc(self._shards[_shard_index(citizen_id)].peek()["citizens"][str(doc_id)])

    def touch(self, citizen_id: str, now: datetime) -> None:
        """Remember when a known citizen was last seen."""
        self._writable()
        doc_id = self._citizen_docs.get(citizen_id)
        if doc_id is not None:
            db = self._cit_dbs[_shard_index(citizen_id)]
            with _saving("last seen"):
                db.table("citizens").update({"last_seen": now.isoformat()}, doc_ids=[doc_id])

    def templates(self) -> tuple[list[str], np.ndarray]:
        """Citizen ids (one per row) and the N x 128 float32 templates, read from disk in one pass."""
        self._open_check()
        if self._tpl_matrix is not None:  # loaded by the start-up check: hand it over (memory counts)
            matrix, self._tpl_matrix = self._tpl_matrix, None
            return hex_ids(self._tpl_ids), matrix
        if self._tpl_rows is None:  # read-only: check without repairing
            check = self._templates.check(repair=False)
            self._tpl_rows, self._tpl_ids = check.rows, check.ids
        order = np.argsort(self._tpl_rows, kind="stable")
        return self._templates.load(self._tpl_rows[order])

    def forget(self, citizen_id: str, *, now: datetime) -> None:
        """Delete a citizen's templates (bytes overwritten) and record; keep a deletion receipt."""
        self._writable()
        doc_id = self._citizen_docs.get(citizen_id)
        if doc_id is None:
            if any(r["citizen"] == citizen_id for r in self.receipts()):
                return  # already forgotten
            raise StoreError(f"unknown citizen {citizen_id} in {self.data_dir}")
        raw = bytes.fromhex(citizen_id)
        mine = self._tpl_ids == raw
        try:
            self._templates.wipe(self._tpl_rows[mine])  # first the face, then the record
            self._tpl_matrix = None
            shard, db = self._shards[_shard_index(citizen_id)], self._cit_dbs[_shard_index(citizen_id)]
            doc = shard.peek()["citizens"][str(doc_id)]
            with shard.batch():
                db.table("citizens").remove(doc_ids=[doc_id])
                db.table("receipts").insert({
                    "citizen": citizen_id, "at": now.isoformat(), "consent_id": doc["consent_id"],
                    "consent_at": doc["consent_at"], "consent_text": doc["consent_text"],
                    "templates_deleted": int(mine.sum())})
        except StorageError as exc:
            raise StoreError(f"forget not completed: {exc}") from exc
        self._tpl_rows, self._tpl_ids = self._tpl_rows[~mine], self._tpl_ids[~mine]
        del self._citizen_docs[citizen_id]
        self._audit({"at": now.isoformat(timespec="seconds"), "event": "forget", "citizen": citizen_id,
                     "templates": int(mine.sum())})

    def consents(self) -> list[dict[str, Any]]:
        """Consent records of current citizens (who, when, which text) for the data controller's export."""
        self._open_check()
        out = []
        for shard in self._shards:
            state = shard.peek()
            texts = {d["sha"]: d["text"] for d in state.get("consent_texts", {}).values()}
            out += [{"citizen": d["id"], "consent_id": d["consent_id"], "at": d["consent_at"],
                     "text_version": d["consent_text"], "text": texts.get(d["consent_text"])}
                    for d in state.get("citizens", {}).values()]
        return sorted(out, key=lambda r: r["at"])

    def receipts(self) -> list[dict[str, Any]]:
        """Deletion receipts written by :meth:`forget`."""
        self._open_check()
        out = [dict(d) for shard in self._shards for d in shard.peek().get("receipts", {}).values()]
        return sorted(out, key=lambda r: r["at"])

    # -------------------------------------------------------------------------------------------------- misc
    def _open_check(self) -> None:
        if self._closed:
            raise StoreError(f"the store of {self.data_dir} is closed")

    def _writable(self) -> None:
        self._open_check()
        if self.readonly:
            raise StoreError(f"the store of {self.data_dir} is open read-only")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in ("_hot_storage", "_templates", "_numbers", "audit"):
            obj = getattr(self, name, None)
            if obj is not None:
                obj.close()
        for shard in getattr(self, "_shards", ()):
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


@contextlib.contextmanager
def _saving(what: str) -> Iterator[None]:
    """Turn a storage failure (disk full, read-only file system) into a StoreError saying what was lost."""
    try:
        yield
    except StorageError as exc:
        raise StoreError(f"{what} not saved: {exc}") from exc


def _shard_index(citizen_id: str) -> int:
    """Which citizens/ file holds a citizen: its first id byte, modulo the number of shards."""
    return int(citizen_id[:2], 16) % CITIZEN_SHARDS


def _text_doc_id(sha: str) -> int:
    return int(sha[:12], 16) or 1


def print_visits(data_dir: Path, since: date | None, as_json: bool, out: TextIO | None = None) -> int:
    """`kiosk visits`: list stored visits (one JSON object a line with ``as_json``); works beside the kiosk.

    Returns the exit status: 0, or 2 when the folder holds no kiosk data (the message goes to stderr).
    """
    out = out or sys.stdout
    try:
        store = Store.open_readonly(Path(data_dir))
    except (StoreError, StorageError) as exc:
        print(f"kiosk visits: {exc}", file=sys.stderr)
        return 2
    try:
        for visit in store.visits(since):
            if as_json:
                out.write(json.dumps(visit.to_json(), ensure_ascii=False) + "\n")
            else:
                printed = {True: "printed", False: "NOT PRINTED", None: "printing?"}[visit.printed]
                out.write(f"{visit.ticket:>8}  {visit.category:<16} {visit.issued_at:%Y-%m-%d %H:%M:%S}  "
                          f"{visit.citizen_id or '-':<32}  {printed}\n")
    finally:
        store.close()
    return 0


def clock_command(data_dir: Path, *, kiosk_id: str, day_start_hour: int, accept: bool, now: datetime,
                  out: TextIO | None = None) -> int:
    """`kiosk clock`: compare the clock with the latest ticket; with ``accept``, :meth:`Store.accept_clock`.

    Exit status: 0 when the clock is not behind the store (or was accepted), 1 when it is behind and nothing
    was changed, 2 when the folder cannot be read, 3 when the running kiosk holds it (accepting needs the lock).
    """
    out = out or sys.stdout
    try:
        store = (Store.open(Path(data_dir), kiosk_id=kiosk_id, day_start_hour=day_start_hour, clock=lambda: now)
                 if accept else Store.open_readonly(Path(data_dir)))
    except StoreLocked as exc:
        print(f"kiosk clock: {exc} (stop the service first: systemctl stop kiosk)", file=sys.stderr)
        return 3
    except (StoreError, StorageError) as exc:
        print(f"kiosk clock: {exc}", file=sys.stderr)
        return 2
    try:
        latest, day = store.latest_issued, store.numbering_day
        out.write(f"clock:         {now:%Y-%m-%d %H:%M:%S}\n")
        out.write(f"latest ticket: {f'{latest:%Y-%m-%d %H:%M:%S} (service day {day})' if latest else 'none yet'}\n")
        if latest is None or now >= latest - CLOCK_TOLERANCE:
            out.write("the clock is not behind the tickets: nothing to do\n")
            return 0
        if not accept:
            out.write(f"the clock reads earlier than the latest ticket, so numbering stays on service day {day}.\n"
                      f"If the clock is wrong, set it (timedatectl, NTP). If it is right and the earlier time was "
                      f"wrong, stop the kiosk and run: kiosk clock --accept-now\n")
            return 1
        repair = store.accept_clock(now)
        used = ", ".join(f"{c} after {n}" for c, n in repair.continues_after.items()) or "every category from 1"
        out.write(f"accepted: numbering moves from service day {repair.was_day} back to {repair.day} "
                  f"({used}); {repair.future_visits} visit(s) issued under the wrong clock are kept with "
                  f"their recorded dates\n")
        return 0
    except StoreError as exc:
        print(f"kiosk clock: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
