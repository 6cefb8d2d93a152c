"""``kiosk-office``: the office manager's command (issue 12). Only this module prints.

Exit codes: 0 done; 1 done, but something was set aside or rejected (read the lines); 2 nothing done.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from kiosk.bundle import OfficeKeys
from kiosk.office.db import Database, DatabaseError
from kiosk.office.ingest import IngestError, ingest
from kiosk.office.keys import PASSPHRASE_ENV, OfficeKeyError, public_path, read_keys, write_keys
from kiosk.office.kiosks import KioskError, add_kiosk, kiosk_status
from kiosk.office.outbox import OutboxError, request_deletion, service_closure, sign_config

KEY_ENV = "KIOSK_OFFICE_KEY"
DB_ENV = "KIOSK_OFFICE_DB"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-office", description="The office side of the kiosks' USB sync.")
    p.add_argument("--key", type=Path, default=Path(os.environ.get(KEY_ENV, "office.key")),
                   help=f"the office key file (default office.key, or ${KEY_ENV})")
    p.add_argument("--db", default=os.environ.get(DB_ENV, "office.db"),
                   help=f"office.db (SQLite, default) or postgresql://user@host/db (or ${DB_ENV})")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("keygen", help="make the office key pair (passphrase from "
                                      f"${PASSPHRASE_ENV} or asked)")
    g.add_argument("--force", action="store_true", help="replace an existing key file")
    i = sub.add_parser("ingest", help="verify and store every bundle on a stick; acknowledge them")
    i.add_argument("stick", type=Path, help="the mounted stick (the folder holding kiosk-sync/)")
    i.add_argument("--no-ack", action="store_true", help="do not write acknowledgements to the stick")
    k = sub.add_parser("kiosks", help="registered kiosks and how far behind each is")
    ksub = k.add_subparsers(dest="action")
    a = ksub.add_parser("add", help="register a kiosk's public key (what 'kiosk keys' prints on it)")
    a.add_argument("kiosk_id")
    a.add_argument("pubkey")
    c = sub.add_parser("sign-config", help="a signed config update for the kiosks, into the stick's inbox")
    c.add_argument("file", type=Path)
    c.add_argument("--to", type=Path, required=True, help="the stick")
    c.add_argument("--kiosk", default="*", help="one kiosk id (default: every kiosk)")
    d = sub.add_parser("delete", help="forget citizens here and on every kiosk (signed, into the inbox)")
    d.add_argument("citizens", nargs="+", metavar="CITIZEN_ID|CARD_NUMBER")
    d.add_argument("--secret", type=Path, help="the office secret (needed for card numbers; only their keys go out)")
    d.add_argument("--to", type=Path, required=True, help="the stick")
    s = sub.add_parser("service", help="close a service for today on the kiosks, or reopen it (signed, into the inbox)")
    s.add_argument("action", choices=("close", "open"))
    s.add_argument("service", help="the service key, e.g. ho-tich")
    s.add_argument("--to", type=Path, required=True, help="the stick")
    s.add_argument("--kiosk", default="*", help="one kiosk id (default: every kiosk)")
    r = sub.add_parser("report", help="charts, CSV files and one HTML page")
    r.add_argument("--since", type=date.fromisoformat, help="first service day (YYYY-MM-DD)")
    r.add_argument("--until", type=date.fromisoformat, help="last service day (YYYY-MM-DD)")
    r.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("counter", help="the counter page: scan a ticket, see the citizen, mark called/served")
    t.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer)")
    t.add_argument("--port", type=int, default=8780, help="port (default 8780)")
    return p


def _passphrase(confirm: bool) -> str:
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env
    first = getpass.getpass("office key passphrase: ")
    if confirm and getpass.getpass("again: ") != first:
        raise OfficeKeyError("the two passphrases differ")
    return first


def _keys(args: argparse.Namespace) -> OfficeKeys:
    return read_keys(args.key, _passphrase(confirm=False))


def run(argv: list[str] | None, out: TextIO) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "keygen":
            public = write_keys(args.key, OfficeKeys.generate(), _passphrase(confirm=True), overwrite=args.force)
            out.write(f"office key written to {args.key} (keep the passphrase; without it the key is lost)\n"
                      f"public key ({public_path(args.key)}); on each kiosk run:\n"
                      f"  kiosk keys --set-office {public.to_text()}\n")
            return 0
        with Database.open(args.db) as db:
            return _with_db(args, db, out)
    except (DatabaseError, OfficeKeyError, IngestError, KioskError, OutboxError) as exc:
        out.write(f"kiosk-office {args.command}: {exc}\n")
        return 2


def _with_db(args: argparse.Namespace, db: Database, out: TextIO) -> int:
    now = datetime.now()
    if args.command == "kiosks":
        if args.action == "add":
            add_kiosk(db, args.kiosk_id, args.pubkey, now=now)
            out.write(f"kiosk {args.kiosk_id} registered\n")
            return 0
        return _show_kiosks(db, out, now)
    if args.command == "report":
        from kiosk.office.report_page import write_report   # matplotlib only when a report is made
        page, notes = write_report(db, args.out, since=args.since, until=args.until)
        for note in notes:
            out.write(f"note: {note}\n")
        out.write(f"report written: {page}\n")
        return 0
    office = _keys(args)
    if args.command == "counter":
        return _counter(args, office, out)
    if args.command == "ingest":
        return _ingest(args, db, office, out)
    if args.command == "sign-config":
        path = sign_config(args.to, args.file, db=db, office=office, now=now, kiosk=args.kiosk)
        out.write(f"written {path}; the kiosks apply it at 'kiosk import' and use it from their next start\n")
        return 0
    if args.command == "service":
        path = service_closure(args.to, args.action, args.service, db=db, office=office, now=now, kiosk=args.kiosk)
        out.write(f"written {path}; the kiosks apply it at 'kiosk import' (for today only)\n")
        return 0
    secret = _secret(args.secret) if args.secret is not None else None
    path, changed = request_deletion(args.to, args.citizens, db=db, office=office, now=now, secret=secret)
    out.write(f"forgotten in the office database ({changed} row(s) changed); written {path} for every kiosk\n")
    return 0


def _secret(path: Path) -> bytes:
    from kiosk.identity import load_secret

    secret, why = load_secret(path)
    if secret is None:
        raise OutboxError(f"office secret: {why}")
    return secret


def _ingest(args: argparse.Namespace, db: Database, office: OfficeKeys, out: TextIO) -> int:
    def show(line: str) -> None:
        out.write(f"... {line}\n")
        out.flush()

    result = ingest(args.stick, db=db, office=office, progress=show, ack=not args.no_ack)
    for line in result.acks:
        out.write(f"ack: {line}\n")
    for line in result.set_aside:
        out.write(f"SET ASIDE: {line}\n")
    for line in result.ignored:
        out.write(f"IGNORED: {line}\n")
    out.write(f"{len(result.ingested)} bundle(s) ingested ({result.visits} visit rows added or updated), "
              f"{len(result.already)} already there, {len(result.set_aside)} set aside\n")
    return 1 if result.set_aside or result.ignored else 0


def _counter(args: argparse.Namespace, office: OfficeKeys, out: TextIO) -> int:
    from kiosk.office.counter_page import CounterServer     # bottle only when the page is served

    try:
        page = CounterServer((args.host, args.port), args.db, office)   # its own connection, on its own thread
    except OSError as exc:
        out.write(f"kiosk-office counter: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
        return 2
    out.write(f"counter page: http://{args.host}:{page.server_port}/  (Ctrl+C stops it)\n")
    out.flush()
    try:
        page.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        page.server_close()
    return 0


def _show_kiosks(db: Database, out: TextIO, now: datetime) -> int:
    rows, office_inbox = kiosk_status(db, now=now)
    if not rows:
        out.write("no kiosk registered: kiosk-office kiosks add KIOSK_ID PUBKEY\n")
        return 0
    out.write(f"{'kiosk':<16} {'key':<17} {'bundle':>6}  {'made on the kiosk':<20} {'days ago':>8}  inbox\n")
    for r in rows:
        ago = f"{r.days_behind:.1f}" if r.days_behind is not None else "-"
        inbox = f"{r.inbox_applied}/{office_inbox}" + ("" if r.inbox_applied >= office_inbox else " behind")
        out.write(f"{r.kiosk_id:<16} {r.pubkey[:16]:<17} {r.last_sequence:>6}  {r.last_created or 'never':<20} "
                  f"{ago:>8}  {inbox}\n")
    return 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv, sys.stdout))


if __name__ == "__main__":
    main()
