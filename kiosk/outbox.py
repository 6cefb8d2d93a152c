"""Deletions that reach the outbox: no bundle waiting for the office's acknowledgement keeps a deleted citizen.

A bundle in ``sync/<office>/outbox/`` is sealed to the office: the kiosk cannot read it back. So beside each
one the kiosk keeps ``<seq>.kept``, the bundle's plaintext (kiosk.bundle.make_payload) sealed with its own data
key (kiosk/datakey.py), and ``<seq>.who``, the citizen ids it mentions (ids only, as the visits file holds them).

A deletion (``Store.forget_many``: ``kiosk forget``, a withdrawal at the kiosk, an office deletion, a retention
purge) calls :func:`drop`. It leaves the ids in ``drop-<n>.json`` (a new file, nothing else is written without
the lock), then, unless an export holds the office's lock, applies them at once (:func:`apply_drops`): every
kept copy mentioning them is rewritten without their consents and card records and with their visits unlinked
(the visits stay, anonymous), and its sealed bundle is deleted. An export applies what is left before and after
its work. The next export remakes each missing sealed bundle from its kept copy (same sequence, creation time
and content minus the citizens), and every bundle after it (their ``prev`` changed): :func:`remake`. The
deletion receipt (the tombstone) travels in the next new bundle, as before.

The office may hold the first version already (a stick ingested whose ack has not come back). It sets the
remade one aside as a fork and acknowledges the version it holds; the kiosk accepts an ack of any version it
made of a sequence (``replaced``; each holds at least what the remade one does) and chains what follows on it.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from kiosk.bundle import PARTS, BundleError, bundle_name, make_payload, open_payload, seal_payload, sha256_hex
from kiosk.datakey import DataKey, SealError
from kiosk.storage import StorageError, atomic_write
from kiosk.synckeys import SyncKeys

log = logging.getLogger("kiosk.sync")

LOCK_NAME = "lock"
DROP_PREFIX = "drop-"
_CORE = {"format", "kiosk", "sequence", "prev", "created", "counts", "parts"}   # the manifest's own keys


class OutboxError(Exception):
    """A kept copy that cannot be used; one line."""


@contextmanager
def locked(folder: Path, *, wait: bool = True) -> Iterator[bool]:
    """The office folder's lock (an export, a deletion); yields False when ``wait`` is off and it is taken."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _aad(outbox: Path, sequence: int) -> bytes:
    return f"outbox {outbox.parent.name} {sequence}".encode("ascii")


def citizens_in(parts: dict[str, list[Any]]) -> set[str]:
    """The citizens a bundle holds something personal about (a deletion receipt is not counted: it stays)."""
    return {str(r["citizen"]) for name in ("visits", "consents", "cards") for r in parts.get(name, ())
            if r.get("citizen") and not r.get("deleted")}


def keep(outbox: Path, sequence: int, payload: bytes, key: DataKey) -> None:
    """Keep a bundle's plaintext under the data key, and who it mentions, until the office acknowledges it."""
    _, parts = open_payload(payload, f"bundle {sequence}")
    atomic_write(outbox / f"{sequence:08d}.kept", key.seal(payload, _aad(outbox, sequence)))
    atomic_write(outbox / f"{sequence:08d}.who", "\n".join(sorted(citizens_in(parts))).encode("ascii"))


def forget_kept(outbox: Path, sequence: int) -> None:
    for suffix in (".kept", ".who"):
        (outbox / f"{sequence:08d}{suffix}").unlink(missing_ok=True)


def _open_kept(outbox: Path, sequence: int, key: DataKey | None) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    path = outbox / f"{sequence:08d}.kept"
    if key is None:
        raise OutboxError(f"{path}: the data key is needed to remake bundle {sequence}")
    try:
        payload = key.open(path.read_bytes(), _aad(outbox, sequence))
        return open_payload(payload, f"{path.name}")
    except (OSError, SealError, BundleError) as exc:
        raise OutboxError(f"{path}: kept copy of bundle {sequence} unusable: {exc}") from None


def without(parts: dict[str, list[Any]], gone: set[str]) -> dict[str, list[Any]]:
    """The parts with nothing personal left about ``gone``: consents and card records out, visits unlinked."""
    out = dict(parts)
    out["visits"] = [{**v, "citizen": None, "identified_by": None} if v.get("citizen") in gone else v
                     for v in parts.get("visits", ())]
    for name in ("consents", "cards"):
        out[name] = [r for r in parts.get(name, ()) if r.get("citizen") not in gone or r.get("deleted")]
    return out


# ---------------------------------------------------------------------------------------------------- deletion
def offices(data_dir: Path) -> list[Path]:
    """The office folders (``sync/<fingerprint>/``) that have an outbox."""
    root = Path(data_dir) / "sync"
    try:
        return sorted(p for p in root.iterdir() if (p / "outbox").is_dir())
    except FileNotFoundError:
        return []


