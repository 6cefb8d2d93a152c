"""USB sync, kiosk side: ``kiosk export --to DIR`` (this module) and ``kiosk import --from DIR`` (kiosk.syncinbox).

The same functions run from a shell on a folder and, later, from the hot-plug watcher on a mounted stick. They
only READ the store, through :meth:`Store.open_readonly` on the data folder (the running kiosk's loop thread
keeps its own Store), so an export can run in another thread or process while tickets are issued.

What the kiosk keeps, in ``<data>/sync/`` (never on the stick):

* ``<office fingerprint>/state.json``: per office, the chain (last sequence and hash), what the office
  acknowledged, the bundles made but not yet acknowledged, and the watermarks (what was already put in a bundle);
* ``<office fingerprint>/outbox/00000007.bundle``: every bundle until the office acknowledges it. An export
  copies to the stick every unacknowledged bundle that is not already there byte for byte, so a stick pulled
  out, full, lost in a taxi, or ingested late never loses data, and a resent bundle is the same bytes (same
  sequence and hash: the office ingests it once). Beside it ``00000007.kept`` and ``.who``: its plaintext
  under the kiosk's data key, so that a deletion can remake it without the citizen (kiosk/outbox.py).
* ``inbox.json``: the last inbox sequence applied (kiosk.syncinbox).

A new bundle holds what is new since the previous bundle: visits not sent yet or whose printer answer changed
(visits of service days before ``visits_from`` were all sent in their final state; the days from there on are
remembered visit by visit), consents and deletion receipts not sent yet, audit records after the last sent,
card records new or changed since they were sent and card records deleted since (kiosk/synccards.py), ratings
not sent yet (kiosk/syncratings.py).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

from kiosk.bundle import (
    ACK_NAME,
    MAX_BUNDLE_BYTES,
    SYNC_DIR,
    BundleError,
    OfficePublicKey,
    bundle_name,
    bundle_temp_name,
    canonical_json,
    make_payload,
    seal_payload,
    sha256_hex,
    verify_bundle,
)
from kiosk.datakey import DataKey
from kiosk.syncdoc import MAX_DOC_BYTES, open_document
from kiosk.outbox import OutboxError, apply_drops, forget_kept, keep, locked, remake
from kiosk.stickfs import OsOps, StickDir, StickError
from kiosk.storage import StorageError, atomic_write, remove_stale_temps
from kiosk.synckeys import SyncKeys

log = logging.getLogger("kiosk.sync")

STATE_DIR = "sync"
RECENT_DAYS = 1   # the last service day and the one before stay "recent": their printer answers may still come


class SyncError(Exception):
    """An export or import that could not be done; one line, and nothing on the kiosk was lost."""


# ------------------------------------------------------------------------------------------------------- state
@dataclass
class OfficeState:
    """What this kiosk sent to one office and what the office acknowledged (``sync/<office>/state.json``)."""
    office: str                                   # the office's signing key, hex
    last_sequence: int = 0
    last_hash: str | None = None
    acknowledged: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)   # {sequence, sha256, bytes, prev, replaced}
    visits_from: str | None = None                # every visit of a service day before this was sent
    recent: dict[str, bool | None] = field(default_factory=dict)  # visit id -> printed, as sent (days >= visits_from)
    consents: list[str] = field(default_factory=list)             # consent ids sent
    tombstones: list[str] = field(default_factory=list)           # citizen ids whose deletion receipt was sent
    audit_count: int = 0                          # audit records sent
    audit_last: str | None = None                 # sha256 of the last one sent (the log was not replaced)
    cards: dict[str, list[str]] = field(default_factory=dict)     # citizen -> [card key, digest] as sent
    ratings_from: str | None = None               # every rating of a month before this was sent (kiosk.syncratings)
    ratings_sent: list[str] = field(default_factory=list)         # rating ids sent of the months from there


def office_dir(data_dir: Path, office: OfficePublicKey) -> Path:
    return Path(data_dir) / STATE_DIR / office.fingerprint


def load_state(data_dir: Path, office: OfficePublicKey) -> OfficeState:
    path = office_dir(data_dir, office) / "state.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return OfficeState(office=office.sign.encode().hex())
    except (OSError, ValueError) as exc:
        raise SyncError(f"{path}: sync state unreadable ({exc}); set it aside to export everything again") from None
    return OfficeState(**raw)


def save_state(data_dir: Path, office: OfficePublicKey, state: OfficeState) -> None:
    folder = office_dir(data_dir, office)
    try:
        (folder / "outbox").mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "state.json", canonical_json(asdict(state)))
    except (OSError, StorageError) as exc:
        raise SyncError(f"{folder}: sync state not saved: {exc}") from None


def inbox_sequence(data_dir: Path) -> int:
    """The last inbox sequence this kiosk applied (told to the office in each bundle's manifest)."""
    try:
        return int(json.loads((Path(data_dir) / STATE_DIR / "inbox.json").read_text())["sequence"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


# ------------------------------------------------------------------------------------------------------ export
@dataclass(frozen=True)
class ExportResult:
    office: str                        # fingerprint
    new_sequence: int | None           # the bundle this export made (None: nothing new)
    counts: dict[str, int]             # records in that bundle
    written: list[int]                 # bundles copied to the stick by this export
    already: list[int]                 # unacknowledged bundles already on the stick, intact
    acknowledged: int                  # the office has every bundle up to this one
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        made = (f"bundle {self.new_sequence} made ({_counted(self.counts)})"
                if self.new_sequence else "nothing new since the last bundle")
        return (f"{made}; written to the stick: {_seqs(self.written)}; already there: {_seqs(self.already)}; "
                f"acknowledged by the office up to {self.acknowledged}")


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing"


def _seqs(seqs: list[int]) -> str:
    return ", ".join(map(str, seqs)) or "none"


def export(stick: Path, *, data_dir: Path, kiosk_id: str, keys: SyncKeys, now: datetime,
           ops: OsOps | None = None, create_root: bool = True,
           progress: Callable[[str], None] | None = None, card_fields: tuple[str, ...] | None = None,
           data_key: DataKey | None = None) -> ExportResult:
    """Export everything the office has not acknowledged to ``stick`` (a mounted stick or a folder).

    Steps: read the office's ack from the stick; make a bundle of what is new (kept in the outbox and recorded
    before anything is written to the stick); write each unacknowledged bundle not already on the stick under
    a temporary name, fsync, rename, read back and verify. Raises SyncError with one line. ``progress`` gets
    one line per step (the shell prints them; the hot-plug path will show them on screen). ``card_fields``:
    the card fields the office keeps (``[identity] keep``); None sends every field a record holds.
    ``data_key``: keeps each new bundle's plaintext so that a deletion reaches it (kiosk/outbox.py); the
    office's folder is locked throughout, deletions made meanwhile are applied before it is released.
    """
    step = progress or (lambda line: None)
    if keys.office is None:
        raise SyncError("no office key set: run 'kiosk keys --set-office KEY_OR_FILE' first")
    office, data_dir = keys.office, Path(data_dir)
    with locked(office_dir(data_dir, office)):
        try:
            return _export(stick, data_dir=data_dir, kiosk_id=kiosk_id, keys=keys, now=now, ops=ops,
                           create_root=create_root, step=step, card_fields=card_fields, data_key=data_key)
        finally:
            _apply_drops(data_dir, keys, data_key)


def _apply_drops(data_dir: Path, keys: SyncKeys, data_key: DataKey | None) -> None:
    assert keys.office is not None
    try:
        apply_drops(office_dir(data_dir, keys.office), data_key)
    except (OutboxError, StorageError, OSError) as exc:
        raise SyncError(f"a deletion could not reach the bundles waiting for the office: {exc}") from None


def _export(stick: Path, *, data_dir: Path, kiosk_id: str, keys: SyncKeys, now: datetime, ops: OsOps | None,
            create_root: bool, step: Callable[[str], None], card_fields: tuple[str, ...] | None,
            data_key: DataKey | None) -> ExportResult:
    assert keys.office is not None
    office = keys.office
    _apply_drops(data_dir, keys, data_key)
    state = load_state(data_dir, office)
    notes: list[str] = []
    try:
        root = StickDir.open(stick, ops=ops)
    except StickError as exc:
        raise SyncError(str(exc)) from None
    try:
        sync_root = root.subdir(SYNC_DIR, create=create_root)
        if sync_root is None:
            raise SyncError(f"{stick}: no {SYNC_DIR}/ folder: not a kiosk stick, left alone")
        with sync_root:
            folder = sync_root.subdir(kiosk_id, create=True)
            assert folder is not None
            with folder:
                _take_ack(folder, state, data_dir, keys, kiosk_id, notes)
                step(f"acknowledged by the office up to bundle {state.acknowledged}; reading the kiosk's data")
                _remake(state, data_dir, keys, data_key, step)
                made, counts = _make_new_bundle(state, data_dir=data_dir, kiosk_id=kiosk_id, keys=keys, now=now,
                                                card_fields=card_fields, data_key=data_key)
                step(f"bundle {made} made: {_counted(counts)}" if made else "nothing new since the last bundle")
                written, already = _copy_pending(folder, state, data_dir, keys, kiosk_id, step)
    except StickError as exc:
        raise SyncError(str(exc)) from None
    finally:
        root.close()
    for note in notes:
        log.warning("export: %s", note)
    result = ExportResult(office=office.fingerprint, new_sequence=made, counts=counts, written=written,
                          already=already, acknowledged=state.acknowledged, notes=notes)
    log.info("export to %s: %s", stick, result.summary())
    return result


def _take_ack(folder: StickDir, state: OfficeState, data_dir: Path, keys: SyncKeys, kiosk_id: str,
              notes: list[str]) -> None:
    """Read the office's acknowledgement; a valid, newer one drops the bundles it covers from the outbox."""
    assert keys.office is not None
    try:
        data = folder.read(ACK_NAME, limit=MAX_DOC_BYTES)
    except StickError as exc:
        notes.append(f"{exc} (acknowledgement ignored)")
        return
    if data is None:
        return
    try:
        body = open_document(data, keys.office.sign)
    except BundleError as exc:
        notes.append(f"{folder.path / ACK_NAME}: {exc} (acknowledgement ignored)")
        return
    seq, digest = int(body["sequence"]), body.get("bundle")     # open_document checked the sequence
    if body.get("kind") != "ack" or body.get("kiosk") != kiosk_id:
        notes.append(f"{folder.path / ACK_NAME}: not an acknowledgement for this kiosk (ignored)")
        return
    if seq <= state.acknowledged:
        return  # old news
    match = [p for p in state.pending if p["sequence"] == seq]
    if not match or digest not in [match[0]["sha256"], *match[0].get("replaced", ())]:
        notes.append(f"{folder.path / ACK_NAME}: acknowledges bundle {seq} with a hash this kiosk never made "
                     f"(ignored; everything unacknowledged is sent again)")
        return
    outbox = office_dir(data_dir, keys.office) / "outbox"
    state.acknowledged = seq
    done = [p for p in state.pending if p["sequence"] <= seq]
    state.pending = [p for p in state.pending if p["sequence"] > seq]
    if digest != match[0]["sha256"]:      # the office holds a version made before a deletion: chain on it
        if state.pending:
            state.pending[0]["prev"] = digest
        else:
            state.last_hash = digest
    save_state(data_dir, keys.office, state)          # first the record, then the files it no longer needs
    if digest != match[0]["sha256"]:      # remade bundles the office refused as forks: off the stick
        for p in done:
            folder.remove(bundle_name(p["sequence"]))
        if state.pending:
            (outbox / bundle_name(state.pending[0]["sequence"])).unlink(missing_ok=True)   # remade on this export
    for p in done:
        (outbox / bundle_name(p["sequence"])).unlink(missing_ok=True)
        forget_kept(outbox, p["sequence"])


def _remake(state: OfficeState, data_dir: Path, keys: SyncKeys, data_key: DataKey | None,
            step: Callable[[str], None]) -> None:
    """Remake the waiting bundles a deletion rewrote (kiosk/outbox.py); the chain goes on from the last."""
    assert keys.office is not None
    office = keys.office
    try:
        done = remake(office_dir(data_dir, office) / "outbox", state.pending, keys=keys, key=data_key,
                      save=lambda: save_state(data_dir, office, state))
    except (OutboxError, BundleError) as exc:
        raise SyncError(str(exc)) from None
    if done:
        state.last_hash = state.pending[-1]["sha256"]
        save_state(data_dir, office, state)
        step(f"bundle(s) {_seqs(done)} remade without the citizens deleted since they were made")


def _make_new_bundle(state: OfficeState, *, data_dir: Path, kiosk_id: str, keys: SyncKeys, now: datetime,
                     card_fields: tuple[str, ...] | None = None, data_key: DataKey | None = None
                     ) -> tuple[int | None, dict[str, int]]:
    """Bundle what is new since the last bundle; outbox file first, then the state that points to it."""
    from kiosk.identity import IdentityError
    from kiosk.store import Store, StoreError
    from kiosk.synccards import CardSnapshot
    from kiosk.syncratings import RatingSnapshot

    assert keys.office is not None
    try:
        store = Store.open_readonly(data_dir)
    except (StoreError, StorageError) as exc:
        raise SyncError(f"cannot read the kiosk's data: {exc}") from None
    try:
        snap = _Snapshot(store, state, CardSnapshot(data_dir, state.cards, card_fields, data_key),
                         RatingSnapshot(store, state.ratings_from, state.ratings_sent))
        chain: dict[str, Any] = {"kiosk_id": kiosk_id, "sequence": state.last_sequence + 1,
                                 "prev": state.last_hash, "created": now.isoformat(timespec="seconds")}
        payload = make_payload(**chain, extra={"inbox_sequence": inbox_sequence(data_dir)},
                               parts={"visits": snap.visits(), "consents": snap.consents,
                                      "tombstones": snap.tombstones, "audit": snap.audit,
                                      "counters": snap.counters(), "cards": snap.cards.part,
                                      "ratings": snap.ratings.part})
        data = seal_payload(payload, **chain, signing_key=keys.kiosk, office=keys.office)
    except (StoreError, IdentityError) as exc:
        raise SyncError(f"cannot read the kiosk's data: {exc}") from None
    finally:
        store.close()
    if not snap.anything_new:
        return None, {}
    outbox, sequence = office_dir(data_dir, keys.office) / "outbox", state.last_sequence + 1
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(outbox)
        if data_key is not None:
            keep(outbox, sequence, payload, data_key)
        del payload
        atomic_write(outbox / bundle_name(sequence), data)
    except (OSError, StorageError) as exc:
        raise SyncError(f"{outbox}: bundle not kept on the kiosk, nothing exported: {exc}") from None
    digest = sha256_hex(data)
    state.pending.append({"sequence": sequence, "sha256": digest, "bytes": len(data), "prev": state.last_hash})
    state.last_sequence, state.last_hash = sequence, digest
    snap.advance(state)
    save_state(data_dir, keys.office, state)
    return sequence, snap.counts


def _copy_pending(folder: StickDir, state: OfficeState, data_dir: Path, keys: SyncKeys, kiosk_id: str,
                  step: Callable[[str], None]) -> tuple[list[int], list[int]]:
    assert keys.office is not None
    outbox = office_dir(data_dir, keys.office) / "outbox"
    written: list[int] = []
    already: list[int] = []
    own = {kiosk_id: keys.kiosk.verify_key}
    for p in state.pending:
        seq, name = p["sequence"], bundle_name(p["sequence"])
        try:
            data = (outbox / name).read_bytes()
        except OSError as exc:
            raise SyncError(f"{outbox / name}: unacknowledged bundle missing on the kiosk: {exc}") from None
        if sha256_hex(data) != p["sha256"]:
            raise SyncError(f"{outbox / name}: damaged on the kiosk (hash differs from the one recorded)")
        if _same_on_stick(folder, name, data):
            already.append(seq)
            continue
        step(f"writing bundle {seq} ({len(data):,} bytes), {len(written) + len(already) + 1} of {len(state.pending)}")
        folder.write_atomic(name, data, temp_name=bundle_temp_name(seq))
        back = folder.read(name, limit=MAX_BUNDLE_BYTES)
        if back != data:
            raise SyncError(f"{folder.path / name}: read back different from what was written (failing stick?)")
        try:
            verify_bundle(back, own)
        except BundleError as exc:  # pragma: no cover - same bytes as made; a bug, not a stick fault
            raise SyncError(f"{folder.path / name}: {exc}") from None
        folder.remove(bundle_temp_name(seq))
        written.append(seq)
        step(f"bundle {seq} written, read back and verified")
    return written, already


def _same_on_stick(folder: StickDir, name: str, data: bytes) -> bool:
    kind = folder.kind(name)
    if kind is None:
        return False
    if kind != "file":
        raise SyncError(f"{folder.path / name}: a link, folder or device where a bundle goes: refused")
    try:
        return folder.read(name, limit=len(data)) == data
    except StickError:
        return False  # bigger than ours or unreadable: written again


# ---------------------------------------------------------------------------------------------------- snapshot
class _Snapshot:
    """What is new in the store since the last bundle, computed as the bundle is encoded (visits stream)."""

    def __init__(self, store: Any, state: OfficeState, cards: Any, ratings: Any):
        self.store, self.state, self.cards, self.ratings = store, state, cards, ratings
        self.numbering_day: date | None = store.numbering_day
        self.from_day = date.fromisoformat(state.visits_from) if state.visits_from else None
        if self.from_day and self.numbering_day and self.numbering_day - timedelta(days=RECENT_DAYS) < self.from_day:
            # the clock was accepted back (kiosk clock --accept-now): look from the current numbering day again
            self.from_day = self.numbering_day - timedelta(days=RECENT_DAYS)
        consents = store.consents()
        sent = set(state.consents)
        self.consents = [c for c in consents if c["consent_id"] not in sent]
        sent = set(state.tombstones)
        self.tombstones = [r for r in store.receipts() if r["citizen"] not in sent]
        audit = store.audit_records()
        start = state.audit_count
        if start > len(audit) or (start and sha256_hex(canonical_json(audit[start - 1])) != state.audit_last):
            start = 0  # the log was set aside and rewritten: send it whole, the office drops duplicates
        self.audit = audit[start:]
        self.audit_total = len(audit)
        self.audit_last = sha256_hex(canonical_json(audit[-1])) if audit else None
        self.day_visits: dict[str, dict[str, bool | None]] = {}   # recent days: id -> printed
        self.per_day: dict[tuple[str, str], list[int]] = {}        # (day, category) -> [visits, highest number]
        self.max_day: str | None = None
        self.new_visits = 0

    def visits(self) -> Iterator[dict[str, Any]]:
        recent = self.state.recent
        for v in self.store.visits(since=self.from_day):
            day = v.service_day.isoformat()
            if self.max_day is None or day > self.max_day:
                self.max_day = day
                self._prune()
            if day >= (self._keep_from() or day):
                self.day_visits.setdefault(day, {})[v.id] = v.printed
            if v.id in recent and recent[v.id] == v.printed:
                continue
            self.new_visits += 1
            counter = self.per_day.setdefault((day, v.category), [0, 0])
            counter[0] += 1
            counter[1] = max(counter[1], v.number)
            yield v.to_json()

    def _keep_from(self) -> str | None:
        ends = [d for d in (self.max_day, self.numbering_day and self.numbering_day.isoformat()) if d]
        if not ends:
            return None
        return (date.fromisoformat(min(ends)) - timedelta(days=RECENT_DAYS)).isoformat()

    def _prune(self) -> None:
        keep = self._keep_from()
        for day in [d for d in self.day_visits if keep and d < keep]:
            del self.day_visits[day]

    def counters(self) -> Iterator[dict[str, Any]]:
        """Per service day and category in this bundle: visits and the highest number (gaps show lost tickets)."""
        for (day, category), (count, last) in sorted(self.per_day.items()):
            yield {"day": day, "category": category, "visits": count, "last": last}
        yield {"numbering_day": self.numbering_day.isoformat() if self.numbering_day else None,
               "latest_issued": self.store.latest_issued.isoformat() if self.store.latest_issued else None}

    @property
    def anything_new(self) -> bool:
        return bool(self.new_visits or self.consents or self.tombstones or self.audit or len(self.cards)
                    or len(self.ratings))

    @property
    def counts(self) -> dict[str, int]:
        return {"visits": self.new_visits, "consents": len(self.consents), "tombstones": len(self.tombstones),
                "audit": len(self.audit), "cards": len(self.cards), "ratings": len(self.ratings)}

    def advance(self, state: OfficeState) -> None:
        """Move the watermarks past what this bundle holds."""
        self._prune()
        keep = self._keep_from()
        if keep is not None:
            state.visits_from = keep
            state.recent = {vid: p for day, ids in self.day_visits.items() if day >= keep for vid, p in ids.items()}
        state.consents = state.consents + [c["consent_id"] for c in self.consents]
        state.tombstones = state.tombstones + [r["citizen"] for r in self.tombstones]
        state.audit_count, state.audit_last = self.audit_total, self.audit_last
        state.cards = self.cards.current
        state.ratings_from, state.ratings_sent = self.ratings.watermark()


def yield_to_the_kiosk() -> None:
    """Lower this process's CPU priority: an export in its own process must never slow a ticket down.

    benchmarks/export.py: in a thread of the kiosk process an export triples the tickets' p99 (the GIL); in a
    child process at this priority it stays under 2x. The hot-plug path starts ``kiosk export`` as a child.
    """
    try:
        os.nice(10)
    except OSError:
        pass


def export_command(stick: Path, *, data_dir: Path, kiosk_id: str, key_file: Path, office_key_file: Path,
                   out: Any, card_fields: tuple[str, ...] | None = None, data_key: DataKey | None = None) -> int:
    """``kiosk export --to DIR``: exit 0 when every unacknowledged bundle is on the stick, 2 otherwise; a
    finished export is audited (bundle, counts: kiosk/auditspool.py)."""
    from kiosk.auditspool import record
    from kiosk.synckeys import SyncKeyError, load_kiosk_key, read_office_key

    def show(line: str) -> None:
        out.write(f"... {line}\n")
        out.flush()

    yield_to_the_kiosk()
    try:
        keys = SyncKeys(load_kiosk_key(key_file, create=False), read_office_key(office_key_file))
        result = export(Path(stick), data_dir=data_dir, kiosk_id=kiosk_id, keys=keys, now=datetime.now(),
                        progress=show, card_fields=card_fields, data_key=data_key)
    except (SyncError, SyncKeyError) as exc:
        out.write(f"kiosk export: {exc}\n")
        return 2
    record(data_dir, "export", now=datetime.now(), bundle=result.new_sequence, counts=result.counts,
           written=result.written, acknowledged=result.acknowledged)
    for note in result.notes:
        out.write(f"note: {note}\n")
    out.write(result.summary() + "\n")
    return 0

