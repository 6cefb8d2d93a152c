"""``kiosk citizens``: one line per citizen for the office's staff and the data controller.

Joins the card records (:mod:`kiosk.identity`) and the face records of the store: id, masked name, whether a
card is on record, how many face templates, created, last seen, visits. Never the card number (it is not
stored) nor the full name. Reads without the lock, like ``kiosk visits``, so it works beside the running kiosk.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from kiosk.identity import CardBook
from kiosk.storage import StorageError
from kiosk.store import Store, StoreError
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
    template_ids, _ = store.templates()
    templates = Counter(template_ids)
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


def print_citizens(data_dir: Path, as_json: bool, out: TextIO | None = None) -> int:
    """`kiosk citizens`; returns the exit status: 0, or 2 when the folder holds no kiosk data."""
    out = out or sys.stdout
    try:
        store = Store.open_readonly(Path(data_dir))
    except (StoreError, StorageError) as exc:
        print(f"kiosk citizens: {exc}", file=sys.stderr)
        return 2
    book = CardBook.open(data_dir, secret=None, readonly=True)
    try:
        for line in citizen_lines(store, book):
            if as_json:
                out.write(json.dumps(asdict(line), ensure_ascii=False) + "\n")
            else:
                out.write(f"{line.id}  {line.name or '-':<24} {'card' if line.card else '-':<5}"
                          f"{line.templates:>3} templates  created {line.created or '-':<19}  "
                          f"last seen {line.last_seen or '-':<19}  {line.visits:>4} visits\n")
    finally:
        book.close()
        store.close()
    return 0


def _iso(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")
