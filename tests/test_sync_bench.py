"""benchmarks/export.py runs end to end on a small store (its full-size numbers come from running it by hand)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_export_benchmark_reports_size_memory_and_ticket_times(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "export.py"), "--month", "1000", "--year", "0",
                           "--tickets", "30", "--citizens", "100"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "month: 1,000 visits, 100 consents" in out
    per_visit = float(re.search(r"\(([\d.]+) bytes per visit", out).group(1))
    assert 5 < per_visit < 200                      # compressed JSON Lines, sealed: not raw JSON (~230 B)
    assert "1,000 visits in the bundle" in out and "peak memory of the export process" in out
    for phase in ("no export", "export in a thread", "export in a child process", "hot-plug (StickWatch)",
                  "no export (again)"):
        assert re.search(rf"\n  {re.escape(phase)} +\d+ tickets  median [\d.]+ ms  p99 [\d.]+ ms", out), phase