def drop(data_dir: Path, citizen_ids: Iterable[str], key: DataKey | None) -> int:
    """Take these citizens out of every bundle waiting in an outbox (see the module docstring); bundles
    rewritten now (0 too when an export holds the lock: it applies the request itself)."""
    ids = sorted(set(citizen_ids))
    rewritten = 0
    for folder in offices(data_dir) if ids else []:
        with locked(folder, wait=False) as mine:
            if mine and not _mentioned(folder / "outbox", set(ids)):
                continue                    # no export running, no waiting bundle holds them: nothing to do
            atomic_write(folder / f"{DROP_PREFIX}{time.time_ns()}.json", json.dumps(ids).encode("ascii"))
            if mine:                        # else the export holding the lock applies it before it ends
                rewritten += apply_drops(folder, key)
    return rewritten


def _mentioned(outbox: Path, ids: set[str]) -> list[int]:
    """The waiting bundles that mention any of ``ids`` (their ``.who`` lists)."""
    return [int(who.name.split(".")[0]) for who in sorted(outbox.glob("*.who"))
            if ids & set(who.read_text(encoding="ascii").split())]


def drop_from_outbox(data_dir: Path, citizen_ids: list[str], key: DataKey | None) -> None:
    """:func:`drop` for the store and the card records: a failure is said, never raised (the deletion itself is
    done); the request stays and the next export applies it before it sends anything."""
    try:
        drop(data_dir, citizen_ids, key)
    except (OutboxError, StorageError, OSError) as exc:
        log.error("deletion: the bundles waiting for the office keep these citizens until the next export: %s",
                  exc)


def apply_drops(folder: Path, key: DataKey | None) -> int:
    """With the office's lock held: apply every drop request left in ``folder``; bundles rewritten."""
    requests = sorted(folder.glob(f"{DROP_PREFIX}*.json"))
    gone: set[str] = set()
    for path in requests:
        try:
            gone.update(map(str, json.loads(path.read_text(encoding="ascii"))))
        except (OSError, ValueError, TypeError) as exc:
            log.error("%s unreadable (%s): outbox checked for nobody", path, exc)
    outbox, rewritten = folder / "outbox", 0
    for sequence in _mentioned(outbox, gone):
        manifest, parts = _open_kept(outbox, sequence, key)     # raises: the requests stay, tried again
        assert key is not None
        payload = make_payload(kiosk_id=manifest["kiosk"], sequence=sequence, prev=manifest["prev"],
                               created=manifest["created"], parts=without(parts, gone),
                               extra={k: v for k, v in manifest.items() if k not in _CORE})
        keep(outbox, sequence, payload, key)                    # first the copy without them,
        (outbox / bundle_name(sequence)).unlink(missing_ok=True)  # then the sealed one that had them
        rewritten += 1
    for path in requests:
        path.unlink()
    if rewritten:
        log.info("outbox %s: %d bundle(s) waiting for the office rewritten without %d deleted citizen(s)",
                 folder.name, rewritten, len(gone))
    return rewritten


# ------------------------------------------------------------------------------------------------------ export
def remake(outbox: Path, pending: list[dict[str, Any]], *, keys: SyncKeys, key: DataKey | None,
           save: Callable[[], None]) -> list[int]:
    """Remake each unacknowledged bundle whose sealed file a deletion (or an ack of an older version) took
    away, and every one after it (its ``prev`` changed); the sequences remade. ``save`` records ``pending``
    (new hashes, the old ones in ``replaced``) before each file is written: a crash leaves a file missing,
    remade next time, never a file the record does not know."""
    assert keys.office is not None
    first = next((i for i, p in enumerate(pending) if not (outbox / bundle_name(p["sequence"])).exists()), None)
    if first is None:
        return []
    for p in pending[first:]:
        (outbox / bundle_name(p["sequence"])).unlink(missing_ok=True)
    done = []
    for i in range(first, len(pending)):
        p, seq = pending[i], pending[i]["sequence"]
        if i == 0 and "prev" not in p:
            raise OutboxError(f"bundle {seq}: made by an older kiosk version, cannot be remade")
        prev = pending[i - 1]["sha256"] if i else p["prev"]
        manifest, parts = _open_kept(outbox, seq, key)
        chain = {"kiosk_id": manifest["kiosk"], "sequence": seq, "prev": prev, "created": manifest["created"]}
        payload = make_payload(**chain, parts={n: parts[n] for n in PARTS},
                               extra={k: v for k, v in manifest.items() if k not in _CORE})
        data = seal_payload(payload, **chain, signing_key=keys.kiosk, office=keys.office)
        p["replaced"] = p.get("replaced", []) + [p["sha256"]]
        p.update(sha256=sha256_hex(data), bytes=len(data), prev=prev)
        save()
        try:
            atomic_write(outbox / bundle_name(seq), data)
        except StorageError as exc:
            raise OutboxError(f"{outbox / bundle_name(seq)}: not written: {exc}") from None
        done.append(seq)
    return done
