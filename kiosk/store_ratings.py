"""Satisfaction ratings of the store (issue 13): one append-only file a month, ``ratings/YYYY-MM.jsonl``.

A rating pressed on the idle screen is linked to the citizen's visit of the same service day when the kiosk
knows who pressed it (a card, or a face), anonymous otherwise. One rating per visit: the first one stands and a
second press for the same visit changes nothing (it may be a slip of the hand, a child, or the same person
pressing again on the thank-you screen; the first answer is the considered one). A record holds the visit's id
and service, never the citizen: who they are stays with the visit, whose link retention drops in time.

Each record is one self-checking line appended and fsync-ed before :meth:`RatingRecords.rate` returns (a
:class:`~kiosk.storage.RecordLog`, like the visit archives): a power cut leaves a torn tail that the next
start cuts off, never a half rating.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterator

from kiosk.storage import RecordLog, fsync_dir
from kiosk.store_base import StoreBase, _saving
from kiosk.store_numbers import service_day_of

RATINGS_DIR = "ratings"
RATINGS = ("good", "ok", "bad")     # "Hài lòng", "Bình thường", "Chưa hài lòng"


@dataclass(frozen=True)
class Rating:
    """One stored rating; ``visit`` and ``category`` are None for an anonymous one."""
    id: str
    rating: str                     # one of RATINGS
    at: datetime
    service_day: date
    visit: str | None               # the visit it is linked to (same service day)
    category: str | None            # that visit's service
    kiosk: str
    new: bool = True                # False: the visit was rated before; this press changed nothing

    def to_json(self) -> dict[str, Any]:
        """The stored record, and the export's (``ratings`` part of a bundle)."""
        return {"id": self.id, "rating": self.rating, "at": self.at.isoformat(timespec="seconds"),
                "service_day": self.service_day.isoformat(), "visit": self.visit, "category": self.category,
                "kiosk": self.kiosk}


def rating_from_json(doc: dict[str, Any]) -> Rating:
    return Rating(id=doc["id"], rating=doc["rating"], at=datetime.fromisoformat(doc["at"]),
                  service_day=date.fromisoformat(doc["service_day"]), visit=doc.get("visit"),
                  category=doc.get("category"), kiosk=doc.get("kiosk", ""))


class RatingRecords(StoreBase):
    """The ratings part of :class:`~kiosk.store.Store`."""

    _rated: dict[str, dict[str, Rating]]   # month -> visit id -> its rating (months read so far)

    def _open_ratings(self, repair: bool) -> None:
        """At open: cut a torn tail off the month files (a power cut mid-append); nothing else is read."""
        self._rated = {}
        if not repair:
            return
        for path in sorted((self.data_dir / RATINGS_DIR).glob("*.jsonl")):
            _, notes = RecordLog.load(path, repair=True, decode=False)
            for n in notes:
                self._note(f"{RATINGS_DIR}/{n}")

    def rate(self, rating: str, *, citizen_id: str | None, now: datetime) -> Rating:
        """Store a rating, linked to ``citizen_id``'s latest visit of today's service day if there is one.

        Durable on return. The visit rated before: its first rating is returned (``new`` False), nothing written.
        """
        self._writable()
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}, got {rating!r}")
        day = service_day_of(now, self.day_start_hour)
        visit = self._todays_visit(citizen_id, day) if citizen_id else None
        month = day.isoformat()[:7]
        rated = self._rated_in(month)
        if visit is not None and visit["id"] in rated:
            earlier = rated[visit["id"]]
            return Rating(earlier.id, earlier.rating, earlier.at, earlier.service_day, earlier.visit,
                          earlier.category, earlier.kiosk, new=False)
        record = Rating(id=secrets.token_hex(8), rating=rating, at=now, service_day=day,
                        visit=visit["id"] if visit else None, category=visit["category"] if visit else None,
                        kiosk=self.kiosk_id)
        folder = self.data_dir / RATINGS_DIR
        if not folder.is_dir():
            folder.mkdir()
            fsync_dir(self.data_dir)
        out = RecordLog(folder / f"{month}.jsonl")
        try:
            with _saving("rating"):
                out.append([record.to_json()])
        finally:
            out.close()
        if record.visit is not None:
            rated[record.visit] = record
        return record

    def _todays_visit(self, citizen_id: str, day: date) -> dict[str, Any] | None:
        """The citizen's latest visit of service day ``day`` (today's visits are all in the hot file)."""
        docs = [doc for doc in self._hot_storage.peek().get("visits", {}).values()
                if doc.get("citizen") == citizen_id and doc["service_day"] == day.isoformat()]
        return max(docs, key=lambda doc: doc["issued_at"]) if docs else None

    def _rated_in(self, month: str) -> dict[str, Rating]:
        """Visit id -> rating for one month file (read once, then kept up to date by :meth:`rate`)."""
        if month not in self._rated:
            self._rated = {month: {r.visit: r for r in self._month_ratings(month) if r.visit is not None}}
        return self._rated[month]

    def _month_ratings(self, month: str) -> list[Rating]:
        records, _ = RecordLog.load(self.data_dir / RATINGS_DIR / f"{month}.jsonl", repair=False)
        first: dict[str, Rating] = {}
        for doc in records:
            r = rating_from_json(doc)
            key = r.visit or r.id      # a visit rated twice (never written so, but read defensively): the first
            first.setdefault(key, r)
        return list(first.values())

    def ratings(self, since: date | None = None) -> Iterator[Rating]:
        """Stored ratings of service days from ``since`` on (all when None), oldest month first; reads only."""
        self._open_check()
        since_iso = since.isoformat() if since else ""
        for path in sorted((self.data_dir / RATINGS_DIR).glob("*.jsonl")):
            if path.stem < since_iso[:7]:
                continue
            for r in self._month_ratings(path.stem):
                if r.service_day.isoformat() >= since_iso:
                    yield r

    def rating_counts(self, since: date | None = None) -> dict[str | None, dict[str, int]]:
        """Service (None: anonymous) -> rating -> how many, for the statistics."""
        counts: dict[str | None, dict[str, int]] = {}
        for r in self.ratings(since):
            per = counts.setdefault(r.category, dict.fromkeys(RATINGS, 0))
            per[r.rating] += 1
        return counts
