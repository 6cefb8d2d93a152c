"""The USB sync file formats, shared by the kiosk (``kiosk export/import``) and the office tool (issue 12).

Everything here is pure bytes-in/bytes-out plus PyNaCl (libsodium); no home-made cryptography.

On the stick::

    kiosk-sync/<kiosk id>/00000007.bundle   one export of a kiosk (sequence 7), see "Bundle" below
    kiosk-sync/<kiosk id>/ack              signed by the office: bundles up to N were ingested
    kiosk-sync/inbox/*.signed               signed by the office: config updates, deletion requests, key rotation

Sticks are FAT: names are case-insensitive there (two kiosk ids differing only in case would share a folder:
give kiosks lower-case ids), a file is at most 4 GiB, and the 8.3 aliases FAT adds are never used.

Keys. A kiosk has one Ed25519 signing key (it signs bundles). The office has TWO key pairs: Ed25519 to sign
acknowledgements and inbox files, X25519 to receive bundles (SealedBox). libsodium can convert one Ed25519 key
into an X25519 one, but its documentation recommends distinct keys where one can afford them; we can, since both
travel as one line, the office public key text ``kiosk-office-v1:<64 hex Ed25519><64 hex X25519>``.

Bundle (all integers big-endian)::

    0      8  magic b"KSBUNDLE"
    8      2  format version (1)
    10     4  header length H (at most 4 KiB)
    14     H  header, canonical JSON: kiosk, sequence, prev, created, signer (kiosk Ed25519, hex),
              recipient (office X25519, hex), payload_bytes (C)
    14+H   C  SealedBox(office X25519).encrypt(payload)
    end-64 64 Ed25519 signature by the kiosk over b"kiosk-sync bundle 1\\0" + sha256(every byte before it)

    payload = 4-byte manifest length | manifest (JSON) | the parts' bytes, one after another
    manifest = {format, kiosk, sequence, prev, created, counts {part: records},
                parts [{name, offset, bytes, raw_bytes, records, sha256}], inbox_sequence}
    part = zlib-compressed JSON Lines (UTF-8), one record a line; sha256 is of the compressed bytes

Parts: ``visits`` (Visit.to_json, with ``identified_by`` "card" | "face" | null), ``consents``, ``tombstones`` (deletion receipts), ``audit``, ``counters``
(kiosk/sync.py), ``cards`` (kiosk/synccards.py), whose records are either
``{citizen, card, fields {name, birth_date, sex[, address]}, created_at, last_seen}`` (new or changed; ``card``
is the HMAC-SHA256 of the card number with the office secret, hex: never the number) or
``{citizen, card, deleted: true}`` (the card record was deleted on the kiosk), and ``ratings``
(kiosk/syncratings.py): satisfaction ratings ``{id, rating ("good" | "ok" | "bad"), at, service_day, visit,
category, kiosk}``, ``visit`` and ``category`` null for an anonymous rating; never a citizen. ``ratings`` is
optional when reading (bundles of kiosks made before it hold none): a missing one is empty.

The bundle's identity is the sha256 of the whole file; ``prev`` is that of the kiosk's previous bundle (a chain:
the office sees a gap or a fork). The header holds nothing about a citizen: visits, names and card fields exist
only inside the SealedBox. Reading order (``open_bundle``) and why:

1. sizes first (file, header, payload: limits before anything is read or allocated);
2. the signature, over the ciphertext, against the key registered for the header's kiosk: a file from anyone
   else is refused before the office decrypts, decompresses or parses a byte of it, and the kiosk can check its
   own read-back on the stick without being able to decrypt;
3. decrypt (Poly1305 authenticates the ciphertext again);
4. the manifest must repeat the header's kiosk, sequence and prev: signing the ciphertext alone would let a
   holder of another kiosk key re-sign a bundle as its own; the copy inside the encryption binds it;
5. each part: offset and size inside the payload, sha256, decompressed size under the limit, valid JSON Lines.

Signed documents (the office's ack and inbox files) are in ``kiosk/syncdoc.py``.
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from kiosk.stickfs import StickDir, StickError

FORMAT_VERSION = 1
BUNDLE_MAGIC = b"KSBUNDLE"
_BUNDLE_CONTEXT = b"kiosk-sync bundle 1\0"

SYNC_DIR = "kiosk-sync"
INBOX_DIR = "inbox"
ACK_NAME = "ack"
INBOX_SUFFIX = ".signed"

# The parts a bundle may hold, in this order. Face templates are not among them and never will be: the writer
# and the reader refuse any other name.
PARTS = ("visits", "consents", "tombstones", "audit", "counters", "cards", "ratings")
OPTIONAL_PARTS = ("ratings",)      # added later: a bundle from an older kiosk lacks it (read as empty)

MAX_HEADER_BYTES = 4096
MAX_BUNDLE_BYTES = 512 << 20       # a kiosk's first export of ~1M visits is about 40 MB; FAT's limit is 4 GiB
MAX_PART_BYTES = 1 << 30           # decompressed: a hostile zlib bomb stops here
OFFICE_KEY_PREFIX = "kiosk-office-v1:"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KIOSK_ID = re.compile(r"[A-Za-z0-9_-]{1,48}")


class BundleError(Exception):
    """A bundle, signed document or key that cannot be used; the message is one line."""


# ---------------------------------------------------------------------------------------------------------- keys
@dataclass(frozen=True)
class OfficePublicKey:
    """What a kiosk knows of its office: who signs (Ed25519) and whom bundles are encrypted to (X25519)."""
    sign: VerifyKey
    box: PublicKey

    def to_text(self) -> str:
        return OFFICE_KEY_PREFIX + self.sign.encode().hex() + self.box.encode().hex()

    @classmethod
    def from_text(cls, text: str) -> "OfficePublicKey":
        text = text.strip()
        body = text[len(OFFICE_KEY_PREFIX):] if text.startswith(OFFICE_KEY_PREFIX) else ""
        if len(body) != 128 or not _HEX64.fullmatch(body[:64]) or not _HEX64.fullmatch(body[64:]):
            raise BundleError(f"not an office public key (expected {OFFICE_KEY_PREFIX}<128 hex digits>): "
                              f"{text[:40]!r}")
        return cls(VerifyKey(bytes.fromhex(body[:64])), PublicKey(bytes.fromhex(body[64:])))

    @property
    def fingerprint(self) -> str:
        """Short id of the office (its signing key) for file names and messages."""
        return self.sign.encode().hex()[:16]


@dataclass(frozen=True)
class OfficeKeys:
    """The office's two private keys. The office tool (issue 12) stores them under a passphrase."""
    sign: SigningKey
    box: PrivateKey

    @classmethod
    def generate(cls) -> "OfficeKeys":
        return cls(SigningKey.generate(), PrivateKey.generate())

    def public(self) -> OfficePublicKey:
        return OfficePublicKey(self.sign.verify_key, self.box.public_key)

    def to_bytes(self) -> bytes:
        """64 secret bytes (Ed25519 seed + X25519 key): encrypt them before they touch a disk."""
        return bytes(self.sign) + bytes(self.box)

    @classmethod
    def from_bytes(cls, raw: bytes) -> "OfficeKeys":
        if len(raw) != 64:
            raise BundleError("office private keys must be 64 bytes")
        return cls(SigningKey(raw[:32]), PrivateKey(raw[32:]))


