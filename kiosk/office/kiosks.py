"""The kiosks the office trusts (``kiosk-office kiosks``): each kiosk id with its Ed25519 public key."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nacl.signing import VerifyKey

from kiosk.bundle import BundleError, check_kiosk_id
from kiosk.office.db import Database

_HEX = set("0123456789abcdef")


class KioskError(Exception):
    """A kiosk that cannot be registered; one line."""


def add_kiosk(db: Database, kiosk_id: str, pubkey: str, *, now: datetime) -> None:
    """Register a kiosk's public key (the hex line ``kiosk keys`` prints). Re-adding the same key is a no-op;
    another key for a known id is refused (a stolen id would otherwise take over its chain)."""
    try:
        check_kiosk_id(kiosk_id)
    except BundleError as exc:
        raise KioskError(f"{exc} (letters, digits, - and _; lower case on FAT sticks)") from None
    pubkey = pubkey.strip().lower()
    if len(pubkey) != 64 or not set(pubkey) <= _HEX:
        raise KioskError("a kiosk public key is 64 hex digits (what 'kiosk keys' prints on the kiosk)")
    with db.transaction():
        rows = db.query("SELECT pubkey FROM kiosks WHERE kiosk_id = ?", (kiosk_id,))
        if rows and rows[0][0] != pubkey:
            raise KioskError(f"kiosk {kiosk_id!r} is registered with another key ({rows[0][0][:16]}…)")
        if not rows:
            db.execute("INSERT INTO kiosks (kiosk_id, pubkey, added_at) VALUES (?, ?, ?)",
                       (kiosk_id, pubkey, now.isoformat(timespec="seconds")))


def verify_keys(db: Database) -> dict[str, VerifyKey]:
    return {kid: VerifyKey(bytes.fromhex(key)) for kid, key in db.query("SELECT kiosk_id, pubkey FROM kiosks")}


@dataclass(frozen=True)
class KioskStatus:
    kiosk_id: str
    pubkey: str
    last_sequence: int
    last_created: str | None      # the kiosk's clock when it made its last bundle
    last_ingested: str | None
    inbox_applied: int            # the inbox sequence the kiosk had applied when it made that bundle
    days_behind: float | None     # now - last_created


def kiosk_status(db: Database, *, now: datetime) -> tuple[list[KioskStatus], int]:
    """Every registered kiosk and the office's last inbox sequence (what a kiosk up to date has applied)."""
    out = []
    for kid, key, seq, created, ingested, inbox in db.query(
            "SELECT kiosk_id, pubkey, last_sequence, last_created, last_ingested, inbox_sequence "
            "FROM kiosks ORDER BY kiosk_id"):
        behind = None
        if created:
            try:
                behind = (now - datetime.fromisoformat(created).replace(tzinfo=None)).total_seconds() / 86400
            except ValueError:
                behind = None
        out.append(KioskStatus(kid, key, int(seq), created, ingested, int(inbox), behind))
    office_inbox = db.integer("SELECT MAX(sequence) FROM inbox_files")
    return out, office_inbox
