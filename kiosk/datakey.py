"""The key that encrypts face templates and card data at rest, and where it comes from.

The key never lies in the data folder, so an SD card (or a copy of the data) decrypts nothing by itself:

* ``board`` (a Raspberry Pi 4/5): derived from the board's one-time-programmable device private key. The
  firmware's HMAC service (``rpi-fw-crypto hmac --key-id 1``, newer firmware) is preferred because the raw OTP
  key then never reaches user space; otherwise the key is read with ``rpi-otp-private-key`` (rpi-eeprom). The
  SD card moved to another board gives another key, which the key check below refuses.
* ``file`` (laptop, CI, a board without a programmed OTP key): 32 random bytes in a file outside the data folder,
  mode 0600, made at install (``kiosk privacy-key``) or on first use in simulation.

Whatever the source, the key actually used is BLAKE2b keyed by the source material with a personalisation
(the libsodium KDF construction), so the raw OTP key or file bytes never encrypt data themselves. Encryption is
PyNaCl's ``Aead`` (XChaCha20-Poly1305): authenticated, a random 24-byte nonce per record, the record's owner as
associated data (a record moved to another citizen fails to open).

``datakey.check`` in the data folder holds a keyed hash of a constant under the key: with it a wrong key is
recognised before any personal record is read, so the kiosk touches nothing and issues plain tickets.
"""
from __future__ import annotations

import hmac
import logging
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.secret
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt as _aead_open

from kiosk.keyfile import KeyFileError, create_key_file, read_key_file

log = logging.getLogger("kiosk.privacy")

CHECK_FILE = "datakey.check"
KEY_BYTES = nacl.secret.Aead.KEY_SIZE            # 32
NONCE_BYTES = nacl.secret.Aead.NONCE_SIZE        # 24
OVERHEAD = NONCE_BYTES + nacl.secret.Aead.MACBYTES  # bytes a sealed value adds: nonce + tag (40)
KEY_FILE_PREFIX = "kiosk-data-key-v1:"
_PERSON_KEY = b"kiosk-data-v1"                   # BLAKE2b personalisation (<= 16 bytes)
_PERSON_CHECK = b"kiosk-keycheck"
_BOARD_MESSAGE = b"queue-kiosk data key v1"      # what the firmware HMACs on a board


class KeyUnavailable(Exception):
    """No usable key: one line saying why and what to do; the kiosk then issues plain tickets only."""


class Runner(Protocol):
    """Runs a board tool: argv and stdin bytes -> stdout bytes; raises OSError / CalledProcessError."""
    def __call__(self, argv: list[str], stdin: bytes) -> bytes: ...


def _run(argv: list[str], stdin: bytes) -> bytes:
    return subprocess.run(argv, input=stdin, capture_output=True, check=True, timeout=10).stdout


