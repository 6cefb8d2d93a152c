"""Citizens of the store: consenting records (64 journal shards), their face templates, deletion receipts.

The records stay in their shards and are parsed when asked for (at most two shards kept parsed while running,
all of them by a read-only tool); in memory between visits is only the compact :class:`~kiosk.roster.Roster`
(id, record id, last active) that matching, visits and retention need: 3 MB instead of 80 at 100,000 citizens.

With the data key, templates are sealed in ``templates.bin`` and a citizen's name in its record
(``name_sealed``); clear ones left by an older kiosk are sealed at the first start with a key. Without a usable
key the kiosk opens none of these files (``personal=False``): plain tickets only.
"""
from __future__ import annotations

import hashlib
from collections import Counter
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from tinydb.table import Document

from tinydb import TinyDB

from kiosk.outbox import drop_from_outbox
from kiosk.roster import Roster, owned_by
from kiosk.storage import JournalStorage, StorageError, TemplateFile, fsync_dir, hex_ids, scrub_copies, seal_copies
from kiosk.store_base import (
    CITIZEN_SHARDS,
    CITIZENS_DIR,
    COMPACT_WIPED_FRACTION,
    TEMPLATES_FILE,
    StoreBase,
    StoreError,
    _saving,
)


@dataclass(frozen=True)
class Citizen:
    id: str
    created_at: datetime
    last_seen: datetime | None
    display_name: str | None  # full name from ID-card data when imported; shown masked only
    consent_id: str


def _citizen_from_doc(doc: dict, key: Any = None) -> Citizen:
    seen = doc.get("last_seen")
    name = doc.get("display_name")
    if doc.get("name_sealed") and key is not None:
        from kiosk.datakey import SealError, open_json

        try:
            name = str(open_json(key, doc["name_sealed"], doc["id"]))
        except SealError:
            name = None
    return Citizen(id=doc["id"], created_at=datetime.fromisoformat(doc["created_at"]),
                   last_seen=datetime.fromisoformat(seen) if seen else None,
                   display_name=name, consent_id=doc["consent_id"])


def _consent(doc: dict, state: dict) -> dict[str, Any]:
    """A citizen's consent record for the export: who, when, which text (the text from its shard)."""
    text = next((t["text"] for t in state.get("consent_texts", {}).values() if t["sha"] == doc["consent_text"]), None)
    return {"citizen": doc["id"], "consent_id": doc["consent_id"], "at": doc["consent_at"],
            "text_version": doc["consent_text"], "text": text}


def _oldest(shard: JournalStorage) -> str | None:
    """When the oldest deletion receipt of a shard was written (ISO), None when it holds none."""
    return min((r["at"] for r in shard.peek().get("receipts", {}).values()), default=None)


def _shard_index(citizen_id: str) -> int:
    """Which citizens/ file holds a citizen: its first id byte, modulo the number of shards."""
    return int(citizen_id[:2], 16) % CITIZEN_SHARDS


def _text_doc_id(sha: str) -> int:
    return int(sha[:12], 16) or 1


_KEPT_SHARDS = 2   # parsed shards kept while running: a visit reads its citizen's record, then touches it


