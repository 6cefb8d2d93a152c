"""The bundle's ``ratings`` part (issue 13): satisfaction ratings not sent yet, one record each.

Ratings are appended to the month file of their service day and never change, and a new one is always of the
current service day, so the watermark is small: every rating of a month before ``ratings_from`` was sent, and
the ids sent from that month on are remembered (``ratings_sent``). The office upserts by (kiosk, id): a rating
sent twice (a state file set aside) counts once.
"""
from __future__ import annotations

from datetime import date
from typing import Any

MONTH = slice(0, 7)


class RatingSnapshot:
    """The ratings to put in the next bundle, read from a read-only store, and the watermark after it."""

    def __init__(self, store: Any, sent_from: str | None, sent: list[str]) -> None:
        known = set(sent)
        self._all = list(store.ratings(date.fromisoformat(sent_from + "-01") if sent_from else None))
        self.part = [r.to_json() for r in self._all if r.id not in known]
        self._months = sorted({r.service_day.isoformat()[MONTH] for r in self._all})
        self._sent_from = sent_from

    def __len__(self) -> int:
        return len(self.part)

    def watermark(self) -> tuple[str | None, list[str]]:
        """(``ratings_from``, ``ratings_sent``) once this bundle is made: the latest month's ids only."""
        if not self._months:
            return self._sent_from, []
        latest = self._months[-1]
        return latest, sorted(r.id for r in self._all if r.service_day.isoformat()[MONTH] == latest)
