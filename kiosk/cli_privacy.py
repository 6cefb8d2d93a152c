"""The data controller's and technician's privacy commands: ``kiosk audit verify``, ``kiosk privacy-key``,
``kiosk privacy-report``; what they print and their exit status. Read-only except ``privacy-key``."""
from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from kiosk.audit import verify
from kiosk.config import Config
from kiosk.consentrecords import kept_consents
from kiosk.identity import CardBook
from kiosk.storage import RecordLog, StorageError
from kiosk.store import AUDIT_FILE, Store, StoreError


def audit_verify(data_dir: Path, out: TextIO | None = None) -> int:
    """``kiosk audit verify``: 0 when the chain is intact, 1 naming the first break, 2 when unreadable."""
    out = out or sys.stdout
    path = Path(data_dir) / AUDIT_FILE
    if not path.exists():
        print(f"kiosk audit: no audit log in {data_dir}", file=sys.stderr)
        return 2
    check = verify(path)
    if check.ok:
        out.write(f"{path}: intact, {check.entries} entries ({check.chained} chained)\n")
        return 0
    out.write(f"{path}: NOT intact: {check.problem}\n")
    return 1


def privacy_key(config: Config, out: TextIO | None = None) -> int:
    """``kiosk privacy-key``: make the data key file (0600) unless it exists, and check it against the data."""
    from kiosk.datakey import KeySource, KeyUnavailable, load_key, make_key_file

    out = out or sys.stdout
    p = config.privacy
    if p.key_source == "board":
        try:
            load_key(KeySource("board"), config.data_dir)
        except KeyUnavailable as exc:
            print(f"kiosk privacy-key: {exc}", file=sys.stderr)
            return 1
        out.write("the data key comes from this board's OTP key: nothing to make\n")
        return 0
    made = make_key_file(Path(p.key_file))
    try:
        load_key(KeySource("file", Path(p.key_file)), config.data_dir)
    except KeyUnavailable as exc:
        print(f"kiosk privacy-key: {exc}", file=sys.stderr)
        return 1
    if made:
        from kiosk.auditspool import record

        record(config.data_dir, "data_key_made", now=datetime.now())
    out.write(f"{p.key_file}: {'made' if made else 'already there'}; it opens {config.data_dir}\n")
    return 0


def privacy_report(config: Config, data_dir: Path, *, as_json: bool = False, out: TextIO | None = None) -> int:
    """``kiosk privacy-report``: the record of processing the data controller files (counts and dates only)."""
    out = out or sys.stdout
    try:
        store = Store.open_readonly(Path(data_dir))
    except (StoreError, StorageError) as exc:
        print(f"kiosk privacy-report: {exc}", file=sys.stderr)
        return 2
    book = CardBook.open(data_dir, secret=None, readonly=True)
    try:
        report = _report(config, store, book, Path(data_dir))
    finally:
        book.close()
        store.close()
    if as_json:
        out.write(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
        return 0
    out.write(f"Record of processing — kiosk {config.kiosk_id}, {config.office}\n")
    out.write(f"data folder: {data_dir}; encrypted at rest: {report['encrypted']}\n")
    for cls in report["classes"]:
        out.write(f"- {cls['class']}: {cls['count']} (oldest {cls['oldest'] or '-'}; kept {cls['retention']})\n")
    out.write(f"consent wording versions in use: {', '.join(report['consent_versions']) or '-'}\n")
    out.write(f"deletions kept as receipts: {report['deletions']['count']}"
              f"{' (' + ', '.join(report['deletions']['times'][-10:]) + ')' if report['deletions']['times'] else ''}\n")
    out.write(f"last retention purge: {report['last_purge'] or 'none yet'}\n")
    out.write(f"audit log: {report['audit']}\n")
    return 0


def _report(config: Config, store: Store, book: CardBook, data_dir: Path) -> dict[str, Any]:
    p = config.privacy
    consents = store.consents()
    receipts = store.receipts()
    kept = kept_consents(store)       # the live ones and those the deletion receipts keep
    owners = store.template_owners()
    cards = book.records()
    linked = [v for v in store.visits() if v.citizen_id]
    audit, _ = RecordLog.load(data_dir / AUDIT_FILE, repair=False)
    purges = [a for a in audit if isinstance(a, dict) and a.get("event") == "purge"]
    check = verify(data_dir / AUDIT_FILE)
    return {
        "encrypted": (data_dir / "datakey.check").exists(),
        "classes": [
            {"class": "face templates (sensitive)", "count": len(owners), "citizens": len(set(owners)),
             "oldest": min((c["at"] for c in consents), default=None),
             "retention": f"{p.templates_months} months after the last visit"},
            {"class": "card records (name, birth date, sex as configured; card number never)", "count": len(cards),
             "oldest": min((c.created_at.isoformat() for c in cards), default=None),
             "retention": f"{p.card_months} months after the last visit"},
            {"class": "visits linked to a citizen", "count": len(linked),
             "oldest": min((v.issued_at.isoformat() for v in linked), default=None),
             "retention": f"{p.visit_link_months} months, then the visit stays anonymous"},
            {"class": "consent records (id, time, wording version)", "count": len(kept),
             "oldest": min((c["at"] for c in kept), default=None),
             "retention": f"as long as the face templates they cover, then {p.records_extra_months} months "
                          f"(in the deletion receipt)"},
            {"class": "deletion receipts", "count": len(receipts),
             "oldest": min((r["at"] for r in receipts), default=None),
             "retention": f"{p.records_extra_months} months after the deletion"},
        ],
        "consent_versions": sorted(Counter(c["text_version"] for c in kept)),
        "deletions": {"count": len(receipts), "times": [r["at"][:16] for r in receipts]},
        "last_purge": ({k: v for k, v in purges[-1].items() if k not in ("prev", "seq")} if purges else None),
        "audit": "intact" if check.ok else f"NOT intact: {check.problem}",
    }
