"""Signed files from the office to the kiosks: ``kiosk-office sign-config FILE``, ``delete CITIZEN_ID`` and
``service close|open KEY``.

They go to the stick's ``kiosk-sync/inbox/`` in the signed-document format of kiosk/bundle.py, which
kiosk/syncinbox.py applies. Their sequence is one counter per office, kept in the database (``inbox_files``),
so a kiosk applies each file once and refuses an older one. A file is recorded before it is written: a stick
pulled out mid-write loses a number, never reuses one.
"""
from __future__ import annotations

import re
import tomllib
from datetime import datetime
from pathlib import Path

from kiosk.bundle import INBOX_DIR, SYNC_DIR, BundleError, OfficeKeys, check_kiosk_id, sha256_hex
from kiosk.office.db import Database
from kiosk.office.records import forget
from kiosk.storage import StorageError, atomic_write
from kiosk.deletions import card_key
from kiosk.syncdoc import sign_document

CITIZEN_ID = re.compile(r"[0-9a-f]{32}")
CARD_NUMBER = re.compile(r"[0-9]{12}")


class OutboxError(Exception):
    """A file that cannot be signed or written; one line."""


def _write(stick: Path, db: Database, office: OfficeKeys, body: dict, *, now: datetime) -> Path:
    inbox = Path(stick) / SYNC_DIR / INBOX_DIR
    if not (Path(stick) / SYNC_DIR).is_dir():
        raise OutboxError(f"{stick}: no {SYNC_DIR}/ folder: not a kiosk stick (create it to make one)")
    with db.transaction():
        seq = db.integer("SELECT MAX(sequence) FROM inbox_files") + 1
        full = {**body, "sequence": seq, "created": now.isoformat(timespec="seconds")}
        try:
            data = sign_document(full, office.sign)
        except BundleError as exc:
            raise OutboxError(str(exc)) from None
        db.execute("INSERT INTO inbox_files (sequence, kind, kiosk, created, sha256, body) VALUES (?, ?, ?, ?, ?, ?)",
                   (seq, full["kind"], full["kiosk"], full["created"], sha256_hex(data),
                    data[106:].decode("utf-8")))
    path = inbox / f"{seq:08d}-{full['kind']}.signed"
    try:
        inbox.mkdir(exist_ok=True)
        if inbox.is_symlink():
            raise OutboxError(f"{inbox}: a link: refused")
        atomic_write(path, data)
    except (OSError, StorageError) as exc:
        raise OutboxError(f"{path}: not written: {exc} (sequence {seq} is skipped; sign it again)") from None
    return path


def sign_config(stick: Path, config_file: Path, *, db: Database, office: OfficeKeys, now: datetime,
                kiosk: str = "*") -> Path:
    """A config update (``[kiosk] office`` and ``[[categories]]``) for every kiosk, or one."""
    try:
        text = config_file.read_text(encoding="utf-8")
        tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise OutboxError(f"{config_file}: unreadable: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise OutboxError(f"{config_file}: not valid TOML: {exc}") from None
    return _write(stick, db, office, {"kind": "config", "kiosk": _target(kiosk), "toml": text}, now=now)


def request_deletion(stick: Path, citizens: list[str], *, db: Database, office: OfficeKeys, now: datetime,
                     secret: bytes | None = None) -> tuple[Path, int]:
    """Forget ``citizens`` (32-hex citizen ids or 12-digit card numbers) in the office database now, and tell every
    kiosk to forget them too. A card number needs ``secret``, the office secret the kiosks share: only its card
    key (HMAC) goes on the stick, never the number."""
    ids = [c for c in citizens if CITIZEN_ID.fullmatch(c)]
    numbers = [c for c in citizens if CARD_NUMBER.fullmatch(c)]
    bad = [c for c in citizens if c not in ids and c not in numbers]
    if bad or not citizens:
        raise OutboxError(f"not a citizen id (32 hex digits) or a card number (12 digits): "
                          f"{bad[0] if bad else '(none given)'}")
    if numbers and secret is None:
        raise OutboxError("a card number needs the office secret (--secret FILE: the office-secret file every "
                          "kiosk of the office has)")
    keys = [card_key(secret, n) for n in numbers] if secret is not None else []
    ids += [str(row[0]) for key in keys for row in db.query("SELECT citizen FROM cards WHERE card = ?", (key,))]
    ids = sorted(set(ids))
    body: dict = {"kind": "delete", "kiosk": "*", "citizens": ids}
    if keys:
        body["card_keys"] = keys
    path = _write(stick, db, office, body, now=now)
    with db.transaction():
        changed = forget(db, ids, at=now.isoformat(timespec="seconds"), source="office")
    return path, changed


def service_closure(stick: Path, action: str, service: str, *, db: Database, office: OfficeKeys, now: datetime,
                    kiosk: str = "*") -> Path:
    """Close (or reopen) a service for today on every kiosk, or one (kiosk/closures.py applies it)."""
    if action not in ("close", "open") or not re.fullmatch(r"[a-z0-9-]{1,64}", service):
        raise OutboxError(f"expected close|open and a service key such as ho-tich, got {action} {service!r}")
    return _write(stick, db, office, {"kind": "service", "kiosk": _target(kiosk), "action": action,
                                      "service": service}, now=now)


def _target(kiosk: str) -> str:
    if kiosk == "*":
        return kiosk
    try:
        return check_kiosk_id(kiosk)
    except BundleError as exc:
        raise OutboxError(str(exc)) from None
