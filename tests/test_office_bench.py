"""benchmarks/ingest.py runs end to end on a few kiosk-weeks (its full-size numbers come from running it by hand)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ingest_benchmark_reports_rates_sizes_and_an_idempotent_reingest(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--kiosks", "2", "--days", "9",
                           "--per-day", "50"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "2 kiosks x 9 days x 50 visits = 900 visits" in out
    assert re.search(r"sqlite +ingest +[\d.]+ s +[\d,]+ visits/s .* 4 bundles +900 visits stored", out), out
    assert out.count("4 already there, 0 rows added") == (2 if "postgresql  ingest" in out else 1), out
    assert "report over the whole period" in out
