"""Privacy chores over whole files: sealing clear personal values and scrubbing one citizen out of the journals
and of the copies that repairs set aside (``name.corrupt-*``, ``.torn-*``), so that nothing stays behind."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from kiosk.storage import atomic_write, encode_record, scan_records, set_aside_copies

DocFn = Callable[[str, dict[str, Any]], dict[str, Any] | None]   # (table, document) -> new document, None = drop


def _map_record(rec: Any, fn: DocFn) -> Any:
    """Apply ``fn`` to every document of a journal record (a snapshot or a change)."""
    if not isinstance(rec, dict):
        return rec
    tables = rec.get("snap") if "snap" in rec else rec.get("set")
    if not isinstance(tables, dict):
        return rec
    out_tables = {}
    for table, docs in tables.items():
        if not isinstance(docs, dict):
            out_tables[table] = docs
            continue
        kept = {}
        for doc_id, doc in docs.items():
            new = fn(table, doc) if isinstance(doc, dict) else doc
            if new is not None:
                kept[doc_id] = new
        out_tables[table] = kept
    return {**rec, ("snap" if "snap" in rec else "set"): out_tables}


def rewrite_journal_copies(path: Path, fn: DocFn, *, drop_damaged: bool) -> int:
    """Rewrite each set-aside copy of a journal with ``fn`` applied to its documents; the copies changed.

    ``drop_damaged``: lines that do not decode are left out (they might hold what must go, and cannot be read
    to tell); a copy left with nothing is deleted.
    """
    changed = 0
    for copy in set_aside_copies(path):
        data = copy.read_bytes()
        scan = scan_records(data)
        records = [_map_record(r, fn) for r in scan.records]
        new = b"".join(encode_record(r) for r in records)
        if new == data or (not drop_damaged and scan.bad_lines):
            continue
        if records:
            atomic_write(copy, new)
        else:
            copy.unlink()
        changed += 1
    return changed


def without_citizen(citizen_ids: str | Iterable[str]) -> DocFn:
    """A document filter dropping every document about these citizens (citizens, people, receipts' owners)."""
    gone = {citizen_ids} if isinstance(citizen_ids, str) else set(citizen_ids)

    def fn(table: str, doc: dict[str, Any]) -> dict[str, Any] | None:
        return None if doc.get("id") in gone or doc.get("citizen") in gone else doc
    return fn