class CitizenRecords(StoreBase):
    """The citizen part of :class:`~kiosk.store.Store`: enrol, look up, forget; the templates for the index."""

    def _open_citizens(self, repair: bool) -> None:
        """Read the citizens' shards once (checked, repaired) into the roster, then the templates (checked,
        repaired, sealed); nothing without a key."""
        self._parsed = {}
        self._shard_damaged = [False] * CITIZEN_SHARDS
        self._shards_seen: set[int] = set()   # shards whose problems were told (a re-parse repeats none)
        self._oldest_receipt = [None] * CITIZEN_SHARDS   # the receipt purge opens no other shard
        self._roster = Roster()
        self._tpl_parts = None  # loaded at start, handed over by the first template_parts()
        self._tpl_whole = False  # every record of the file is a known live row or wiped (see _check_templates)
        if not self.personal:
            self._templates = None  # type: ignore[assignment]
            self._tpl_rows, self._tpl_ids = np.zeros(0, np.int64), np.zeros(0, "S16")
            return
        cdir = self.data_dir / CITIZENS_DIR
        if repair and not cdir.is_dir():
            cdir.mkdir()
            fsync_dir(self.data_dir)
        sealed = 0
        for k in range(CITIZEN_SHARDS):       # each shard parsed once here, then dropped (but the last two)
            shard, db = self._shard(k)
            self._shard_damaged[k] = shard.damaged
            if repair and self.key is not None:
                sealed += self._seal_names(shard, db)
            self._oldest_receipt[k] = _oldest(shard)
            docs = shard.peek().get("citizens", {})
            self._roster.extend((d["id"] for d in docs.values()), map(int, docs),
                                (d.get("last_seen") or d["created_at"] for d in docs.values()))
        self._templates = TemplateFile(self.data_dir / TEMPLATES_FILE, self.key)
        if repair:
            self._check_templates()
            if self.key is not None:
                self._seal_copies(sealed)
        else:
            self._tpl_rows = self._tpl_ids = None

    def _shard(self, k: int) -> tuple[JournalStorage, TinyDB]:
        """Citizens shard ``k``, parsed now unless it is one of the last ones used (all of them, read-only)."""
        parsed = self._parsed.pop(k, None)
        if parsed is None:
            shard = JournalStorage(self.data_dir / CITIZENS_DIR / f"{k:02x}.jsonl", readonly=self.readonly,
                                   guard=True)
            for n in shard.problems if k not in self._shards_seen else ():   # said once, when first parsed
                self._note(f"{CITIZENS_DIR}/{n}", level=logging.ERROR if shard.damaged else logging.WARNING)
            self._shards_seen.add(k)
            parsed = (shard, TinyDB(storage=lambda: shard))
            while len(self._parsed) >= (CITIZEN_SHARDS if self.readonly else _KEPT_SHARDS):
                self._parsed.pop(next(iter(self._parsed)))[0].close()
        self._parsed[k] = parsed      # the most recently used last
        return parsed

    def _record(self, citizen_id: str) -> dict | None:
        """A citizen's record as stored (never to be changed in place), None when unknown."""
        doc_id = self._roster.doc_id(citizen_id)
        if doc_id is None:
            return None
        return self._shard(_shard_index(citizen_id))[0].peek()["citizens"][str(doc_id)]

    def _seal_names(self, shard: JournalStorage, db: TinyDB) -> int:
        """Seal clear names left by a kiosk without encryption; the shard is compacted so no line keeps one."""
        from kiosk.datakey import seal_json

        key = self.key
        assert key is not None
        clear = {int(k): d for k, d in shard.peek().get("citizens", {}).items() if d.get("display_name")}
        if clear:
            with _saving("sealed names"), shard.batch():
                for doc_id, d in clear.items():
                    db.table("citizens").update(
                        {"display_name": None, "name_sealed": seal_json(key, d["display_name"], d["id"])},
                        doc_ids=[doc_id])
            with _saving("sealed names"):
                shard.compact()
        return len(clear)

    def _seal_copies(self, sealed: int) -> None:
        """Seal the clear names and templates in the copies repairs set aside; note what was sealed at all."""
        from kiosk.datakey import seal_json
        from kiosk.privacy import rewrite_journal_copies

        key = self.key
        assert key is not None

        def seal_doc(table: str, doc: dict) -> dict:
            if table == "citizens" and doc.get("display_name") and doc.get("id"):
                return {**doc, "display_name": None, "name_sealed": seal_json(key, doc["display_name"], doc["id"])}
            return doc

        copies = sum(rewrite_journal_copies(self.data_dir / CITIZENS_DIR / f"{k:02x}.jsonl", seal_doc,
                                            drop_damaged=True) for k in range(CITIZEN_SHARDS))
        if self._sealed_now:  # only at the migration: a torn piece of a sealed file has no header to tell it by
            copies += seal_copies(self._templates.path, key)
        if sealed or copies:
            self._note(f"{CITIZENS_DIR}: {sealed} clear name(s) and {copies} set-aside cop(ies) sealed with the "
                       f"data key", level=logging.INFO)

    def _personal_data(self) -> None:
        """Refuse to write citizens without the data key (the kiosk then issues plain tickets only)."""
        self._writable()
        if not self.personal:
            raise StoreError("face and card data are off on this kiosk (no usable data key)")

    def _check_templates(self) -> None:
        templates = self._templates
        collect = templates.key is not None or templates.layout.version == 1
        check = templates.check(repair=True, collect=collect)
        for n in check.problems:
            self._note(n, level=logging.ERROR)
        self._sealed_now = templates.needs_sealing
        if templates.needs_sealing:
            check.rows = templates.migrate(check.rows)
            self._note(f"{TEMPLATES_FILE}: {len(check.rows)} clear face template(s) sealed with the data key",
                       level=logging.INFO)
        rows, ids, parts = check.rows, check.ids, check.parts
        orphan = ~np.isin(ids, self._roster.raw_ids())
        if orphan.any():
            # np "S16" drops trailing zero bytes (an all-zero id reads as b"")
            shard_of = np.array([(i[:1] or b"\0")[0] % CITIZEN_SHARDS for i in ids[orphan].tolist()])
            damaged = np.array([self._shard_damaged[k] for k in shard_of], bool)
            if damaged.any():
                # Their consent records may be in a set-aside citizens file: keep them beside it, unused.
                kept = self._templates.set_aside_rows(rows[orphan][damaged], "orphans")
                self._note(f"{TEMPLATES_FILE}: {int(damaged.sum())} template(s) of citizens missing from a "
                           f"damaged {CITIZENS_DIR}/ file are not used; kept in {kept.name}", level=logging.ERROR)
            if (~damaged).any():
                # A crash inside enrol/forget left a face without a consent record: it must not stay.
                self._templates.wipe(rows[orphan][~damaged])
                self._note(f"{TEMPLATES_FILE}: {int((~damaged).sum())} template(s) without a citizen record "
                           f"wiped", level=logging.INFO)
            rows, ids = rows[~orphan], ids[~orphan]
            if parts is not None:                                    # collected whenever the file exists
                edges = np.cumsum([len(part) for part in parts])[:-1]
                parts = [part[keep] for part, keep in zip(parts, np.split(~orphan, edges))]
        if check.lost:
            faceless = len(np.setdiff1d(self._roster.raw_ids(), np.unique(ids)))
            self._note(f"{TEMPLATES_FILE}: {faceless} citizen(s) left without a face template by the loss",
                       level=logging.ERROR)
        size = self._templates.path.stat().st_size if self._templates.path.exists() else 0
        total = self._templates._records_in(size)
        if total >= 1000 and (total - len(rows)) > COMPACT_WIPED_FRACTION * total:
            rows = self._templates.compact(rows)
        self._tpl_rows, self._tpl_ids, self._tpl_parts = rows, ids, parts
        # Repaired, orphans wiped, every sealed record opened: the rows known in memory are all the file holds
        # about anyone, so a deletion finds its rows without reading the file (kept true by enrol and forget).
        self._tpl_whole = check.bad == 0 and not templates.unopened

    # ----------------------------------------------------------------------------------------------- citizens
    def enrol(self, encodings: np.ndarray, *, now: datetime, consent_text: str,
              display_name: str | None = None, citizen_id: str | None = None,
              withdrawal_hash: str | None = None) -> Citizen:
        """Create a consenting citizen with k x 128 face templates; the consent record is written first.

        ``citizen_id``: the id a card record already gave this person (kiosk.identity), else a new one.
        ``withdrawal_hash``: the hash of the secret on the consent receipt's code (kiosk.withdrawal).
        """
        self._personal_data()
        if citizen_id is not None and (citizen_id in self._roster or len(bytes.fromhex(citizen_id)) != 16):
            raise ValueError(f"citizen {citizen_id} already has face templates or is not a 32-digit hex id")
        enc = np.asarray(encodings, dtype=np.float32)
        if enc.ndim == 1:
            enc = enc[None, :]
        if enc.ndim != 2 or enc.shape[1] != 128 or not len(enc) or not np.isfinite(enc).all():
            raise ValueError(f"encodings must be k x 128 finite floats, got shape {np.shape(encodings)}")
        if not consent_text.strip():
            raise ValueError("consent_text is empty: no templates without the consent the citizen saw")
        cid_raw = bytes.fromhex(citizen_id) if citizen_id else secrets.token_bytes(16)
        cid = cid_raw.hex()
        sha = hashlib.sha256(consent_text.encode("utf-8")).hexdigest()[:16]
        doc = {"id": cid, "created_at": now.isoformat(), "last_seen": None, "display_name": display_name,
               "consent_id": secrets.token_hex(8), "consent_at": now.isoformat(), "consent_text": sha}
        if withdrawal_hash:
            doc["withdraw"] = withdrawal_hash
        if display_name and self.key is not None:
            from kiosk.datakey import seal_json

            doc["display_name"], doc["name_sealed"] = None, seal_json(self.key, display_name, cid)
        shard, db = self._shard(_shard_index(cid))
        texts = db.table("consent_texts")
        try:
            with shard.batch():
                if str(_text_doc_id(sha)) not in shard.peek().get("consent_texts", {}):
                    texts.insert(Document({"sha": sha, "text": consent_text}, doc_id=_text_doc_id(sha)))
                doc_id = db.table("citizens").insert(doc)
            rows = self._templates.append(cid_raw, enc)
        except StorageError as exc:
            raise StoreError(f"enrolment not saved: {exc}") from exc
        self._roster.add(cid, doc_id, now.isoformat())
        self._tpl_parts = None  # templates() reads the file again
        self._tpl_rows = np.concatenate([self._tpl_rows, rows])
        self._tpl_ids = np.concatenate([self._tpl_ids, np.array([cid_raw] * len(rows), "S16")])
        self._audit({"at": now.isoformat(timespec="seconds"), "event": "enrol", "citizen": cid,
                     "consent": doc["consent_id"], "templates": len(rows)})
        return _citizen_from_doc(doc, self.key)

    def add_templates(self, citizen_id: str, encodings: np.ndarray, *, now: datetime, keep: int) -> np.ndarray:
        """Add face templates to a consenting citizen, wipe the oldest beyond ``keep``; return the kept ones."""
        self._personal_data()
        enc = np.asarray(encodings, np.float32).reshape(-1, 128)
        if citizen_id not in self._roster or not len(enc) or not np.isfinite(enc).all() or keep < 1:
            raise ValueError(f"cannot add {len(enc)} template(s) to citizen {citizen_id}")
        raw = bytes.fromhex(citizen_id)
        with _saving("face templates"):
            rows = self._templates.append(raw, enc)
            self._tpl_rows = np.concatenate([self._tpl_rows, rows])
            self._tpl_ids = np.concatenate([self._tpl_ids, np.array([raw] * len(rows), "S16")])
            mine = np.sort(self._tpl_rows[self._tpl_ids == raw])     # file order: oldest first
            old = mine[:-keep]
            self._templates.wipe(old)
        self._tpl_parts = None
        gone = np.isin(self._tpl_rows, old)
        self._tpl_rows, self._tpl_ids = self._tpl_rows[~gone], self._tpl_ids[~gone]
        self._audit({"at": now.isoformat(timespec="seconds"), "event": "templates", "citizen": citizen_id,
                     "added": len(rows), "dropped": len(old)})
        return self._templates.load(mine[-keep:])[1]

    def citizen(self, citizen_id: str) -> Citizen | None:
        self._open_check()
        doc = self._record(citizen_id) if self.personal else None
        return None if doc is None else _citizen_from_doc(doc, self.key)

    def touch(self, citizen_id: str, now: datetime) -> None:
        """Remember when a known citizen was last seen."""
        self._writable()
        doc_id = self._roster.doc_id(citizen_id) if self.personal else None
        if doc_id is not None:
            db = self._shard(_shard_index(citizen_id))[1]
            with _saving("last seen"):
                db.table("citizens").update({"last_seen": now.isoformat()}, doc_ids=[doc_id])
            self._roster.touch(citizen_id, now.isoformat())

    def template_parts(self) -> tuple[list[str], list[np.ndarray]]:
        """Citizen ids (one per row) and the templates in pieces (k x 128 float32 each, in row order) for
        :meth:`kiosk.index.FaceIndex.from_parts`, which frees each piece once copied: the start-up check's are
        handed over (the store keeps none), so the index is built without a second full matrix in memory."""
        self._open_check()
        if self.personal and self._tpl_parts is not None:
            parts, self._tpl_parts = self._tpl_parts, None
            return hex_ids(self._live_templates()[1]), parts
        ids, matrix = self.templates()
        return ids, [matrix]

    def templates(self) -> tuple[list[str], np.ndarray]:
        """Citizen ids (one per row) and the N x 128 float32 templates, read from disk in one pass."""
        self._open_check()
        if not self.personal:
            return [], np.zeros((0, 128), np.float32)
        if self._tpl_parts is not None:  # loaded by the start-up check
            parts, self._tpl_parts = self._tpl_parts, None
            matrix = np.concatenate(parts) if parts else np.zeros((0, 128), np.float32)
            return hex_ids(self._live_templates()[1]), matrix
        if self._tpl_rows is None:  # read-only: check without repairing
            check = self._templates.check(repair=False)
            self._tpl_rows, self._tpl_ids = check.rows, check.ids
        order = np.argsort(self._tpl_rows, kind="stable")
        return self._templates.load(self._tpl_rows[order])

    def withdrawal_hash(self, citizen_id: str) -> str | None:
        """The hash of the consent receipt's secret (kiosk.withdrawal), None for an unknown citizen."""
        self._open_check()
        doc = self._record(citizen_id) if self.personal else None
        return None if doc is None else doc.get("withdraw")

    def template_owners(self) -> list[str]:
        """The citizen id of each live template, read without opening any template (no key needed)."""
        self._open_check()
        if not self.personal:
            return []
        if self._tpl_rows is None:
            check = self._templates.check(repair=False)
            self._tpl_rows, self._tpl_ids = check.rows, check.ids
        return hex_ids(self._live_templates()[1])

    def forget(self, citizen_id: str, *, now: datetime) -> bool:
        """Delete a citizen so that nothing of them stays in the data folder; keep a deletion receipt.

        The template bytes are overwritten (every record with their id, usable or not), the record leaves the
        shard and the shard is compacted (no older journal line keeps it), and the copies set aside after damage
        lose their records too. True when deleted now, False when a receipt says it was done before;
        :class:`StoreError` for an id the store never knew.
        """
        self._personal_data()
        if citizen_id not in self._roster:
            if any(r["citizen"] == citizen_id for r in self.receipts()):
                return False  # already forgotten
            raise StoreError(f"unknown citizen {citizen_id} in {self.data_dir}")
        self.forget_many([citizen_id], now=now)
        return True

    def forget_many(self, citizen_ids: Iterable[str], *, now: datetime, reason: str = "request") -> int:
        """Forget several citizens at once (retention purges): one wipe, one compaction per shard touched,
        one pass over the set-aside copies; unknown ids are skipped. The number forgotten."""
        self._personal_data()
        ids = [c for c in dict.fromkeys(citizen_ids) if c in self._roster]
        if not ids:
            return 0
        raws = {bytes.fromhex(c) for c in ids}
        rows, owners = self._live_templates()
        mine = owned_by(owners, raws)
        counts = Counter(hex_ids(owners[mine]))
        by_shard: dict[int, list[str]] = {}
        for c in ids:
            by_shard.setdefault(_shard_index(c), []).append(c)
        try:
            self._templates.wipe(rows[mine] if self._tpl_whole else self._templates.rows_of(raws))  # faces first
            self._tpl_parts = None
            for k, members in by_shard.items():
                shard, db = self._shard(k)
                docs = shard.peek()["citizens"]
                doc_ids = [self._roster.doc_id(c) or 0 for c in members]     # all known: ids checked above
                receipts = [{"citizen": c, "at": now.isoformat(), "consent_id": d["consent_id"],
                             "consent_at": d["consent_at"], "consent_text": d["consent_text"],
                             "templates_deleted": counts[c], "reason": reason}
                            for c, doc_id in zip(members, doc_ids) for d in (docs[str(doc_id)],)]
                with shard.batch():      # one tinydb call each: a call per document would copy the table each time
                    db.table("citizens").remove(doc_ids=doc_ids)
                    db.table("receipts").insert_multiple(receipts)
                self._oldest_receipt[k] = _oldest(shard)
                shard.compact()           # no older journal line keeps their record
        except StorageError as exc:
            raise StoreError(f"forget not completed: {exc}") from exc
        self._tpl_rows, self._tpl_ids = rows[~mine], owners[~mine]
        self._roster.remove(ids)
        copies = self._scrub_copies(ids, *(self.data_dir / CITIZENS_DIR / f"{k:02x}.jsonl" for k in by_shard))
        at = now.isoformat(timespec="seconds")
        if len(ids) <= 10:
            for c in ids:
                self._audit({"at": at, "event": "forget", "citizen": c, "templates": counts[c], "reason": reason})
        else:
            self._audit({"at": at, "event": "forget", "citizens": len(ids), "templates": sum(counts.values()),
                         "reason": reason})
        if copies:
            self._audit({"at": at, "event": "scrub", "set_aside_records": copies})
        drop_from_outbox(self.data_dir, ids, self.key)
        return len(ids)

    def _scrub_copies(self, citizen_ids: list[str], *journals: Path) -> int:
        """Remove citizens from the copies repairs set aside (templates and journals); records removed."""
        from kiosk.privacy import rewrite_journal_copies, without_citizen

        try:
            removed = scrub_copies(self._templates.path, {bytes.fromhex(c) for c in citizen_ids})
            for path in journals:
                removed += rewrite_journal_copies(path, without_citizen(citizen_ids), drop_damaged=True)
        except (StorageError, OSError) as exc:
            raise StoreError(f"forget: the copies set aside after damage could not be cleaned: {exc}") from exc
        return removed

    def stale_citizens(self, before: datetime) -> list[str]:
        """Citizens not seen since ``before`` (never seen: since their enrolment): the retention purge's query."""
        self._open_check()
        return self._roster.stale(before) if self.personal else []

    def drop_receipts(self, before: datetime) -> int:
        """Delete deletion receipts written before ``before`` (their retention ran out); how many."""
        self._personal_data()
        edge, dropped = before.isoformat(), 0
        for k in range(CITIZEN_SHARDS):
            oldest = self._oldest_receipt[k]
            if oldest is None or oldest >= edge:
                continue
            shard, db = self._shard(k)
            old = [int(k) for k, r in shard.peek().get("receipts", {}).items() if r["at"] < edge]
            if old:
                with _saving("receipt purge"):
                    db.table("receipts").remove(doc_ids=old)
                    shard.compact()
                dropped += len(old)
            self._oldest_receipt[k] = _oldest(shard)
        return dropped

    def _live_templates(self) -> tuple[np.ndarray, np.ndarray]:
        """(record rows, owner ids) of the live templates: known from the start-up check when writable."""
        assert self._tpl_rows is not None and self._tpl_ids is not None
        return self._tpl_rows, self._tpl_ids

    def consents(self) -> list[dict[str, Any]]:
        """Consent records of current citizens (who, when, which text) for the data controller's export."""
        self._open_check()
        if not self.personal:
            return []
        out = []
        for k in range(CITIZEN_SHARDS):
            state = self._shard(k)[0].peek()
            out += [_consent(d, state) for d in state.get("citizens", {}).values()]
        return sorted(out, key=lambda r: r["at"])

    def consent(self, citizen_id: str) -> dict[str, Any] | None:
        """One current citizen's consent record (as in :meth:`consents`), reading only its shard."""
        self._open_check()
        doc = self._record(citizen_id) if self.personal else None
        return None if doc is None else _consent(doc, self._shard(_shard_index(citizen_id))[0].peek())

    def receipts(self) -> list[dict[str, Any]]:
        """Deletion receipts written by :meth:`forget`."""
        self._open_check()
        if not self.personal:
            return []
        out = [dict(d) for k in range(CITIZEN_SHARDS) for d in self._shard(k)[0].peek().get("receipts", {}).values()]
        return sorted(out, key=lambda r: r["at"])
