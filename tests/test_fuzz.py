"""benchmarks/fuzz.py, short: mutated configs, replay scripts and hostile images end in a clear error or are
accepted and usable; no traceback, no hang (issue 15). `python benchmarks/fuzz.py --n 10000` is the long run."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fuzz_short_run_has_no_traceback_and_no_hang(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz.py"), "--n", "150", "--seed", "3"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    rows = {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(configs|scripts|images)\s+(.*)$", done.stdout, re.M)}
    assert set(rows) == {"configs", "scripts", "images"}, done.stdout + done.stderr
    for family, counts in rows.items():
        assert counts["traceback"] == 0 and counts["hang"] == 0 and counts["missed"] == 0, (family, done.stdout)
        assert counts["clear"] + counts["accepted"] == 150
        assert counts["clear"] > 0 and counts["accepted"] > 0, (family, counts)    # both outcomes exercised
    assert done.returncode == 0
