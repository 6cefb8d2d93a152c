"""The append-only record log (audit log, visit archives)."""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Iterable

from kiosk.storage.files import _Appender, _read_bytes, atomic_write
from kiosk.storage.records import (
    _append_checksum,
    _repair,
    encode_record,
    proven_loss,
    read_checksum,
    scan_records,
    write_checksum,
)


class RecordLog:
    """An append-only file of self-checking JSON records (audit log, visit archives).

    ``RecordLog.load(path, repair=True)`` checks every record; with ``repair`` a torn tail is cut off and a file
    damaged in the middle is set aside and rewritten with its good records. ``repair=False`` (readers that must
    not touch the files of a running kiosk) just skips damaged records.

    With ``checksum=True`` (big files that are rarely appended to: the visit archives) a sidecar ``name.sum``
    holds the size and crc32 of the whole file, so checking it at start is one crc32 pass instead of a
    per-line check; a missing or stale sidecar just means the per-line check, after which it is rewritten.
    """

    def __init__(self, path: Path, *, checksum: bool = False):
        self.path = Path(path)
        self.checksum = checksum
        self._out = _Appender(self.path)

    @classmethod
    def load(cls, path: Path, *, repair: bool, decode: bool = True,
             checksum: bool = False) -> tuple[list[Any], list[str]]:
        """The good records of ``path`` and notes on what was repaired (``decode=False``: check only)."""
        path = Path(path)
        data = _read_bytes(path)
        known = read_checksum(path) if checksum else None
        if data is None:
            if known is None or not repair or known["size"] == 0:
                return [], []
            data = b""  # a missing file its .sum proves held records is a loss like an emptied one
        if checksum and not decode:
            if known and known["size"] == len(data) and known["crc"] == zlib.crc32(data):
                return [], []  # intact: the whole-file checksum matches
        loss = None
        if repair and known is not None and len(data) < known["size"]:
            good = len(scan_records(data, decode=False).records)
            n = known.get("n")
            lost = f"{n - good} of {n} record(s)" if isinstance(n, int) and n > good else "some record(s)"
            loss = proven_loss(path, known, len(data), lost)   # before any repair: the proof is kept as it was
        records, problems = cls._scan_and_repair(path, data, repair=repair, decode=decode)
        if loss:
            problems.insert(0, loss)
        elif problems and known is not None and known.get("n", 0) > len(records) and len(data) >= known["size"]:
            problems.append(f"{path.name}: {known['n'] - len(records)} of the {known['n']} record(s) its checksum "
                            f"file proves are lost")
        if checksum and repair:
            if not path.exists():
                atomic_write(path, b"")
            write_checksum(path)
        return records, problems

    @classmethod
    def _scan_and_repair(cls, path: Path, data: bytes, *, repair: bool, decode: bool):
        scan = scan_records(data, decode=decode)
        problems: list[str] = []
        if repair and (scan.damaged or scan.torn):
            rewrite = b""
            if scan.damaged:
                if not decode:
                    scan = scan_records(data)
                rewrite = b"".join(encode_record(r) for r in scan.records)
            note = _repair(path, scan, rewrite)
            if note:
                problems.append(note)
        elif scan.bad_lines:
            problems.append(f"{path.name}: {scan.bad_lines} damaged record(s) skipped")
        return scan.records, problems

    def append(self, records: Iterable[Any]) -> None:
        data = b"".join(encode_record(r) for r in records)
        if not data:
            return
        known = read_checksum(self.path) if self.checksum else None
        self._out.append(data)
        if self.checksum:
            _append_checksum(self.path, known, data)

    def close(self) -> None:
        self._out.close()
