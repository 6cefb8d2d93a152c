"""The technician's store commands, `kiosk visits`, `kiosk clock`, `kiosk forget` and `kiosk citizens`: what they
print and their exit status."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from kiosk.citizens import citizen_lines
from kiosk.config import Config
from kiosk.datakey import DataKey
from kiosk.identity import CardBook
from kiosk.storage import StorageError
from kiosk.store import CLOCK_TOLERANCE, Store, StoreError, StoreLocked


def _open_readonly(data_dir: Path, command: str, key: DataKey | None = None) -> Store | None:
    """The store, read-only beside the kiosk; None once the reason is on stderr (the command exits 2)."""
    try:
        return Store.open_readonly(Path(data_dir), key=key)
    except (StoreError, StorageError) as exc:
        print(f"kiosk {command}: {exc}", file=sys.stderr)
        return None


def print_visits(data_dir: Path, since: date | None, as_json: bool, out: TextIO | None = None) -> int:
    """`kiosk visits`: list stored visits (one JSON object a line with ``as_json``); works beside the kiosk.

    Returns the exit status: 0, or 2 when the folder holds no kiosk data (the message goes to stderr).
    """
    out = out or sys.stdout
    store = _open_readonly(data_dir, "visits")
    if store is None:
        return 2
    try:
        for visit in store.visits(since):
            if as_json:
                out.write(json.dumps(visit.to_json(), ensure_ascii=False) + "\n")
            else:
                printed = {True: "printed", False: "NOT PRINTED", None: "printing?"}[visit.printed]
                out.write(f"{visit.ticket:>8}  {visit.category:<16} {visit.issued_at:%Y-%m-%d %H:%M:%S}  "
                          f"{visit.citizen_id or '-':<32}  {printed}\n")
    finally:
        store.close()
    return 0


def clock_command(data_dir: Path, *, kiosk_id: str, day_start_hour: int, accept: bool, now: datetime,
                  out: TextIO | None = None) -> int:
    """`kiosk clock`: compare the clock with the latest ticket; with ``accept``, :meth:`Store.accept_clock`.

    Exit status: 0 when the clock is not behind the store (or was accepted), 1 when it is behind and nothing
    was changed, 2 when the folder cannot be read, 3 when the running kiosk holds it (accepting needs the lock).
    """
    out = out or sys.stdout
    try:
        store = (Store.open(Path(data_dir), kiosk_id=kiosk_id, day_start_hour=day_start_hour, clock=lambda: now)
                 if accept else Store.open_readonly(Path(data_dir)))
    except StoreLocked as exc:
        print(f"kiosk clock: {exc} (stop the service first: systemctl stop kiosk)", file=sys.stderr)
        return 3
    except (StoreError, StorageError) as exc:
        print(f"kiosk clock: {exc}", file=sys.stderr)
        return 2
    try:
        latest, day = store.latest_issued, store.numbering_day
        out.write(f"clock:         {now:%Y-%m-%d %H:%M:%S}\n")
        out.write(f"latest ticket: {f'{latest:%Y-%m-%d %H:%M:%S} (service day {day})' if latest else 'none yet'}\n")
        if latest is None or now >= latest - CLOCK_TOLERANCE:
            out.write("the clock is not behind the tickets: nothing to do\n")
            return 0
        if not accept:
            out.write(f"the clock reads earlier than the latest ticket, so numbering stays on service day {day}.\n"
                      f"If the clock is wrong, set it (timedatectl, NTP). If it is right and the earlier time was "
                      f"wrong, stop the kiosk and run: kiosk clock --accept-now\n")
            return 1
        repair = store.accept_clock(now)
        if repair is None:          # not behind after all (checked above): nothing was changed
            out.write("the clock is not behind the tickets: nothing to do\n")
            return 0
        used = ", ".join(f"{c} after {n}" for c, n in repair.continues_after.items()) or "every category from 1"
        out.write(f"accepted: numbering moves from service day {repair.was_day} back to {repair.day} "
                  f"({used}); {repair.future_visits} visit(s) issued under the wrong clock are kept with "
                  f"their recorded dates\n")
        return 0
    except StoreError as exc:
        print(f"kiosk clock: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


FORGET_WAIT = 30.0    # seconds `kiosk forget` waits for a running kiosk to do a queued deletion


def forget(config: Config, citizen_id: str, *, print_receipt: bool = True, now: datetime | None = None,
           wait: float = FORGET_WAIT) -> int:
    """``kiosk forget``: delete a citizen so nothing of them stays in the data folder; keep and print a receipt.

    Exit status: 0 deleted, 1 unknown or already forgotten (said on stderr), 2 the store failed, 3 the running
    kiosk holds the folder. Deleting needs no data key (nothing is decrypted); with the key, clear data left by
    an older kiosk is sealed on the way.
    """
    from kiosk.app import make_printer
    from kiosk.auditspool import record
    from kiosk.datakey import KeySource, KeyUnavailable, load_key
    from kiosk.identity import IdentityError
    from kiosk.paths import FONT_REGULAR
    from kiosk.printing import TicketPrinter
    from kiosk.services import deletion_receipt_lines

    now = now or datetime.now()
    citizen_id = citizen_id.strip().lower()
    if not (MIN_PREFIX <= len(citizen_id) <= 32 and all(c in "0123456789abcdef" for c in citizen_id)):
        print(f"kiosk forget: {citizen_id!r} is not a citizen id (32 hex digits, as on the consent receipt, "
              f"or its first {MIN_PREFIX} or more)", file=sys.stderr)
        return 1
    if len(citizen_id) < 32:
        found = _resolve_prefix(config.data_dir, citizen_id)
        if found is None:
            return 1
        citizen_id = found
    record(config.data_dir, "command", now=now, command="forget", citizen=citizen_id)   # the technician asked
    try:
        key = load_key(KeySource(config.privacy.key_source, Path(config.privacy.key_file)), config.data_dir)
    except KeyUnavailable:
        key = None
    try:
        store = Store.open(config.data_dir, kiosk_id=config.kiosk_id, day_start_hour=config.day_start_hour, key=key)
    except StoreLocked:
        return _queue_forget(config, citizen_id, now, wait)
    except StoreError as exc:
        print(f"kiosk forget: {exc}", file=sys.stderr)
        return 3
    book = CardBook.open(config.data_dir, secret=None, key=key)   # the office secret is not needed to delete
    try:
        known = store.citizen(citizen_id) is not None
        earlier = [r for r in store.receipts() if r["citizen"] == citizen_id]
        had_card = book.forget(citizen_id)
        if known:
            store.forget(citizen_id, now=now)
    except (StoreError, IdentityError) as exc:
        print(f"kiosk forget: {exc}", file=sys.stderr)
        return 2
    finally:
        book.close()
        store.close()
    if not known and not had_card:
        if earlier:
            print(f"kiosk forget: citizen {citizen_id} was already forgotten on {earlier[-1]['at'][:16]}; "
                  f"nothing left to delete", file=sys.stderr)
        else:
            print(f"kiosk forget: no citizen {citizen_id} in {config.data_dir}; nothing deleted", file=sys.stderr)
        return 1
    what = " and ".join(w for w, done in (("face templates and record", known), ("card record", had_card)) if done)
    print(f"citizen {citizen_id}: {what} deleted (files rewritten, copies set aside cleaned); "
          f"receipt kept in {config.data_dir}")
    if print_receipt:
        printer = TicketPrinter(make_printer(config), width_dots=config.printer.width_dots, font_path=FONT_REGULAR)
        if not printer.print_slip("Biên nhận xoá dữ liệu / Deletion receipt",
                                  deletion_receipt_lines(citizen_id, now), f"deleted-{citizen_id}"):
            print("the receipt could not be printed; the deletion is done", file=sys.stderr)
    return 0


MIN_PREFIX = 6     # hex digits of a citizen id that `kiosk forget` accepts in place of all 32


def _resolve_prefix(data_dir: Path, prefix: str) -> str | None:
    """The one citizen id (known, or already forgotten) that starts with ``prefix``; else None, said on stderr."""
    try:
        store = Store.open_readonly(data_dir)
    except (StoreError, StorageError) as exc:
        print(f"kiosk forget: {exc}", file=sys.stderr)
        return None
    book = CardBook.open(data_dir, secret=None, readonly=True)
    try:
        ids = ({c["citizen"] for c in store.consents()} | set(store.template_owners())
               | {r.citizen_id for r in book.records()} | {r["citizen"] for r in store.receipts()})
    finally:
        book.close()
        store.close()
    matches = sorted(i for i in ids if i.startswith(prefix))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        print(f"kiosk forget: no citizen id starts with {prefix} in {data_dir}; nothing deleted", file=sys.stderr)
    else:
        print(f"kiosk forget: {prefix} is the start of {len(matches)} citizen ids: {', '.join(matches)}; "
              f"give more digits; nothing deleted", file=sys.stderr)
    return None


def _queue_forget(config: Config, citizen_id: str, now: datetime, wait: float) -> int:
    """The running kiosk holds the store: check the id read-only, leave the request for the kiosk, and wait up to
    ``wait`` seconds for it to be done (the kiosk does it when nobody is at the screen)."""
    from kiosk.deletions import forget_request, wait_taken, write_request

    try:
        store = Store.open_readonly(config.data_dir)
    except (StoreError, StorageError) as exc:
        print(f"kiosk forget: {exc}", file=sys.stderr)
        return 2
    book = CardBook.open(config.data_dir, secret=None, readonly=True)
    try:
        known = store.citizen(citizen_id) is not None or book.record(citizen_id) is not None
        earlier = [r for r in store.receipts() if r["citizen"] == citizen_id]
    finally:
        book.close()
        store.close()
    if not known:
        said = (f"was already forgotten on {earlier[-1]['at'][:16]}" if earlier else f"is not in {config.data_dir}")
        print(f"kiosk forget: citizen {citizen_id} {said}; nothing deleted", file=sys.stderr)
        return 1
    try:
        path = write_request(config.data_dir, forget_request(citizen_id, now.isoformat(timespec="seconds")))
    except (StorageError, OSError) as exc:
        print(f"kiosk forget: the request could not be queued: {exc}", file=sys.stderr)
        return 2
    if wait_taken(path, wait, sleep=_sleep):
        print(f"citizen {citizen_id}: deleted by the running kiosk, which printed the deletion receipt")
        return 0
    print(f"citizen {citizen_id}: the kiosk is running and busy; the deletion is queued and done by the kiosk as "
          f"soon as nobody is at the screen (or at its next start), which prints the deletion receipt "
          f"('kiosk forget {citizen_id}' then says it is done)")
    return 0


def _sleep(seconds: float) -> None:
    """The running kiosk looks once a second: no need to ask the disk more often than five times a second."""
    import time

    time.sleep(max(seconds, 0.2))


def print_citizens(data_dir: Path, as_json: bool, out: TextIO | None = None, key_file: Path | None = None) -> int:
    """`kiosk citizens`; returns the exit status: 0, or 2 when the folder holds no kiosk data.

    The masked names need the data key (``key_file``, else ``DATA.key`` beside the folder as the simulation
    keeps it); without it the names are not shown, the rest is.
    """
    from kiosk.datakey import KeySource, KeyUnavailable, load_key

    out = out or sys.stdout
    data_dir = Path(data_dir)
    key = None
    key_file = key_file or data_dir.resolve().with_name(data_dir.resolve().name + ".key")
    if (data_dir / "datakey.check").exists():     # never write a check file from a read-only command
        try:
            key = load_key(KeySource("file", Path(key_file)), data_dir)
        except KeyUnavailable as exc:
            print(f"kiosk citizens: names not shown: {exc}", file=sys.stderr)
    store = _open_readonly(data_dir, "citizens", key=key)
    if store is None:
        return 2
    book = CardBook.open(data_dir, secret=None, readonly=True, key=key)
    try:
        for line in citizen_lines(store, book):
            if as_json:
                out.write(json.dumps(asdict(line), ensure_ascii=False) + "\n")
            else:
                out.write(f"{line.id}  {line.name or '-':<24} {'card' if line.card else '-':<5}"
                          f"{line.templates:>3} templates  created {line.created or '-':<19}  "
                          f"last seen {line.last_seen or '-':<19}  {line.visits:>4} visits\n")
    finally:
        book.close()
        store.close()
    return 0
