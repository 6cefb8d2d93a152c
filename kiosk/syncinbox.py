"""USB sync, office to kiosk: ``kiosk import --from DIR`` applies the signed files of ``kiosk-sync/inbox/``.

Each file is a signed document (kiosk/bundle.py) of one kind:

* ``config``: ``toml`` holds an update of the config. Only ``[kiosk] office`` and ``[[categories]]`` (without
  GPIO pins) may change: the rest is this kiosk's own hardware. The config file layered with it must pass the
  same schema as the file itself (:func:`kiosk.config.parse_config`); it is written atomically as the office
  override in the data folder, the previous override kept (kiosk/officeconfig.py: why not /etc/kiosk, how the
  pins are kept, rollback), and the running kiosk restarts with it at its next idle moment.
* ``delete``: ``citizens``, ids to forget, and/or ``cards``, card numbers (12 digits) whose card record's
  citizen is forgotten (the number is turned into its card key with the office secret at once and never
  written). Forgetting removes the card record, the face templates (wiped; the store keeps a deletion receipt)
  and the face index entry (kiosk/deletions.py). With the service stopped the import applies it itself; while
  the kiosk runs (the store is locked) it hands the request to the kiosk's loop thread through a spool file and
  waits for it to be applied, so the files after it keep their order.
* ``office-key``: ``new_key``, the office's next public key, signed by the current one.
* ``service``: ``action`` "close" | "open" and ``service``, a service key: the service is closed (or reopened)
  for the day the file was made (kiosk/closures.py: queued for the kiosk, applied when nobody is at the screen
  or at its next start that day; audited).

A file is applied only when the current office key signed it, it is addressed to this kiosk (or ``*``) and its
sequence is above the last one applied; files are applied in sequence order. Anything else is rejected, logged,
and changes nothing. A valid file that cannot be applied here (the running kiosk did not take a deletion in
time, the config cannot be written) stops the import there, so no later file jumps ahead of it; the next import tries it again.
"""
from __future__ import annotations

import json
import logging
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from kiosk.bundle import INBOX_DIR, SYNC_DIR, BundleError, OfficePublicKey, canonical_json, sha256_hex
from kiosk.syncdoc import MAX_DOC_BYTES, open_document
from kiosk.stickfs import StickDir, StickError
from kiosk.deletions import CARD_NUMBER, DeletionRequest, card_key, citizens_of, forget_everywhere, wait_taken, \
    write_request
from kiosk.storage import StorageError, atomic_write
from kiosk.sync import STATE_DIR, SyncError, office_dir
from kiosk.synckeys import SyncKeyError, read_office_key, rotated_office_key_file, write_office_key

log = logging.getLogger("kiosk.sync")

MAX_INBOX_ENTRIES = 256
INBOX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,55}\.signed")
CITIZEN_ID = re.compile(r"[0-9a-f]{32}")
CARD_KEY = re.compile(r"[0-9a-f]{64}")
REMEMBERED = 64          # hashes of the last applied files: "already applied" instead of "replayed"


class Forgetter(Protocol):
    """Applies a deletion request on this kiosk (now, or through the running kiosk); ApplyError when it cannot."""

    def card_key(self, number: str) -> str | None:
        """The card key of a number; None without the office secret (then no card record exists here)."""

    def delete(self, request: DeletionRequest) -> str:
        """Apply ``request``; the line that says what was done."""


class ApplyError(Exception):
    """A valid file that cannot be applied here and now (store in use, config not writable)."""


@dataclass
class ImportResult:
    applied: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    stopped: str | None = None             # why applying stopped early (tried again next import)
    restart_needed: bool = False           # a new office config: the running kiosk restarts with it
    kinds: dict[str, int] = field(default_factory=dict)   # files applied, by kind (the audit entry)


def _state_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_DIR / "inbox.json"


def _load_state(data_dir: Path, office: OfficePublicKey) -> dict[str, Any]:
    try:
        state = json.loads(_state_path(data_dir).read_text())
    except (OSError, ValueError):
        state = {}
    if state.get("office") != office.sign.encode().hex():   # another office set by hand: its own numbering
        state = {"office": office.sign.encode().hex(), "sequence": 0, "applied": []}
    return state


