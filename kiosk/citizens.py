"""What ``kiosk citizens`` lists: one line per citizen for the office's staff and the data controller.

Joins the card records (:mod:`kiosk.identity`) and the face records of the store: id, masked name, whether a
card is on record, how many face templates, created, last seen, visits. Never the card number (it is not
stored) nor the full name. The command (``kiosk.cli_store.print_citizens``) reads without the lock, like
``kiosk visits``, so it works beside the running kiosk.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from kiosk.identity import CardBook
from kiosk.store import Store
from kiosk.tickets import mask_name


@dataclass(frozen=True)
class CitizenLine:
    id: str
    name: str | None          # masked
    card: bool
    templates: int
    created: str | None       # ISO time
    last_seen: str | None
    visits: int


def citizen_lines(store: Store, book: CardBook) -> list[CitizenLine]:
    """Every citizen known by card or by face, oldest first."""
    templates = Counter(store.template_owners())
    visits = Counter(v.citizen_id for v in store.visits() if v.citizen_id)
    cards = {r.citizen_id: r for r in book.records()}
    ids = set(cards) | {c["citizen"] for c in store.consents()}
    lines = []
    for cid in ids:
        record, face = cards.get(cid), store.citizen(cid)
        name = (record.name if record else None) or (face.display_name if face else None)
        created = [t for t in (record and record.created_at, face and face.created_at) if t]
        seen = [t for t in (record and record.last_seen, face and face.last_seen) if t]
        lines.append(CitizenLine(cid, mask_name(name) if name else None, record is not None, templates[cid],
                                 _iso(min(created)) if created else None, _iso(max(seen)) if seen else None,
                                 visits[cid]))
    return sorted(lines, key=lambda line: (line.created or "", line.id))


def _iso(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")
