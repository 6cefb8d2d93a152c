"""Retention per data class ([privacy] in the config), enforced at start and at each new day.

* face templates (and the citizen record with its consent): ``templates_months`` after the citizen was last seen;
* card records: ``card_months`` after the card holder was last seen;
* the link from a visit to its citizen: ``visit_link_months`` after the visit, by whole month files; the visit
  itself stays, anonymous, for the statistics;
* deletion receipts, and the consent records they carry (the consent's id, time and wording version):
  ``records_extra_months`` after the deletion they record, so a consent record outlives the data it covers by
  that period (kiosk/consentrecords.py).

Each purge is one line in the journal and one audit record with its counts (never an id list), once it is
complete. The running kiosk purges in small steps between turns while nobody is at the screen (:class:`Retention`
is an idle chore of kiosk.loop), so a ticket never waits for a whole purge; purged citizens leave the face index
with the step that forgot them.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from kiosk.store_base import CITIZEN_SHARDS
from kiosk.storage import RecordLog, StorageError, encode_record, replace_with_checksum

log = logging.getLogger("kiosk.privacy")

ARCHIVE_DIR = "visits"     # kiosk.store_base.ARCHIVE_DIR (month files of older visits)


@dataclass(frozen=True)
class RetentionPolicy:
    templates_months: int = 12
    card_months: int = 24
    visit_link_months: int = 24
    records_extra_months: int = 12


@dataclass(frozen=True)
class Purge:
    """What one purge removed."""
    at: datetime
    citizens: tuple[str, ...]   # face templates + consent record removed (leave the index)
    cards: int
    visit_links: int
    receipts: int

    @property
    def empty(self) -> bool:
        return not (self.citizens or self.cards or self.visit_links or self.receipts)


class PurgeStore(Protocol):
    data_dir: Path
    personal: bool

    def stale_citizens(self, before: datetime) -> list[str]: ...
    def forget_many(self, citizen_ids: list[str], *, now: datetime, reason: str = ...) -> int: ...
    def drop_receipts(self, before: datetime) -> int: ...
    def _audit(self, event: dict[str, Any]) -> None: ...


class PurgeBook(Protocol):
    def stale(self, before: datetime) -> list[str]: ...
    def forget_many(self, citizen_ids: list[str]) -> int: ...


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (the 31st becomes the month's last day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for day in range(moment.day, 27, -1) if moment.day > 28 else (moment.day,):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=28)


# Citizens forgotten per idle turn at most, from at most JOURNALS_PER_STEP citizens journals (one compaction each).
# A step costs ~0.2 s at 100,000 citizens (benchmarks/privacy.py): mostly fsyncs (each journal compacted with its
# .count sidecar, the wiped template records) and the journals' reading and rewriting; no read of the templates file.
PURGE_BATCH = 500
JOURNALS_PER_STEP = 8
CHECK_SECONDS = 60.0     # how often the idle kiosk looks whether a new day has come


class Index(Protocol):
    """kiosk.index.FaceIndex, as far as the purge needs it."""

    def __contains__(self, citizen_id: object) -> bool: ...

    def remove(self, citizen_id: str) -> None: ...


class PurgeRun:
    """One day's purge cut into small steps, so the loop can do it between turns while nobody is at the kiosk.

    Each :meth:`step` does one bounded piece: at most ``batch`` expired citizens from a few citizens journals
    (each compacted once), or the deletion receipts, or the card records, or one month file. Nothing is
    remembered between steps but what is left to do: a crash between two steps loses nothing, and the next run
    (the next start) finds what is still expired and goes on.
    """

    def __init__(self, store: PurgeStore, book: PurgeBook | None, policy: RetentionPolicy, now: datetime,
                 batch: int | None = PURGE_BATCH) -> None:
        """``batch`` None: all expired citizens in one step (one forget, as a command does it)."""
        self.now = now
        self.citizens: list[str] = []
        self.cards = self.links = self.receipts = 0
        self._steps = self._plan(store, book, policy, now, batch)
        self.done = False

    def step(self) -> list[str]:
        """Do the next piece; the citizens it forgot (they must leave the face index now)."""
        if self.done:
            return []
        try:
            return next(self._steps)
        except StopIteration:
            self.done = True
            return []

    def result(self) -> Purge:
        return Purge(self.now, tuple(self.citizens), self.cards, self.links, self.receipts)

    def _plan(self, store: PurgeStore, book: PurgeBook | None, policy: RetentionPolicy, now: datetime,
              batch: int | None) -> Iterator[list[str]]:
        if store.personal:
            stale = sorted(store.stale_citizens(months_before(now, policy.templates_months)), key=_shard)
            yield []                                   # the query alone is one step (a scan of every citizen)
            if batch is None:
                parts = [stale] if stale else []
            else:
                parts = _steps_of(stale, max(1, batch))
            for part in parts:
                store.forget_many(part, now=now, reason="retention")
                self.citizens += part
                yield part
            self.receipts = store.drop_receipts(months_before(now, policy.records_extra_months))
            yield []
            if book is not None:
                self.cards = book.forget_many(book.stale(months_before(now, policy.card_months)))
                yield []
        for count in unlink_months(store.data_dir, months_before(now, policy.visit_link_months).date()):
            self.links += count
            yield []


def _shard(citizen_id: str) -> int:
    """The citizens journal a citizen is in (kiosk.store_base.CITIZEN_SHARDS: by the id's first byte)."""
    return int(citizen_id[:2], 16) % CITIZEN_SHARDS


def _steps_of(stale: list[str], batch: int) -> list[list[str]]:
    """Citizens (sorted by journal) cut into steps: ``batch`` at most, from JOURNALS_PER_STEP journals at most."""
    parts: list[list[str]] = [[]]
    journals = 0
    for _, same in groupby(stale, key=_shard):
        group = list(same)
        while group:
            if len(parts[-1]) >= batch or journals >= JOURNALS_PER_STEP:
                parts.append([])
                journals = 0
            room = batch - len(parts[-1])
            parts[-1] += group[:room]
            group = group[room:]
            journals += 1
    return [part for part in parts if part]


def purge(store: PurgeStore, book: PurgeBook | None, policy: RetentionPolicy, now: datetime) -> Purge:
    """Remove what outlived its retention, all at once (start of a command, tests); logged and audited with counts."""
    run = PurgeRun(store, book, policy, now, batch=None)
    while not run.done:
        run.step()
    return _record(store, run.result())


def _record(store: PurgeStore, result: Purge) -> Purge:
    """One journal line and one audit record with the totals of a finished purge (nothing when it removed nothing)."""
    if not result.empty:
        counts = {"templates_citizens": len(result.citizens), "card_records": result.cards,
                  "visit_links": result.visit_links, "receipts": result.receipts}
        log.info("retention purge: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
        store._audit({"at": result.at.isoformat(timespec="seconds"), "event": "purge", **counts})
    return result


def unlink_visits(data_dir: Path, before: date) -> int:
    """Drop the citizen id of the visits in month files wholly before ``before``; the visits stay. How many."""
    return sum(unlink_months(data_dir, before))


def unlink_months(data_dir: Path, before: date) -> Iterator[int]:
    """:func:`unlink_visits` one month file at a time: the links dropped from each file, as it is done.

    Month files older than the hot file's two days are never appended to any more, so each is rewritten
    atomically (with its whole-file checksum), one after the other.
    """
    folder = Path(data_dir) / ARCHIVE_DIR
    for month_file in sorted(folder.glob("*.jsonl")):
        try:
            year, month = map(int, month_file.stem.split("-"))
        except ValueError:
            continue
        next_month = date(year + month // 12, month % 12 + 1, 1)
        if next_month > before:
            break
        records, _ = RecordLog.load(month_file, repair=False)
        count = sum(1 for r in records if isinstance(r, dict) and r.get("citizen"))
        if not count:
            yield 0
            continue
        data = b"".join(encode_record({**r, "citizen": None} if isinstance(r, dict) and r.get("citizen") else r)
                        for r in records)
        try:
            replace_with_checksum(month_file, data)
        except (StorageError, OSError) as exc:
            log.warning("retention: %s not rewritten: %s", month_file.name, exc)
            yield 0
            continue
        yield count


class Retention:
    """The purge at start and once on each new day, as an idle chore of the loop (kiosk.loop.IdleChore).

    :meth:`poll` (loop thread, nobody at the screen) does one step of the day's :class:`PurgeRun` per turn, so a
    citizen who walks up waits for one step at most (a few tens of ms), never for the whole purge; the finished
    purge is logged once with its totals. :meth:`tick` runs a due purge whole, for callers without a loop.
    """

    def __init__(self, store: PurgeStore, book: PurgeBook | None, policy: RetentionPolicy, *,
                 index: Index | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = datetime.now, batch: int = PURGE_BATCH) -> None:
        self._store = store
        self._book = book
        self._policy = policy
        self._index = index
        self._clock = clock
        self._wall = wall
        self._batch = batch
        self._day: date | None = None
        self._run: PurgeRun | None = None
        self.next_due = clock()          # at start: the purge begins at the first idle turn
        self.last: Purge | None = None

    def poll(self) -> Purge | None:
        """One step of the purge when one is due or under way; the purge when this step finished it."""
        now = self._clock()
        if now < self.next_due:
            return None
        if self._run is None:
            wall = self._wall()
            if self._day == wall.date():
                self.next_due = now + CHECK_SECONDS
                return None
            self._day = wall.date()
            self._run = PurgeRun(self._store, self._book, self._policy, wall, self._batch)
        run = self._run
        try:
            gone = run.step()
        except Exception:        # a purge that fails is retried tomorrow (or at the next start); never costs a ticket
            log.exception("retention purge failed after %d citizens; retried at the next day", len(run.citizens))
            self._run, self.next_due = None, now + CHECK_SECONDS
            return None
        self._leave_index(gone)
        if not run.done:
            self.next_due = now               # the next step at the next idle turn
            return None
        self._run, self.next_due = None, now + CHECK_SECONDS
        self.last = _record(self._store, run.result())
        return self.last

    def tick(self, now: datetime) -> Purge | None:
        """The whole purge now if the day changed since the last one; the purge, or None when not due."""
        if self._day == now.date():
            return None
        self._day = now.date()
        try:
            self.last = purge(self._store, self._book, self._policy, now)
        except Exception:        # a purge that fails is retried tomorrow; it must never cost a ticket
            log.exception("retention purge failed; retried at the next day")
            return None
        self._leave_index(self.last.citizens)
        return self.last

    def _leave_index(self, citizens: Sequence[str]) -> None:
        for citizen in citizens:
            if self._index is not None and citizen in self._index:
                self._index.remove(citizen)