def mark_applied(data_dir: Path, request: DeletionRequest) -> None:
    """Record a deletion request applied by the running kiosk (never moves the sequence back)."""
    try:
        state = json.loads(_state_path(data_dir).read_text())
    except (OSError, ValueError):
        state = {}
    if state.get("office") != request.office:
        state = {"office": request.office, "sequence": 0, "applied": []}
    state["sequence"] = max(int(state.get("sequence", 0)), request.sequence)
    if request.sha256 not in state["applied"]:
        state["applied"] = (state["applied"] + [request.sha256])[-REMEMBERED:]
    _save_state(data_dir, state)


def _save_state(data_dir: Path, state: dict[str, Any]) -> None:
    try:
        _state_path(data_dir).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(_state_path(data_dir), canonical_json(state))
    except (OSError, StorageError) as exc:
        raise ApplyError(f"inbox state not saved: {exc}") from None


def import_inbox(stick: Path, *, data_dir: Path, kiosk_id: str, office_key_file: Path, config_path: Path,
                 forgetter: Forgetter) -> ImportResult:
    """Apply the inbox of ``stick`` (see the module docstring); SyncError when the stick cannot be read."""
    try:
        office = read_office_key(office_key_file)
    except SyncKeyError as exc:
        raise SyncError(str(exc)) from None
    if office is None:
        raise SyncError("no office key set: run 'kiosk keys --set-office KEY_OR_FILE' first")
    files = _read_inbox(Path(stick))
    result = ImportResult()
    state = _load_state(data_dir, office)
    while files:
        ready, verdicts = [], {}
        for name, data in files.items():
            try:
                body = open_document(data, office.sign)
            except BundleError as exc:
                verdicts[name] = str(exc)
                continue
            digest = sha256_hex(data)
            if body["kiosk"] not in ("*", kiosk_id):
                verdicts[name] = f"addressed to kiosk {body['kiosk']!r}"
            elif digest in state["applied"]:
                verdicts[name] = "already applied"
            elif body["sequence"] <= state["sequence"]:
                verdicts[name] = f"replayed or old: sequence {body['sequence']} is not above {state['sequence']}"
            else:
                ready.append((body["sequence"], name, body, digest))
        if not ready:
            for name, why in sorted(verdicts.items()):
                (result.already if why == "already applied" else result.rejected).append(f"{name}: {why}")
            break
        _, name, body, digest = min(ready)
        try:
            line = _apply(body, data_dir=data_dir, office=office, office_key_file=office_key_file,
                          config_path=config_path, forgetter=forgetter, kiosk_id=kiosk_id, result=result,
                          digest=digest)
        except BundleError as exc:        # signed, but its content is unusable: rejected, nothing changed
            result.rejected.append(f"{name}: {exc}")
            del files[name]
            continue
        except ApplyError as exc:
            result.stopped = f"{name}: {exc}"
            break
        fresh = _load_state(data_dir, office)
        if fresh["sequence"] >= body["sequence"]:      # the running kiosk applied it and recorded it so
            state = fresh
            result.applied.append(f"{name}: {line}")
            result.kinds[body["kind"]] = result.kinds.get(body["kind"], 0) + 1
            del files[name]
            continue
        state["sequence"] = body["sequence"]
        state["applied"] = (state["applied"] + [digest])[-REMEMBERED:]
        if body["kind"] == "office-key":
            office = read_office_key(rotated_office_key_file(data_dir)) or office
            state["office"] = office.sign.encode().hex()
        try:
            _save_state(data_dir, state)
        except ApplyError as exc:
            result.stopped = f"{name}: applied, but {exc}"
            break
        result.applied.append(f"{name}: {line}")
        result.kinds[body["kind"]] = result.kinds.get(body["kind"], 0) + 1
        del files[name]
    for line in result.applied:
        log.info("import: applied %s", line)
    for line in result.rejected:
        log.warning("import: rejected %s", line)
    if result.stopped:
        log.warning("import: stopped at %s", result.stopped)
    return result


