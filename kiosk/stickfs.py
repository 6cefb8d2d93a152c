"""Reading and writing a folder on a USB stick that may be hostile, full, read-only or pulled out at any instant.

A stick is the easiest way to attack a kiosk in a public hall, so nothing on it is trusted:

* every folder is opened one component at a time relative to its parent's file descriptor with ``O_NOFOLLOW``:
  a symbolic link anywhere under ``kiosk-sync/`` is refused, never followed outside the stick;
* a file is ``lstat``-ed first (device nodes and FIFOs are refused before they are opened), opened with
  ``O_NOFOLLOW | O_NONBLOCK``, checked to be the same inode, and refused when its size is above the caller's
  limit before a byte is read; reading stops at the announced size + 1, so a file system that lies about sizes
  cannot make the kiosk read more (or silently less) than it expected;
* a folder listing stops at a limit (a stick with a million files costs one bounded ``scandir``);
* a name is one plain component (no ``/``, no NUL, not ``.``/``..``, at most 64 printable ASCII characters).

Writes go through :class:`OsOps` so that tests can make any single ``write``/``fsync``/``rename`` fail (a stick
pulled out, ``ENOSPC``, ``EROFS``). :class:`StickError` carries a one-line message naming the path.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MAX_NAME = 64


class StickError(Exception):
    """The stick cannot be used for this; the message is one line and names the path."""


class OsOps:
    """The system calls a stick write makes; a test subclass makes the n-th one fail (pulled out, full...)."""

    def open(self, name: str, flags: int, mode: int, dir_fd: int) -> int:
        return os.open(name, flags, mode, dir_fd=dir_fd)

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def rename(self, src: str, dst: str, dir_fd: int) -> None:
        os.rename(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)

    def mkdir(self, name: str, dir_fd: int) -> None:
        os.mkdir(name, 0o755, dir_fd=dir_fd)

    def unlink(self, name: str, dir_fd: int) -> None:
        os.unlink(name, dir_fd=dir_fd)


def describe(exc: OSError) -> str:
    """A stick fault in words a manager understands, plus the system's own."""
    plain = {errno.ENOSPC: "the stick is full", errno.EROFS: "the stick is read-only (write-protect switch?)",
             errno.EIO: "input/output error (stick pulled out or failing)", errno.ENODEV: "the stick is gone",
             errno.ENOENT: "not found (stick pulled out?)", errno.EACCES: "permission denied",
             errno.EPERM: "not permitted", errno.ELOOP: "a symbolic link (refused)",
             errno.EDQUOT: "the stick is full"}.get(exc.errno or 0)
    return plain or (exc.strerror or str(exc))


def check_name(name: str) -> str:
    """``name`` if it is one harmless path component, else StickError (names come from the stick too)."""
    if (not name or len(name) > MAX_NAME or name in (".", "..") or "/" in name or "\\" in name
            or not name.isascii() or not name.isprintable()):
        raise StickError(f"refused file name {name[:80]!r}: not a plain name of at most {MAX_NAME} ASCII characters")
    return name


