"""One face match against 1,000 / 10,000 / 100,000 stored templates: the kiosk's FaceIndex against
face_recognition's own way (``face_distance`` over a Python list of arrays, as its examples keep them),
measured in the same run; then the resident memory of a kiosk-like process holding 100,000 templates.

    .venv/bin/python benchmarks/match.py [--sizes 1000 10000 100000] [--repeat 30]

Targets (issue #3): >= 20x faster than the baseline and < 5 ms at 100,000; resident memory < 350 MB.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.index import FaceIndex  # noqa: E402

_MEMORY_PROBE = r"""
import sys, numpy as np
sys.path.insert(0, {root!r})
def rss():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
from kiosk.faces import FaceRecognitionEngine
from kiosk.index import FaceIndex
engine = FaceRecognitionEngine()             # loads dlib's models, as the running kiosk does
before = rss()[0]
n = {n}
rng = np.random.default_rng(1)
ids = [f"{{i:032x}}" for i in range(n // 2) for _ in range(2)]        # two templates per citizen
matrix = rng.normal(0, 0.09, size=(n, 128)).astype(np.float32)
index = FaceIndex(ids, matrix)
del ids, matrix                                # the store's copy is gone once the index is built
index.match(rng.normal(0, 0.09, 128).astype(np.float32), threshold=0.5, margin=0.05)
after, peak = rss()
print(before, after, peak)
"""


def time_it(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` in milliseconds (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def bench_match(n: int, repeat: int) -> tuple[float, float]:
    import face_recognition

    rng = np.random.default_rng(n)
    # Real dlib encodings have components of about +/-0.09; the timing does not depend on the values.
    known = rng.normal(0, 0.09, size=(n, 128))
    query = rng.normal(0, 0.09, size=128)
    ids = [f"c{i}" for i in range(n)]
    known_list = [row for row in known]          # float64 arrays in a list, as the examples keep them
    index = FaceIndex(ids, known.astype(np.float32))

    def baseline():
        distances = face_recognition.face_distance(known_list, query)
        best = int(np.argmin(distances))
        return ids[best] if distances[best] < 0.5 else None

    query32 = query.astype(np.float32)

    def kiosk():
        return index.match(query32, threshold=0.5, margin=0.05)

    # Same answer from both (the nearest template), before timing anything.
    assert kiosk().nearest == ids[int(np.argmin(face_recognition.face_distance(known_list, query)))]
    return time_it(baseline, repeat), time_it(kiosk, repeat)


def resident_memory(n: int) -> tuple[float, float, float]:
    probe = _MEMORY_PROBE.format(root=str(ROOT), n=n)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True,
                            check=True)
    before, after, peak = (float(v) for v in result.stdout.split())
    return before, after, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    import warnings
    warnings.filterwarnings("ignore", module="face_recognition_models")

    print(f"match: one query against N templates; median of {args.repeat} runs, wall time, same run")
    print(f"(numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')})")
    print(f"{'templates':>10} {'face_distance(list)':>20} {'FaceIndex.match':>16} {'speed-up':>9}")
    for n in args.sizes:
        base, ours = bench_match(n, args.repeat)
        print(f"{n:>10,} {base:>17.3f} ms {ours:>13.3f} ms {base / ours:>8.1f}x")
    n = max(args.sizes)
    before, after, peak = resident_memory(n)
    print(f"resident memory, kiosk-like process (numpy + face_recognition models + FaceIndex of {n:,}):")
    print(f"  after loading the models: {before:.0f} MB; with {n:,} templates: {after:.0f} MB "
          f"(peak while building: {peak:.0f} MB; the index itself: {after - before:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
