"""How many documents each table of a journal holds, kept beside it (``name.count``) so a loss can be proven.

A journal is compacted (rewritten shorter) from time to time, so its size proves nothing; what must never
shrink without a write that says so is the set of documents. The sidecar holds, per table, the number of
documents and a sum of their ids' crc32 (so a set with the same count but other ids differs too). Around each
write that changes the set of documents, the sidecar is replaced twice: before the append it accepts the old
and the new set (a crash in between is no loss), after it only the new one. At open, a journal whose
documents match none of the accepted sets was emptied, cut short, replaced by garbage or by an older copy:
it is kept as ``name.corrupt-<time>`` (with the sidecar, the proof) and reported with the count lost.

What it cannot see: a file and its sidecar replaced together by an older pair, or an older copy holding the
same documents with older contents (a ``last_seen`` time, say).
"""
from __future__ import annotations

import contextlib
import logging
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

from kiosk.storage.files import StorageError, _read_bytes, atomic_write, set_aside
from kiosk.storage.records import _decode_line, encode_record

log = logging.getLogger("kiosk.store")

SUFFIX = ".count"
_MASK = (1 << 64) - 1
Shape = dict[str, list[int]]   # table -> [number of documents, sum of crc32 of their ids mod 2**64]


def _key_sum(keys: Iterable[str]) -> int:
    return sum(zlib.crc32(k.encode()) for k in keys) & _MASK


def shape_of(state: dict[str, dict[str, Any]]) -> Shape:
    """The count and id sum of every non-empty table."""
    return {t: [len(docs), _key_sum(docs)] for t, docs in state.items() if docs}


def shape_after(shape: Shape, state: dict[str, dict[str, Any]], rec: dict) -> Shape:
    """``shape`` (of ``state``) once the journal record ``rec`` is applied (sets, then deletions, then drops),
    at the cost of the change, not of the tables."""
    new = {t: list(v) for t, v in shape.items()}
    added: dict[str, set[str]] = {}
    for t, docs in rec.get("set", {}).items():
        before = state.get(t, {})
        fresh = {k for k in docs if k not in before}
        if fresh:
            added[t] = fresh
            count, total = new.get(t, [0, 0])
            new[t] = [count + len(fresh), (total + _key_sum(fresh)) & _MASK]
    for t, ids in rec.get("del", {}).items():
        before = state.get(t, {})
        gone = {k for k in ids if k in before or k in added.get(t, ())}
        if gone and t in new:
            new[t] = [new[t][0] - len(gone), (new[t][1] - _key_sum(gone)) & _MASK]
    for t in rec.get("drop", ()):
        new.pop(t, None)
    return {t: v for t, v in new.items() if v[0] > 0}


class KeyCount:
    """The ``name.count`` sidecar of one journal file."""

    def __init__(self, journal: Path) -> None:
        self.journal = Path(journal)
        self.path = self.journal.with_suffix(SUFFIX)
        self.shape: Shape | None = None     # the journal's, as last made durable

    def _write(self, accepted: list[Shape]) -> None:
        atomic_write(self.path, encode_record({"ok": accepted}))

    def _read(self) -> list[Shape] | None:
        data = _read_bytes(self.path)
        if not data:
            return None
        try:
            rec = _decode_line(data.rstrip(b"\n"))
            accepted = rec["ok"]
            if not isinstance(accepted, list) or not all(isinstance(s, dict) for s in accepted) or not accepted:
                raise ValueError("not a count record")
        except (ValueError, UnicodeDecodeError, TypeError, KeyError):
            log.warning("%s: damaged, written again from %s (a loss before now cannot be proven)",
                        self.path.name, self.journal.name)
            return None
        return accepted

    def check(self, state: dict[str, dict[str, Any]], *, repair: bool) -> str | None:
        """The report of documents lost (or back after deletion) against the sidecar; None when they match."""
        actual = self.shape = shape_of(state)
        accepted = self._read()
        if accepted is None or actual in accepted:
            if repair and (accepted is None and actual or accepted is not None and len(accepted) > 1):
                self._write([actual])     # first start with a sidecar, or a crash between append and settling
            return None
        expected = accepted[-1]
        tables = sorted(set(expected) | set(actual))
        lost = sum(max(0, expected.get(t, [0])[0] - actual.get(t, [0])[0]) for t in tables)
        detail = ", ".join(f"{t}: {actual.get(t, [0])[0]} of {expected.get(t, [0])[0]}" for t in tables
                           if actual.get(t) != expected.get(t))
        what = (f"{lost} record(s) lost ({detail}): the file holds fewer than its count file proves (emptied, cut "
                f"short or replaced by garbage or an older copy)" if lost else
                f"holds other records than its count file proves ({detail}): replaced by an older copy? records "
                f"deleted since may be back")
        kept = None
        if repair:
            kept = set_aside(self.journal, copy=True) if self.journal.exists() else None
            set_aside(self.path, copy=True)
            self._write([actual])
        where = f"; set aside as {kept.name}" if kept else ("; the file is missing" if repair else "")
        return f"{self.journal.name}: {what}{where}"

    @contextlib.contextmanager
    def change(self, state: dict[str, dict[str, Any]], rec: dict) -> Iterator[None]:
        """Around the append of ``rec`` to a journal holding ``state``: accept both sets while it is written."""
        if self.shape is None:
            self.shape = shape_of(state)
        new = shape_after(self.shape, state, rec)
        if new == self.shape:
            yield
            return
        self._write([self.shape, new])       # raises StorageError: nothing was appended
        yield
        self.shape = new
        try:
            self._write([new])
        except StorageError as exc:          # still true, only one step less strict
            log.warning("%s: %s", self.path.name, exc)
