"""The sealed ticket code (issue 18): the ticket's QR code tells the counter who sits down, with no network.

The kiosk has no network and its USB bundles reach the office a day later at best, so the ticket itself carries
what the officer needs, readable only by the office. Same keys and library as the bundles (kiosk/bundle.py):
the kiosk's Ed25519 key signs, the office's X25519 key receives (libsodium's SealedBox); nothing home-made.

Text (what a keyboard-wedge scanner types)::

    "KT1" + base32(wire), upper case, no padding

Base32's A-Z and 2-7 are in the QR code's alphanumeric mode (5.5 bits a character) and are typed without Shift
on any Latin keyboard; no Vietnamese letter, space or punctuation that an input method could change. (base45,
RFC 9285, would be 7 % shorter, but its only PyPI package is small and unmaintained; base32 is the stdlib's.)

Wire bytes::

    0  1  format (1)
    1  4  the office X25519 key's first 4 bytes: "sealed for another office" is told apart from "damaged"
    5  .. SealedBox(office X25519).encrypt(signature(64) + body)
    signature = Ed25519 by the kiosk over b"kiosk ticket 1\\0" + office X25519 key (32) + body

    body = CBOR array [visit id, ticket, service key, service name, issued (seconds, local time as if UTC),
                       kiosk id, citizen id | null, {field number: text}]

Ids that are hex travel as bytes (half the size). Field numbers index :data:`TICKET_FIELDS`. A ticket without a
citizen has a null citizen and no field: no personal data at all, sealed or not. Sizes: benchmarks/ticket.py.
"""
from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import cbor2
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import SealedBox
from nacl.signing import SigningKey, VerifyKey

from kiosk.bundle import OfficeKeys, OfficePublicKey

log = logging.getLogger("kiosk.ticketcode")

PREFIX = "KT1"
FORMAT = 1
_CONTEXT = b"kiosk ticket 1\0"
#: Card fields a ticket may carry, in this order (their numbers in the code); the office picks them in
#: ``[identity] ticket_fields``.
TICKET_FIELDS = ("name", "card_number", "birth_date", "sex", "address")
DEFAULT_TICKET_FIELDS = ("name", "card_number", "birth_date")
MAX_CODE_CHARS = 1200          # longer text is not a ticket: refused before decoding
_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_BASE32 = re.compile(r"[A-Z2-7]+")


