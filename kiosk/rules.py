"""The office's rules for handing out numbers: opening hours, daily caps, priority, each kiosk's number range.

Pure: parsed once from the config (the ``[hours]``, ``[caps]``, ``[priority]`` and ``[numbers]`` tables) and
asked with the time passed in, so the state machine's tests and ``kiosk replay`` decide with a fake clock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Mapping, Sequence

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_VI = ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật")
DAY_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_NUMBER = 999_999
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class RulesError(ValueError):
    """A rules table that cannot be used; the message starts with the key (config.py adds the file)."""


Span = tuple[time, time]


@dataclass(frozen=True)
class Hours:
    """Opening spans per weekday (Monday first); a day without spans is closed all day."""
    week: tuple[tuple[Span, ...], ...]

    def is_open(self, now: datetime) -> bool:
        return any(start <= now.time() < end for start, end in self.week[now.weekday()])

    def next_opening(self, now: datetime) -> datetime | None:
        """When it opens next after ``now`` (within a week), None if it never opens."""
        for ahead in range(8):
            day = now.date() + timedelta(days=ahead)
            for start, _ in self.week[day.weekday()]:
                at = datetime.combine(day, start)
                if at > now:
                    return at
        return None


@dataclass(frozen=True)
class Refusal:
    """Why a service gives no ticket now: the tile's short line and the refusal screen's main sentence."""
    reason: str          # "closed" | "full" (kiosk replay's "refused" field)
    tile_vi: str         # "Hết số hôm nay", "Mở lúc 13:30"
    tile_en: str
    sentence_vi: str     # the refusal screen's main sentence (also the one read aloud)
    sentence_en: str


@dataclass(frozen=True)
class PriorityRules:
    pin: int | None = None         # the "Ưu tiên" button (BCM); None: no button, only the card's age
    age: int = 75                  # a card at or above this age gets a priority ticket by itself
    mark: str = "U"                # priority tickets: HT-U01, their own series per service
    wait_seconds: float = 0.0      # after a service press the kiosk waits this long for the priority button


@dataclass(frozen=True)
class Rules:
    """Everything the kiosk decides before issuing; the default is a kiosk that is always open, without caps."""
    hours: Hours | None = None                                  # the office's; None: always open
    service_hours: Mapping[str, Hours] = field(default_factory=dict)   # a service's own (within the office's)
    office_cap: int | None = None                               # tickets a day from this kiosk, all services
    caps: Mapping[str, int] = field(default_factory=dict)       # tickets a day from this kiosk, per service
    priority: PriorityRules = PriorityRules()
    ranges: Mapping[str, Mapping[str, tuple[int, int]]] = field(default_factory=dict)  # kiosk -> service -> range

    def pins(self) -> list[tuple[str, int | None]]:
        """(config key, pin) of the priority button when there is one, for the config's one-use-a-pin check."""
        return [] if self.priority.pin is None else [("priority.pin", self.priority.pin)]

    def numbers(self, kiosk_id: str, service: str) -> tuple[int, int]:
        """The first and last number this kiosk may hand out in ``service`` (both series)."""
        return self.ranges.get(kiosk_id, {}).get(service, (1, MAX_NUMBER))

    def refusal(self, service: str, name_vi: str, name_en: str, now: datetime, *, taken: int, taken_office: int,
                closed: bool) -> Refusal | None:
        """Why ``service`` gives no ticket at ``now`` (None: it does). ``taken``: its tickets today from this
        kiosk, ``taken_office``: all services'; ``closed``: a technician closed it for the day."""
        if closed:
            return Refusal("closed", "Tạm ngừng hôm nay", "Closed today",
                           f"Lĩnh vực {name_vi} hôm nay tạm ngừng nhận hồ sơ. Mời Ông/Bà quay lại ngày mai.",
                           f"{name_en} is closed for today. Please come back tomorrow.")
        cap = self.caps.get(service)
        if (cap is not None and taken >= cap) or (self.office_cap is not None and taken_office >= self.office_cap):
            return full_refusal(name_vi, name_en)
        shut = [h for h in (self.hours, self.service_hours.get(service)) if h is not None and not h.is_open(now)]
        if not shut:
            return None
        opens = self._next_open(service, now)
        if opens is None:
            return Refusal("closed", "Đang đóng", "Closed", f"Lĩnh vực {name_vi} hiện không nhận hồ sơ.",
                           f"{name_en} is not taking applications.")
        when_vi = f"{opens:%H:%M}" + ("" if opens.date() == now.date() else f" {DAY_VI[opens.weekday()]}")
        when_en = f"{opens:%H:%M}" + ("" if opens.date() == now.date() else f" on {DAY_EN[opens.weekday()]}")
        return Refusal("closed", f"Mở lúc {when_vi}", f"Opens at {when_en}",
                       f"Lĩnh vực {name_vi} mở lúc {when_vi}. Mời Ông/Bà quay lại lúc đó.",
                       f"{name_en} opens at {when_en}. Please come back then.")

    def _next_open(self, service: str, now: datetime) -> datetime | None:
        """The first moment after ``now`` at which the office and the service are both open."""
        both = [h for h in (self.hours, self.service_hours.get(service)) if h is not None]
        at = now
        for _ in range(64):
            candidates = [h.next_opening(at) if not h.is_open(at) else at for h in both]
            if any(c is None for c in candidates):
                return None
            at = max(c for c in candidates if c is not None)
            if all(h.is_open(at) for h in both):
                return at
            at += timedelta(minutes=1)
        return None