def _read_inbox(stick: Path) -> dict[str, bytes]:
    """Every plausible inbox file's bytes; hostile entries are refused as a whole stick (SyncError)."""
    try:
        with StickDir.open(stick) as root:
            sync_root = root.subdir(SYNC_DIR)
            if sync_root is None:
                raise SyncError(f"{stick}: no {SYNC_DIR}/ folder: not a kiosk stick, left alone")
            with sync_root:
                inbox = sync_root.subdir(INBOX_DIR)
                if inbox is None:
                    return {}
                with inbox:
                    names = inbox.names(limit=MAX_INBOX_ENTRIES)
                    out: dict[str, bytes] = {}
                    for name in names:
                        if not INBOX_NAME.fullmatch(name):
                            log.warning("import: %s: not an inbox file name (ignored)", inbox.path / name[:80])
                            continue
                        data = inbox.read(name, limit=MAX_DOC_BYTES)
                        if data is not None:
                            out[name] = data
                    return out
    except StickError as exc:
        raise SyncError(str(exc)) from None


def _apply(body: dict[str, Any], *, data_dir: Path, office: OfficePublicKey, office_key_file: Path,
           config_path: Path, forgetter: Forgetter, kiosk_id: str, result: ImportResult, digest: str) -> str:
    kind = body["kind"]
    if kind == "config":
        text = body.get("toml")
        if not isinstance(text, str):
            raise BundleError("config update without its toml text")
        path = apply_config_update(config_path, data_dir, text)
        result.restart_needed = True
        return f"office config written to {path} (over {config_path}; any previous one kept as " \
               f"{path.name}.previous); " \
               f"the kiosk restarts with it when idle"
    if kind == "delete":
        ids, numbers = body.get("citizens", []), body.get("cards", [])
        if not isinstance(ids, list) or not all(isinstance(c, str) and CITIZEN_ID.fullmatch(c) for c in ids):
            raise BundleError("deletion request: citizens must be a list of 32-hex citizen ids")
        if not isinstance(numbers, list) or not all(isinstance(n, str) and CARD_NUMBER.fullmatch(n) for n in numbers):
            raise BundleError("deletion request: cards must be a list of 12-digit card numbers")
        card_keys = body.get("card_keys", [])    # HMACs the office made with the same office secret: no number
        if not isinstance(card_keys, list) or not all(isinstance(k, str) and CARD_KEY.fullmatch(k) for k in card_keys):
            raise BundleError("deletion request: card_keys must be a list of 64-hex card keys")
        keys = [key for n in numbers if (key := forgetter.card_key(n)) is not None] + card_keys
        return forgetter.delete(DeletionRequest(office.sign.encode().hex(), int(body["sequence"]), digest,
                                                tuple(ids), tuple(keys)))
    if kind == "office-key":
        try:
            new = OfficePublicKey.from_text(str(body.get("new_key", "")))
        except BundleError as exc:
            raise BundleError(f"office key rotation: {exc}") from None
        old_dir, new_dir = office_dir(data_dir, office), office_dir(data_dir, new)
        try:
            if old_dir.exists() and not new_dir.exists():
                old_dir.rename(new_dir)   # the same office: its chain, outbox and watermarks go on
            write_office_key(rotated_office_key_file(data_dir), new)   # /etc/kiosk is not the service's to write
        except (OSError, SyncKeyError) as exc:
            raise ApplyError(f"office key not rotated: {exc}") from None
        return f"office key rotated to {new.fingerprint}"
    if kind == "service":
        from kiosk.closures import ACTIONS, queue_request

        action, service = body.get("action"), body.get("service")
        if action not in ACTIONS or not isinstance(service, str) or not re.fullmatch(r"[a-z0-9-]{1,64}", service):
            raise BundleError("service file: action must be close or open, and service a service key")
        try:
            queue_request(data_dir, action, service, str(body["created"]), by="usb")
        except OSError as exc:
            raise ApplyError(f"service request not queued: {exc}") from None
        return f"service {service}: {action} (for {str(body['created'])[:10]}, applied by the kiosk when idle)"
    raise BundleError(f"{kind!r} files are not for the inbox")


