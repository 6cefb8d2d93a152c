"""`kiosk ratings`: the satisfaction statistics, counted by service (issue 13); works beside the running kiosk."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Callable, TextIO

RATINGS = ("good", "ok", "bad")   # kiosk.store_ratings.RATINGS (not imported: the parser stays light)

ANONYMOUS = "(anonymous)"      # ratings no visit of the day was linked to


def add_command(sub: argparse._SubParsersAction, day: Callable[[str], date]) -> None:
    ratings = sub.add_parser("ratings", help="satisfaction ratings counted by service (good / ok / bad)")
    ratings.add_argument("--data", type=Path, help="data folder (default: from the config)")
    ratings.add_argument("--config", type=Path, default=None)
    ratings.add_argument("--since", type=day, help="YYYY-MM-DD")
    ratings.add_argument("--json", action="store_true", help="one JSON object a service")


def print_ratings(data_dir: Path, since: date | None, as_json: bool, out: TextIO | None = None) -> int:
    """Ratings by service (anonymous ones on their own line), then the total; exit 2 when the folder is no kiosk's."""
    from kiosk.storage import StorageError
    from kiosk.store import Store, StoreError

    out = out or sys.stdout
    try:
        store = Store.open_readonly(Path(data_dir))
    except (StoreError, StorageError) as exc:
        print(f"kiosk ratings: {exc}", file=sys.stderr)
        return 2
    try:
        counts = store.rating_counts(since)
    finally:
        store.close()
    rows = sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or ""))
    total = {r: sum(per[r] for per in counts.values()) for r in RATINGS}
    if as_json:
        for service, per in rows:
            out.write(json.dumps({"service": service, **per, "total": sum(per.values())}) + "\n")
        return 0
    out.write(f"{'service':<24}" + "".join(f"{r:>7}" for r in RATINGS) + f"{'total':>7}{'satisfied':>11}\n")
    for service, per in rows + [("total", total)]:
        n = sum(per.values())
        share = f"{100 * per['good'] / n:.0f} %" if n else "-"
        out.write(f"{service or ANONYMOUS:<24}" + "".join(f"{per[r]:>7}" for r in RATINGS) + f"{n:>7}{share:>11}\n")
    return 0
