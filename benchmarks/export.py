"""USB export at scale: a month (30,000 visits) and a year (365,000) — seconds, bytes per visit, peak memory —
and ticket time while an export runs, against no export, in the same run.

Builds data folders in the store's own formats (benchmarks/store.py's builders), then for each size runs a first
export (everything) to a folder in a child process, as ``kiosk export`` does from a shell, and reads the child's
peak memory. Then a kiosk process issues tickets (each durable on return) with no export, with an export in a
THREAD of the same process (the GIL is shared), with an export in a CHILD process, and through the hot-plug
path (kiosk.stickwatch: a folder stick "plugged in", ``kiosk export`` and ``kiosk import`` started as children
with a config file, their progress lines read by the stick thread of the kiosk process).

    python benchmarks/export.py                      # full size
    python benchmarks/export.py --month 2000 --year 0 --tickets 100      # quick (the test suite)

Target (issue #11): ticket p99 during an export < 2x without.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from kiosk.bundle import OfficeKeys  # noqa: E402
from kiosk.store import Store  # noqa: E402
from kiosk.sync import export  # noqa: E402
from kiosk.synckeys import SyncKeys, load_kiosk_key, write_office_key  # noqa: E402

_spec = importlib.util.spec_from_file_location("store_bench", ROOT / "benchmarks" / "store.py")
assert _spec is not None and _spec.loader is not None
store_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(store_bench)
TODAY = store_bench.TODAY

CHILD = """
import json, sys, time
from datetime import datetime
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from kiosk.sync import export, yield_to_the_kiosk
from kiosk.synckeys import SyncKeys, load_kiosk_key, read_office_key
yield_to_the_kiosk()   # as `kiosk export` does
def rss(field):
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status[field].split()[0]) / 1024
keys = SyncKeys(load_kiosk_key(Path(sys.argv[3]), create=False), read_office_key(Path(sys.argv[4])))
base = rss("VmRSS")
t0 = time.perf_counter()
result = export(Path(sys.argv[5]), data_dir=Path(sys.argv[2]), kiosk_id="ubnd-q1-01", keys=keys,
                now=datetime(2026, 11, 27, 12))
seconds = time.perf_counter() - t0
size = sum(p.stat().st_size for p in Path(sys.argv[5]).rglob("*.bundle"))
print(json.dumps({"seconds": seconds, "bytes": size, "visits": result.counts.get("visits", 0),
                  "counts": result.counts, "peak_mb": rss("VmHWM"), "base_mb": base}))
"""


def build(folder: Path, visits: int, citizens: int) -> None:
    rng = np.random.default_rng(11)
    people = store_bench.make_citizens(citizens, rng)
    store_bench.build_store(folder, people, store_bench.make_visits(visits, people), 1, rng)
    Store.open(folder, kiosk_id="ubnd-q1-01", day_start_hour=6, clock=lambda: TODAY).close()


def make_keys(where: Path) -> tuple[Path, Path, SyncKeys]:
    key_file, office_file = where / "kiosk.key", where / "office.pub"
    office = OfficeKeys.generate()
    write_office_key(office_file, office.public())
    return key_file, office_file, SyncKeys(load_kiosk_key(key_file, create=True), office.public())


def child_export(data: Path, key_file: Path, office_file: Path, stick: Path) -> subprocess.Popen:
    stick.mkdir()
    return subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(data), str(key_file), str(office_file),
                             str(stick)], stdout=subprocess.PIPE, text=True)


def measure_export(data: Path, work: Path, sticks: Path, label: str) -> dict:
    key_file, office_file, _ = make_keys(work / f"keys-{label}")
    proc = child_export(data, key_file, office_file, sticks / f"stick-{label}")
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"export child failed ({label})")
    return json.loads(out)


def tickets(store: Store, n: int, start_at: int, *, until: threading.Event | None = None,
            pace: float = 0.005) -> list[float]:
    """Issue tickets back to back (a pause between, as a loop would); stop after n or when ``until`` is set."""
    times = []
    i = 0
    while (until is None and i < n) or (until is not None and not until.is_set()):
        now = TODAY + timedelta(seconds=start_at + i)
        t0 = time.perf_counter()
        store.issue_ticket("ho-tich", "HT", citizen_id=None, now=now)
        times.append(time.perf_counter() - t0)
        i += 1
        time.sleep(pace)
    return times


def percentile(values: list[float], q: float) -> float:
    return store_bench.percentile(values, q)


def measure_tickets(data: Path, work: Path, sticks: Path, n: int) -> dict[str, list[float]]:
    store = Store.open(data, kiosk_id="ubnd-q1-01", day_start_hour=6, clock=lambda: TODAY)
    results: dict[str, list[float]] = {}
    try:
        tickets(store, 20, 0)                                       # warm up
        results["no export"] = tickets(store, n, 100)
        # an export in a thread of the kiosk process
        key_file, office_file, keys = make_keys(work / "keys-thread")
        (sticks / "stick-thread").mkdir()
        done = threading.Event()

        def run() -> None:
            try:
                export(sticks / "stick-thread", data_dir=data, kiosk_id="ubnd-q1-01", keys=keys, now=TODAY)
            finally:
                done.set()

        worker = threading.Thread(target=run)
        worker.start()
        results["export in a thread"] = tickets(store, 0, 100_000, until=done)
        worker.join()
        # an export in a child process (what `kiosk export` is, and what the hot-plug watcher should start)
        key_file, office_file, _ = make_keys(work / "keys-child")
        proc = child_export(data, key_file, office_file, sticks / "stick-child")
        finished = threading.Event()

        def wait_child() -> None:
            proc.communicate()
            finished.set()

        threading.Thread(target=wait_child).start()
        results["export in a child process"] = tickets(store, 0, 200_000, until=finished)
        results["hot-plug (StickWatch)"] = hotplug_tickets(store, data, work, sticks)
        results["no export (again)"] = tickets(store, n, 300_000)
    finally:
        store.close()
    return results


HOTPLUG_CONFIG = """[kiosk]
id = "ubnd-q1-01"
office = "UBND"
data_dir = "{data}"
day_starts_at_hour = 6
simulate = true