def apply_config_update(config_path: Path, data_dir: Path, update_text: str) -> Path:
    """Write an office config update as the override in the data folder (kiosk/officeconfig.py); its path."""
    from kiosk.officeconfig import OfficeConfigError, override_path, write_override

    try:
        write_override(config_path, data_dir, update_text)
    except OfficeConfigError as exc:
        raise BundleError(f"config update: {exc}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, StorageError) as exc:
        raise ApplyError(f"config update not written: {exc}") from None
    return override_path(data_dir)


class StoreForgetter:
    """``kiosk import``: forget through the store (its lock taken on the first deletion) and the card records;
    while the kiosk runs and holds the lock, hand the request to it (kiosk/deletions.py) and wait ``wait`` s."""

    def __init__(self, data_dir: Path, *, kiosk_id: str, day_start_hour: int, now: datetime,
                 secret: bytes | None = None, wait: float = 30.0):
        self.data_dir, self.kiosk_id, self.day_start_hour, self.now = data_dir, kiosk_id, day_start_hour, now
        self.secret, self.wait = secret, wait
        self._store: Any = None

    def card_key(self, number: str) -> str | None:
        return card_key(self.secret, number) if self.secret is not None else None

    def delete(self, request: DeletionRequest) -> str:
        from kiosk.identity import CardBook, IdentityError
        from kiosk.store import Store, StoreError, StoreLocked

        asked = f"{len(request.citizens)} id(s), {len(request.cards)} card(s) asked"
        try:
            if self._store is None:
                self._store = Store.open(self.data_dir, kiosk_id=self.kiosk_id, day_start_hour=self.day_start_hour)
        except StoreLocked:
            return self._hand_over(request, asked)
        except StoreError as exc:
            raise ApplyError(str(exc)) from None
        book = CardBook.open(self.data_dir, secret=None)    # the secret is not needed to delete a record
        try:
            done = [c for c in citizens_of(request, book)
                    if forget_everywhere(self._store, book, None, c, now=self.now)]
        except (StoreError, IdentityError, StorageError) as exc:
            raise ApplyError(str(exc)) from None
        finally:
            book.close()
        return f"deletion request: {len(done)} citizen(s) forgotten here ({asked})"

    def _hand_over(self, request: DeletionRequest, asked: str) -> str:
        try:
            path = write_request(self.data_dir, request)
        except (OSError, StorageError) as exc:
            raise ApplyError(f"deletion not handed to the running kiosk: {exc}") from None
        if not wait_taken(path, self.wait):
            raise ApplyError("handed to the running kiosk, which applies it when nobody is at the screen "
                             "(files after it wait for the next import)")
        return f"deletion request: applied by the running kiosk ({asked}; see its journal)"

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def import_command(stick: Path, *, data_dir: Path, kiosk_id: str, day_start_hour: int, office_key_file: Path,
                   config_path: Path, out: Any, secret_file: Path | None = None) -> int:
    """``kiosk import --from DIR``: 0 when every file was applied (or already was), 1 when some were
    rejected or had to wait, 2 when the stick could not be read. What was applied, by kind, is audited."""
    from kiosk.auditspool import record

    now = datetime.now()
    from kiosk.identity import load_secret

    secret = load_secret(secret_file)[0] if secret_file is not None else None
    forgetter = StoreForgetter(data_dir, kiosk_id=kiosk_id, day_start_hour=day_start_hour, now=now, secret=secret)
    try:
        result = import_inbox(stick, data_dir=data_dir, kiosk_id=kiosk_id, office_key_file=office_key_file,
                              config_path=config_path, forgetter=forgetter)
    except SyncError as exc:
        out.write(f"kiosk import: {exc}\n")
        return 2
    finally:
        forgetter.close()
    if result.applied or result.rejected or result.stopped:
        record(data_dir, "import", now=now, applied=result.kinds, rejected=len(result.rejected),
               stopped=result.stopped is not None)
    for line in result.applied:
        out.write(f"applied:  {line}\n")
    for line in result.already:
        out.write(f"skipped:  {line}\n")
    for line in result.rejected:
        out.write(f"REJECTED: {line}\n")
    if result.stopped:
        out.write(f"STOPPED:  {result.stopped} (nothing after it was applied; run the import again)\n")
    if not (result.applied or result.already or result.rejected or result.stopped):
        out.write("the inbox is empty\n")
    return 1 if result.rejected or result.stopped else 0
