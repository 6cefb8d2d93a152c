"""The bundle's ``cards`` part: the card records (kiosk/identity.py) the office needs, and their deletions.

One record a line, never a face template and never a card number (the kiosk does not have it)::

    {"citizen": id, "card": HMAC-SHA256(office secret, number) hex, "fields": {name, birth_date, sex[, address]},
     "created_at": ISO, "last_seen": ISO | null}
    {"citizen": id, "card": hex, "deleted": true}          # the record is gone from this kiosk (a tombstone)

``card`` is the same for every kiosk of one office (they share the secret), so the office joins one person's
visits across its kiosks. ``fields`` holds only what ``[identity] keep`` keeps now: a field kept once and
dropped from the config later (``address``) is not sent any more. Incremental: the kiosk remembers, per office,
a short hash of each record as sent (``OfficeState.cards``); a record is sent again only when it changed
(``last_seen`` moves at each visit), and a remembered record that is gone is sent once as a tombstone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.bundle import canonical_json, sha256_hex
from kiosk.datakey import DataKey
from kiosk.identity import IDENTITY_FILE, CardBook, IdentityError
from kiosk.storage import StorageError


class CardSnapshot:
    """What changed in the card records since the last bundle to one office (read-only beside the kiosk)."""

    def __init__(self, data_dir: Path, sent: dict[str, list[str]], keep: tuple[str, ...] | None,
                 key: DataKey | None = None) -> None:
        self.current: dict[str, list[str]] = {}          # citizen -> [card key, digest]: the state after this bundle
        self.records: list[dict[str, Any]] = []
        for rec in _card_records(Path(data_dir), keep, key):
            digest = sha256_hex(canonical_json(rec))[:16]
            self.current[rec["citizen"]] = [rec["card"], digest]
            if sent.get(rec["citizen"]) != [rec["card"], digest]:
                self.records.append(rec)
        self.deleted = [{"citizen": citizen, "card": card, "deleted": True}
                        for citizen, (card, _) in sorted(sent.items()) if citizen not in self.current]

    @property
    def part(self) -> list[dict[str, Any]]:
        return self.records + self.deleted

    def __len__(self) -> int:
        return len(self.records) + len(self.deleted)


def _card_records(data_dir: Path, keep: tuple[str, ...] | None, key: DataKey | None) -> list[dict[str, Any]]:
    """The records as the office gets them; their fields are sealed at rest and open only with the data key."""
    if not (data_dir / IDENTITY_FILE).exists():
        return []                                         # a kiosk that never read a card
    try:
        book = CardBook.open(data_dir, secret=None, readonly=True, key=key)
    except (IdentityError, StorageError, OSError) as exc:
        raise IdentityError(f"card records unreadable: {exc}") from None
    try:
        return [{"citizen": r.citizen_id, "card": r.card,
                 "fields": {k: v for k, v in r.fields.items() if keep is None or k in keep},
                 "created_at": r.created_at.isoformat(),
                 "last_seen": r.last_seen.isoformat() if r.last_seen else None}
                for r in book.records()]
    finally:
        book.close()
