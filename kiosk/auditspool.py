"""Audit entries from commands that do not hold the store: ``kiosk export``, ``import``, ``keys``, ``privacy-key``.

The audit log has one writer, the process holding the data folder's lock (its chain's last ``seq`` lives in
that process). A command that does not open the store takes the lock for the one append when it is free (the
service is stopped); while the kiosk runs, it leaves the entry as one small file in ``audit-spool/``, which the
kiosk appends to the chain at its next idle moment (:class:`SpoolChore`) or at its next start
(:func:`drain`). An entry is unlinked only after it is in the chain: a crash between the two may record it
twice, never lose it. Entries carry events and counts only, like every audit entry (never a name, a number or
a template).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from kiosk.audit import AuditLog
from kiosk.storage import StorageError, atomic_write

if TYPE_CHECKING:
    from kiosk.config import Config

log = logging.getLogger("kiosk.audit")

SPOOL_DIR = "audit-spool"
CONFIG_SEEN = "audit-config.sha256"    # the effective config's hash at the last start that recorded it
_LOCK_FILE = "kiosk.lock"              # kiosk.store_base.LOCK_FILE (not imported: this module stays small)
_AUDIT_FILE = "audit.jsonl"
MAX_SPOOLED = 1000                     # entries appended per drain: a flood waits for the next look


class Auditor(Protocol):
    """The store that holds the lock: appends one entry to the chain (best effort)."""

    def audit_event(self, event: dict) -> None: ...


def entry(event: str, now: datetime, fields: dict[str, Any]) -> dict[str, Any]:
    """An audit entry: its time, its event, then counts and flags (never a name, a number or a template)."""
    return {"at": now.isoformat(timespec="seconds"), "event": event, **fields}


def record(data_dir: Path, event: str, *, now: datetime, **fields: Any) -> str:
    """Audit ``event`` from a command without the store: "logged" (appended now), "spooled" (the running
    kiosk appends it), or "skipped" (no data folder, or it cannot be written: said in the journal)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return "skipped"
    rec = entry(event, now, fields)
    try:
        fd = os.open(data_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        log.warning("audit: %s not recorded: %s", event, exc)
        return "skipped"
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return _spool(data_dir, rec)
        try:
            AuditLog(data_dir / _AUDIT_FILE).append([rec])
        except StorageError as exc:
            log.warning("audit: %s not recorded: %s", event, exc)
            return "skipped"
        return "logged"
    finally:
        os.close(fd)    # releases the lock


def _spool(data_dir: Path, rec: dict[str, Any]) -> str:
    folder = data_dir / SPOOL_DIR
    path = folder / f"{datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}-{os.urandom(4).hex()}.json"
    try:
        folder.mkdir(exist_ok=True)
        atomic_write(path, json.dumps(rec, sort_keys=True).encode("ascii"))
        owner = data_dir.stat()
        if os.geteuid() == 0 and owner.st_uid != 0:     # sudo: the kiosk's user must be able to remove it
            for p in (folder, path):
                os.chown(p, owner.st_uid, owner.st_gid)
    except (OSError, StorageError) as exc:
        log.warning("audit: %s not recorded: %s", rec["event"], exc)
        return "skipped"
    return "spooled"


def drain(data_dir: Path, append: Callable[[dict[str, Any]], None]) -> int:
    """Append the spooled entries, oldest first, and remove them; by the lock holder only. How many."""
    folder = Path(data_dir) / SPOOL_DIR
    try:
        names = sorted(p for p in folder.iterdir() if p.suffix == ".json")[:MAX_SPOOLED]
    except OSError:
        return 0
    for path in names:
        try:
            rec = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            rec = {"at": datetime.now().isoformat(timespec="seconds"), "event": "spool_unreadable",
                   "problem": type(exc).__name__}
        if not isinstance(rec, dict) or not isinstance(rec.get("event"), str):
            rec = {"at": datetime.now().isoformat(timespec="seconds"), "event": "spool_unreadable"}
        append(rec)
        with contextlib.suppress(OSError):
            path.unlink()
    return len(names)


class SpoolChore:
    """The running kiosk's idle chore: the spooled entries into the chain (``drain``), a look every ``period`` s
    (like kiosk.loop.RequestFolderChore, not derived from it: the store imports this module, not the loop)."""

    def __init__(self, drain: Callable[[], int], *, clock: Callable[[], float], period: float = 5.0) -> None:
        self._drain, self._clock, self._period = drain, clock, period
        self.next_due = 0.0

    def poll(self) -> int:
        now = self._clock()
        if now < self.next_due:
            return 0
        self.next_due = now + self._period
        return self._drain()


def config_digest(config: Config) -> str:
    """SHA-256 of the effective config (every setting, the office's override layered in): a change is seen."""
    as_dict = dataclasses.asdict(config)
    return hashlib.sha256(json.dumps(as_dict, sort_keys=True, default=str).encode()).hexdigest()


def note_config(data_dir: Path, digest: str, auditor: Auditor, *, now: datetime) -> bool:
    """At start: audit a config that differs from the one recorded last (the first start records it too)."""
    seen = Path(data_dir) / CONFIG_SEEN
    try:
        previous = seen.read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        previous = None
    if previous == digest:
        return False
    auditor.audit_event(entry("config", now, {"sha256": digest, "previous": previous}))
    try:
        atomic_write(seen, digest.encode("ascii"))
    except StorageError as exc:
        log.warning("audit: config hash not kept: %s", exc)
    return True