def key_hex(key: VerifyKey | PublicKey) -> str:
    return key.encode().hex()


# -------------------------------------------------------------------------------------------------- file names
def bundle_name(sequence: int) -> str:
    """``00000007.bundle``: 8 digits sort as numbers; lower-case ASCII, so FAT (case-insensitive) keeps it as
    a long name, beside the mangled 8.3 alias ``000000~1.BUN`` that nothing here relies on."""
    return f"{sequence:08d}.bundle"


def bundle_temp_name(sequence: int) -> str:
    """The temporary name while writing: a valid 8.3 name, never mistaken for a bundle by the office tool."""
    return f"{sequence:08d}.tmp"


def check_kiosk_id(kiosk_id: object) -> str:
    if not isinstance(kiosk_id, str) or not _KIOSK_ID.fullmatch(kiosk_id):
        raise BundleError(f"bad kiosk id {str(kiosk_id)[:60]!r}")
    return kiosk_id


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------------- bundles
@dataclass(frozen=True)
class BundleHeader:
    """The plaintext part of a bundle: enough to pick the verify key and to place it in the kiosk's chain."""
    kiosk: str
    sequence: int
    prev: str | None        # sha256 of the previous bundle of this kiosk; None for the first
    created: str            # ISO time on the kiosk's clock
    signer: str             # kiosk Ed25519 public key, hex
    recipient: str          # office X25519 public key, hex
    payload_bytes: int
    sha256: str = ""        # of the whole file: the bundle's identity


