"""The tamper-evident audit log: append-only, each entry numbered and carrying the hash of the line before.

A line is the store's self-checking record (``<crc32> <json>``); its JSON carries ``seq`` (1, 2, 3, …) and
``prev`` (SHA-256 of the previous line's bytes, hex; 64 zeros for the first). ``audit.head`` beside the log
holds the last ``seq`` and the hash of the last line, replaced atomically after each append, so a cut tail is
seen too. :func:`verify` names the first entry that was edited, removed or reordered, or where the tail was cut
(``kiosk audit verify``, and at each start: after READY in ``kiosk run``). Entries written before the chain existed (no ``seq``) are
accepted as an unchained prefix. The chain shows tampering; it cannot stop someone who rewrites the whole log
and the head together (the USB export carries the entries to the office, which keeps its own copy).

Entries record events and counts only: never an image, a template, a name or a card number.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from kiosk.storage import RecordLog, StorageError, atomic_write, encode_record

HEAD_SUFFIX = ".head"
GENESIS = "0" * 64


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _head_path(path: Path) -> Path:
    return path.with_name(path.stem + HEAD_SUFFIX)


@dataclass(frozen=True)
class AuditCheck:
    entries: int                 # lines read
    chained: int                 # entries carrying seq/prev
    problem: str | None          # the first break, in one line; None = intact

    @property
    def ok(self) -> bool:
        return self.problem is None


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _decode(line: bytes) -> dict[str, Any] | None:
    body = line.rstrip(b"\n")
    if len(body) < 10 or body[8:9] != b" ":
        return None
    import zlib

    try:
        if int(body[:8], 16) != zlib.crc32(body[9:]):
            return None
        value = json.loads(body[9:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class AuditState:
    """The log's length and head file at one instant: what a later :func:`verify` checks, whatever came after."""

    size: int
    head: dict[str, Any] | None


def state(path: Path) -> AuditState:
    path = Path(path)
    return AuditState(path.stat().st_size if path.exists() else 0, read_head(path))


def _stream(path: Path, size: int | None) -> Iterator[bytes]:
    """The log's lines (the first ``size`` bytes), one at a time: a check holds one line, not the whole log."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        left = size
        for line in f:
            if left is not None:
                if left <= 0:
                    return
                line, left = line[:left], left - len(line)
            yield line


def verify(path: Path, at: AuditState | None = None) -> AuditCheck:
    """Check the chain of ``path`` (and its head file); the first break, named by entry number and time.

    ``at``: check the log as it was then (the kiosk checks it on a thread after READY, while it appends).
    """
    path = Path(path)
    size = None if at is None else at.size
    lines = _stream(path, size)
    prev_hash, prev_seq, chained, n = None, 0, 0, 0

    def found(problem: str | None) -> AuditCheck:
        return AuditCheck(n + sum(1 for _ in lines), chained, problem)   # every line counted, as read

    for n, line in enumerate(lines, 1):
        rec = _decode(line)
        if rec is None:
            return found(f"{path.name}: line {n} was changed (its checksum fails)")
        seq = rec.get("seq")
        if seq is None:
            if chained:
                return found(f"{path.name}: line {n} has no place in the chain (inserted after entry {prev_seq})")
            prev_hash = _line_hash(line)
            continue
        chained += 1
        when = rec.get("at", "?")
        expected_prev = prev_hash if prev_seq else (prev_hash or GENESIS)
        if seq != prev_seq + 1:
            # only to name the break: every entry's seq, read again
            seqs = {r.get("seq") for r in map(_decode, _stream(path, size)) if r is not None}
            if prev_seq + 1 in seqs:
                what = f"entries were reordered (entry {seq} where entry {prev_seq + 1} belongs)"
            elif isinstance(seq, int) and seq > prev_seq + 1:
                what = (f"entry {prev_seq + 1} was removed" if seq == prev_seq + 2
                        else f"entries {prev_seq + 1}-{seq - 1} were removed")
            else:
                what = f"entries were reordered (entry {seq} after entry {prev_seq})"
            return found(f"{path.name}: {what} (found at line {n}, {when})")
        if rec.get("prev") != expected_prev:
            return found(f"{path.name}: entry {prev_seq} was edited (entry {seq}, line {n}, {when}, does not "
                         f"carry its hash)")
        prev_hash, prev_seq = _line_hash(line), seq
    head = read_head(path) if at is None else at.head
    if head is not None:
        if head["seq"] > prev_seq:
            return found(f"{path.name}: the log was cut: entries {prev_seq + 1}-{head['seq']} are missing at the end")
        if head["seq"] == prev_seq and head["hash"] != prev_hash:
            return found(f"{path.name}: entry {prev_seq} (the last) was edited")
    return found(None)


def read_head(path: Path) -> dict[str, Any] | None:
    try:
        head = json.loads(_head_path(Path(path)).read_text(encoding="ascii"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(head, dict) or not isinstance(head.get("seq"), int) or not isinstance(head.get("hash"), str):
        return None
    return head


class AuditLog(RecordLog):
    """A :class:`~kiosk.storage.RecordLog` whose appends are chained (``seq``, ``prev``) with a head file."""

    def __init__(self, path: Path):
        super().__init__(path)
        self._seq, self._last = self._tail()

    def _tail(self) -> tuple[int, str | None]:
        """The last entry's seq and line hash (0 and the last line's hash for an unchained log)."""
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - 65536))
                data = f.read()
        except FileNotFoundError:
            return 0, None
        if size > 65536:
            data = data[data.find(b"\n") + 1:]      # from the first whole line of the last 64 KiB
        seq, last = 0, None
        for line in _lines(data):
            rec = _decode(line)
            if rec is None:
                continue
            if isinstance(rec.get("seq"), int):
                seq = rec["seq"]
            last = _line_hash(line)
        return seq, last

    def append(self, records: Iterable[Any]) -> None:
        lines = []
        seq, last = self._seq, self._last
        for rec in records:
            seq += 1
            line = encode_record({**rec, "seq": seq, "prev": last or GENESIS})
            lines.append(line)
            last = _line_hash(line)
        if not lines:
            return
        self._out.append(b"".join(lines))
        self._seq, self._last = seq, last
        try:
            atomic_write(_head_path(self.path), json.dumps({"seq": seq, "hash": last}).encode("ascii"))
        except StorageError:
            pass   # the entries are durable; a stale head only makes verify report a cut that is not one

    def reload(self) -> None:
        """Read the tail again (after a repair cut or rewrote the file)."""
        self._seq, self._last = self._tail()