class DataKey:
    """Seals and opens personal values; ``open`` raises :class:`SealError` on a wrong key or changed bytes."""

    def __init__(self, material: bytes):
        if len(material) < 16:
            raise ValueError("key material too short")
        key = nacl.hash.blake2b(material, digest_size=KEY_BYTES, key=b"", person=_PERSON_KEY.ljust(16, b"\0"),
                                encoder=nacl.encoding.RawEncoder)
        self._aead = nacl.secret.Aead(key)
        self._key = key
        self._check = nacl.hash.blake2b(b"key check", digest_size=16, key=key,
                                        person=_PERSON_CHECK.ljust(16, b"\0"), encoder=nacl.encoding.HexEncoder)

    @property
    def check(self) -> str:
        """A keyed hash of a constant: tells this key from another without revealing it."""
        return self._check.decode("ascii")

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        """nonce (24) + ciphertext + tag (16): ``len(plain) + OVERHEAD`` bytes."""
        return bytes(self._aead.encrypt(plain, aad))

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """What :meth:`seal` sealed. The same construction as ``Aead.decrypt`` (nonce first), called through
        PyNaCl's binding directly: start-up opens 300,000 templates, and the wrapper's checks cost as much as
        the cipher."""
        try:
            return _aead_open(sealed[NONCE_BYTES:], aad, sealed[:NONCE_BYTES], self._key)
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise SealError("a sealed record does not open (wrong key or changed bytes)") from exc


    def open_many(self, data: bytes, offsets: Sequence[int], *, aad_len: int, sealed_len: int,
                  out: np.ndarray) -> np.ndarray:
        """Open many sealed values laid out in ``data`` straight into the rows of ``out``; which ones opened.

        At each offset: ``aad_len`` bytes of associated data, then ``sealed_len`` bytes as :meth:`seal` made them.
        Start-up opens 300,000 templates: this calls libsodium's XChaCha20-Poly1305 (the one PyNaCl's ``Aead``
        calls) through PyNaCl's own cffi module on pointers into the buffers, on a few threads (the call
        releases the GIL), which is 3-5x faster than a Python slice and call per value. A row that does not open
        is zeroed and reported False.
        """
        opened = np.zeros(len(offsets), bool)
        if not len(offsets):
            return opened
        plain_len = sealed_len - OVERHEAD
        assert out.flags.c_contiguous and out.shape[0] == len(offsets) and out[0].nbytes == plain_len
        try:
            from nacl._sodium import ffi, lib  # type: ignore[import-not-found]
        except ImportError:                                  # pragma: no cover - PyNaCl without its cffi module
            for n, o in enumerate(offsets):
                try:
                    out[n] = np.frombuffer(self.open(data[o + aad_len:o + aad_len + sealed_len], data[o:o + aad_len]),
                                           out.dtype)
                    opened[n] = True
                except SealError:
                    out[n] = 0
            return opened
        src, dst, key = ffi.from_buffer(data), ffi.from_buffer(out, require_writable=True), ffi.from_buffer(self._key)
        decrypt, null = lib.crypto_aead_xchacha20poly1305_ietf_decrypt, ffi.NULL
        box_len = sealed_len - NONCE_BYTES

        def part(lo: int, hi: int) -> None:
            length = ffi.new("unsigned long long *")
            for n in range(lo, hi):
                o = int(offsets[n])
                if o < 0 or o + aad_len + sealed_len > len(data):
                    continue
                s = src + o + aad_len
                if decrypt(dst + n * plain_len, length, null, s + NONCE_BYTES, box_len, src + o, aad_len, s, key) == 0:
                    opened[n] = True
                else:
                    out[n] = 0

        workers = max(1, min(4, os.cpu_count() or 1, len(offsets) // 2048))
        if workers == 1:
            part(0, len(offsets))
        else:
            from concurrent.futures import ThreadPoolExecutor

            step = -(-len(offsets) // workers)
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda lo: part(lo, min(lo + step, len(offsets))), range(0, len(offsets), step)))
        return opened


class SealError(Exception):
    """A sealed value that does not open: another key, or bytes changed since it was sealed."""


# -------------------------------------------------------------------------------------------------- key sources
def make_key_file(path: Path) -> bool:
    """Write a new random key (mode 0600, created exclusively) unless ``path`` exists; True if it wrote one."""
    path = Path(path)
    if path.exists():
        return False
    return create_key_file(path, f"{KEY_FILE_PREFIX}{secrets.token_hex(KEY_BYTES)}")


def key_from_file(path: Path) -> DataKey:
    """The key in ``path``: a regular file, not readable by group or others, ``kiosk-data-key-v1:<64 hex>``."""
    try:
        return DataKey(read_key_file(path, KEY_FILE_PREFIX, what="data key", size=KEY_BYTES,
                                     missing=f"{path} not found (make it with: kiosk privacy-key)"))
    except KeyFileError as exc:
        raise KeyUnavailable(str(exc)) from None


def key_from_board(run: Runner = _run, which: Callable[[str], str | None] = shutil.which) -> DataKey:
    """The key derived from this Raspberry Pi's OTP device private key (firmware HMAC, else the raw OTP key)."""
    if which("rpi-fw-crypto"):
        try:
            out = run(["rpi-fw-crypto", "hmac", "--in", "/dev/stdin", "--key-id", "1", "--outform", "hex"],
                      _BOARD_MESSAGE).decode("ascii", "replace").strip()
            mac = bytes.fromhex(out)
            if len(mac) >= 32 and any(mac):
                return DataKey(mac)
            log.warning("rpi-fw-crypto hmac gave no usable answer; trying rpi-otp-private-key")
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            log.warning("rpi-fw-crypto hmac failed (%s); trying rpi-otp-private-key", exc)
    if not which("rpi-otp-private-key"):
        raise KeyUnavailable("neither rpi-fw-crypto nor rpi-otp-private-key found (apt install rpi-eeprom), "
                             "or set [privacy] key_source = \"file\"")
    try:
        out = run(["rpi-otp-private-key"], b"").decode("ascii", "replace").strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise KeyUnavailable(f"rpi-otp-private-key failed: {exc} (run the kiosk as a user in group video)") from None
    try:
        otp = bytes.fromhex(out.split()[-1] if out else "")
    except ValueError:
        otp = b""
    if len(otp) < 32:
        raise KeyUnavailable("rpi-otp-private-key printed no key")
    if not any(otp):
        raise KeyUnavailable("the board's OTP private key is not programmed (see README, Privacy)")
    # BLAKE2b keyed by the OTP key over a fixed message: the raw OTP key itself never encrypts anything.
    mac = nacl.hash.blake2b(_BOARD_MESSAGE, digest_size=32, key=otp[:64], person=b"kiosk-otp-v1".ljust(16, b"\0"),
                            encoder=nacl.encoding.RawEncoder)
    return DataKey(mac)


@dataclass(frozen=True)
class KeySource:
    """Where the data key comes from ([privacy] key_source and key_file)."""
    kind: str = "file"             # "file" | "board"
    key_file: Path = Path("/etc/kiosk/data.key")
    create: bool = False           # make the key file when missing (simulation, replay, tests)


def load_key(source: KeySource, data_dir: Path, *, run: Runner = _run,
             which: Callable[[str], str | None] = shutil.which, write_check: bool = True) -> DataKey:
    """The data key of this kiosk, verified against ``datakey.check`` in ``data_dir``.

    The first key that meets a data folder without a check file writes one. Raises :class:`KeyUnavailable`
    (no key, or a key that is not the one the data was sealed with).
    """
    if source.kind == "board":
        key = key_from_board(run, which)
    else:
        if source.create and make_key_file(source.key_file):
            log.info("made the data key %s", source.key_file)
        key = key_from_file(source.key_file)
    verify_key(key, Path(data_dir), write_check=write_check)
    return key


def verify_key(key: DataKey, data_dir: Path, *, write_check: bool = True) -> None:
    """Compare the key with the folder's check file; write the check file when there is none yet."""
    path = Path(data_dir) / CHECK_FILE
    try:
        known = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        known = None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyUnavailable(f"{path}: cannot read: {exc}") from None
    if known is None and not write_check:
        return
    if known is None:
        from kiosk.storage import atomic_write, StorageError

        try:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            atomic_write(path, (key.check + "\n").encode("ascii"))
        except (StorageError, OSError) as exc:
            raise KeyUnavailable(f"{path}: cannot write: {exc}") from None
        return
    if not hmac.compare_digest(known, key.check):
        raise KeyUnavailable(f"the data key is not the one {data_dir} was encrypted with "
                             f"(another board, or another key file)")


def describe(source: KeySource) -> str:
    return "the board's OTP key" if source.kind == "board" else str(source.key_file)



# ------------------------------------------------------------------------------------------- sealed JSON values
SEALED_PREFIX = "sealed-v1:"


def seal_json(key: DataKey, value: object, owner: str) -> str:
    """A JSON value sealed to its owner (citizen id), as text for a JSON record."""
    import base64
    import json

    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return SEALED_PREFIX + base64.b64encode(key.seal(plain, owner.encode("ascii"))).decode("ascii")


def open_json(key: DataKey, text: str, owner: str) -> object:
    """The value :func:`seal_json` sealed; :class:`SealError` when it does not open (or is no sealed value)."""
    import base64
    import binascii
    import json

    if not isinstance(text, str) or not text.startswith(SEALED_PREFIX):
        raise SealError("not a sealed value")
    try:
        raw = base64.b64decode(text[len(SEALED_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SealError("a sealed value is not base64") from exc
    return json.loads(key.open(raw, owner.encode("ascii")).decode("utf-8"))
