"""Who the citizen is, by their CCCD card: one record per person, found by a keyed hash of the card number.

The card number itself is never stored: the record is found by HMAC-SHA256(office secret, number), so the
kiosks of one office (same secret file) agree on who is who, and the data folder alone does not give the
numbers away. Which other card fields are kept is the office's choice (``[identity] keep``); with the data key
(:mod:`kiosk.datakey`) they are sealed in the record (``sealed``), so the file holds no name in clear. Without a
usable key (``personal=False``) the file is not even opened: cards are not used, tickets go on.

The records live in ``identity.jsonl`` in the data folder (a :class:`kiosk.storage.JournalStorage`, like the
citizens' files): table ``people`` (citizen id, card hash, kept fields, created, last seen) and table
``counters`` (cards whose face matched somebody else). The citizen id is the one the store uses for face
templates, so one person has one id whether they came by card, by face or both.

    >>> book = CardBook.open(data_dir, secret=load_secret(Path("/etc/kiosk/office-secret")))  # doctest: +SKIP
    >>> citizen, created = book.link(book.key("001203001234"), {"name": "Nguyễn Văn An"}, now=now)  # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

from tinydb import TinyDB
from tinydb.table import Document

from kiosk.cccd import Card
from kiosk.datakey import DataKey, SealError, open_json, seal_json
from kiosk.outbox import drop_from_outbox
from kiosk.storage import JournalStorage, StorageError

log = logging.getLogger("kiosk.identity")

IDENTITY_FILE = "identity.jsonl"
MIN_SECRET_BYTES = 16
DISAGREEMENTS = "card_face_disagreements"   # a face matched one record while the card named another


class IdentityError(Exception):
    """The card records cannot be read or saved; the message names the file."""


def load_secret(path: Path) -> tuple[bytes | None, str | None]:
    """The office secret, or (None, why not): a kiosk without it issues tickets but does not use cards."""
    try:
        secret = Path(path).read_bytes().strip()
    except FileNotFoundError:
        return None, f"{path} not found"
    except OSError as exc:
        return None, f"{path}: {exc.strerror or exc}"
    if len(secret) < MIN_SECRET_BYTES:
        return None, f"{path} holds fewer than {MIN_SECRET_BYTES} bytes"
    return secret, None


def make_secret(path: Path) -> bool:
    """Write a new random secret (64 hex digits, mode 0600) unless ``path`` exists; True if it wrote one.

    For the simulation, replay and tests; on a Pi the installer makes it once per office.
    """
    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


@dataclass(frozen=True)
class CardPolicy:
    """The office's rules for card visits (from ``[identity]`` and the recognition threshold)."""
    keep: tuple[str, ...] = ("name", "birth_date", "sex")
    max_templates: int = 5
    min_age_for_face: int = 18
    threshold: float = 0.54           # the one-to-one check of a card holder's face uses the same threshold
    ticket: tuple[str, ...] = ("name", "card_number", "birth_date")   # sealed in the ticket's code (ticketcode.py)


@dataclass(frozen=True)
class CardRecord:
    """One card holder's record (never the card number)."""
    citizen_id: str
    card: str                         # HMAC-SHA256 of the number, hex
    fields: Mapping[str, str]         # the kept card fields: name, birth_date (ISO), sex, address
    created_at: datetime
    last_seen: datetime | None

    @property
    def name(self) -> str | None:
        return self.fields.get("name")