def full_refusal(name_vi: str, name_en: str) -> Refusal:
    """The refusal of a service whose numbers for today are all given out (its cap, or this kiosk's range)."""
    return Refusal("full", "Hết số hôm nay", "No more numbers today",
                   f"Lĩnh vực {name_vi} đã hết số hôm nay. Mời Ông/Bà quay lại vào ngày làm việc tiếp theo.",
                   f"{name_en} has given out all of today's numbers. Please come back on the next working day.")


# -------------------------------------------------------------------------------------------------- parsing
def config_rules(raw: Mapping[str, Any], services: Sequence[str], kiosk_id: str) -> Rules:
    """:func:`parse_rules` for :func:`kiosk.config.parse_config`: its errors as the config's ``ConfigError``."""
    from kiosk.config import ConfigError

    try:
        return parse_rules(raw, services, kiosk_id)
    except RulesError as exc:
        raise ConfigError(str(exc)) from None


def parse_rules(raw: Mapping[str, Any], services: Sequence[str], kiosk_id: str) -> Rules:
    """The rules tables of a config document; RulesError names the key. ``services``: the category keys."""
    hours_table = _table(raw, "hours")
    office_hours: Hours | None = None
    service_hours: dict[str, Hours] = {}
    if hours_table:
        always = hours_table.get("always_open", False)
        if not isinstance(always, bool):
            raise RulesError("hours.always_open: expected true or false")
        for key, value in hours_table.items():
            if key in services:
                service_hours[key] = _hours(_table(hours_table, key, f"hours.{key}"), f"hours.{key}")
            elif key not in DAYS and key != "always_open":
                raise RulesError(f"hours.{key}: not a weekday ({', '.join(DAYS)}), always_open or a service key")
        days = {k: v for k, v in hours_table.items() if k in DAYS}
        if always and days:
            raise RulesError("hours.always_open: set either always_open or the weekdays' hours, not both")
        office_hours = None if always else _hours(days, "hours")
    caps_table = _table(raw, "caps")
    caps: dict[str, int] = {}
    for key, value in caps_table.items():
        if key != "office" and key not in services:
            raise RulesError(f"caps.{key}: not a service key or \"office\"")
        caps[key] = _count(value, f"caps.{key}", 1, MAX_NUMBER)
    office_cap = caps.pop("office", None)
    return Rules(office_hours, service_hours, office_cap, caps, _priority(_table(raw, "priority")),
                 _ranges(_table(raw, "numbers"), services, kiosk_id))


