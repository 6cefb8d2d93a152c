"""The kiosk's USB sync keys: its own Ed25519 signing key and the office's public key (``kiosk keys``).

Both live outside the data folder (config ``[sync] key_file`` and ``office_key_file``), so a copy of the data
folder never carries a key. The private key file is created on first use with mode 0600 and refused when group
or others could read it, as ssh does.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from nacl.signing import SigningKey

from kiosk.bundle import BundleError, OfficePublicKey
from kiosk.keyfile import KeyFileError, create_key_file, read_key_file
from kiosk.storage import StorageError, atomic_write

if TYPE_CHECKING:
    from kiosk.ticketcode import TicketSealer

log = logging.getLogger("kiosk.synckeys")
KIOSK_KEY_PREFIX = "kiosk-sync-key-v1:"


class SyncKeyError(Exception):
    """A key file that cannot be used; one line naming the file."""


@dataclass(frozen=True)
class SyncKeys:
    kiosk: SigningKey
    office: OfficePublicKey | None


def kiosk_public_text(key: SigningKey) -> str:
    """The kiosk's public key as the office registers it (hex Ed25519)."""
    return key.verify_key.encode().hex()


def load_kiosk_key(path: Path, *, create: bool) -> SigningKey:
    """The kiosk's signing key; with ``create`` a new one is made (0600) when the file does not exist."""
    path = Path(path)
    if not path.exists() and create:
        try:
            create_key_file(path, f"{KIOSK_KEY_PREFIX}{bytes(SigningKey.generate()).hex()}")
        except OSError as exc:
            raise SyncKeyError(f"{path}: cannot create the kiosk key: {exc.strerror or exc}") from None
    try:
        return SigningKey(read_key_file(path, KIOSK_KEY_PREFIX, what="kiosk key", size=32,
                                        missing=f"{path}: no kiosk key yet: run 'kiosk keys' to create it"))
    except KeyFileError as exc:
        raise SyncKeyError(str(exc)) from None


def read_office_key(path: Path) -> OfficePublicKey | None:
    """The office's public key, None when it was never set."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SyncKeyError(f"{path}: cannot read the office key: {exc}") from None
    try:
        return OfficePublicKey.from_text(text)
    except BundleError as exc:
        raise SyncKeyError(f"{path}: {exc}") from None


ROTATED_OFFICE_KEY = "sync/office-sync.pub"


def rotated_office_key_file(data_dir: Path) -> Path:
    """Where a rotation signed by the office puts the new office key: the data folder, which the service may
    write (``/etc/kiosk`` it may not). Public, and it came signed by the old key, so nothing secret lies there."""
    return Path(data_dir) / ROTATED_OFFICE_KEY


def office_key_file_in_use(configured: Path, data_dir: Path) -> Path:
    """The office key the kiosk uses: a rotated one when the office sent one, else the configured file."""
    rotated = rotated_office_key_file(data_dir)
    return rotated if rotated.is_file() else Path(configured)


def write_office_key(path: Path, office: OfficePublicKey) -> None:
    """Replace the office key file atomically (a power cut leaves the old key or the new one)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (office.to_text() + "\n").encode("ascii"))
    except (OSError, StorageError) as exc:
        raise SyncKeyError(f"{path}: cannot write the office key: {exc}") from None


def parse_office_argument(value: str) -> OfficePublicKey:
    """``--set-office`` takes the key text itself or a file holding it."""
    if value.strip().startswith("kiosk-office-v1:"):
        text = value
    else:
        try:
            text = Path(value).read_text(encoding="ascii")[:4096]
        except (OSError, UnicodeDecodeError) as exc:
            raise SyncKeyError(f"{value}: neither an office public key nor a readable file: {exc}") from None
    try:
        return OfficePublicKey.from_text(text)
    except BundleError as exc:
        raise SyncKeyError(str(exc)) from None


def keys_command(*, key_file: Path, office_key_file: Path, kiosk_id: str, set_office: str | None,
                 out: TextIO, data_dir: Path | None = None) -> int:
    """``kiosk keys``: show (creating on first use) the kiosk key; ``set_office``: set the office's key (which
    replaces a key the office rotated to: the technician's word is the last; audited with its fingerprint)."""
    try:
        key = load_kiosk_key(key_file, create=True)
        if set_office is not None:
            office_set = parse_office_argument(set_office)
            write_office_key(office_key_file, office_set)
            if data_dir is not None:
                rotated_office_key_file(data_dir).unlink(missing_ok=True)
                from kiosk.auditspool import record

                record(data_dir, "office_key_set", now=datetime.now(), fingerprint=office_set.fingerprint)
        if data_dir is not None:
            office_key_file = office_key_file_in_use(office_key_file, data_dir)
        office = read_office_key(office_key_file)
    except SyncKeyError as exc:
        out.write(f"kiosk keys: {exc}\n")
        return 2
    out.write(f"kiosk:       {kiosk_id}\n")
    out.write(f"kiosk key:   {kiosk_public_text(key)}   (register this at the office; file {key_file})\n")
    if office is None:
        out.write(f"office key:  not set (kiosk keys --set-office KEY_OR_FILE; file {office_key_file})\n")
    else:
        out.write(f"office key:  {office.to_text()}   (fingerprint {office.fingerprint})\n")
    return 0


def ticket_sealer(config_key_file: Path, office_key_file: Path, data_dir: Path,
                  fields: tuple[str, ...]) -> "TicketSealer | None":
    """The sealer of ticket codes (kiosk/ticketcode.py) with this kiosk's key, or None while it has no key yet
    (tickets then keep the plain visit-id QR). The office key is looked up at each ticket: once `kiosk keys
    --set-office` or a rotation put one in place, the next ticket is sealed to it."""
    from kiosk.ticketcode import TicketSealer

    try:
        key = load_kiosk_key(config_key_file, create=False)
    except SyncKeyError as exc:
        log.info("tickets keep the plain visit-id QR: %s", exc)
        return None
    return TicketSealer(key, lambda: read_office_key(office_key_file_in_use(office_key_file, data_dir)), fields)
