"""The running kiosk's one deletion queue: ``kiosk forget`` beside it, and the office's deletion requests that
``kiosk import`` brings from a stick.

Why a queue: while the kiosk runs, only its loop thread may write the store, the card records and the face index
(the store's lock is held), and the command or the import child cannot take the lock. So either writes its
request, atomically, as one file in ``<data>/deletions/``:

* ``forget-<citizen id>.json``: ``kiosk forget`` (the kiosk prints the deletion receipt);
* ``office-<inbox sequence:08d>.json``: a signed ``delete`` file, already checked by the child
  (kiosk/syncinbox.py), its card numbers already turned into card keys (HMAC with the office secret: no number
  is ever written on the kiosk); the kiosk records its inbox sequence as applied once it is done.

Both hold one :class:`DeletionRequest` (JSON). The loop thread's idle chore (:class:`DeletionQueue`, a look each
second) forgets each citizen through :func:`forget_everywhere` (face index, card record, store with its deletion
receipt), then records what the request asks to record, then removes the file: a crash anywhere in between
applies the request again at the next start, which changes nothing the first time did not (forgetting is
idempotent). The command or child waits a little for its file to go (:func:`wait_taken`) to say it is done.
Office requests are applied in sequence order (one that fails holds back those after it).
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

log = logging.getLogger("kiosk.deletions")

QUEUE_DIR = "deletions"
POLL_SECONDS = 1.0          # how often the idle kiosk looks for a request a command or child handed over
CARD_NUMBER = re.compile(r"[0-9]{12}")
_NAME = re.compile(r"(forget-[0-9a-f]{32}|office-[0-9]{8})\.json")
_LEGACY = (("forget-requests", re.compile(r"[0-9a-f]{32}")), ("sync/deletions", re.compile(r"[0-9]{8}\.json")))


@dataclass(frozen=True)
class DeletionRequest:
    """One request as the queue keeps it: citizen ids and card keys (never card numbers).

    From the office: ``office`` (the signing key, hex), its inbox ``sequence`` and the ``sha256`` of the signed
    file (the inbox state remembers them). From ``kiosk forget``: ``office`` is empty and ``at`` says when."""
    office: str
    sequence: int
    sha256: str
    citizens: tuple[str, ...]
    cards: tuple[str, ...]      # HMAC-SHA256(office secret, card number), hex
    at: str | None = None

    @property
    def from_office(self) -> bool:
        return bool(self.office)

    @property
    def file_name(self) -> str:
        return f"office-{self.sequence:08d}.json" if self.from_office else f"forget-{self.citizens[0]}.json"


def forget_request(citizen_id: str, at: str) -> DeletionRequest:
    """``kiosk forget CITIZEN`` beside the running kiosk."""
    return DeletionRequest("", 0, "", (citizen_id,), (), at)


def card_key(secret: bytes, number: str) -> str:
    """The card key of a number, as :meth:`kiosk.identity.CardBook.key` makes it."""
    return hmac.new(secret, number.encode("ascii"), hashlib.sha256).hexdigest()


def queue_dir(data_dir: Path) -> Path:
    return Path(data_dir) / QUEUE_DIR


def write_request(data_dir: Path, request: DeletionRequest) -> Path:
    """Hand a request to the running kiosk (atomic: the kiosk never reads half a request)."""
    path = queue_dir(data_dir) / request.file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(asdict(request), sort_keys=True).encode("utf-8"))
    return path


def read_request(path: Path) -> DeletionRequest:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return DeletionRequest(str(raw["office"]), int(raw["sequence"]), str(raw["sha256"]),
                           tuple(map(str, raw["citizens"])), tuple(map(str, raw["cards"])),
                           None if raw.get("at") is None else str(raw["at"]))


def waiting(data_dir: Path) -> list[Path]:
    """The request files waiting, in the order they are applied (a cheap directory listing)."""
    try:
        return sorted(p for p in queue_dir(data_dir).iterdir() if _NAME.fullmatch(p.name))
    except FileNotFoundError:
        return []


def pending_forgets(data_dir: Path) -> list[str]:
    """Citizen ids with a ``kiosk forget`` request waiting."""
    return [p.name[len("forget-"):-len(".json")] for p in waiting(data_dir) if p.name.startswith("forget-")]


def wait_taken(path: Path, timeout: float, *, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Whether the kiosk took (applied and removed) the request file within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while path.exists():
        if time.monotonic() >= end:
            return False
        sleep(0.05)
    return True


def adopt_legacy(data_dir: Path) -> int:
    """Requests an older kiosk left in its two folders (``forget-requests/``, ``sync/deletions/``) join the
    queue: written anew, then the old file removed (a crash in between applies it twice: no harm)."""
    moved = 0
    for folder, pattern in _LEGACY:
        try:
            old = sorted(p for p in (Path(data_dir) / folder).iterdir() if pattern.fullmatch(p.name))
        except FileNotFoundError:
            continue
        for path in old:
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                request = (forget_request(path.name, str(raw.get("at"))) if folder == "forget-requests"
                           else read_request(path))
                write_request(data_dir, request)
                path.unlink()
                moved += 1
            except (OSError, ValueError, KeyError, TypeError, StorageError) as exc:
                log.error("deletion request %s left by an older kiosk unreadable (%s): left where it is", path, exc)
    return moved


class Index(Protocol):
    """kiosk.index.FaceIndex, as far as forgetting needs it."""

    def __contains__(self, citizen_id: object) -> bool: ...

    def remove(self, citizen_id: str) -> None: ...


def forget_everywhere(store: Any, book: Any, index: Index | None, citizen_id: str, *, now: datetime) -> bool:
    """Forget one citizen at once: face index first (no match from this instant), card record, store
    (templates wiped, receipt kept). True when something of them was here; again, it changes nothing."""
    if index is not None and citizen_id in index:
        index.remove(citizen_id)
    had_card = book.forget(citizen_id) if book is not None else False
    in_store = store.citizen(citizen_id) is not None
    if in_store:
        store.forget(citizen_id, now=now)
    return bool(had_card or in_store)


def citizens_of(request: DeletionRequest, book: Any) -> list[str]:
    """The request's citizen ids plus those of its card keys that have a record here, in order, once each."""
    ids = list(request.citizens)
    for key in request.cards:
        record = book.find(key) if book is not None else None
        if record is not None:
            ids.append(record.citizen_id)
    return list(dict.fromkeys(ids))