@dataclass(frozen=True)
class Bundle:
    header: BundleHeader
    manifest: dict[str, Any]
    parts: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def visits(self) -> list[dict[str, Any]]:
        return self.parts["visits"]


def _encode_part(records: Iterable[Any]) -> tuple[bytes, int, int]:
    """zlib-compressed JSON Lines, compressed as it goes (a year of visits never sits in memory as text)."""
    comp = zlib.compressobj(6)
    chunks, raw, count, batch = [], 0, 0, []
    for rec in records:
        batch.append(canonical_json(rec))
        count += 1
        if len(batch) >= 1024:
            data = b"\n".join(batch) + b"\n"
            raw += len(data)
            chunks.append(comp.compress(data))
            batch = []
    if batch:
        data = b"\n".join(batch) + b"\n"
        raw += len(data)
        chunks.append(comp.compress(data))
    chunks.append(comp.flush())
    return b"".join(chunks), raw, count


def make_bundle(*, kiosk_id: str, sequence: int, prev: str | None, created: str,
                parts: Mapping[str, Iterable[Any]], signing_key: SigningKey, office: OfficePublicKey,
                extra: Mapping[str, Any] | None = None) -> bytes:
    """The bytes of one bundle. ``parts`` maps names of :data:`PARTS` to records (missing parts are empty)."""
    payload = make_payload(kiosk_id=kiosk_id, sequence=sequence, prev=prev, created=created, parts=parts,
                           extra=extra)
    return seal_payload(payload, kiosk_id=kiosk_id, sequence=sequence, prev=prev, created=created,
                        signing_key=signing_key, office=office)


def make_payload(*, kiosk_id: str, sequence: int, prev: str | None, created: str,
                 parts: Mapping[str, Iterable[Any]], extra: Mapping[str, Any] | None = None) -> bytes:
    """The plaintext a bundle seals (manifest and parts); the kiosk keeps it, under its data key, until the
    office acknowledges the bundle (kiosk/outbox.py), so that a deletion can remake the bundle without it."""
    check_kiosk_id(kiosk_id)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise BundleError(f"not a bundle part: {', '.join(sorted(unknown))} (face templates never leave the kiosk)")
    if sequence < 1 or (prev is not None and not _HEX64.fullmatch(prev)) or (sequence == 1) != (prev is None):
        raise BundleError(f"bad chain position: sequence {sequence}, prev {prev!r}")
    blobs, entries, offset = [], [], 0
    for name in PARTS:
        blob, raw, count = _encode_part(parts.get(name, ()))
        entries.append({"name": name, "offset": offset, "bytes": len(blob), "raw_bytes": raw, "records": count,
                        "sha256": sha256_hex(blob)})
        blobs.append(blob)
        offset += len(blob)
    manifest = {"format": FORMAT_VERSION, "kiosk": kiosk_id, "sequence": sequence, "prev": prev,
                "created": created, "counts": {e["name"]: e["records"] for e in entries}, "parts": entries,
                **dict(extra or {})}
    mbytes = canonical_json(manifest)
    return b"".join([struct.pack(">I", len(mbytes)), mbytes, *blobs])


def seal_payload(payload: bytes, *, kiosk_id: str, sequence: int, prev: str | None, created: str,
                 signing_key: SigningKey, office: OfficePublicKey) -> bytes:
    """Encrypt a payload to the office and sign the result (the chain position must repeat the manifest's)."""
    ciphertext = SealedBox(office.box).encrypt(payload)
    header = canonical_json({"kiosk": kiosk_id, "sequence": sequence, "prev": prev, "created": created,
                             "signer": key_hex(signing_key.verify_key), "recipient": key_hex(office.box),
                             "payload_bytes": len(ciphertext)})
    head = BUNDLE_MAGIC + struct.pack(">HI", FORMAT_VERSION, len(header)) + header
    digest = hashlib.sha256(head)
    digest.update(ciphertext)
    signature = signing_key.sign(_BUNDLE_CONTEXT + digest.digest()).signature
    return b"".join([head, ciphertext, signature])


