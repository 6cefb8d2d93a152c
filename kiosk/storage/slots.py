"""A small record rewritten in place, safely: two alternating slots."""
from __future__ import annotations

import os
from pathlib import Path

from kiosk.storage.files import StorageError, _read_bytes, fsync_dir
from kiosk.storage.records import _decode_line, encode_record


class SlotFile:
    """A small JSON record (< 4 KiB) rewritten often: two fixed slots written alternately in place.

    Each write goes to the slot not holding the newest record and is fsync-ed; a write torn by a power cut
    damages only that slot, so the previous record survives. Reading takes the valid slot with the highest
    sequence number. One fsync and one 4 KiB block per write, whatever the age of the data.
    """

    SLOT = 4096

    def __init__(self, path: Path):
        self.path = Path(path)
        self.seq = 0
        self._fd: int | None = None

    def read(self) -> tuple[dict | None, bool]:
        """(newest valid record or None, whether some non-empty slot was damaged)."""
        data = _read_bytes(self.path)
        if data is None:
            return None, False
        best, damaged = None, False
        for start in (0, self.SLOT):
            chunk = data[start:start + self.SLOT].rstrip(b" \n\0")
            if not chunk:
                continue
            try:
                rec = _decode_line(chunk)
                if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int):
                    raise ValueError("not a slot record")
            except (ValueError, UnicodeDecodeError):
                damaged = True
                continue
            if best is None or rec["seq"] > best["seq"]:
                best = rec
        if best is not None:
            self.seq = best["seq"]
        return best, damaged or (best is None and bool(data.strip(b"\0")))

    def write(self, record: dict) -> None:
        self.seq += 1
        line = encode_record({**record, "seq": self.seq})
        if len(line) > self.SLOT:
            raise StorageError(f"{self.path}: record of {len(line)} bytes does not fit a {self.SLOT}-byte slot")
        if self._fd is None:
            existed = self.path.exists()
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StorageError(f"cannot open {self.path} for writing: {exc}") from exc
            if not existed:
                fsync_dir(self.path.parent)
        try:
            os.pwrite(self._fd, line.ljust(self.SLOT, b" "), (self.seq % 2) * self.SLOT)
            os.fsync(self._fd)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}") from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