Receipt = Callable[[str, datetime], None]       # prints a deletion receipt: (citizen id, when)


class DeletionQueue:
    """The running kiosk's side: :meth:`poll` on the loop thread applies what was handed over."""

    def __init__(self, data_dir: Path, *, store: Any, book: Any, index: Index | None, wall: Callable[[], datetime],
                 clock: Callable[[], float], receipt: Receipt | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.store, self.book, self.index = store, book, index
        self._wall, self._clock, self._receipt = wall, clock, receipt
        self.next_due = clock()                 # at start: a request left by a crash is applied first
        self.applied = 0
        adopt_legacy(self.data_dir)

    def poll(self) -> list[str]:
        """Apply every waiting request when due; one journal line per request done."""
        now = self._clock()
        if now < self.next_due:
            return []
        self.next_due = now + POLL_SECONDS
        lines, office_held = [], False
        for path in waiting(self.data_dir):
            if office_held and path.name.startswith("office-"):
                continue                        # after an office request that failed: in order, next time
            line = self._apply(path)
            if line is None:
                office_held = office_held or path.name.startswith("office-")
                continue
            lines.append(line)
        return lines

    def _apply(self, path: Path) -> str | None:
        from kiosk.identity import IdentityError
        from kiosk.store import StoreError
        from kiosk.syncinbox import ApplyError, mark_applied

        try:
            request = read_request(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("deletion request %s unreadable (%s): set aside", path, exc)
            path.replace(path.with_suffix(".bad"))
            return f"{path.name}: set aside"
        ids = citizens_of(request, self.book)
        when = self._wall()
        try:
            done = [c for c in ids if forget_everywhere(self.store, self.book, self.index, c, now=when)]
            if request.from_office:
                mark_applied(self.data_dir, request)        # only once the deletion is durable
            path.unlink()
        except (StoreError, IdentityError, StorageError, ApplyError, OSError) as exc:
            log.error("deletion request %s not applied yet: %s", path.name, exc)
            return None
        self.applied += 1
        if not request.from_office:
            if self._receipt is not None:
                for citizen in ids:
                    self._receipt(citizen, when)
            line = f"citizen {', '.join(ids)} deleted (request queued by kiosk forget)"
        else:
            line = (f"office deletion request {request.sequence}: {len(done)} citizen(s) forgotten "
                    f"({len(request.citizens)} id(s), {len(request.cards)} card(s) asked)")
        log.info(line)
        return line
