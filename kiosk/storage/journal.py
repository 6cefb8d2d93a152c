"""The tinydb ``Storage``: each change one appended, fsync-ed record; compacted atomically into a snapshot.

Besides tinydb's interface (``read``/``write``: tinydb hands over whole tables, so a write costs time in
proportion to the table), :meth:`JournalStorage.apply` writes named documents directly: the store's hot file
uses it so that a ticket costs the same with 50,000 visits in the file as with none.
"""
from __future__ import annotations

import contextlib
import copy
import logging
from pathlib import Path
from typing import Any, Iterator

from tinydb.storages import Storage

from kiosk.storage.files import StorageError, _Appender, _read_bytes, atomic_write
from kiosk.storage.keycount import KeyCount
from kiosk.storage.records import _repair, encode_record, scan_records

log = logging.getLogger("kiosk.store")

# tinydb Storage: journal + atomic snapshots

_CONTAINERS = (list, dict)


def _has_containers(doc: dict) -> bool:
    return any(isinstance(v, _CONTAINERS) for v in doc.values())


class JournalStorage(Storage):
    """A tinydb ``Storage`` that appends what changed and compacts atomically; crash-safe at every instant.

    Usage::

        storage = JournalStorage(path)
        db = TinyDB(storage=lambda: storage)  # or TinyDB(path, storage=JournalStorage)
        with storage.batch():                 # several tinydb operations, one durable record
            db.table("visits").insert({...})
            db.table("counters").update({...}, doc_ids=[1])

    Each tinydb ``write`` (or each ``batch``) is one record appended and ``fsync``-ed before it returns, so its
    cost follows the size of the change, not of the database. When the journal grows bigger than the last
    snapshot (and ``compact_min_bytes``), the whole state is written as one snapshot with :func:`atomic_write`.

    ``read`` hands tinydb a private copy (documents copied one level deep, nested lists/dicts deep) so tinydb's
    in-place updates can be compared with the last durable state; the copy is reused until the next write.
    """

    def __init__(self, path: str | Path, *, repair: bool = True, readonly: bool = False,
                 compact_min_bytes: int = 256 * 1024, guard: bool = False, **_ignored: Any):
        self.path = Path(path)
        # guard: a KeyCount sidecar proves how many documents each table holds (kiosk.storage.keycount)
        self._guard = KeyCount(self.path) if guard else None
        self.readonly = readonly
        self.compact_min_bytes = compact_min_bytes
        self.problems: list[str] = []
        self.damaged = False  # the file needed more than cutting a torn tail: data may be missing
        self._state: dict[str, dict[str, dict]] = {}
        self._nested: dict[str, set[str]] = {}  # per table (computed on first copy): docs with lists/dicts
        self._scratch: dict | None = None
        self._handed: dict[str, Any] = {}
        self._pending: dict | None = None
        self._batch_depth = 0
        self._next_ids: dict[str, int] = {}  # per table, for new_id (computed on first use)
        self._out = _Appender(self.path)
        self._load(repair=repair and not readonly)
        if self._guard is not None:
            self._check_guard(repair=repair and not readonly)

    # -- loading ---------------------------------------------------------------------------------------------
    def _load(self, *, repair: bool) -> None:
        data = _read_bytes(self.path)
        if data is None:  # created by the first write (appending to a new file is as safe)
            self._snapshot_bytes = 0
            self._journal_bytes = 0
            return
        scan = scan_records(data)
        state: dict[str, dict[str, dict]] = {}
        snapshot_bytes = 0
        for i, rec in enumerate(scan.records):
            if not isinstance(rec, dict):
                continue
            if "snap" in rec:
                state = rec["snap"]
                snapshot_bytes = scan.first_len if i == 0 else 0
            else:
                _apply(state, rec)
        self._state = state
        self.damaged = scan.damaged or (scan.size > 0 and not scan.records)
        self._snapshot_bytes = snapshot_bytes
        self._journal_bytes = scan.good_end - snapshot_bytes
        if scan.damaged or scan.torn:
            msg = _repair(self.path, scan, encode_record({"snap": state})) if repair else (
                f"{self.path.name}: {scan.bad_lines} damaged record(s) skipped")
            if msg:
                self.problems.append(msg)
            if scan.damaged and repair:
                self._snapshot_bytes, self._journal_bytes = self.path.stat().st_size, 0

    def _check_guard(self, *, repair: bool) -> None:
        """Compare what was loaded with the document counts the sidecar proves; report and keep any loss."""
        assert self._guard is not None
        note = self._guard.check(self._state, repair=repair)
        if note:
            self.problems.append(note)
            self.damaged = True

    def _append_guarded(self, line: bytes, rec: dict) -> None:
        """Append one record; with a guard, the sidecar accepts the old and the new counts around the append."""
        if self._guard is None:
            self._out.append(line)
            return
        with self._guard.change(self._state, rec):
            self._out.append(line)

    # -- tinydb Storage interface ----------------------------------------------------------------------------
    def peek(self) -> dict[str, dict[str, Any]]:
        """The durable state itself, without a copy: for callers that only look (never mutate it)."""
        return self._pending if self._pending is not None else self._state

    def read(self) -> dict[str, dict[str, Any]]:
        if self._pending is not None:
            return self._pending
        if self._scratch is None:
            self._scratch = self._copy_state()
            self._handed = dict(self._scratch)
        return self._scratch

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if self.readonly:
            raise StorageError(f"{self.path} is open read-only")
        if self._batch_depth:
            self._pending = data
            return
        self._commit(data)

    def close(self) -> None:
        self._out.close()

    # -- direct writes (no tinydb) ---------------------------------------------------------------------------
    def new_id(self, table: str) -> int:
        """A document id never used in ``table`` since it was loaded (tinydb's rule: one above the highest)."""
        if table not in self._next_ids:
            docs = self.peek().get(table, {})
            self._next_ids[table] = max((int(k) for k in docs), default=0) + 1
        doc_id = self._next_ids[table]
        self._next_ids[table] = doc_id + 1
        return doc_id

    def apply(self, sets: dict[str, dict[str, dict]] | None = None,
              dels: dict[str, list[str]] | None = None) -> None:
        """Set whole documents and delete others, as one durable record; the cost follows the change.

        ``sets`` maps table -> document id (a string, as tinydb keeps them) -> the new document; ``dels`` maps
        table -> ids to delete. The record is the same one a tinydb write would append (the file stays
        readable by every version); the in-memory state changes only once it is on disk.
        """
        if self.readonly:
            raise StorageError(f"{self.path} is open read-only")
        if self._batch_depth:
            raise RuntimeError("JournalStorage.apply inside a tinydb batch: one or the other")
        rec: dict[str, Any] = {}
        if sets:
            rec["set"] = {t: {k: copy.deepcopy(d) if _has_containers(d) else dict(d) for k, d in docs.items()}
                          for t, docs in sets.items() if docs}
        if dels:
            rec["del"] = {t: list(ids) for t, ids in dels.items() if ids}
        rec = {k: v for k, v in rec.items() if v}
        if not rec:
            return
        line = encode_record(rec)
        self._append_guarded(line, rec)      # durable first (raises StorageError: nothing changed)
        self._journal_bytes += len(line)
        self._scratch = None                 # tinydb's copy, if any, is stale now
        _apply(self._state, rec)
        self._track_nested(rec)
        self._maybe_compact()

    def _track_nested(self, rec: dict) -> None:
        """Keep the set of documents holding lists or dicts (the ones tinydb's copy must deep-copy) up to date."""
        for t, docs in rec.get("set", {}).items():
            nested = self._nested.get(t)
            if nested is not None:
                for k, d in docs.items():
                    (nested.add if _has_containers(d) else nested.discard)(k)
        for t, ids in rec.get("del", {}).items():
            if t in self._nested:
                self._nested[t].difference_update(ids)
        for t in rec.get("drop", ()):
            self._nested.pop(t, None)

    # -- batches ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group several tinydb operations into one durable record: all of them or none after a crash."""
        self._batch_depth += 1
        try:
            yield
        except BaseException:
            self._batch_depth -= 1
            if not self._batch_depth:
                self._pending = None
                self._scratch = None  # drop the half-changed copy: roll back to the durable state
            raise
        self._batch_depth -= 1
        if not self._batch_depth and self._pending is not None:
            pending, self._pending = self._pending, None
            self._commit(pending)

    # -- internals -------------------------------------------------------------------------------------------
    def _copy_state(self) -> dict:
        out = {}
        for t, docs in self._state.items():
            table = {k: dict(d) for k, d in docs.items()}
            if t not in self._nested:
                self._nested[t] = {k for k, d in docs.items() if _has_containers(d)}
            for k in self._nested[t]:
                if k in docs:
                    table[k] = copy.deepcopy(docs[k])
            out[t] = table
        return out

    def _diff(self, new: dict) -> dict | None:
        old = self._state
        sets: dict[str, dict] = {}
        dels: dict[str, list] = {}
        for t, docs in new.items():
            if self._handed.get(t) is docs:
                continue  # tinydb did not touch this table
            before = old.get(t)
            if before is None:
                sets[t] = docs
                continue
            changed = {k: d for k, d in docs.items() if before.get(k) != d}
            added = sum(1 for k in changed if k not in before)
            if len(before) + added != len(docs):
                gone = [k for k in before if k not in docs]
                if gone:
                    dels[t] = gone
            if changed:
                sets[t] = changed
        drop = [t for t in old if t not in new]
        rec: dict[str, Any] = {}
        if sets:
            rec["set"] = sets
        if dels:
            rec["del"] = dels
        if drop:
            rec["drop"] = drop
        return rec or None

    def _commit(self, data: dict) -> None:
        try:
            rec = self._diff(data)
            if rec is not None:
                line = encode_record(rec)
                self._append_guarded(line, rec)
                self._journal_bytes += len(line)
                self._track_nested(rec)
        except BaseException:
            self._scratch = None  # the copy holds changes that did not reach the disk
            raise
        self._state = {t: docs for t, docs in data.items()}
        self._scratch = None
        self._next_ids.clear()  # tinydb chose ids of its own
        self._maybe_compact()

    def _maybe_compact(self) -> None:
        """Compact once the journal outgrows the snapshot: rewriting everything then costs O(1) per change."""
        if self._journal_bytes > max(self.compact_min_bytes, self._snapshot_bytes):
            try:
                self.compact()
            except StorageError as exc:
                # The write itself is durable: a failed compaction must not make it look failed.
                log.warning("%s: compaction postponed: %s", self.path.name, exc)
                self._snapshot_bytes = self._journal_bytes  # try again when the journal has doubled

    def _write_snapshot(self) -> None:
        data = encode_record({"snap": self._state})
        atomic_write(self.path, data)
        self._out.reopen()
        self._snapshot_bytes = len(data)
        self._journal_bytes = 0

    def compact(self) -> None:
        """Rewrite the journal as one snapshot record, atomically."""
        self._write_snapshot()


def _apply(state: dict, rec: dict) -> None:
    for t, docs in rec.get("set", {}).items():
        state.setdefault(t, {}).update(docs)
    for t, ids in rec.get("del", {}).items():
        table = state.get(t, {})
        for k in ids:
            table.pop(k, None)
    for t in rec.get("drop", ()):
        state.pop(t, None)
