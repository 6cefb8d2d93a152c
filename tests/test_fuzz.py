"""benchmarks/fuzz.py, short: mutated configs, replay scripts and hostile images end in a clear error or are
accepted and usable; every store file damaged five ways is reported or harmless, never a silent loss; no
traceback, no hang (issue 15). `python benchmarks/fuzz.py --n 10000` is the long run."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fuzz_short_run_has_no_traceback_and_no_hang(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz.py"), "--n", "150", "--seed", "3"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    rows = {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(configs|scripts|images|store)\s+(.*)$", done.stdout, re.M)}
    assert set(rows) == {"configs", "scripts", "images", "store"}, done.stdout + done.stderr
    for family, counts in rows.items():
        assert counts["traceback"] == 0 and counts["hang"] == 0 and counts["missed"] == 0, (family, done.stdout)
        assert counts["silent"] == 0 and counts["unkept"] == 0, (family, done.stdout)
        assert counts["clear"] + counts["accepted"] == 150
        assert counts["clear"] > 0 and counts["accepted"] > 0, (family, counts)    # both outcomes exercised
    store = re.findall(r"^    (\S+)\s+(emptied|cut|flipped|garbage|older) ", done.stdout, re.M)
    assert len(set(store)) == 14 * 5, done.stdout        # every file x every kind of damage, at least once
    assert done.returncode == 0


def test_fuzz_runs_only_the_families_asked_for(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz.py"), "--n", "20",
                           "--families", "scripts,images"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    rows = re.findall(r"^(configs|scripts|images|store)\s+clear=(\d+)", done.stdout, re.M)
    assert [family for family, _ in rows] == ["scripts", "images"], done.stdout + done.stderr
    assert done.returncode == 0
