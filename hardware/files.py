"""Replacing a file so that a power cut leaves the old or the new one, never a mix: the one copy of the rule.

It lives in the leaf package because the simulated printer needs it and `hardware` never imports `kiosk`;
`kiosk.storage` builds its error messages and repairs on top of it.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

TEMP_MARK = ".tmp-"  # temporary files are ".<name>.tmp-<pid>-<random>": a crash leaves them for clean-up


def fsync_dir(directory: Path) -> None:
    """Make a rename or a file creation in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file, ``fsync`` it, rename it over ``path``; raises OSError.

    The folder is not synced here: callers follow with :func:`fsync_dir` to make the rename itself durable.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
