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
from kiosk.identity import CardBook
from kiosk.storage import StorageError
from kiosk.store import CLOCK_TOLERANCE, Store, StoreError, StoreLocked


def _open_readonly(data_dir: Path, command: str) -> Store | None:
    """The store, read-only beside the kiosk; None once the reason is on stderr (the command exits 2)."""
    try:
        return Store.open_readonly(Path(data_dir))
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


def forget(config: Config, citizen_id: str, *, print_receipt: bool = True) -> int:
    """``kiosk forget``: delete a citizen's templates and record, keep and print a deletion receipt."""
    from kiosk.app import make_printer
    from kiosk.paths import FONT_REGULAR
    from kiosk.printing import TicketPrinter
    from kiosk.services import deletion_receipt_lines

    now = datetime.now()
    try:
        store = Store.open(config.data_dir, kiosk_id=config.kiosk_id, day_start_hour=config.day_start_hour)
    except StoreError as exc:
        print(f"kiosk forget: {exc} (stop the service first: systemctl stop kiosk)", file=sys.stderr)
        return 3
    from kiosk.identity import IdentityError

    book = CardBook.open(config.data_dir, secret=None)     # the secret is not needed to delete a record
    try:
        had_card = book.forget(citizen_id)
        if not had_card or store.citizen(citizen_id) is not None:
            store.forget(citizen_id, now=now)
    except (StoreError, IdentityError) as exc:
        print(f"kiosk forget: {exc}", file=sys.stderr)
        return 2
    finally:
        book.close()
        store.close()
    print(f"citizen {citizen_id}: face templates and record{' (card too)' if had_card else ''} deleted; "
          f"receipt kept in {config.data_dir}")
    if print_receipt:
        printer = TicketPrinter(make_printer(config), width_dots=config.printer.width_dots, font_path=FONT_REGULAR)
        if not printer.print_slip("Biên nhận xoá dữ liệu / Deletion receipt",
                                  deletion_receipt_lines(citizen_id, now), f"deleted-{citizen_id}"):
            print("the receipt could not be printed; the deletion is done", file=sys.stderr)
    return 0


def print_citizens(data_dir: Path, as_json: bool, out: TextIO | None = None) -> int:
    """`kiosk citizens`; returns the exit status: 0, or 2 when the folder holds no kiosk data."""
    out = out or sys.stdout
    store = _open_readonly(data_dir, "citizens")
    if store is None:
        return 2
    book = CardBook.open(data_dir, secret=None, readonly=True)
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
