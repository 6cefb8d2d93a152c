"""Services a technician closed (or reopened) for the day, and the gate that asks the office's rules.

``kiosk service close|open KEY`` (and a signed USB import) leave a request file in ``<data>/service-requests/``;
the kiosk that holds the store (the running one, or the command itself when no kiosk runs) applies it when
nobody is at the screen: the day's closures go to ``<data>/closures.json`` and each change to the audit log.
A file per request, written whole and deleted by whoever applied it, so the command and the kiosk never write
the same file.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, TypedDict

from kiosk.config import Category, Config
from kiosk.loop import RequestFolderChore
from kiosk.rules import Refusal, Rules, full_refusal
from kiosk.storage import StorageError, atomic_write
from kiosk.store_numbers import service_day_of

log = logging.getLogger("kiosk.closures")

CLOSURES_FILE = "closures.json"
REQUESTS_DIR = "service-requests"
ACTIONS = ("close", "open")


class Counters(Protocol):
    """The part of the store the gate reads: the numbers taken today."""
    day_start_hour: int

    def highest_taken(self, category: str, now: datetime, mark: str = "") -> int: ...


class Closures:
    """The services closed for one service day (a new day opens them all again)."""

    def __init__(self, data_dir: Path, audit: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._path = Path(data_dir) / CLOSURES_FILE
        self._audit = audit
        self._day, self._closed = "", frozenset[str]()
        try:
            doc = json.loads(self._path.read_text(encoding="utf-8"))
            self._day, self._closed = str(doc["day"]), frozenset(map(str, doc["closed"]))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:   # unreadable: everything open, said once
            log.warning("%s: unreadable (%s); no service is closed", self._path, exc)

    def is_closed(self, service: str, day: date) -> bool:
        return self._day == day.isoformat() and service in self._closed

    def apply(self, action: str, service: str, day: date, *, at: str, by: str) -> None:
        """Close or reopen ``service`` for ``day``, kept on disk and in the audit log."""
        closed = set(self._closed) if self._day == day.isoformat() else set()
        (closed.add if action == "close" else closed.discard)(service)
        atomic_write(self._path, json.dumps({"day": day.isoformat(), "closed": sorted(closed)}).encode("utf-8"))
        self._day, self._closed = day.isoformat(), frozenset(closed)
        if self._audit is not None:
            self._audit({"at": at, "event": f"service_{action}", "service": service, "day": day.isoformat(),
                         "by": by})
        log.info("service %s %s for %s (%s)", service, "closed" if action == "close" else "reopened", day, by)


def queue_request(data_dir: Path, action: str, service: str, at: str, by: str = "cli") -> Path:
    """Leave a close/open request for whoever holds the store; written atomically, one file per request."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    folder = Path(data_dir) / REQUESTS_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"{at.replace(':', '')}-{secrets.token_hex(4)}.json"
    atomic_write(path, json.dumps({"action": action, "service": service, "at": at, "by": by}).encode("utf-8"))
    return path


class ServiceRequests(RequestFolderChore):
    """Applies the queued requests (an idle chore of the loop, and what the command runs when no kiosk does)."""

    def __init__(self, data_dir: Path, closures: Closures, services: Mapping[str, Any], day_of: Callable[[], date],
                 clock: Callable[[], float] = lambda: 0.0) -> None:
        super().__init__(clock)
        self._folder = Path(data_dir) / REQUESTS_DIR
        self._closures, self._services, self._day_of = closures, services, day_of

    def work(self) -> list[str]:
        return self.apply_all()

    def apply_all(self) -> list[str]:
        """Apply every waiting request, oldest first; what was done, one line each."""
        try:
            names = sorted(e.name for e in os.scandir(self._folder) if e.is_file(follow_symlinks=False))
        except FileNotFoundError:
            return []
        done = []
        for name in names:
            path = self._folder / name
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                action, service, at, by = (str(doc[k]) for k in ("action", "service", "at", "by"))
                if action not in ACTIONS or service not in self._services:
                    raise ValueError(f"unknown action or service: {action} {service}")
                today = self._day_of()
                if datetime.fromisoformat(at).date() < today:
                    raise ValueError(f"made on {at[:10]}, a past day: closures are for the day they are made")
                self._closures.apply(action, service, today, at=at, by=by)
            except (OSError, ValueError, KeyError, TypeError, StorageError) as exc:
                log.warning("%s: request not applied: %s", path, exc)
            else:
                done.append(f"{service}: {action}")
            path.unlink(missing_ok=True)
        return done


class OfficeGate:
    """The :class:`kiosk.visit.Gate` of a real kiosk: the rules at the wall clock's time, over this kiosk's counters."""

    def __init__(self, rules: Rules, categories: Mapping[str, Category], counters: Counters, kiosk_id: str,
                 closures: Closures, wall: Callable[[], datetime], priority_mark: str | None = None) -> None:
        self._rules, self._categories, self._counters = rules, categories, counters
        self._kiosk_id, self._closures, self._wall = kiosk_id, closures, wall
        self._marks = ("", rules.priority.mark if priority_mark is None else priority_mark)

    def taken(self, service: str, now: datetime) -> int:
        """Tickets this kiosk gave in ``service`` on the service day of ``now`` (both series; a number lost in a
        crash counts, so the cap is never overrun)."""
        first = self._rules.numbers(self._kiosk_id, service)[0]
        return sum(max(0, self._counters.highest_taken(service, now, mark) - first + 1) for mark in self._marks)

    def refusal(self, category: str) -> Refusal | None:
        now = self._wall()
        spec = self._categories[category]
        office = (sum(self.taken(key, now) for key in self._categories) if self._rules.office_cap is not None
                  else 0)
        closed = self._closures.is_closed(category, service_day_of(now, self._counters.day_start_hour))
        refusal = self._rules.refusal(category, spec.name_vi, spec.name_en, now, taken=self.taken(category, now),
                                      taken_office=office, closed=closed)
        last = self._rules.numbers(self._kiosk_id, category)[1]
        if refusal is None and self._counters.highest_taken(category, now) >= last:
            refusal = full_refusal(spec.name_vi, spec.name_en)     # this kiosk's range of numbers is used up
        return refusal


class RulesStore(Counters, Protocol):
    def audit_event(self, event: dict) -> None: ...


class Clock(Protocol):
    def __call__(self) -> float: ...
    def wall(self) -> datetime: ...


class MachineRules(TypedDict):
    """The state machine's arguments for the office's rules (kiosk/states_rules.py)."""
    gate: OfficeGate
    priority_age: int
    priority_wait: float
    priority_button: str | None


def office_rules(config: Config, store: RulesStore, clock: Clock, button: str) -> tuple[MachineRules, ServiceRequests]:
    """The machine's rules (its gate, the priority settings; ``button``: the priority button's label) and the
    chore that applies queued closures, over one store and one clock."""
    closures = Closures(config.data_dir, audit=store.audit_event)
    names = {c.key: c for c in config.categories}

    def today() -> date:
        return service_day_of(clock.wall(), store.day_start_hour)

    gate = OfficeGate(config.rules, names, store, config.kiosk_id, closures, clock.wall)
    priority = config.rules.priority
    rules = MachineRules(gate=gate, priority_age=priority.age, priority_wait=priority.wait_seconds,
                         priority_button=None if priority.pin is None and not config.simulate else button)
    return rules, ServiceRequests(config.data_dir, closures, names, today, clock)
