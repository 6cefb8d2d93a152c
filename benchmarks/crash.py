"""Crash torture for the store: kill -9 a kiosk that issues tickets, reopen, check nothing was lost or repeated.

A child process opens the store and issues tickets as fast as it can (with a clock that runs fast, crosses
day resets and sometimes jumps backwards; it also enrols and forgets citizens now and then). After each ticket
it "prints" it: appends it to ``printed.log`` with write + fsync — the stand-in for bytes reaching the printer.
The parent kills the child with SIGKILL at random instants (some during start-up and repair), then opens the
store like the next kiosk start would, and checks:

* no (service day, ticket) appears twice, neither in the store nor on "paper" (a quarter of the tickets are
  priority ones, HT-U01, numbered in their own series per service: issue 13);
* every printed ticket is in the store, with the same number, day and category;
* the face templates load and every one belongs to a stored citizen.

    python benchmarks/crash.py --kills 1000        # long run; the test suite runs the same code short

SIGKILL tests the software (every instant of the code path); it cannot cut the power of the disk. Power-cut
damage (torn and garbage-filled files) is covered by the corruption tests in tests/test_store_*.py.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CATEGORIES = {"ho-tich": "HT", "dat-dai": "DD", "chung-thuc": "CT"}
DAY_START_HOUR = 6
START = datetime(2026, 11, 27, 7, 0)
PRIORITY = "U"          # the priority series' mark (kiosk/rules.py): HT-U01


# What a proven-loss report says (kiosk.storage: records, keycount; kiosk.store: numbers.bin, hot.jsonl).
LOSS_WORDS = re.compile(r" lost|other records than|older than hot|emptied or missing|tickets are missing")

def child_main(work: Path, seed: int, enrol_rate: float = 0.03) -> None:
    """Issue tickets until killed."""
    import numpy as np

    from kiosk.store import Store, StoreError

    rng = random.Random(seed)
    try:  # the simulated clock goes on from the last ticket
        with Store.open_readonly(work / "data") as peek:
            now = peek.latest_issued or START
    except StoreError:
        now = START
    if rng.random() < 0.1:
        now -= timedelta(hours=rng.uniform(0, 60))  # a Pi without RTC boots with a stale clock
    store = Store.open(work / "data", kiosk_id="torture", day_start_hour=DAY_START_HOUR, clock=lambda: now)
    ids, _ = store.templates()
    enrolled = sorted(set(ids))
    printed = os.open(work / "printed.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print("ready", flush=True)
    while True:
        now += timedelta(seconds=rng.expovariate(1 / 240))
        if rng.random() < 0.005:
            now -= timedelta(hours=rng.uniform(0, 30))  # clock jumps back while running
        category = rng.choice(list(CATEGORIES))
        citizen = rng.choice(enrolled) if enrolled and rng.random() < 0.3 else None
        mark = PRIORITY if rng.random() < 0.25 else ""
        visit = store.issue_ticket(category, CATEGORIES[category], citizen_id=citizen, now=now, mark=mark)
        line = {"id": visit.id, "ticket": visit.ticket, "number": visit.number, "category": category,
                "day": visit.service_day.isoformat()}
        os.write(printed, (json.dumps(line) + "\n").encode())
        os.fsync(printed)
        if rng.random() < 0.9:
            store.mark_printed(visit.id, True)
        if rng.random() < enrol_rate:
            enc = np.random.default_rng(rng.randrange(2**32)).random((3, 128), dtype=np.float32)
            enrolled.append(store.enrol(enc, now=now, consent_text="Tôi đồng ý (torture v1)").id)
            if citizen is None and rng.random() < 0.5:
                store.touch(enrolled[-1], now)
        if enrolled and rng.random() < enrol_rate / 3:
            store.forget(enrolled.pop(rng.randrange(len(enrolled))), now=now)


def _printed(work: Path) -> list[dict]:
    """Tickets whose bytes all reached the "printer". A kill can cut a write in two (SIGKILL stops a write
    at a page boundary): that ticket was not printed completely, and the next child appends after it."""
    path = work / "printed.log"
    if not path.exists():
        return []
    printed = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        try:
            printed.append(json.loads(line))
        except ValueError:  # a cut print, then maybe the next child's complete line on the same line
            start = line.rfind(b'{"id"')
            if start > 0:
                try:
                    printed.append(json.loads(line[start:]))
                except ValueError:
                    pass
    return printed


def verify(work: Path) -> dict:
    """Open the store as the next start would, and check the promises. Returns counts and violations."""
    from kiosk.store import Store

    printed = _printed(work)
    latest = max((datetime.fromisoformat(p["day"]) for p in printed), default=START)
    with Store.open(work / "data", kiosk_id="verify", day_start_hour=DAY_START_HOUR,
                    clock=lambda: latest + timedelta(days=400)) as store:
        visits = list(store.visits())
        ids, matrix = store.templates()
        unknown_templates = sum(1 for i in set(ids) if store.citizen(i) is None)
        problems = list(store.problems)
    stored_keys = Counter((v.service_day.isoformat(), v.ticket) for v in visits)
    printed_keys = Counter((p["day"], p["ticket"]) for p in printed)
    by_id = {v.id: v for v in visits}
    missing = [p for p in printed if p["id"] not in by_id
               or (by_id[p["id"]].ticket, by_id[p["id"]].service_day.isoformat(), by_id[p["id"]].category)
               != (p["ticket"], p["day"], p["category"])]
    return {
        "visits": len(visits),
        "priority_visits": sum(f"-{PRIORITY}" in v.ticket for v in visits),
        "printed": len(printed),
        "days": len({v.service_day for v in visits}),
        "templates": len(ids),
        "repeated_in_store": sum(n - 1 for n in stored_keys.values() if n > 1),
        "repeated_on_paper": sum(n - 1 for n in printed_keys.values() if n > 1),
        "printed_missing": len(missing),
        "templates_without_citizen": unknown_templates,
        "problems": problems,
    }


def _kill_at_random(child: subprocess.Popen, rng: random.Random, max_run: float, totals: Counter) -> None:
    """SIGKILL the child at a random instant: mostly while it issues tickets, sometimes while it starts."""
    if rng.random() < 0.15:
        time.sleep(rng.uniform(0, 0.4))  # kill during start-up / repair
        totals["kills_during_start"] += 1
    else:
        ready, _, _ = select.select([child.stdout], [], [], 30)
        if not ready or child.stdout.readline() != b"ready\n":
            raise RuntimeError("torture child did not start")
        time.sleep(rng.uniform(0, max_run))
    if child.poll() is not None:
        raise RuntimeError("torture child died by itself")
    child.send_signal(signal.SIGKILL)
    child.wait()


def torture(work: Path, *, kills: int, seed: int = 1, max_run: float = 0.3, report=print,
            enrol_rate: float = 0.03) -> dict:
    """Run ``kills`` kill/reopen cycles in ``work``; return the totals (violations must all be 0)."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    totals = Counter()
    started = time.monotonic()
    last: dict = {}
    for i in range(kills):
        with open(work / "child.err", "wb") as err:  # a file, not a pipe: a chatty child never blocks
            child = subprocess.Popen([sys.executable, __file__, "--child", str(work), str(rng.randrange(2**31)),
                                      str(enrol_rate)],
                                     stdout=subprocess.PIPE, stderr=err)
        try:
            _kill_at_random(child, rng, max_run, totals)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {(work / 'child.err').read_text()[-2000:]}") from None
        finally:
            if child.poll() is None:  # interrupted: never leave a child issuing tickets behind
                child.kill()
                child.wait()
            child.stdout.close()
        last = verify(work)
        for key in ("repeated_in_store", "repeated_on_paper", "printed_missing", "templates_without_citizen"):
            totals[key] += last[key]
        totals["repairs_reported_at_check"] += sum(1 for p in last["problems"] if "clock" not in p)
        # A kill loses nothing acknowledged: any loss reported (a .sum, .count or numbers.bin proof) is false.
        totals["losses_reported"] += sum(1 for p in last["problems"] if LOSS_WORDS.search(p))
        if (i + 1) % max(1, kills // 10) == 0:
            report(f"  {i + 1}/{kills} kills: {last['visits']} visits, {last['printed']} printed")
    from kiosk.storage import RecordLog

    audit, _ = RecordLog.load(work / "data" / "audit.jsonl", repair=False)
    result = {"kills": kills, "seconds": round(time.monotonic() - started, 1), "visits": last.get("visits", 0),
              "priority_visits": last.get("priority_visits", 0),
              "printed": last.get("printed", 0), "service_days": last.get("days", 0),
              "templates": last.get("templates", 0),
              "clock_jumps_noticed": sum(1 for e in audit if e.get("event") == "clock_back"),
              "enrolments": sum(1 for e in audit if e.get("event") == "enrol"),
              "forgets": sum(1 for e in audit if e.get("event") == "forget"), **totals}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-run", type=float, default=0.3, help="longest run of the child before a kill (s)")
    parser.add_argument("--work", type=Path, help="folder to use (default: a new temporary folder)")
    parser.add_argument("--enrol-rate", type=float, default=0.03, help="enrolments per ticket (forgets: a third)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(Path(args.child[0]), int(args.child[1]), float(args.child[2]))
        return 0
    logging.getLogger("kiosk.store").setLevel(logging.CRITICAL)  # repairs are counted, not logged here
    work = args.work or Path(tempfile.mkdtemp(prefix="kiosk-crash-"))
    print(f"crash torture: {args.kills} SIGKILLs, data in {work}")
    result = torture(work, kills=args.kills, seed=args.seed, max_run=args.max_run, enrol_rate=args.enrol_rate)
    print("(repeated_*, printed_missing, templates_without_citizen: violations summed over all the checks)")
    for key, value in result.items():
        print(f"{key:>28}: {value}")
    bad = sum(result.get(k, 0) for k in ("repeated_in_store", "repeated_on_paper", "printed_missing",
                                           "templates_without_citizen", "losses_reported"))
    print("RESULT:", "OK — no ticket lost or repeated" if not bad else f"FAILED ({bad} violations)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
