"""Deletion requests from the office, applied where the store is: by ``kiosk import`` when the service is
stopped, by the running kiosk's loop thread when it holds the store.

Why a spool: ``kiosk import`` runs as a child of the hot-plug path (or from a shell) and cannot take the store's
lock while the kiosk runs; only the loop thread may write the store, the card records and the face index. So
the child verifies the signed file (kiosk/syncinbox.py), turns card numbers into card keys (HMAC with the
office secret: no number is ever written on the kiosk), and writes the request atomically to
``<data>/sync/deletions/<sequence>.json``. The loop thread (:class:`DeletionSpool`, polled when idle) forgets
each citizen through :func:`forget_everywhere` (card record, store with its deletion receipt, face index), then
records the inbox sequence as applied, then removes the spool file: a crash anywhere in between applies the
request again at the next start, which changes nothing the first time did not (forgetting is idempotent).
The child waits a little for the kiosk to take the request, so the inbox files after it are applied in order
by the same import; if the kiosk is busy, they wait for the next import.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Protocol

from kiosk.storage import StorageError, atomic_write
from kiosk.sync import STATE_DIR

log = logging.getLogger("kiosk.sync")

SPOOL_DIR = "deletions"
POLL_SECONDS = 1.0          # how often the idle kiosk looks for a request a child handed over
CARD_NUMBER = re.compile(r"[0-9]{12}")
_SPOOL_NAME = re.compile(r"[0-9]{8}\.json")


@dataclass(frozen=True)
class DeletionRequest:
    """One signed ``delete`` file, as the kiosk keeps it: citizen ids and card keys (never card numbers)."""
    office: str                 # the signing key (hex) of the office that signed it
    sequence: int
    sha256: str                 # of the signed inbox file (the inbox state remembers it)
    citizens: tuple[str, ...]
    cards: tuple[str, ...]      # HMAC-SHA256(office secret, card number), hex


def card_key(secret: bytes, number: str) -> str:
    """The card key of a number, as :meth:`kiosk.identity.CardBook.key` makes it."""
    return hmac.new(secret, number.encode("ascii"), hashlib.sha256).hexdigest()


def spool_dir(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_DIR / SPOOL_DIR


def spool_path(data_dir: Path, sequence: int) -> Path:
    return spool_dir(data_dir) / f"{sequence:08d}.json"


def write_spool(data_dir: Path, request: DeletionRequest) -> Path:
    """Hand a request to the running kiosk (atomic: the kiosk never reads half a request)."""
    path = spool_path(data_dir, request.sequence)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(asdict(request), sort_keys=True).encode("utf-8"))
    return path


def read_spool(path: Path) -> DeletionRequest:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return DeletionRequest(str(raw["office"]), int(raw["sequence"]), str(raw["sha256"]),
                           tuple(map(str, raw["citizens"])), tuple(map(str, raw["cards"])))


def wait_taken(path: Path, timeout: float, *, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Whether the kiosk took (applied and removed) the spool file within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while path.exists():
        if time.monotonic() >= end:
            return False
        sleep(0.05)
    return True


class Index(Protocol):
    """kiosk.index.FaceIndex, as far as forgetting needs it."""

    def __contains__(self, citizen_id: object) -> bool: ...

    def remove(self, citizen_id: str) -> None: ...


def forget_everywhere(store: Any, book: Any, index: Index | None, citizen_id: str, *, now: datetime) -> bool:
    """Forget one citizen at once: card record, store (templates wiped, receipt kept), face index.

    True when something of them was here; forgetting somebody already forgotten changes nothing.
    """
    had_card = book.forget(citizen_id) if book is not None else False
    in_store = store.citizen(citizen_id) is not None
    if in_store:
        store.forget(citizen_id, now=now)
    if index is not None and citizen_id in index:
        index.remove(citizen_id)
    return bool(had_card or in_store)


def citizens_of(request: DeletionRequest, book: Any) -> list[str]:
    """The request's citizen ids plus those of its card keys that have a record here, in order, once each."""
    ids = list(request.citizens)
    for key in request.cards:
        record = book.find(key) if book is not None else None
        if record is not None:
            ids.append(record.citizen_id)
    return list(dict.fromkeys(ids))


class DeletionSpool:
    """The running kiosk's side: :meth:`poll` on the loop thread applies what a child handed over."""

    def __init__(self, data_dir: Path, *, store: Any, book: Any, index: Index | None, wall: Callable[[], datetime],
                 clock: Callable[[], float]) -> None:
        self.data_dir = Path(data_dir)
        self.store, self.book, self.index = store, book, index
        self._wall, self._clock = wall, clock
        self.next_due = clock()                 # at start: a request left by a crash is applied first
        self.applied = 0

    def poll(self) -> list[str]:
        """Apply every handed-over request (oldest first) when due; one journal line per request."""
        now = self._clock()
        if now < self.next_due:
            return []
        self.next_due = now + POLL_SECONDS
        try:
            names = sorted(p.name for p in spool_dir(self.data_dir).iterdir() if _SPOOL_NAME.fullmatch(p.name))
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.error("deletion requests: %s", exc)
            return []
        lines = []
        for name in names:
            line = self._apply(spool_dir(self.data_dir) / name)
            if line is None:
                break                           # an error: said, tried again at the next poll, in order
            lines.append(line)
        return lines

    def _apply(self, path: Path) -> str | None:
        from kiosk.identity import IdentityError
        from kiosk.store import StoreError
        from kiosk.syncinbox import ApplyError, mark_applied

        try:
            request = read_spool(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("deletion request %s unreadable (%s): set aside", path, exc)
            path.replace(path.with_suffix(".bad"))
            return f"{path.name}: set aside"
        ids = citizens_of(request, self.book)
        try:
            done = [c for c in ids if forget_everywhere(self.store, self.book, self.index, c, now=self._wall())]
            mark_applied(self.data_dir, request)        # only once the deletion is durable
            path.unlink()
        except (StoreError, IdentityError, StorageError, ApplyError, OSError) as exc:
            log.error("deletion request %d not applied yet: %s", request.sequence, exc)
            return None
        self.applied += 1
        line = (f"office deletion request {request.sequence}: {len(done)} citizen(s) forgotten "
                f"({len(request.citizens)} id(s), {len(request.cards)} card(s) asked)")
        log.info(line)
        return line