class CardBook:
    """Card-keyed citizen records; the loop thread owns it (not thread-safe), like the store."""

    def __init__(self, path: Path, *, secret: bytes | None, readonly: bool = False, key: DataKey | None = None,
                 personal: bool = True) -> None:
        self.path = Path(path)
        self._secret = secret if personal else None
        self.readonly = readonly or not personal
        self._data_key = key
        self.problems: list[str] = []
        self._by_card: dict[str, int] = {}
        self._by_citizen: dict[str, int] = {}
        self._storage: JournalStorage | None = None
        if not personal:
            return
        self._storage = JournalStorage(self.path, readonly=readonly, guard=True)
        self._db = TinyDB(storage=lambda: self._storage)
        self.problems = list(self._storage.problems)
        for doc_id, doc in self._storage.peek().get("people", {}).items():
            self._by_card[doc["card"]] = int(doc_id)
            self._by_citizen[doc["citizen"]] = int(doc_id)
        if key is not None and not readonly:
            self._seal_clear_fields(key)

    @classmethod
    def open(cls, data_dir: Path, *, secret: bytes | None, readonly: bool = False, key: DataKey | None = None,
             personal: bool = True) -> "CardBook":
        return cls(Path(data_dir) / IDENTITY_FILE, secret=secret, readonly=readonly, key=key, personal=personal)

    @property
    def enabled(self) -> bool:
        """Cards can be used (the office secret and the data folder's records are there)."""
        return self._secret is not None and self._storage is not None

    def _seal_clear_fields(self, key: DataKey) -> None:
        """Seal the card fields an older kiosk kept in clear; compact so no journal line keeps them."""
        from kiosk.privacy import rewrite_journal_copies

        assert self._storage is not None
        clear = {int(k): d for k, d in self._storage.peek().get("people", {}).items() if d.get("fields")}
        try:
            if clear:
                with self._storage.batch():
                    for doc_id, d in clear.items():
                        self._db.table("people").update(
                            {"fields": {}, "sealed": seal_json(key, d["fields"], d["citizen"])}, doc_ids=[doc_id])
                self._storage.compact()
                log.info("%s: %d card record(s) sealed with the data key", self.path.name, len(clear))

            def seal_doc(table: str, doc: dict) -> dict:
                if table == "people" and doc.get("fields") and doc.get("citizen"):
                    return {**doc, "fields": {}, "sealed": seal_json(key, doc["fields"], doc["citizen"])}
                return doc

            rewrite_journal_copies(self.path, seal_doc, drop_damaged=True)
        except (StorageError, OSError) as exc:
            raise IdentityError(f"card records not sealed: {exc}") from exc

    def key(self, number: str) -> str:
        """The lookup key of a card number: HMAC-SHA256 with the office secret, hex."""
        if self._secret is None:
            raise IdentityError("no office secret: cards are not used")
        return hmac.new(self._secret, number.encode("ascii"), hashlib.sha256).hexdigest()

    def find(self, card_key: str) -> CardRecord | None:
        doc_id = self._by_card.get(card_key)
        return None if doc_id is None else self._record(doc_id)

    def record(self, citizen_id: str) -> CardRecord | None:
        doc_id = self._by_citizen.get(citizen_id)
        return None if doc_id is None else self._record(doc_id)

    def records(self) -> list[CardRecord]:
        return [self._record(doc_id) for doc_id in sorted(self._by_citizen.values())]

    def link(self, card_key: str, fields: Mapping[str, str], *, now: datetime) -> tuple[str, bool]:
        """The citizen id of this card, making the record on its first visit; (id, created)."""
        found = self.find(card_key)
        if found is not None:
            self.touch(found.citizen_id, now)
            return found.citizen_id, False
        if self._storage is None:
            raise IdentityError("card records are off on this kiosk (no usable data key)")
        citizen_id = secrets.token_hex(16)
        doc = {"citizen": citizen_id, "card": card_key, "fields": dict(fields), "created_at": now.isoformat(),
               "last_seen": now.isoformat()}
        if self._data_key is not None:
            doc["fields"], doc["sealed"] = {}, seal_json(self._data_key, dict(fields), citizen_id)
        try:
            doc_id = self._db.table("people").insert(doc)
        except StorageError as exc:
            raise IdentityError(f"card record not saved: {exc}") from exc
        self._by_card[card_key] = self._by_citizen[citizen_id] = doc_id
        log.info("citizen %s: new record from a card", citizen_id)
        return citizen_id, True

    def touch(self, citizen_id: str, now: datetime) -> None:
        doc_id = self._by_citizen.get(citizen_id)
        if doc_id is None or self.readonly:
            return
        try:
            self._db.table("people").update({"last_seen": now.isoformat()}, doc_ids=[doc_id])
        except StorageError as exc:
            log.warning("card record %s: last seen not saved: %s", citizen_id, exc)

    def forget(self, citizen_id: str) -> bool:
        """Delete a card holder's record so nothing of it stays (``kiosk forget``); False if there was none.

        The journal is compacted (no older line keeps the record) and the copies set aside after damage lose it.
        """
        return self.forget_many([citizen_id]) == 1

    def forget_many(self, citizen_ids: list[str]) -> int:
        """Delete several card records at once (retention purges: one compaction); how many were deleted."""
        from kiosk.privacy import rewrite_journal_copies, without_citizen

        found = {c: self._by_citizen[c] for c in citizen_ids if c in self._by_citizen}
        if not found or self._storage is None:
            return 0
        people = self._storage.peek()["people"]
        cards = [people[str(doc_id)]["card"] for doc_id in found.values()]
        try:
            self._db.table("people").remove(doc_ids=list(found.values()))
            self._storage.compact()
            rewrite_journal_copies(self.path, without_citizen(list(found)), drop_damaged=True)
        except (StorageError, OSError) as exc:
            raise IdentityError(f"card record not deleted: {exc}") from exc
        for c, card in zip(found, cards):
            del self._by_citizen[c]
            self._by_card.pop(card, None)
        drop_from_outbox(self.path.parent, list(found), self._data_key)
        return len(found)

    def stale(self, before: datetime) -> list[str]:
        """Card holders not seen since ``before``: the retention purge's query."""
        if self._storage is None:
            return []
        edge = before.isoformat()
        return [d["citizen"] for d in self._storage.peek().get("people", {}).values()
                if (d.get("last_seen") or d["created_at"]) < edge]

    def count(self, name: str) -> int:
        """A counter's value (e.g. :data:`DISAGREEMENTS`)."""
        if self._storage is None:
            return 0
        doc = self._storage.peek().get("counters", {}).get("1", {})
        return int(doc.get(name, 0))

    def bump(self, name: str) -> int:
        """Add one to a counter; best effort (a full disk must not cost the ticket)."""
        value = self.count(name) + 1
        if self._storage is None:
            return value
        table = self._db.table("counters")
        try:
            if table.contains(doc_id=1):
                table.update({name: value}, doc_ids=[1])
            else:
                table.insert(Document({name: value}, doc_id=1))
        except StorageError as exc:
            log.warning("counter %s not saved: %s", name, exc)
        return value

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()

    def _record(self, doc_id: int) -> CardRecord:
        assert self._storage is not None
        doc = self._storage.peek()["people"][str(doc_id)]
        seen = doc.get("last_seen")
        fields = dict(doc.get("fields", {}))
        if doc.get("sealed") and self._data_key is not None:
            try:
                opened = open_json(self._data_key, doc["sealed"], doc["citizen"])
                fields = dict(opened) if isinstance(opened, dict) else {}
            except SealError:
                log.error("card record of citizen %s does not open with the data key (bytes changed): "
                          "its fields are not used", doc["citizen"])
        return CardRecord(doc["citizen"], doc["card"], fields,
                          datetime.fromisoformat(doc["created_at"]), datetime.fromisoformat(seen) if seen else None)


def kept_fields(card: Card, keep: tuple[str, ...]) -> dict[str, str]:
    """The card fields the office keeps, as plain strings (dates in ISO form)."""
    values = {"name": card.name, "birth_date": card.birth_date.isoformat(), "sex": card.sex,
              "address": card.address}
    return {k: values[k] for k in keep if k in values}


def ticket_fields(card: Card, wanted: tuple[str, ...]) -> dict[str, str]:
    """The card fields sealed in this visit's ticket code: the number too when the office asks (it exists only
    while the visit lasts: the records keep its keyed hash)."""
    return {"card_number": card.number, **kept_fields(card, wanted)} if "card_number" in wanted \
        else kept_fields(card, wanted)