def _priority(table: Mapping[str, Any]) -> PriorityRules:
    unknown = set(table) - {"pin", "age", "mark", "wait_seconds"}
    if unknown:
        raise RulesError(f"priority.{sorted(unknown)[0]}: unknown key (allowed: age, mark, pin, wait_seconds)")
    pin = table.get("pin")
    if pin is not None:
        pin = _count(pin, "priority.pin", 0, 27)
    mark = table.get("mark", "U")
    if not (isinstance(mark, str) and mark.isascii() and mark.isalpha() and mark.isupper() and len(mark) <= 2):
        raise RulesError(f"priority.mark: 1-2 upper-case ASCII letters (HT-U01), got {mark!r}")
    wait = table.get("wait_seconds", 0.0)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 30:
        raise RulesError(f"priority.wait_seconds: a number of seconds 0-30, got {wait!r}")
    return PriorityRules(pin, _count(table.get("age", 75), "priority.age", 0, 150), mark, float(wait))


def _ranges(table: Mapping[str, Any], services: Sequence[str], kiosk_id: str
            ) -> dict[str, dict[str, tuple[int, int]]]:
    """``[numbers]``: each kiosk of the office, one range for all its services or one per service; no two kiosks
    may share a number of the same service, and this kiosk must be listed (when the table is there at all)."""
    if not table:
        return {}
    ranges: dict[str, dict[str, tuple[int, int]]] = {}
    for kiosk, value in table.items():
        where = f"numbers.{kiosk}"
        if isinstance(value, list):
            span = _span(value, where)
            ranges[kiosk] = {s: span for s in services}
        elif isinstance(value, dict):
            unknown = [k for k in value if k not in services]
            if unknown:
                raise RulesError(f"{where}.{unknown[0]}: not a service key")
            ranges[kiosk] = {s: _span(v, f"{where}.{s}") for s, v in value.items()}
        else:
            raise RulesError(f"{where}: expected [first, last] or a table of service = [first, last]")
    if kiosk_id not in ranges:
        raise RulesError(f"numbers: this kiosk ({kiosk_id}) is not listed; the office's kiosks are "
                         f"{', '.join(ranges)}")
    kiosks = list(ranges)
    for i, a in enumerate(kiosks):
        for b in kiosks[i + 1:]:
            for service in services:
                ra, rb = ranges[a].get(service), ranges[b].get(service)
                if ra and rb and ra[0] <= rb[1] and rb[0] <= ra[1]:
                    raise RulesError(f"numbers: kiosks {a} and {b} overlap in {service} ({ra[0]}-{ra[1]} and "
                                     f"{rb[0]}-{rb[1]}): they would hand out the same numbers")
    return ranges


def _span(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise RulesError(f"{where}: expected [first, last], got {value!r}"[:160])
    first, last = (_count(v, where, 1, MAX_NUMBER) for v in value)
    if first > last:
        raise RulesError(f"{where}: first number {first} is above the last {last}")
    return first, last


def _hours(table: Mapping[str, Any], where: str) -> Hours:
    unknown = set(table) - set(DAYS)
    if unknown:
        raise RulesError(f"{where}.{sorted(unknown)[0]}: not a weekday ({', '.join(DAYS)})")
    week = []
    for day in DAYS:
        spans = table.get(day, [])
        if not isinstance(spans, list) or not all(isinstance(s, str) for s in spans):
            raise RulesError(f"{where}.{day}: expected a list like [\"07:30-11:30\", \"13:00-17:00\"]")
        parsed = []
        for text in spans:
            match = _SPAN.match(text)
            if match is None:
                raise RulesError(f"{where}.{day}: {text!r} is not a span HH:MM-HH:MM")
            h1, m1, h2, m2 = map(int, match.groups())
            start, end = time(h1, m1), time.max if h2 == 24 else time(h2, m2)
            if h2 == 24 and m2 != 0 or start >= end:
                raise RulesError(f"{where}.{day}: {text!r} ends before it starts")
            parsed.append((start, end))
        week.append(tuple(sorted(parsed)))
    return Hours(tuple(week))


def _table(raw: Mapping[str, Any], name: str, where: str | None = None) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise RulesError(f"{where or name}: must be a table")
    return value


def _count(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RulesError(f"{where}: expected a whole number {low}-{high}, got {value!r}"[:160])
    return value
