"""Ticket numbering of the store: per-category daily counters, the second copy in numbers.bin, the clock."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from kiosk.storage import StorageError
from kiosk.store_base import ARCHIVE_DIR, CLOCK_TOLERANCE, HOT_FILE, NUMBERS_FILE, StoreError, log
from kiosk.store_visits import Visit, VisitArchive
from kiosk.tickets import format_ticket

ALL_NUMBERS = (1, 999_999)


class SeriesFull(StoreError):
    """This kiosk's range of numbers for a service is used up for the day (kiosk/rules.py: ``[numbers]``)."""


def series_key(category: str, mark: str = "") -> str:
    """The counter of a service's series: the service key, or ``key+U`` for its priority series (never a key)."""
    return f"{category}+{mark}" if mark else category


@dataclass(frozen=True)
class ClockRepair:
    """What :meth:`Store.accept_clock` did: numbering moved back from a future service day to today's."""
    was_latest: datetime            # the latest issue time recorded, read from the wrong clock
    was_day: date                   # the service day numbering was stuck on
    day: date                       # today's service day, numbered from now on
    continues_after: dict[str, int]  # category -> highest number already used today (the next is one more)
    future_visits: int              # visits stored with a service day after today: their dates are wrong


def _mark_of(ticket: str) -> str:
    """The series mark of a printed ticket: "U" in HT-U01, "" in HT-001."""
    number = ticket.rpartition("-")[2]
    return number[:len(number) - len(number.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))]


def service_day_of(now: datetime, day_start_hour: int) -> date:
    """The day a ticket issued at ``now`` belongs to, when counters reset at ``day_start_hour`` local time."""
    return (now - timedelta(hours=day_start_hour)).date()


