"""The bundle's cards part at scale: what card records add to an export, against the same export without them,
in the same run: seconds, bytes per card record, and an incremental export after some card holders came back.

    python benchmarks/export_cards.py                          # 20,000 card records beside 30,000 visits
    python benchmarks/export_cards.py --cards 500 --visits 1000   # quick (the test suite)

The card records are written in one batch through the card book's TinyDB table (CardBook.link makes them one
at a time, which is what a kiosk does, one visit at a time, but too slow to build 20,000 of them here).
"""
from __future__ import annotations

import argparse
import random
import importlib.util
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.identity import CardBook  # noqa: E402
from kiosk.sync import export  # noqa: E402
from kiosk.deletions import card_key  # noqa: E402

_spec = importlib.util.spec_from_file_location("export_bench", ROOT / "benchmarks" / "export.py")
assert _spec is not None and _spec.loader is not None
export_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export_bench)

SECRET = b"benchmark office secret, invented"
NOW = datetime(2026, 11, 27, 12)
KEEP = ("name", "birth_date", "sex")
FAMILY = "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý".split()   # invented people
MIDDLE = "Văn Thị Hữu Đức Minh Ngọc Thanh Quốc Gia Xuân Thu Kim".split()
GIVEN = "An Bình Châu Dũng Giang Hà Hải Hạnh Hùng Khánh Lan Linh Long Mai Nam Phong Phúc Quân Sơn Tâm Thảo Trang Tuấn Vy".split()


def add_cards(data: Path, count: int, start: int = 0) -> None:
    book = CardBook.open(data, secret=SECRET)
    try:
        rng = random.Random(start)
        docs = [{"citizen": f"{rng.getrandbits(128):032x}", "card": card_key(SECRET, f"{i:012d}"),
                 "fields": {"name": " ".join([rng.choice(FAMILY), rng.choice(MIDDLE), rng.choice(GIVEN)]),
                            "birth_date": (date(1940, 1, 1) + timedelta(days=rng.randrange(25_000))).isoformat(),
                            "sex": rng.choice(["Nam", "Nữ"])},
                 "created_at": (NOW - timedelta(minutes=rng.randrange(500_000))).isoformat(timespec="seconds"),
                 "last_seen": NOW.isoformat()} for i in range(start, start + count)]
        book._db.table("people").insert_multiple(docs)
    finally:
        book.close()


def touch_cards(data: Path, count: int) -> None:
    book = CardBook.open(data, secret=SECRET)
    try:
        for record in book.records()[:count]:
            book.touch(record.citizen_id, NOW + timedelta(days=1))
    finally:
        book.close()


def timed_export(data: Path, stick: Path, keys) -> tuple[float, int, dict]:
    stick.mkdir(parents=True, exist_ok=True)
    before = sum(p.stat().st_size for p in stick.rglob("*.bundle"))
    t0 = time.perf_counter()
    result = export(stick, data_dir=data, kiosk_id="ubnd-q1-01", keys=keys, now=NOW, card_fields=KEEP)
    seconds = time.perf_counter() - t0
    return seconds, sum(p.stat().st_size for p in stick.rglob("*.bundle")) - before, result.counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=30_000)
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--citizens", type=int, default=2_000, help="consenting citizens in the store")
    parser.add_argument("--returning", type=int, default=200, help="card holders seen again before the 2nd export")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="kiosk-cards-bench-"))
    try:
        plain, cards = work / "plain", work / "cards"
        export_bench.build(plain, args.visits, args.citizens)
        shutil.copytree(plain, cards)
        add_cards(cards, args.cards)
        _, _, keys = export_bench.make_keys(work)
        base_s, base_b, _ = timed_export(plain, work / "stick-plain", keys)
        card_s, card_b, counts = timed_export(cards, work / "stick-cards", keys)
        assert counts["cards"] == args.cards, counts
        per = (card_b - base_b) / max(args.cards, 1)
        print(f"{args.visits:,} visits, {args.citizens:,} consents; the same store with {args.cards:,} card records")
        print(f"  first export without cards: {base_s:.2f} s, {base_b:,} bytes")
        print(f"  first export with cards:    {card_s:.2f} s, {card_b:,} bytes "
              f"({card_s / base_s:.2f}x the time; {per:.0f} bytes per card record)")
        touch_cards(cards, args.returning)
        inc_s, inc_b, counts = timed_export(cards, work / "stick-cards", keys)
        assert counts["cards"] == args.returning, counts
        print(f"  next export, {args.returning:,} card holders came back: {inc_s:.2f} s, {inc_b:,} bytes, "
              f"{counts['cards']:,} card records sent ({inc_s / card_s:.2f}x the first)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
