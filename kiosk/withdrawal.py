"""Withdrawal and access at the kiosk (issue 10, item 3), the service side: the consent receipt's code, checking
it, printing what is kept, deleting.

The consent receipt carries ``KIOSK-W1:<citizen id>:<secret>`` (printed as a QR code and as text): the secret is 128
random bits and the kiosk keeps only its SHA-256 in the citizen's record, so the data folder alone cannot make a
valid code, and a code stops working once the citizen is deleted. Shown to the camera, the code proves the
receipt is in hand; the privacy screen that offers "delete my data" / "print what is kept" (``Phase.PRIVACY`` in
``kiosk.states``) calls this through ``kiosk.services``.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

from kiosk.tickets import mask_name

PREFIX = "KIOSK-W1:"


def new_secret() -> tuple[str, str]:
    """(secret for the receipt, hash the kiosk keeps)."""
    secret = secrets.token_urlsafe(16)
    return secret, secret_hash(secret)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def payload(citizen_id: str, secret: str) -> str:
    """The text of the receipt's code."""
    return f"{PREFIX}{citizen_id}:{secret}"


def parse(text: str) -> tuple[str, str] | None:
    """(citizen id, secret) of a receipt code, None for any other text (a card, a ticket, noise)."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        return None
    body = text[len(PREFIX):].strip()
    cid, _, secret = body.partition(":")
    if len(cid) != 32 or not secret or len(secret) > 64:
        return None
    try:
        bytes.fromhex(cid)
        secret.encode("ascii")
    except (ValueError, UnicodeEncodeError):
        return None
    return cid, secret


class CitizenStore(Protocol):
    def withdrawal_hash(self, citizen_id: str) -> str | None: ...
    def citizen(self, citizen_id: str) -> object | None: ...
    def template_owners(self) -> list[str]: ...
    def forget(self, citizen_id: str, *, now: datetime) -> bool: ...
    def consent(self, citizen_id: str) -> dict | None: ...


class Cards(Protocol):
    def record(self, citizen_id: str) -> object | None: ...
    def forget(self, citizen_id: str) -> bool: ...


class Index(Protocol):
    def remove(self, citizen_id: str) -> None: ...


@dataclass(frozen=True)
class Kept:
    """What the kiosk keeps about one citizen, for the slip: never a template, a card number or a full name."""
    citizen_id: str
    masked_name: str | None
    templates: int
    card_fields: tuple[str, ...]
    consent_at: str | None
    consent_version: str | None
    created: str | None
    last_seen: str | None

    def lines(self) -> list[str]:
        return [
            f"Mã công dân / Citizen id: {self.citizen_id}",
            f"Tên (che) / Name (masked): {self.masked_name or '-'}",
            f"Mẫu khuôn mặt / Face templates: {self.templates} (dãy số, không có ảnh / numbers, no photo)",
            f"Thông tin thẻ / Card fields kept: {', '.join(self.card_fields) or '-'} (không lưu số thẻ / "
            f"no card number)",
            f"Đồng ý lúc / Consent: {self.consent_at or '-'} (v. {self.consent_version or '-'})",
            f"Lần đầu / First: {self.created or '-'}; lần cuối / last seen: {self.last_seen or '-'}",
        ]


class Withdrawals:
    """Check a receipt code, say what is kept, delete: on the loop thread, which owns the store and the book."""

    def __init__(self, *, store: CitizenStore, book: Cards | None, index: Index, wall: Callable[[], datetime]):
        self._store = store
        self._book = book
        self._index = index
        self._wall = wall

    def verify(self, text: str) -> str | None:
        """The citizen id of a genuine receipt code whose citizen is still on record, else None."""
        parsed = parse(text)
        if parsed is None:
            return None
        cid, secret = parsed
        kept = self._store.withdrawal_hash(cid)
        if kept is None or not hmac.compare_digest(kept, secret_hash(secret)):
            return None
        return cid

    def kept(self, citizen_id: str) -> Kept:
        citizen = self._store.citizen(citizen_id)
        record = self._book.record(citizen_id) if self._book is not None else None
        name = getattr(record, "name", None) or getattr(citizen, "display_name", None)
        consent = self._store.consent(citizen_id)
        created = [t for t in (getattr(citizen, "created_at", None), getattr(record, "created_at", None)) if t]
        seen = [t for t in (getattr(citizen, "last_seen", None), getattr(record, "last_seen", None)) if t]
        fields = tuple(sorted(getattr(record, "fields", {}) or {}))
        return Kept(citizen_id, mask_name(name) if name else None,
                    sum(1 for c in self._store.template_owners() if c == citizen_id), fields,
                    consent["at"][:16] if consent else None, consent["text_version"] if consent else None,
                    f"{min(created):%Y-%m-%d}" if created else None, f"{max(seen):%Y-%m-%d}" if seen else None)

    def delete(self, citizen_id: str) -> datetime:
        """Delete everything of the citizen now (templates leave the index first); the time, for the receipt."""
        now = self._wall()
        self._index.remove(citizen_id)
        if self._book is not None:
            self._book.forget(citizen_id)
        if self._store.citizen(citizen_id) is not None:
            self._store.forget(citizen_id, now=now)
        return now