class Numbering(VisitArchive):
    """The numbering part of :class:`~kiosk.store.Store`: a number once handed out is never handed out again."""

    def _index_hot(self) -> None:
        state = self._hot_storage.peek()
        self._visit_docs: dict[str, int] = {}
        self._counters: dict[tuple[str, str], tuple[int | None, int]] = {}
        self._floors: dict[tuple[str, str], int] = {}
        highest: dict[tuple[str, str], int] = {}
        for k, doc in state.get("visits", {}).items():
            self._visit_docs[doc["id"]] = int(k)
            key = (doc["service_day"], series_key(doc["category"], doc.get("series", "")))
            highest[key] = max(highest.get(key, 0), doc["number"])
        for k, doc in state.get("counters", {}).items():
            self._counters[(doc["day"], doc["category"])] = (int(k), doc["last"])
        for key, n in highest.items():  # the visits prove these numbers were taken, whatever the counter says
            if n > self._counters.get(key, (None, 0))[1]:
                self._floors[key] = n
        meta = state.get("meta", {}).get("1")
        self._latest = datetime.fromisoformat(meta["latest"]) if meta else None
        self._latest_day = date.fromisoformat(meta["day"]) if meta else None
        # Numbers taken, possibly beyond what the hot file kept; unless numbers.bin is behind the hot file (an
        # older copy: its days were moved to the month files since; _check_numbers reports it).
        if self._marks["day"] and not (meta and self._marks["day"] < meta["day"]):
            mday = self._marks["day"]
            prev = self._marks.get("prev") or {}    # the day before, still in the hot file
            for day_iso, numbers in ((mday, self._marks["last"]), (prev.get("day"), prev.get("last", {}))):
                for category, n in numbers.items():
                    key = (day_iso, category)
                    if n > max(self._counters.get(key, (None, 0))[1], self._floors.get(key, 0)):
                        self._floors[key] = n
            marked_latest = datetime.fromisoformat(self._marks["latest"])
            if self._latest is None or marked_latest > self._latest:
                self._latest = marked_latest
            if self._latest_day is None or date.fromisoformat(mday) > self._latest_day:
                self._latest_day = date.fromisoformat(mday)

    def _check_numbers(self, marks: dict | None, damaged: bool) -> None:
        """Tell staff when numbers.bin is behind the hot file (emptied, an older copy, its newest copy damaged)
        and write it again from the hot file: it is the copy that keeps numbers unique if the hot file is lost.

        It is written before each ticket's hot record, so a numbers.bin that is whole is never behind it.
        """
        state = self._hot_storage.peek()
        meta = state.get("meta", {}).get("1")
        if meta is None:
            return
        day = meta["day"]
        hot_last = {doc["category"]: doc["last"] for doc in state.get("counters", {}).values() if doc["day"] == day}
        if marks is not None and (marks.get("day") or "") > day:
            return
        behind = {c: n for c, n in hot_last.items()
                  if marks is None or marks.get("day") != day or n > marks.get("last", {}).get(c, 0)}
        if marks is not None and not behind:
            return
        if marks is not None or not damaged:     # an unreadable one was reported already
            how = "emptied or missing" if marks is None else "older than hot.jsonl (replaced by an older copy?)"
            self._note(f"{NUMBERS_FILE}: {how}; numbering continues from {HOT_FILE} (no number repeats), "
                       f"{NUMBERS_FILE} written again", level=logging.ERROR)
        last = {**(marks.get("last", {}) if marks is not None and marks.get("day") == day else {}), **hot_last}
        fresh = {"day": day, "last": last, "latest": meta["latest"]}
        try:
            self._numbers.write(fresh)
        except StorageError as exc:
            log.warning("%s: not written again: %s", NUMBERS_FILE, exc)
            return
        self._marks = fresh

    def _acknowledge_taken_numbers(self) -> None:
        """Write into the hot file's counters the numbers known taken only from numbers.bin or from visits.

        A number is taken (numbers.bin) just before its visit is saved; a crash in between leaves the counter
        one behind. Recording it now keeps the hot file the full truth, so that only real loss is reported.
        """
        behind = {k: n for k, n in self._floors.items() if n > self._counters.get(k, (None, 0))[1]}
        if not behind and not (self._latest_day and self._hot_storage.peek().get("meta", {}).get("1") is None):
            return
        try:
            sets, updated = self._counter_changes(behind, self._latest, self._latest_day)
            self._hot_storage.apply(sets)
        except StorageError as exc:  # the numbers stay protected in memory (floors) and in numbers.bin
            log.warning("%s: could not record the numbers taken: %s", HOT_FILE, exc)
            return
        self._counters = updated
        self._floors = {}

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
        taken = [(series_key(v.category, _mark_of(v.ticket)), v.number) for v in visits if v.service_day == day]
        taken += [(category, last) for (d, category), (_, last) in self._counters.items() if d == iso]
        taken += [(category, number) for (d, category), number in self._floors.items() if d == iso]
        if self._marks["day"] == iso:
            taken += list(self._marks["last"].items())
        used: dict[str, int] = {}
        for category, number in taken:
            used[category] = max(used.get(category, 0), number)
        future = sum(v.service_day > day for v in visits)
        assert self._latest_day is not None     # recorded together with the latest issue time
        repair = ClockRepair(self._latest, self._latest_day, day, dict(sorted(used.items())), future)
        # Hot file first, then numbers.bin: until both say today, opening takes the later of the two, the
        # future day, so a crash in between leaves the old (safe) state and the repair can simply be run again.
        try:
            sets, counters = self._counter_changes({(iso, c): n for c, n in used.items()}, now, day)
            self._hot_storage.apply(sets)
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

    def audit_event(self, event: dict) -> None:
        """Append an entry to the audit log, best effort: a service closed for the day, a card read, a changed config."""
        self._audit(event)

    def highest_taken(self, category: str, now: datetime, mark: str = "") -> int:
        """The highest number of this series taken on the service day a ticket issued at ``now`` would get."""
        day = service_day_of(now, self.day_start_hour)
        if self._latest_day is not None and day < self._latest_day:
            day = self._latest_day
        key = (day.isoformat(), series_key(category, mark))
        marked = self._marks["last"].get(key[1], 0) if self._marks["day"] == key[0] else 0
        return max(self._counters.get(key, (None, 0))[1], self._floors.get(key, 0), marked)

    def issue_ticket(self, category: str, prefix: str, *, citizen_id: str | None, now: datetime,
                     identified_by: str | None = None, mark: str = "",
                     numbers: tuple[int, int] = ALL_NUMBERS) -> Visit:
        """Take the next number of ``category`` for the service day of ``now`` and save the visit durably.

        ``identified_by`` ("card" | "face"): how the citizen was known, for the office's statistics. ``mark``:
        a series of its own (priority: "U", HT-U01); ``numbers``: this kiosk's first and last number (both
        series), SeriesFull past the last.

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
        key = (day.isoformat(), series_key(category, mark))
        last = self._counters.get(key, (None, 0))[1]
        number = max(last, self._floors.get(key, 0), numbers[0] - 1) + 1
        if number > numbers[1]:
            raise SeriesFull(f"{category}: this kiosk's numbers {numbers[0]}-{numbers[1]} are used up today")
        latest = now if self._latest is None or now > self._latest else self._latest
        self._mark_taken(day, key[1], number, latest)
        visit = Visit(id=secrets.token_hex(8), ticket=format_ticket(prefix, number, mark), number=number,
                      category=category, issued_at=now, service_day=day, citizen_id=citizen_id,
                      kiosk_id=self.kiosk_id, printed=None,
                      identified_by=identified_by if citizen_id is not None else None)
        doc = {"id": visit.id, "ticket": visit.ticket, "number": number, "category": category,
               "issued_at": now.isoformat(), "service_day": key[0], "citizen": citizen_id,
               "kiosk": self.kiosk_id, "printed": None}
        if visit.identified_by is not None:
            doc["by"] = visit.identified_by
        if mark:
            doc["series"] = mark
        try:
            sets, counters = self._counter_changes({key: number}, latest, day)
            doc_id = self._hot_storage.new_id("visits")
            sets["visits"] = {str(doc_id): doc}
            self._hot_storage.apply(sets)          # the visit, its counter and the clock reference: one record
        except StorageError as exc:
            raise StoreError(f"ticket not saved: {exc}") from exc
        self._visit_docs[visit.id] = doc_id
        self._counters = counters
        self._latest, self._latest_day = latest, day
        return visit

    def _counter_changes(self, numbers: dict[tuple[str, str], int], latest: datetime | None, day: date | None
                         ) -> tuple[dict[str, dict[str, dict]], dict[tuple[str, str], tuple[int | None, int]]]:
        """The hot-file documents that set each (day, category) counter and the latest issue time and day.

        Returns them (for one :meth:`JournalStorage.apply` record, with whatever else belongs in it) and the
        counters as they will be once that record is on disk (the caller keeps them only then).
        """
        counters: dict[str, dict] = {}
        updated = dict(self._counters)
        for (counter_day, category), number in numbers.items():
            doc_id = updated.get((counter_day, category), (None, 0))[0]
            if doc_id is None:
                doc_id = self._hot_storage.new_id("counters")
            counters[str(doc_id)] = {"day": counter_day, "category": category, "last": number}
            updated[(counter_day, category)] = (doc_id, number)
        sets: dict[str, dict[str, dict]] = {"counters": counters} if counters else {}
        if latest is not None and day is not None:
            sets["meta"] = {"1": {"latest": latest.isoformat(), "day": day.isoformat()}}
        return sets, updated

    def _clock_went_back(self, now: datetime) -> None:
        if self._latest is None:
            return  # nothing issued yet: no clock to compare with
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
        same_day = self._marks["day"] == iso
        last = dict(self._marks["last"]) if same_day else {}
        last[category] = number
        marks = {"day": iso, "last": last, "latest": latest.isoformat()}
        # The previous service day's numbers too: its visits stay in the hot file, so their loss is proven as well.
        yesterday = (day - timedelta(days=1)).isoformat()
        prev = self._marks.get("prev") if same_day else (
            {"day": yesterday, "last": self._marks["last"]} if self._marks["day"] == yesterday else None)
        if prev:
            marks["prev"] = prev
        try:
            self._numbers.write(marks)
        except StorageError as exc:
            raise StoreError(f"ticket not saved: {exc}") from exc
        self._marks = marks
