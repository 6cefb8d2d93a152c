"""Retention per data class ([privacy] in the config), enforced at start and at each new day.

* face templates (and the consent record they stand on): ``templates_months`` after the citizen was last seen;
* card records: ``card_months`` after the card holder was last seen;
* the link from a visit to its citizen: ``visit_link_months`` after the visit, by whole month files; the visit
  itself stays, anonymous, for the statistics;
* deletion receipts: ``records_extra_months`` after the deletion they record.

Each purge is one line in the journal and one audit record with its counts (never an id list). Purged citizens
leave the face index at once (the caller removes the ids it is given).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from kiosk.storage import RecordLog, StorageError, atomic_write, encode_record, write_checksum

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


def purge(store: PurgeStore, book: PurgeBook | None, policy: RetentionPolicy, now: datetime) -> Purge:
    """Remove what outlived its retention; logged and audited with counts."""
    citizens: list[str] = []
    cards = receipts = 0
    if store.personal:
        stale = store.stale_citizens(months_before(now, policy.templates_months))
        if stale:
            store.forget_many(stale, now=now, reason="retention")
            citizens = stale
        receipts = store.drop_receipts(months_before(now, policy.records_extra_months))
        if book is not None:
            cards = book.forget_many(book.stale(months_before(now, policy.card_months)))
    links = unlink_visits(store.data_dir, months_before(now, policy.visit_link_months).date())
    result = Purge(now, tuple(citizens), cards, links, receipts)
    if not result.empty:
        counts = {"templates_citizens": len(citizens), "card_records": cards, "visit_links": links,
                  "receipts": receipts}
        log.info("retention purge: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
        store._audit({"at": now.isoformat(timespec="seconds"), "event": "purge", **counts})
    return result


def unlink_visits(data_dir: Path, before: date) -> int:
    """Drop the citizen id of the visits in month files wholly before ``before``; the visits stay. How many.

    Month files older than the hot file's two days are never appended to any more, so each is rewritten
    atomically (with its whole-file checksum), one after the other.
    """
    linked = 0
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
            continue
        data = b"".join(encode_record({**r, "citizen": None} if isinstance(r, dict) and r.get("citizen") else r)
                        for r in records)
        try:
            atomic_write(month_file, data)
            write_checksum(month_file)
        except (StorageError, OSError) as exc:
            log.warning("retention: %s not rewritten: %s", month_file.name, exc)
            continue
        linked += count
    return linked


class Retention:
    """Runs the purge at start and once on each new day (the loop thread calls :meth:`tick` after a ticket)."""

    def __init__(self, store: PurgeStore, book: PurgeBook | None, policy: RetentionPolicy):
        self._store = store
        self._book = book
        self._policy = policy
        self._day: date | None = None
        self.last: Purge | None = None

    def tick(self, now: datetime) -> Purge | None:
        """Purge if the day changed since the last purge; the purge, or None when not due."""
        if self._day == now.date():
            return None
        self._day = now.date()
        try:
            self.last = purge(self._store, self._book, self._policy, now)
        except Exception:        # a purge that fails is retried tomorrow; it must never cost a ticket
            log.exception("retention purge failed; retried at the next day")
            return None
        return self.last
