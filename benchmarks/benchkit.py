"""What several benchmarks share: the machine's load printed beside every figure (2 shared cores: the wall time
follows it), and ``--one-core``, the whole script re-run pinned to CPU 0 (the closest stand-in for a Pi 4 core)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

PINNED = "KIOSK_BENCH_PINNED"


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def pinned() -> bool:
    """True in the re-run that ``rerun_on_one_core`` started (under ``taskset -c 0``)."""
    return os.environ.get(PINNED) == "1"


def rerun_on_one_core(script: str, argv: list[str]) -> int:
    """Run ``script`` again with ``argv`` minus ``--one-core``, pinned to CPU 0; its exit code (2: no taskset)."""
    if shutil.which("taskset") is None:
        print("--one-core needs taskset (util-linux)", file=sys.stderr)
        return 2
    rest = [a for a in argv if a != "--one-core"]
    return subprocess.call(["taskset", "-c", "0", sys.executable, script, *rest], env={**os.environ, PINNED: "1"})