class TicketCodeError(Exception):
    """A code the counter cannot use; the message is one plain line (English; the page adds Vietnamese)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason     # not-a-code | plain | input-method | other-office | damaged | unknown-kiosk |
        #                          signature | served (the counter's)


@dataclass(frozen=True)
class TicketFacts:
    """What one ticket tells the counter."""
    visit_id: str
    ticket: str
    service: str                  # the category key
    service_name: str             # its Vietnamese name, as printed
    issued_at: datetime           # local, naive, whole seconds
    kiosk_id: str
    citizen_id: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)   # only for a linked visit

    def __post_init__(self) -> None:
        if self.fields and self.citizen_id is None:
            raise ValueError("a ticket without a citizen carries no card field")
        unknown = set(self.fields) - set(TICKET_FIELDS)
        if unknown:
            raise ValueError(f"not a ticket field: {', '.join(sorted(unknown))}")


def _id_out(value: str) -> str | bytes:
    return bytes.fromhex(value) if _HEX.fullmatch(value) else value


def _id_in(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str):
        return value
    raise ValueError(f"bad id {value!r}")


def _body(facts: TicketFacts) -> bytes:
    seconds = int(facts.issued_at.replace(tzinfo=timezone.utc).timestamp())
    fields = {TICKET_FIELDS.index(k): v for k, v in facts.fields.items()}
    citizen = _id_out(facts.citizen_id) if facts.citizen_id is not None else None
    return cbor2.dumps([_id_out(facts.visit_id), facts.ticket, facts.service, facts.service_name, seconds,
                        facts.kiosk_id, citizen, fields])


def _facts(body: bytes) -> TicketFacts:
    try:
        visit, ticket, service, name, seconds, kiosk, citizen, fields = cbor2.loads(body)
        issued = datetime.fromtimestamp(int(seconds), timezone.utc).replace(tzinfo=None)
        texts = (ticket, service, name, kiosk, *fields.values())
        if not all(isinstance(t, str) for t in texts):
            raise ValueError("a text field is not text")
        return TicketFacts(_id_in(visit), ticket, service, name, issued, kiosk,
                           _id_in(citizen) if citizen is not None else None,
                           {TICKET_FIELDS[int(k)]: v for k, v in fields.items()})
    except (ValueError, TypeError, IndexError, AttributeError, OverflowError, cbor2.CBORDecodeError) as exc:
        raise TicketCodeError("damaged", f"signed, but its content is unreadable ({exc})") from None


def seal(facts: TicketFacts, *, signing_key: SigningKey, office: OfficePublicKey) -> str:
    """The code for the ticket's QR: signed by this kiosk, readable only with the office's private key."""
    body = _body(facts)
    box_key = office.box.encode()
    signature = signing_key.sign(_CONTEXT + box_key + body).signature
    wire = bytes([FORMAT]) + box_key[:4] + SealedBox(office.box).encrypt(signature + body)
    return PREFIX + base64.b32encode(wire).decode("ascii").rstrip("=")


def is_ticket_code(text: str) -> bool:
    """True when ``text`` looks like a sealed ticket code (not whether it is a good one)."""
    return text.strip().upper().startswith(PREFIX)


def wire_bytes(text: str) -> bytes:
    """The bytes of a code (before the office key is used): a one-line TicketCodeError if it is no code."""
    text = text.strip()
    if not text.isascii():
        raise TicketCodeError("input-method", "the code holds non-ASCII letters: a Vietnamese input method "
                                              "(Unikey, Telex, VNI) changed what the scanner typed; turn it off")
    if _HEX.fullmatch(text) and len(text) in (16, 32):
        raise TicketCodeError("plain", f"a plain visit id ({text}): this ticket was printed while its kiosk had "
                                       f"no office key, so it carries no sealed code")
    text = text.upper()
    if not text.startswith(PREFIX) or len(text) > MAX_CODE_CHARS or not _BASE32.fullmatch(text[len(PREFIX):]):
        raise TicketCodeError("not-a-code", "not a sealed ticket code")
    data = text[len(PREFIX):]
    try:
        return base64.b32decode(data + "=" * (-len(data) % 8))
    except (binascii.Error, ValueError):
        raise TicketCodeError("not-a-code", "not a sealed ticket code (cut off?)") from None


def open_code(text: str, *, office: OfficeKeys, kiosk_keys: Mapping[str, VerifyKey]) -> TicketFacts:
    """Decrypt and verify a scanned code; TicketCodeError says plainly why it is refused."""
    wire = wire_bytes(text)
    if len(wire) < 5 + 48 + 64:            # format, office key, SealedBox overhead, signature
        raise TicketCodeError("not-a-code", "not a sealed ticket code (too short)")
    if wire[0] != FORMAT:
        raise TicketCodeError("not-a-code", f"ticket code format {wire[0]}, this counter reads format {FORMAT}")
    box_key = office.box.public_key.encode()
    if wire[1:5] != box_key[:4]:
        raise TicketCodeError("other-office", f"sealed for another office (key {wire[1:5].hex()}…), "
                                              f"not this one ({box_key[:4].hex()}…)")
    try:
        inner = SealedBox(office.box).decrypt(wire[5:])
    except CryptoError:
        raise TicketCodeError("damaged", "the code was changed or damaged (it does not decrypt)") from None
    signature, body = inner[:64], inner[64:]
    facts = _facts(body)
    key = kiosk_keys.get(facts.kiosk_id)
    if key is None:
        raise TicketCodeError("unknown-kiosk", f"from kiosk {facts.kiosk_id!r}, which is not registered here")
    try:
        key.verify(_CONTEXT + box_key + body, signature)
    except BadSignatureError:
        raise TicketCodeError("signature", f"bad signature: not made by kiosk {facts.kiosk_id!r}") from None
    return facts


class TicketSealer:
    """The kiosk's side: a code for each ticket while the office key is installed, else None (the ticket keeps
    its plain visit-id QR). The office key is read at each ticket: a rotation (kiosk/syncinbox.py) applies at
    once. Never raises: a ticket is never lost to its code."""

    def __init__(self, signing_key: SigningKey, office: Callable[[], OfficePublicKey | None],
                 fields: tuple[str, ...] = DEFAULT_TICKET_FIELDS) -> None:
        self._key = signing_key
        self._office = office
        self.fields = fields

    def code(self, facts: TicketFacts) -> str | None:
        try:
            office = self._office()
            if office is None:
                return None
            kept = {k: v for k, v in facts.fields.items() if k in self.fields and v}
            facts = TicketFacts(facts.visit_id, facts.ticket, facts.service, facts.service_name, facts.issued_at,
                                facts.kiosk_id, facts.citizen_id, kept if facts.citizen_id else {})
            return seal(facts, signing_key=self._key, office=office)
        except Exception:  # the plain QR still lets the counter find the visit later
            log.exception("sealed ticket code not made; the ticket keeps its plain QR")
            return None
