"""Start-up time and memory of the real kiosk process with a district's data: 100,000 citizens, 300,000 templates.

A child ``kiosk run --simulate`` (screen on SDL's dummy driver, a file camera so the face models load, the
simulated printer) is started on a data folder built with the store's own API (cached in /tmp between runs,
keyed by the store's source), with ``NOTIFY_SOCKET`` pointed at a datagram socket this script reads: the time
from ``Popen`` to ``READY=1`` is the start-up (wall), the child's CPU time at that instant (from /proc) its
CPU cost; its resident memory is sampled from READY until it says STOPPING=1 (``--exit-after``; "running": the
highest sample), with the kernel's peak (VmHWM) since it started.
The baseline, in the same run, is the same process on an empty data folder: what the district's data adds.

    .venv/bin/python benchmarks/startup.py [--citizens 100000] [--visits 250000] [--runs 3] [--one-core] [--code DIR] [--data DIR]

Targets (issue #16): READY < 3 s and RSS < 350 MB with 100,000 citizens (300,000 templates).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmarks.benchkit import load  # noqa: E402

CONSENT = "Tôi đồng ý cho UBND lưu đặc trưng khuôn mặt của tôi để nhận diện lần sau (v1)"
BUILT = datetime(2026, 1, 5, 8, 0)
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The sources that decide the citizens' and templates' file formats: a change builds a new cached folder.
FORMAT_SOURCES = ("kiosk/store_citizens.py", "kiosk/storage/templates.py", "kiosk/storage/records.py")


def format_key() -> str:
    digest = hashlib.sha256()
    for name in FORMAT_SOURCES:
        path = ROOT / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def key_file(folder: Path) -> Path:
    """The data key a folder is sealed with: beside it, never in it (the kiosk refuses a key inside)."""
    return folder.parent / (folder.name + ".key")


def build_data(folder: Path, citizens: int, visits: int, key_path: Path) -> None:
    """Enrol ``citizens`` x 3 templates and archive ``visits`` past visits through the store's own API.

    Sealed with the data key at ``key_path`` (made here), as a kiosk's data is: every child run is given that
    key, so none of them has to seal clear templates first or, with another key, runs without citizens.
    Built once and cached: fsync is skipped while building (a benchmark fixture, not a kiosk's data), which
    changes nothing in what is written.
    """
    from match import district

    from kiosk.datakey import key_from_file, make_key_file, verify_key
    from kiosk.storage import RecordLog
    from kiosk.store import ARCHIVE_DIR, Store

    _, matrix = district(citizens)
    real_fsync = os.fsync
    os.fsync = lambda fd: None       # type: ignore[assignment]
    try:
        make_key_file(key_path)
        key = key_from_file(key_path)
        verify_key(key, folder)      # writes the folder's key check, as the kiosk's first start does
        store = Store.open(folder, kiosk_id="bench", day_start_hour=6, clock=lambda: BUILT, key=key)
        # Random ids, enrolled one citizens shard after the other: the store parses a shard when it is written to
        # and keeps only the last two parsed (as the kiosk, with a few enrolments a day, would not notice).
        ids = sorted((secrets.token_hex(16) for _ in range(citizens)), key=lambda c: int(c[:2], 16) % 64)
        enrolled = []
        t = time.perf_counter()
        for i in range(citizens):
            citizen = store.enrol(matrix[3 * i:3 * i + 3], now=BUILT + timedelta(seconds=i), consent_text=CONSENT,
                                  citizen_id=ids[i])
            enrolled.append(citizen.id)
            if (i + 1) % 10_000 == 0:
                print(f"  enrolled {i + 1:,} citizens ({time.perf_counter() - t:.0f} s)", flush=True)
        store.close()
        # Past visits: what roll-over leaves in the month files (the same writer, one append per month).
        archive = folder / ARCHIVE_DIR
        archive.mkdir(exist_ok=True)
        per_day, first = 1000, BUILT - timedelta(days=visits // 1000 + 1)
        by_month: dict[str, list[dict]] = {}
        for i in range(visits):
            day = first + timedelta(days=i // per_day)
            by_month.setdefault(day.strftime("%Y-%m"), []).append(
                {"id": "%016x" % (i * 7919 + 3), "ticket": f"HT-{i % per_day + 1:03d}", "number": i % per_day + 1,
                 "category": "ho-tich", "issued_at": (day + timedelta(seconds=(i % per_day) * 30)).isoformat(),
                 "service_day": day.date().isoformat(), "citizen": enrolled[i % len(enrolled)] if i % 4 == 0 else None,
                 "kiosk": "bench", "printed": True})
        for month, docs in sorted(by_month.items()):
            log = RecordLog(archive / f"{month}.jsonl", checksum=True)
            try:
                log.append(docs)
            finally:
                log.close()
    finally:
        os.fsync = real_fsync


def data_folder(citizens: int, visits: int, cache: Path) -> Path:
    """The cached data folder for this size and store format, built on first use."""
    folder = cache / f"kiosk-startup-{citizens}-{visits}-{format_key()}-sealed"
    if not folder.is_dir() or not key_file(folder).is_file():
        building = Path(tempfile.mkdtemp(prefix=folder.name + ".building-", dir=cache))
        print(f"building {folder} ({citizens:,} citizens, {3 * citizens:,} templates, {visits:,} visits) ...",
              flush=True)
        t = time.perf_counter()
        build_data(building / "data", citizens, visits, building / "data.key")
        (building / "data.key").rename(key_file(folder))
        (building / "data").rename(folder)
        shutil.rmtree(building, ignore_errors=True)
        print(f"  built in {time.perf_counter() - t:.0f} s", flush=True)
    return folder


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory (MB)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    if "VmRSS" not in status:          # exited, not yet reaped
        raise ProcessLookupError(pid)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def run_once(data: Path, work: Path, exit_after: float, pin: bool, code: Path | None = None) -> dict:
    """One child kiosk: seconds to READY=1 (wall and CPU), memory at READY and its peak until it exits.

    The simulation's key file (``kiosk-keys/data.key`` in the child's folder) is the data folder's own key.
    """
    work.mkdir(parents=True, exist_ok=True)
    if key_file(data).is_file():
        (work / "kiosk-keys").mkdir(mode=0o700, exist_ok=True)
        shutil.copy2(key_file(data), work / "kiosk-keys" / "data.key")
    camera = work / "camera"
    if not camera.is_dir():
        from PIL import Image

        camera.mkdir()
        Image.new("RGB", (640, 480), (128, 128, 128)).save(camera / "empty.png")  # nobody in front of it
    address = str(work / "notify.sock")
    Path(address).unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    env = {**os.environ, "NOTIFY_SOCKET": address, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
           "PYTHONWARNINGS": "ignore"}
    if code is not None:              # another checkout of the kiosk (before/after a change), same libraries
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "kiosk", "run", "--simulate", "--data", str(data), "--camera-folder",
               str(camera), "--exit-after", str(exit_after)]
    if pin:
        command = ["taskset", "-c", "0", *command]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ready_wall = ready_cpu = None
    ready_rss = steady = peak = 0.0
    stopping = False
    sock.settimeout(0.02)
    try:
        while child.poll() is None:
            try:
                lines = sock.recv(4096).decode().split("\n")
            except socket.timeout:
                lines = []
            try:
                rss, peak = proc_memory(child.pid)
                if "READY=1" in lines and ready_wall is None:
                    ready_wall = time.perf_counter() - start
                    ready_cpu = proc_cpu(child.pid)
                    ready_rss = rss
                stopping = stopping or "STOPPING=1" in lines
                if ready_wall is not None and not stopping:
                    steady = max(steady, rss)     # running: from READY until it starts closing down
            except (FileNotFoundError, ProcessLookupError):
                break
        _, err = child.communicate(timeout=60)
    finally:
        sock.close()
        if child.poll() is None:
            child.kill()
    if child.returncode != 0 or ready_wall is None:
        raise SystemExit(f"kiosk run failed (exit {child.returncode}, READY {'seen' if ready_wall else 'never seen'}):"
                         f"\n{err.decode(errors='replace')[-2000:]}")
    if "no data key" in err.decode(errors="replace"):   # it would have run without a single citizen
        raise SystemExit(f"kiosk run had no data key for {data}:\n{err.decode(errors='replace')[-2000:]}")
    return {"ready": ready_wall, "cpu": ready_cpu, "rss_ready": ready_rss, "rss": steady, "peak": peak}


def report(name: str, runs: list[dict]) -> dict:
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"  {name:<34} READY {median['ready']:5.2f} s wall, {median['cpu']:5.2f} s CPU   RSS at READY "
          f"{median['rss_ready']:4.0f} MB, running {median['rss']:4.0f} MB, peak {median['peak']:4.0f} MB   ({load()})")
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=100_000)
    parser.add_argument("--visits", type=int, default=250_000, help="past visits in the month files")
    parser.add_argument("--runs", type=int, default=3, help="child processes per data folder (medians shown)")
    parser.add_argument("--exit-after", type=float, default=4.0, help="seconds the child runs after READY")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()), help="where data folders live")
    parser.add_argument("--one-core", action="store_true", help="pin the child to CPU 0 (taskset -c 0)")
    parser.add_argument("--code", type=Path, help="run the kiosk of this checkout instead (e.g. `git archive` of "
                                                  "an older commit): before/after figures on the same data")
    parser.add_argument("--data", type=Path, help="use this data folder as it is (one built by an earlier run, "
                                                  "when a change to the store's sources would build a new one)")
    args = parser.parse_args(argv)
    data = args.data if args.data else data_folder(args.citizens, args.visits, args.cache)
    with tempfile.TemporaryDirectory(prefix="kiosk-startup-") as tmp:
        work = Path(tmp)
        empty = work / "empty-data"
        from kiosk.datakey import make_key_file

        make_key_file(key_file(empty))   # one key for the three runs, as for the district's folder
        print(f"start-up of `kiosk run --simulate` (dummy screen, file camera, face models, simulated printer), "
              f"median of {args.runs}{', pinned to CPU 0' if args.one_core else ''}; {os.cpu_count()} CPUs"
              f"{f'; the kiosk of {args.code}' if args.code else ''}")
        base = report("empty data folder", [run_once(empty, work / f"e{i}", args.exit_after, args.one_core, args.code)
                                            for i in range(args.runs)])
        shutil.rmtree(empty, ignore_errors=True)
        big = report(f"{args.citizens:,} citizens, {args.visits:,} visits",
                     [run_once(data, work / f"d{i}", args.exit_after, args.one_core, args.code) for i in range(args.runs)])
    print(f"  the district's data adds {big['ready'] - base['ready']:.2f} s to READY, "
          f"{big['cpu'] - base['cpu']:.2f} CPU-s, {big['rss'] - base['rss']:.0f} MB resident")
    ok_ready, ok_rss = big["ready"] < 3.0, max(big["rss"], big["rss_ready"]) < 350
    print(f"  targets with {args.citizens:,} citizens: READY < 3 s: {'PASS' if ok_ready else 'FAIL'} "
          f"({big['ready']:.2f} s); RSS < 350 MB: {'PASS' if ok_rss else 'FAIL'} ({max(big['rss'], big['rss_ready']):.0f} MB;"
          f" peak {big['peak']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