[[categories]]
key = "ho-tich"
prefix = "HT"
name_vi = "Hộ tịch"
name_en = "Civil status"

[sync]
key_file = "{key}"
office_key_file = "{office}"
"""


def hotplug_tickets(store: Store, data: Path, work: Path, sticks: Path) -> list[float]:
    """Tickets while the hot-plug path handles a stick: the kiosk's real StickWatch, the real child commands."""
    from hardware.usb import FolderSticks, Stick, StickEvent
    from kiosk.stickwatch import ChildCommand, StickWatch

    key_file, office_file, _ = make_keys(work / "keys-hotplug")
    config = work / "hotplug.toml"
    config.write_text(HOTPLUG_CONFIG.format(data=data, key=key_file, office=office_file), encoding="utf-8")
    stick = sticks / "stick-hotplug"
    (stick / "kiosk-sync").mkdir(parents=True)
    watch = StickWatch(FolderSticks(sticks, lambda event: None),
                       ChildCommand.kiosk("--config", str(config)), clock=time.monotonic)
    finished = threading.Event()
    try:
        watch.event(StickEvent("added", Stick(str(stick))))
        threading.Thread(target=lambda: (watch.wait_finished(1, 3600), finished.set())).start()
        times = tickets(store, 0, 400_000, until=finished)
        banner = watch.poll()
        if banner is None or banner.stage != "done":
            raise SystemExit(f"the hot-plug export failed: {banner}")
    finally:
        watch.close()
    return times


def ms(x: float) -> str:
    return f"{x * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--month", type=int, default=30_000, help="visits in the month-sized store")
    parser.add_argument("--year", type=int, default=365_000, help="visits in the year-sized store (0: skip)")
    parser.add_argument("--citizens", type=int, default=5_000, help="consenting citizens in each store")
    parser.add_argument("--tickets", type=int, default=500, help="tickets timed without an export")
    parser.add_argument("--sticks", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
                        help="where the 'sticks' go: another device than the data, as a real stick is "
                             "(default /dev/shm; the data and the kiosk's outbox stay in the temp folder)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kiosk-export-bench-") as tmp, \
            tempfile.TemporaryDirectory(prefix="kiosk-export-sticks-", dir=args.sticks) as sticks_tmp:
        work, sticks = Path(tmp), Path(sticks_tmp)
        sizes = [("month", args.month)] + ([("year", args.year)] if args.year else [])
        biggest = None
        for label, visits in sizes:
            t0 = time.perf_counter()
            data = work / f"data-{label}"
            build(data, visits, args.citizens)
            built = time.perf_counter() - t0
            r = measure_export(data, work, sticks, label)
            print(f"{label}: {visits:,} visits, {args.citizens:,} consents (store built in {built:.1f} s)")
            print(f"  first export: {r['seconds']:.2f} s, {r['bytes']:,} bytes "
                  f"({r['bytes'] / max(1, r['visits']):.1f} bytes per visit, all parts), "
                  f"{r['visits']:,} visits in the bundle")
            print(f"  peak memory of the export process: {r['peak_mb']:.0f} MB "
                  f"({r['peak_mb'] - r['base_mb']:.0f} MB above the {r['base_mb']:.0f} MB after imports)")
            biggest = data
        assert biggest is not None
        results = measure_tickets(biggest, work, sticks, args.tickets)
        base = results["no export"]
        print(f"sticks in {args.sticks or tempfile.gettempdir()}; ticket time on the {sizes[-1][0]} store "
              f"(issue_ticket, durable on return), same run:")
        for name, times in results.items():
            print(f"  {name:<28} {len(times):>5} tickets  median {ms(statistics.median(times))}  "
                  f"p99 {ms(percentile(times, 99))}  ({percentile(times, 99) / percentile(base, 99):.2f}x the "
                  f"p99 without)")
        child = percentile(results["export in a child process"], 99) / percentile(base, 99)
        thread = percentile(results["export in a thread"], 99) / percentile(base, 99)
        hotplug = percentile(results["hot-plug (StickWatch)"], 99) / percentile(base, 99)
        print(f"target p99 during < 2x without: child process {'met' if child < 2 else 'NOT met'} ({child:.2f}x), "
              f"hot-plug {'met' if hotplug < 2 else 'NOT met'} ({hotplug:.2f}x), "
              f"thread {'met' if thread < 2 else 'NOT met'} ({thread:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
