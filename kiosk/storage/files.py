"""Durable writes and the repair primitives every storage engine shares.

Replace a whole file atomically (temporary file, ``fsync``, ``rename``, ``fsync`` of the folder), append durably,
and keep damaged bytes beside a file (``name.corrupt-<time>``, ``name.torn-<time>``) instead of deleting them.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from datetime import datetime
from pathlib import Path

# The atomic replacement itself is hardware.files' (the simulated printer needs it and may not import kiosk).
from hardware.files import TEMP_MARK, fsync_dir, replace_file
from hardware.files import write_all as _write_all

__all__ = ["TEMP_MARK", "StorageError", "atomic_write", "fsync_dir", "keep_torn_tail", "remove_stale_temps",
           "set_aside"]


class StorageError(Exception):
    """A file of the data folder cannot be read or written; the message names the file."""


# --------------------------------------------------------------------------------------------------------------
# Low-level durable writes


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that a power cut leaves either the old or the new file, never a mix."""
    path = Path(path)
    try:
        replace_file(path, data)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc
    fsync_dir(path.parent)


def remove_stale_temps(directory: Path) -> list[Path]:
    """Remove temporary files of atomic writes that a crash interrupted (the original is still intact)."""
    removed = []
    for tmp in Path(directory).glob(f".*{TEMP_MARK}*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%dT%H%M%S")


def _free_name(path: Path, suffix: str) -> Path:
    target = path.with_name(f"{path.name}.{suffix}-{_stamp()}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{suffix}-{_stamp()}-{n}")
    return target


def set_aside(path: Path, *, copy: bool = False) -> Path:
    """Keep the current content of ``path`` as ``name.corrupt-<time>`` before ``path`` gets replaced.

    A hard link costs nothing and keeps every byte; where links are impossible (or ``copy``: the caller may
    then cut ``path`` in place) the file is copied.
    The caller then replaces ``path`` with :func:`atomic_write`, which leaves the kept inode untouched.
    """
    target = _free_name(path, "corrupt")
    try:
        if copy:
            raise OSError("a copy was asked for")
        os.link(path, target)
    except OSError:
        shutil.copy2(path, target)
    fsync_dir(path.parent)
    return target


def keep_torn_tail(path: Path, good_end: int) -> Path:
    """Save the bytes after ``good_end`` as ``name.torn-<time>``, then cut them off ``path``."""
    target = _free_name(path, "torn")
    with open(path, "rb") as src:
        src.seek(good_end)
        tail = src.read()
    atomic_write(target, tail)
    with open(path, "r+b") as f:
        f.truncate(good_end)
        f.flush()
        os.fsync(f.fileno())
    return target


# --------------------------------------------------------------------------------------------------------------
# Self-checking records: b"<crc32 of json, 8 hex> <json>\n"


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


class _Appender:
    """An append-only file descriptor whose every append is durable on return."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def append(self, data: bytes) -> None:
        if self._fd is None:
            existed = self.path.exists()
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StorageError(f"cannot open {self.path} for writing: {exc}") from exc
            if not existed:
                fsync_dir(self.path.parent)
        size = os.fstat(self._fd).st_size
        try:
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError as exc:
            # Take back a partial append so the next one does not land behind garbage.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise StorageError(f"cannot write {self.path}: {exc}") from exc

    def reopen(self) -> None:
        """Forget the descriptor (after the file was replaced, the old one points to the old inode)."""
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
