"""Signed documents of the USB sync: the office's acknowledgements and inbox files (kiosk/bundle.py has bundles).

Signed document (ack and inbox files)::

    0   8  magic b"KSSIGNED"     8  2  version (1)     10  32  signer's Ed25519 public key
    42  64 Ed25519 signature over b"kiosk-sync document 1\\0" + body
    106 .. body: canonical JSON {kind, kiosk (an id or "*" for every kiosk), sequence, created, ...}

kinds: ``ack`` {sequence: the last ingested bundle, bundle: its sha256}; ``config`` {toml: the office's keys of
the config, see kiosk/officeconfig.py}; ``delete`` {citizens: [32-hex ids], cards: [12-digit card numbers]}
(either may be missing); ``office-key`` {new_key: office public key text,
signed by the OLD key}. Inbox sequences are one counter per office; a kiosk applies a file only when its sequence
is above the last it applied (a replay changes nothing).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Mapping

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from kiosk.bundle import ACK_NAME, FORMAT_VERSION, SYNC_DIR, BundleError, canonical_json, count_field, check_kiosk_id
from hardware.files import fsync_dir, replace_file

DOC_MAGIC = b"KSSIGNED"
_DOC_CONTEXT = b"kiosk-sync document 1\0"
MAX_DOC_BYTES = 1 << 20            # ack and inbox files are small

KINDS = ("ack", "config", "delete", "office-key", "service")


def sign_document(body: Mapping[str, Any], key: SigningKey) -> bytes:
    """A signed ack or inbox file. ``body`` needs kind, kiosk (id or "*") and sequence."""
    if body.get("kind") not in KINDS:
        raise BundleError(f"unknown document kind {body.get('kind')!r}")
    if body.get("kiosk") != "*":
        check_kiosk_id(body.get("kiosk"))
    count_field(body.get("sequence"))
    raw = canonical_json(dict(body))
    if len(raw) + 106 > MAX_DOC_BYTES:
        raise BundleError(f"document too large ({len(raw):,} bytes)")
    signature = key.sign(_DOC_CONTEXT + raw).signature
    return DOC_MAGIC + struct.pack(">H", FORMAT_VERSION) + key.verify_key.encode() + signature + raw


def open_document(data: bytes, trusted: VerifyKey) -> dict[str, Any]:
    """The body of a signed document if ``trusted`` signed it; BundleError (one line) otherwise."""
    if len(data) > MAX_DOC_BYTES:
        raise BundleError(f"{len(data):,} bytes, above the limit of {MAX_DOC_BYTES:,}")
    if len(data) < 106 or data[:8] != DOC_MAGIC:
        raise BundleError("not a signed kiosk-sync file (unsigned?)")
    (version,) = struct.unpack(">H", data[8:10])
    if version != FORMAT_VERSION:
        raise BundleError(f"signed file format {version}, this kiosk reads format {FORMAT_VERSION}")
    signer, signature, raw = data[10:42], data[42:106], data[106:]
    if signer != trusted.encode():
        raise BundleError(f"signed by an unknown key {signer.hex()[:16]}…, not the office key")
    try:
        trusted.verify(_DOC_CONTEXT + raw, signature)
    except BadSignatureError:
        raise BundleError("bad signature (changed or damaged on the way)") from None
    try:
        body = json.loads(raw)
        if not isinstance(body, dict) or body.get("kind") not in KINDS:
            raise ValueError(f"unknown kind {body.get('kind') if isinstance(body, dict) else body!r}")
        count_field(body.get("sequence"))
        if body.get("kiosk") != "*":
            check_kiosk_id(body.get("kiosk"))
    except (ValueError, TypeError, BundleError) as exc:
        raise BundleError(f"signed but malformed: {exc}") from None
    return body


def make_ack(*, kiosk_id: str, sequence: int, bundle_sha256: str, created: str, key: SigningKey) -> bytes:
    """The office's acknowledgement: every bundle of ``kiosk_id`` up to ``sequence`` is in its database."""
    return sign_document({"kind": "ack", "kiosk": kiosk_id, "sequence": sequence, "bundle": bundle_sha256,
                          "created": created}, key)


def write_ack(stick: Path | str, data: bytes, kiosk_id: str) -> Path:
    """Put an ack where the kiosk looks for it (office side; tests)."""
    folder = Path(stick) / SYNC_DIR / check_kiosk_id(kiosk_id)
    folder.mkdir(parents=True, exist_ok=True)
    replace_file(folder / ACK_NAME, data)
    fsync_dir(folder)
    return folder / ACK_NAME