def _parse_header(data: bytes, *, max_bytes: int) -> tuple[BundleHeader, int]:
    if len(data) > max_bytes:
        raise BundleError(f"{len(data):,} bytes, above the limit of {max_bytes:,}")
    if len(data) < 14 + 64 or data[:8] != BUNDLE_MAGIC:
        raise BundleError("not a kiosk bundle (no KSBUNDLE header)")
    version, hlen = struct.unpack(">HI", data[8:14])
    if version != FORMAT_VERSION:
        raise BundleError(f"bundle format {version}, this tool reads format {FORMAT_VERSION}")
    if hlen > MAX_HEADER_BYTES or 14 + hlen + 64 > len(data):
        raise BundleError("bundle header too long or cut off")
    try:
        raw = json.loads(data[14:14 + hlen])
        header = BundleHeader(kiosk=check_kiosk_id(raw["kiosk"]), sequence=count_field(raw["sequence"]),
                              prev=raw["prev"], created=str(raw["created"]), signer=str(raw["signer"]),
                              recipient=str(raw["recipient"]), payload_bytes=count_field(raw["payload_bytes"]),
                              sha256=sha256_hex(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"bundle header unreadable: {exc}") from None
    if header.prev is not None and not (isinstance(header.prev, str) and _HEX64.fullmatch(header.prev)):
        raise BundleError("bundle header: bad prev hash")
    if 14 + hlen + header.payload_bytes + 64 != len(data):
        raise BundleError(f"bundle is {len(data):,} bytes, its header says "
                          f"{14 + hlen + header.payload_bytes + 64:,} (cut off or padded)")
    return header, 14 + hlen


def verify_bundle(data: bytes, kiosk_verify_keys: Mapping[str, VerifyKey], *,
                  max_bytes: int = MAX_BUNDLE_BYTES) -> BundleHeader:
    """Check who sent ``data`` and that no byte changed, without decrypting; the plaintext header."""
    header, _ = _parse_header(data, max_bytes=max_bytes)
    key = kiosk_verify_keys.get(header.kiosk)
    if key is None:
        raise BundleError(f"bundle from kiosk {header.kiosk!r}, which is not registered here")
    if header.signer != key_hex(key):
        raise BundleError(f"bundle of kiosk {header.kiosk!r} signed by an unknown key {header.signer[:16]}…")
    digest = hashlib.sha256(memoryview(data)[:-64]).digest()
    try:
        key.verify(_BUNDLE_CONTEXT + digest, data[-64:])
    except BadSignatureError:
        raise BundleError(f"bundle {header.sequence} of kiosk {header.kiosk!r}: bad signature "
                          f"(changed or damaged on the way)") from None
    return header


def open_bundle(data: bytes, *, office_key: OfficeKeys, kiosk_verify_keys: Mapping[str, VerifyKey],
                max_bytes: int = MAX_BUNDLE_BYTES, max_part_bytes: int = MAX_PART_BYTES) -> Bundle:
    """Verify, decrypt and parse a bundle, in the order the module docstring gives."""
    header = verify_bundle(data, kiosk_verify_keys, max_bytes=max_bytes)
    where = f"bundle {header.sequence} of kiosk {header.kiosk!r}"
    if header.recipient != key_hex(office_key.box.public_key):
        raise BundleError(f"{where} is encrypted to another office key ({header.recipient[:16]}…)")
    start = len(data) - 64 - header.payload_bytes
    try:
        payload = SealedBox(office_key.box).decrypt(bytes(memoryview(data)[start:-64]))
    except CryptoError:
        raise BundleError(f"{where}: cannot be decrypted with this office key") from None
    manifest, parts = open_payload(payload, where, (header.kiosk, header.sequence, header.prev),
                                   max_part_bytes=max_part_bytes)
    return Bundle(header=header, manifest=manifest, parts=parts)


def open_payload(payload: bytes, where: str, expect: tuple[str, int, str | None] | None = None, *,
                 max_part_bytes: int = MAX_PART_BYTES) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The manifest and the parts' records of a bundle's plaintext; BundleError (one line) if malformed or,
    given ``expect`` (the signed header's kiosk, sequence, prev), if the manifest does not repeat them."""
    try:
        (mlen,) = struct.unpack(">I", payload[:4])
        manifest = json.loads(payload[4:4 + mlen])
        same = (manifest["format"], manifest["kiosk"], manifest["sequence"], manifest["prev"])
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise BundleError(f"{where}: manifest unreadable: {exc}") from None
    if expect is not None and same != (FORMAT_VERSION, *expect):
        raise BundleError(f"{where}: the signed header and the encrypted manifest disagree: refused")
    body = memoryview(payload)[4 + mlen:]
    parts: dict[str, list[Any]] = {}
    for entry in manifest.get("parts", []):
        parts[_part_name(entry, where)] = _decode_part(body, entry, where, max_part_bytes)
    for name in OPTIONAL_PARTS:
        parts.setdefault(name, [])
    missing = set(PARTS) - set(parts)
    if missing:
        raise BundleError(f"{where}: parts missing: {', '.join(sorted(missing))}")
    return manifest, parts


def _part_name(entry: Any, where: str) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    if name not in PARTS:
        raise BundleError(f"{where}: unknown part {str(name)[:40]!r}: refused")
    return name


def _decode_part(body: memoryview, entry: dict, where: str, limit: int) -> list[Any]:
    name = entry["name"]
    try:
        offset, size, raw_size, count = (count_field(entry[k]) for k in ("offset", "bytes", "raw_bytes", "records"))
    except (KeyError, ValueError, TypeError):
        raise BundleError(f"{where}: part {name}: bad manifest entry") from None
    if offset + size > len(body):
        raise BundleError(f"{where}: part {name} lies outside the payload")
    blob = body[offset:offset + size]
    if sha256_hex(blob) != entry.get("sha256"):
        raise BundleError(f"{where}: part {name}: sha256 mismatch")
    if raw_size > limit:
        raise BundleError(f"{where}: part {name}: {raw_size:,} bytes unpacked, above the limit of {limit:,}")
    dec = zlib.decompressobj()
    try:
        raw = dec.decompress(blob, raw_size + 1)
        complete = dec.eof and not dec.unconsumed_tail and not dec.unused_data
    except zlib.error as exc:
        raise BundleError(f"{where}: part {name}: {exc}") from None
    if len(raw) != raw_size or not complete:
        raise BundleError(f"{where}: part {name}: unpacked size differs from the manifest")
    try:
        records = [json.loads(line) for line in raw.splitlines()]
    except ValueError as exc:
        raise BundleError(f"{where}: part {name}: bad JSON line: {exc}") from None
    if len(records) != count:
        raise BundleError(f"{where}: part {name}: {len(records)} records, the manifest says {count}")
    return records


def read_bundle(path: Path | str, *, office_key: OfficeKeys, kiosk_verify_keys: Mapping[str, VerifyKey],
                max_bytes: int = MAX_BUNDLE_BYTES) -> Bundle:
    """Read a bundle file safely (no link, no device, size checked before reading) and open it."""
    path = Path(path)
    try:
        with StickDir.open(path.parent) as folder:
            data = folder.read(path.name, limit=max_bytes)
    except StickError as exc:
        raise BundleError(str(exc)) from None
    if data is None:
        raise BundleError(f"{path}: not found")
    try:
        return open_bundle(data, office_key=office_key, kiosk_verify_keys=kiosk_verify_keys, max_bytes=max_bytes)
    except BundleError as exc:
        raise BundleError(f"{path.name}: {exc}") from None


def write_bundle(path: Path | str, data: bytes) -> None:
    """Write bundle bytes to ``path`` durably under a temporary name (tests, office tools; the kiosk's export
    writes through :class:`kiosk.stickfs.StickDir` with the same steps and reads back)."""
    path = Path(path)
    seq = path.name.split(".")[0]
    try:
        with StickDir.open(path.parent) as folder:
            folder.write_atomic(path.name, data, temp_name=f"{seq}.tmp")
    except StickError as exc:
        raise BundleError(str(exc)) from None


def count_field(value: Any) -> int:
    """A non-negative integer field of a header, manifest or signed document; ValueError otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value
