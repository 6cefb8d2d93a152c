"""The office's key pair on disk, under a passphrase (``kiosk-office keygen``).

The two private keys of :class:`kiosk.bundle.OfficeKeys` are encrypted with PyNaCl's SecretBox under a key
derived from the passphrase by argon2id (``nacl.pwhash``): a copied key file is useless without the passphrase.
The public half goes beside it as ``<file>.pub``, the one line every kiosk is given (``kiosk keys --set-office``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from nacl import pwhash
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from nacl.utils import random

from kiosk.bundle import BundleError, OfficeKeys, OfficePublicKey
from kiosk.storage import StorageError, atomic_write

KEY_FORMAT = "kiosk-office-key-v1"
PASSPHRASE_ENV = "KIOSK_OFFICE_PASSPHRASE"
MIN_PASSPHRASE = 8


class OfficeKeyError(Exception):
    """A key file that cannot be made or opened; one line naming the file."""


def public_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".pub")


def _derive(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return pwhash.argon2id.kdf(SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt, opslimit=ops, memlimit=mem)


def write_keys(key_file: Path, keys: OfficeKeys, passphrase: str, *, overwrite: bool = False) -> OfficePublicKey:
    """Encrypt ``keys`` under ``passphrase`` into ``key_file`` (0600) and the public line into ``<file>.pub``."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise OfficeKeyError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
    if key_file.exists() and not overwrite:
        raise OfficeKeyError(f"{key_file}: exists already; a new key makes every kiosk's bundles unreadable "
                             f"here (rotate instead, or remove the file yourself)")
    ops, mem = pwhash.argon2id.OPSLIMIT_INTERACTIVE, pwhash.argon2id.MEMLIMIT_INTERACTIVE
    salt = random(pwhash.argon2id.SALTBYTES)
    box = SecretBox(_derive(passphrase, salt, ops, mem))
    public = keys.public()
    doc = {"format": KEY_FORMAT, "kdf": "argon2id", "opslimit": ops, "memlimit": mem, "salt": salt.hex(),
           "secret": bytes(box.encrypt(keys.to_bytes())).hex(), "public": public.to_text()}
    try:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(key_file, (json.dumps(doc, indent=1) + "\n").encode())
        os.chmod(key_file, 0o600)
        atomic_write(public_path(key_file), (public.to_text() + "\n").encode())
    except (OSError, StorageError) as exc:
        raise OfficeKeyError(f"{key_file}: not written: {exc}") from None
    return public


def read_public(key_file: Path) -> OfficePublicKey:
    """The public line, from the key file itself (no passphrase needed)."""
    return OfficePublicKey.from_text(_load(key_file)["public"])


def read_keys(key_file: Path, passphrase: str) -> OfficeKeys:
    doc = _load(key_file)
    try:
        key = _derive(passphrase, bytes.fromhex(doc["salt"]), int(doc["opslimit"]), int(doc["memlimit"]))
        raw = SecretBox(key).decrypt(bytes.fromhex(doc["secret"]))
        keys = OfficeKeys.from_bytes(raw)
    except CryptoError:
        raise OfficeKeyError(f"{key_file}: wrong passphrase") from None
    except (KeyError, ValueError, TypeError, BundleError) as exc:
        raise OfficeKeyError(f"{key_file}: damaged key file ({exc})") from None
    if keys.public().to_text() != doc.get("public"):
        raise OfficeKeyError(f"{key_file}: the private and public keys do not match (damaged file)")
    return keys


def _load(key_file: Path) -> dict:
    try:
        doc = json.loads(key_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OfficeKeyError(f"{key_file}: no office key; run 'kiosk-office keygen' first") from None
    except (OSError, ValueError) as exc:
        raise OfficeKeyError(f"{key_file}: unreadable: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise OfficeKeyError(f"{key_file}: not an office key file ({KEY_FORMAT})")
    return doc