class StickDir:
    """One folder on the stick, held open by file descriptor; everything inside is reached relative to it."""

    def __init__(self, fd: int, path: Path, ops: OsOps):
        self.fd = fd
        self.path = Path(path)
        self.ops = ops

    @classmethod
    def open(cls, path: Path | str, *, ops: OsOps | None = None) -> "StickDir":
        """Open the stick's mount point (or the folder standing for it); the operator named it: it may be a link."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StickError(f"{path}: cannot open the stick folder: {describe(exc)}") from None
        return cls(fd, path, ops or OsOps())

    def __enter__(self) -> "StickDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _where(self, name: str) -> Path:
        return self.path / name

    def kind(self, name: str) -> str | None:
        """'file', 'dir', 'link', 'other' (device, FIFO, socket) or None when absent; never follows a link."""
        check_name(name)
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StickError(f"{self._where(name)}: {describe(exc)}") from None
        if stat.S_ISLNK(st.st_mode):
            return "link"
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        return "file" if stat.S_ISREG(st.st_mode) else "other"

    def subdir(self, name: str, *, create: bool = False) -> "StickDir | None":
        """The folder ``name`` inside this one (None when absent and not ``create``); a link or a file is refused."""
        kind = self.kind(name)
        where = self._where(name)
        if kind is None:
            if not create:
                return None
            try:
                self.ops.mkdir(name, self.fd)
                self.ops.fsync(self.fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StickError(f"{where}: cannot create the folder: {describe(exc)}") from None
        elif kind != "dir":
            raise StickError(f"{where}: expected a folder, found a {_KIND_WORDS[kind]}: refused")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError as exc:
            raise StickError(f"{where}: cannot open the folder: {describe(exc)}") from None
        return StickDir(fd, where, self.ops)

    def names(self, *, limit: int) -> list[str]:
        """The entries of this folder, sorted; StickError when there are more than ``limit`` (read no further)."""
        out: list[str] = []
        try:
            with os.scandir(self.fd) as entries:
                for entry in entries:
                    if len(out) >= limit:
                        raise StickError(f"{self.path}: more than {limit} entries: refused (not a kiosk stick?)")
                    out.append(entry.name)
        except OSError as exc:
            raise StickError(f"{self.path}: cannot list the folder: {describe(exc)}") from None
        return sorted(out)

    def read(self, name: str, *, limit: int) -> bytes | None:
        """The bytes of regular file ``name`` (None when absent), refusing links, devices, FIFOs and big files."""
        kind = self.kind(name)
        where = self._where(name)
        if kind is None:
            return None
        if kind != "file":
            raise StickError(f"{where}: is a {_KIND_WORDS[kind]}, not a regular file: refused")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError as exc:
            raise StickError(f"{where}: cannot open: {describe(exc)}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StickError(f"{where}: changed into something other than a file while opened: refused")
            if st.st_size > limit:
                raise StickError(f"{where}: {st.st_size:,} bytes, above the limit of {limit:,}: refused unread")
            chunks, got = [], 0
            while got <= st.st_size:
                chunk = os.read(fd, min(1 << 20, st.st_size + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except OSError as exc:
            raise StickError(f"{where}: cannot read: {describe(exc)}") from None
        finally:
            os.close(fd)
        if got != st.st_size:
            raise StickError(f"{where}: the file system said {st.st_size:,} bytes but gave "
                             f"{'more' if got > st.st_size else f'{got:,}'}: refused")
        return b"".join(chunks)

    def write_atomic(self, name: str, data: bytes, *, temp_name: str) -> None:
        """Write ``data`` under ``temp_name``, fsync it, rename it to ``name``, fsync the folder.

        A stick pulled out at any point leaves at worst a temporary file or a file whose bytes the read-back
        check rejects; never a file that looks complete and is not. The page cache is dropped after the fsync
        (best effort), so a read-back comes from the stick rather than from memory.
        """
        check_name(name)
        check_name(temp_name)
        where = self._where(name)
        if self.kind(temp_name) not in (None, "file") or self.kind(name) not in (None, "file"):
            raise StickError(f"{where}: a link, folder or device is in the way: refused")
        try:
            fd = self.ops.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                               0o644, self.fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[self.ops.write(fd, view[:1 << 20]):]
                self.ops.fsync(fd)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                except (OSError, AttributeError):
                    pass
            finally:
                os.close(fd)
            self.ops.rename(temp_name, name, self.fd)
            self.ops.fsync(self.fd)
        except OSError as exc:
            raise StickError(f"{where}: not written: {describe(exc)}") from None

    def remove(self, name: str) -> bool:
        """Remove regular file ``name`` if present (a leftover temporary file); False when it could not be."""
        if self.kind(name) != "file":
            return False
        try:
            self.ops.unlink(name, self.fd)
        except OSError:
            return False
        return True


_KIND_WORDS = {"link": "symbolic link", "dir": "folder", "other": "device, FIFO or socket", "file": "file"}
