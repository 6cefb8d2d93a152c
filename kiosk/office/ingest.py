"""``kiosk-office ingest STICK``: verify, chain, decrypt and store every kiosk's bundles; acknowledge them.

Per kiosk folder on the stick, bundles are taken in sequence order. Each one is, in this order: read safely
(kiosk.stickfs: no link, no device, size bounded), checked against its file name, verified against the key the
office registered for that kiosk (kiosk/bundle.py's reading order), placed in the kiosk's chain, decrypted,
and written in ONE transaction. A chain position that does not fit is set aside, never stored:

* sequence already in the database with the same hash: already ingested (a resent or replayed copy), skipped;
* sequence already in the database with another hash, or a ``prev`` that is not the last bundle's hash: a fork;
* sequence beyond the next one: a gap (the missing bundles must come first; the kiosk resends them).

After a kiosk's bundles, the office's signed acknowledgement of the last bundle it holds goes to
``kiosk-sync/<kiosk>/ack``, where the kiosk's next export reads it.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from nacl.signing import VerifyKey

from kiosk.bundle import INBOX_DIR, MAX_BUNDLE_BYTES, PARTS, SYNC_DIR, BundleError, OfficeKeys, check_kiosk_id, \
    open_bundle, verify_bundle
from kiosk.office.db import Database, DatabaseError
from kiosk.syncdoc import make_ack, write_ack
from kiosk.office.kiosks import verify_keys
from kiosk.office.records import write_bundle
from kiosk.stickfs import StickDir, StickError

BUNDLE_FILE = re.compile(r"(\d{8})\.bundle")


class IngestError(Exception):
    """The stick as a whole cannot be read; one line."""


@dataclass
class IngestResult:
    ingested: list[str] = field(default_factory=list)      # "k-01 #3: 812 visits"
    already: list[str] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)     # why each bundle was not stored
    ignored: list[str] = field(default_factory=list)       # entries that are not bundle files
    acks: list[str] = field(default_factory=list)
    visits: int = 0


def find_bundles(stick: Path, ignored: list[str] | None = None) -> dict[str, list[tuple[int, Path]]]:
    """kiosk id -> [(sequence from the file name, path)], sorted; never follows a link. Entries named like a
    bundle that are not regular files (links, folders, devices) are listed in ``ignored``."""
    root = Path(stick) / SYNC_DIR
    try:
        st = os.stat(root, follow_symlinks=False)
    except OSError:
        raise IngestError(f"{stick}: no {SYNC_DIR}/ folder: not a kiosk stick") from None
    if not stat.S_ISDIR(st.st_mode):
        raise IngestError(f"{root}: not a folder (a link?): refused")
    found: dict[str, list[tuple[int, Path]]] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name == INBOX_DIR or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                kiosk_id = check_kiosk_id(entry.name)
            except BundleError:
                continue
            seqs = []
            with os.scandir(entry.path) as files:
                for f in files:
                    if not (m := BUNDLE_FILE.fullmatch(f.name)):
                        continue
                    if f.is_file(follow_symlinks=False):
                        seqs.append((int(m.group(1)), Path(f.path)))
                    elif ignored is not None:
                        ignored.append(f"{kiosk_id}/{f.name}: not a regular file (a link?): not read")
            if seqs:
                found[kiosk_id] = sorted(seqs)
    return found


def _read(path: Path) -> bytes:
    try:
        with StickDir.open(path.parent) as folder:
            data = folder.read(path.name, limit=MAX_BUNDLE_BYTES)
    except StickError as exc:
        raise BundleError(str(exc)) from None
    if data is None:
        raise BundleError("vanished while reading")
    return data


def ingest(stick: Path, *, db: Database, office: OfficeKeys, now: Callable[[], datetime] = datetime.now,
           progress: Callable[[str], None] | None = None, ack: bool = True) -> IngestResult:
    """Ingest every bundle on ``stick`` (see the module docstring). Raises IngestError for an unreadable stick;
    a bad bundle is reported in the result and changes nothing."""
    step = progress or (lambda line: None)
    result = IngestResult()
    keys = verify_keys(db)
    found = find_bundles(Path(stick), result.ignored)
    total, done = sum(len(v) for v in found.values()), 0
    for kiosk_id, files in sorted(found.items()):
        for seq, path in files:
            done += 1
            where = f"{kiosk_id} #{seq} ({path.name})"
            try:
                line = _one(path, seq, kiosk_id, db=db, office=office, keys=keys, now=now, result=result)
            except BundleError as exc:
                result.set_aside.append(f"{where}: {exc}")
                step(f"[{done}/{total}] {where}: SET ASIDE: {exc}")
                continue
            step(f"[{done}/{total}] {where}: {line}")
        if ack and kiosk_id in keys:
            acked = _acknowledge(Path(stick), kiosk_id, db=db, office=office, now=now())
            if acked:
                result.acks.append(acked)
    return result


def _one(path: Path, seq: int, kiosk_id: str, *, db: Database, office: OfficeKeys, keys: dict[str, VerifyKey],
         now: Callable[[], datetime], result: IngestResult) -> str:
    data = _read(path)
    header = verify_bundle(data, keys)                # signature first: nothing else is read from a stranger
    if header.kiosk != kiosk_id or header.sequence != seq:
        raise BundleError(f"holds bundle {header.sequence} of kiosk {header.kiosk!r}: misplaced or replayed "
                          f"under another name")
    last_seq, last_hash = db.query("SELECT last_sequence, last_hash FROM kiosks WHERE kiosk_id = ?",
                                   (kiosk_id,))[0]
    if seq <= last_seq:
        known = db.scalar("SELECT sha256 FROM bundles WHERE kiosk_id = ? AND sequence = ?", (kiosk_id, seq))
        if known == header.sha256:
            result.already.append(f"{kiosk_id} #{seq}")
            return "already ingested (nothing added)"
        raise BundleError(f"fork: bundle {seq} differs from the bundle {seq} ingested before "
                          f"({str(known)[:12]}…, this one {header.sha256[:12]}…)")
    if seq > last_seq + 1:
        raise BundleError(f"gap: the last bundle ingested from {kiosk_id!r} is {last_seq}; "
                          f"bundle(s) {last_seq + 1}..{seq - 1} must come first (the kiosk resends them)")
    if header.prev != last_hash:
        raise BundleError(f"fork: its previous-bundle hash is not that of bundle {last_seq} ingested here")
    bundle = open_bundle(data, office_key=office, kiosk_verify_keys=keys)
    try:
        with db.transaction():
            changed = write_bundle(db, bundle, ingested_at=now().isoformat(timespec="seconds"), size=len(data))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        # signed by the kiosk but a record is not what the format says: nothing of the bundle is kept
        raise BundleError(f"a record is malformed ({type(exc).__name__}: {exc}); nothing of it stored") from None
    except DatabaseError as exc:
        raise BundleError(f"not stored, rolled back: {exc}") from None
    counts = bundle.manifest.get("counts", {})
    result.visits += changed
    line = ", ".join(f"{counts[k]} {k}" for k in PARTS if counts.get(k)) or "empty"
    result.ingested.append(f"{kiosk_id} #{seq}: {line}")
    return f"ingested: {line}"


def _acknowledge(stick: Path, kiosk_id: str, *, db: Database, office: OfficeKeys, now: datetime) -> str | None:
    rows = db.query("SELECT last_sequence, last_hash FROM kiosks WHERE kiosk_id = ?", (kiosk_id,))
    if not rows or not rows[0][0]:
        return None
    seq, digest = rows[0]
    data = make_ack(kiosk_id=kiosk_id, sequence=int(seq), bundle_sha256=str(digest),
                    created=now.isoformat(timespec="seconds"), key=office.sign)
    try:
        write_ack(stick, data, kiosk_id)
    except OSError as exc:
        return f"{kiosk_id}: acknowledgement NOT written ({exc}); the kiosk will resend, nothing is counted twice"
    return f"{kiosk_id}: acknowledged up to bundle {seq}"
