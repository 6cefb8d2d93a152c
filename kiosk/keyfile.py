"""Private key files outside the data folder (the data key, the kiosk's signing key): one rule for both.

A key file is a regular file of mode 0600 (never a link), one line ``<prefix><hex>``, created exclusively and
fsync-ed so that two processes never make two keys and a power cut never leaves half a key.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from kiosk.storage import fsync_dir


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and what to do."""


def create_key_file(path: Path, line: str) -> bool:
    """Write ``line`` to a new file at ``path`` (0600, exclusive); False when the file already exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False          # made meanwhile by another process: that one is the key
    try:
        os.write(fd, f"{line}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return True


def read_key_file(path: Path, prefix: str, *, what: str, missing: str, size: int) -> bytes:
    """The ``size`` bytes in ``path`` after ``prefix``; KeyFileError names the file and the ``what`` ("data key")."""
    path = Path(path)
    try:
        st = os.stat(path, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path}: the {what} must be a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(f"{path}: readable by others (mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 it")
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(missing) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read the {what}: {exc}") from None
    body = text[len(prefix):] if text.startswith(prefix) else ""
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise KeyFileError(f"{path}: not a {what} ({prefix}<{2 * size} hex digits>)")
    return raw
