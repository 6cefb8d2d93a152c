"""What the counter does with a scanned ticket (``kiosk-office counter``, issue 18); the page is counter_page.py.

A scan opens the ticket's sealed code (kiosk/ticketcode.py) with the office key and the registered kiosks' keys,
and records the ticket in the ``counter`` table (the code's own facts: this works the day the ticket is printed,
long before the kiosk's bundle arrives). "Called" and "served" stamp the row once each; the office report turns
them into waiting and service times (kiosk/office/report.py). The citizen's name, card number and birth date are
shown from the code and never written here: the database keeps only the citizen id, as the visits do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from kiosk.bundle import OfficeKeys
from kiosk.office.db import Database
from kiosk.office.kiosks import verify_keys
from kiosk.ticketcode import TicketCodeError, TicketFacts, open_code

ACTIONS = ("called", "served")
HISTORY = 20            # earlier visits shown


@dataclass(frozen=True)
class Earlier:
    """One earlier visit of the same citizen, from the kiosks' bundles or from this counter."""
    issued_at: str
    ticket: str
    service: str
    kiosk_id: str
    served_at: str | None


@dataclass(frozen=True)
class Desk:
    """One scanned ticket as the page shows it."""
    facts: TicketFacts
    scanned_at: str
    called_at: str | None
    served_at: str | None
    history: list[Earlier] = field(default_factory=list)


class Counter:
    """Scans and stamps tickets in the office database; every refusal is a TicketCodeError with a reason."""

    def __init__(self, db: Database, office: OfficeKeys, now: Callable[[], datetime] = datetime.now) -> None:
        self.db = db
        self.office = office
        self.now = now

    def _open(self, text: str) -> TicketFacts:
        return open_code(text, office=self.office, kiosk_keys=verify_keys(self.db))

    def scan(self, text: str) -> Desk:
        """Open a scanned code and record the ticket; a ticket served already is refused, plainly."""
        facts = self._open(text)
        self._record(facts, _iso(self.now()))
        desk = self._desk(facts)
        if desk.served_at is not None:
            raise TicketCodeError("served", f"ticket {facts.ticket} of kiosk {facts.kiosk_id} was already served "
                                            f"at {_shown(desk.served_at)}")
        return desk

    def mark(self, text: str, action: str) -> Desk:
        """Stamp "called" or "served" (the first time only: a second press changes nothing)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        facts, now = self._open(text), _iso(self.now())
        self._record(facts, now)        # a press without a scan first: a page kept open across a restart
        self.db.execute(f"UPDATE counter SET {action}_at = ? WHERE kiosk_id = ? AND visit_id = ? "
                        f"AND {action}_at IS NULL", (now, facts.kiosk_id, facts.visit_id))
        return self._desk(facts)

    def _record(self, f: TicketFacts, now: str) -> None:
        """The ticket's row, once (a citizen the office was asked to forget is not linked again)."""
        forgotten = f.citizen_id is not None and bool(
            self.db.query("SELECT 1 FROM forgotten WHERE citizen = ?", (f.citizen_id,)))
        self.db.execute("INSERT INTO counter (kiosk_id, visit_id, ticket, category, service_name, issued_at, "
                        "citizen, scanned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (kiosk_id, visit_id) DO NOTHING",
                        (f.kiosk_id, f.visit_id, f.ticket, f.service, f.service_name, _iso(f.issued_at),
                         None if forgotten else f.citizen_id, now))

    def _desk(self, facts: TicketFacts) -> Desk:
        scanned, called, served = self.db.query(
            "SELECT scanned_at, called_at, served_at FROM counter WHERE kiosk_id = ? AND visit_id = ?",
            (facts.kiosk_id, facts.visit_id))[0]
        history = self.history(facts.citizen_id, (facts.kiosk_id, facts.visit_id)) if facts.citizen_id else []
        return Desk(facts, str(scanned), _opt(called), _opt(served), history)

    def history(self, citizen: str, this: tuple[str, str]) -> list[Earlier]:
        """The citizen's other visits, newest first: the kiosks' bundles, and tickets seen at this counter whose
        bundle has not come yet."""
        names = {str(k): str(n) for k, n in self.db.query("SELECT category, MAX(service_name) FROM counter "
                                                            "GROUP BY category")}
        seen = {(str(k), str(v)): (str(i), str(t), str(c), _opt(s)) for k, v, i, t, c, s in self.db.query(
            "SELECT kiosk_id, visit_id, issued_at, ticket, category, served_at FROM counter WHERE citizen = ?",
            (citizen,))}
        for k, v, i, t, c in self.db.query("SELECT kiosk_id, visit_id, issued_at, ticket, category FROM visits "
                                           "WHERE citizen = ?", (citizen,)):
            served = seen.get((str(k), str(v)), (None, None, None, None))[3]
            seen[(str(k), str(v))] = (str(i), str(t), str(c), served)
        seen.pop(this, None)
        rows = sorted(((i, t, c, k, s) for (k, _), (i, t, c, s) in seen.items()), reverse=True)[:HISTORY]
        return [Earlier(i[:16], t, names.get(c, c), k, s) for i, t, c, k, s in rows]


def _iso(when: datetime) -> str:
    return when.replace(microsecond=0).isoformat()


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _shown(iso: str) -> str:
    """``2026-11-27T14:05:09`` as the page shows it: ``14:05 27/11/2026``."""
    try:
        return datetime.fromisoformat(iso).strftime("%H:%M %d/%m/%Y")
    except ValueError:
        return iso
