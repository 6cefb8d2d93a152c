"""Office ingest at scale: bundles of N kiosks x D days into SQLite and PostgreSQL.

Per database: visits per second of ``ingest`` (verify, chain, decrypt, store, ack), the database's size, the time
of ``report`` over the whole period, and a re-ingest of every bundle, which must add 0 rows. The baseline, in the
same run: reading the same bundles without storing them (verify + decrypt + parse), so the ratio shows what the
database itself costs.

Bundles are made with kiosk/bundle.py's ``make_bundle`` from visits in the kiosk's own export format
(``Visit.to_json``), one bundle per kiosk per week, as a weekly stick round would bring them. PostgreSQL is a
temporary server with its default durability (tests/officekit.py); skipped where it is not installed.

    python benchmarks/ingest.py                                  # 10 kiosks x 365 days x 820 visits (~3M)
    python benchmarks/ingest.py --kiosks 2 --days 14 --per-day 200   # quick (the test suite)
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from nacl.signing import SigningKey  # noqa: E402

from kiosk.bundle import SYNC_DIR, OfficeKeys, bundle_name, make_bundle, read_bundle, sha256_hex, \
    write_bundle  # noqa: E402
from kiosk.office.db import Database  # noqa: E402
from kiosk.office.ingest import find_bundles, ingest  # noqa: E402
from kiosk.office.kiosks import add_kiosk  # noqa: E402
from kiosk.office.report_page import write_report  # noqa: E402
from kiosk.store_visits import Visit  # noqa: E402

CATEGORIES = [("ho-tich", "HT", 0.35), ("dat-dai", "DD", 0.25), ("chung-thuc", "CT", 0.25), ("xay-dung", "XD", 0.1),
              ("kinh-doanh", "KD", 0.05)]
START = date(2025, 1, 1)


def make_bundles(stick: Path, office: OfficeKeys, *, kiosks: int, days: int, per_day: int, seed: int
                 ) -> tuple[dict[str, SigningKey], int]:
    rng = random.Random(seed)
    keys: dict[str, SigningKey] = {}
    total = 0
    for n in range(1, kiosks + 1):
        kid = f"k-{n:02d}"
        keys[kid] = key = SigningKey.generate()
        folder = stick / SYNC_DIR / kid
        folder.mkdir(parents=True)
        citizens = [f"{rng.getrandbits(128):032x}" for _ in range(max(10, per_day * 20))]
        prev, seq, week = None, 0, []
        for d in range(days):
            day = START + timedelta(days=d)
            numbers = {c: 0 for c, _, _ in CATEGORIES}
            for i in range(per_day):
                cat, prefix, _ = rng.choices(CATEGORIES, weights=[w for *_, w in CATEGORIES])[0]
                numbers[cat] += 1
                at = datetime(day.year, day.month, day.day, 7, 30) + timedelta(seconds=int(rng.triangular(
                    0, 9.5 * 3600, 2.5 * 3600)))
                week.append(Visit(id=f"{rng.getrandbits(64):016x}", ticket=f"{prefix}-{numbers[cat]:03d}",
                                  number=numbers[cat], category=cat, issued_at=at, service_day=day,
                                  citizen_id=rng.choice(citizens) if rng.random() < 0.3 else None, kiosk_id=kid,
                                  printed=rng.random() > 0.005).to_json())
            if d % 7 == 6 or d == days - 1:
                seq += 1
                data = make_bundle(kiosk_id=kid, sequence=seq, prev=prev, created=f"{day}T17:30:00",
                                   parts={"visits": week}, signing_key=key, office=office.public(),
                                   extra={"inbox_sequence": 0})
                write_bundle(folder / bundle_name(seq), data)
                prev, total, week = sha256_hex(data), total + len(week), []
    return keys, total


def baseline(stick: Path, office: OfficeKeys, keys: dict[str, SigningKey]) -> tuple[float, int]:
    """Verify, decrypt and parse every bundle without storing anything: seconds, visits."""
    verify = {k: v.verify_key for k, v in keys.items()}
    start, visits = time.perf_counter(), 0
    for files in find_bundles(stick).values():
        for _, path in files:
            visits += len(read_bundle(path, office_key=office, kiosk_verify_keys=verify).visits)
    return time.perf_counter() - start, visits


def run_db(name: str, url: str, stick: Path, office: OfficeKeys, keys: dict[str, SigningKey], base: float,
           out: Path) -> None:
    with Database.open(url) as db:
        for kid, key in keys.items():
            add_kiosk(db, kid, key.verify_key.encode().hex(), now=datetime(2026, 1, 1))
        last = [0.0]

        def progress(line: str) -> None:
            if time.perf_counter() - last[0] > 20:
                last[0] = time.perf_counter()
                print(f"    {line}", flush=True)

        start = time.perf_counter()
        result = ingest(stick, db=db, office=office, progress=progress, now=lambda: datetime(2026, 1, 10, 9))
        took = time.perf_counter() - start
        rows = db.integer("SELECT COUNT(*) FROM visits")
        assert not result.set_aside, result.set_aside[:3]
        size = db.size_bytes()
        start = time.perf_counter()
        again = ingest(stick, db=db, office=office)
        again_took = time.perf_counter() - start
        added = db.integer("SELECT COUNT(*) FROM visits") - rows
        start = time.perf_counter()
        write_report(db, out / name)
        report_took = time.perf_counter() - start
    print(f"  {name:<11} ingest {took:8.1f} s  {rows / took:9,.0f} visits/s  ({took / base:.1f}x the baseline)  "
          f"{len(result.ingested)} bundles  {rows:,} visits stored  database {size / 1e6:,.1f} MB "
          f"({size / max(rows, 1):.0f} bytes/visit)")
    print(f"  {'':<11} re-ingest of every bundle {again_took:6.1f} s: {len(again.already)} already there, "
          f"{added} rows added")
    print(f"  {'':<11} report over the whole period {report_took:6.1f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kiosks", type=int, default=10)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--per-day", type=int, default=820, help="visits per kiosk per day")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-postgresql", action="store_true")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        office = OfficeKeys.generate()
        stick = tmp / "stick"
        start = time.perf_counter()
        keys, total = make_bundles(stick, office, kiosks=args.kiosks, days=args.days, per_day=args.per_day,
                                   seed=args.seed)
        size = sum(f.stat().st_size for f in stick.rglob("*.bundle"))
        print(f"bundles: {args.kiosks} kiosks x {args.days} days x {args.per_day} visits = {total:,} visits, "
              f"{size / 1e6:,.1f} MB of bundles, made in {time.perf_counter() - start:.1f} s")
        base, seen = baseline(stick, office, keys)
        assert seen == total
        print(f"  {'baseline':<11} read only (verify + decrypt + parse) {base:6.1f} s  {total / base:9,.0f} visits/s")
        run_db("sqlite", str(tmp / "office.db"), stick, office, keys, base, tmp)
        if args.no_postgresql:
            return
        from officekit import NoPostgres, new_pg_database, temporary_server
        try:
            with temporary_server(durable=True) as server:
                run_db("postgresql", new_pg_database(server), stick, office, keys, base, tmp)
        except NoPostgres as exc:
            print(f"  postgresql  skipped: {exc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
