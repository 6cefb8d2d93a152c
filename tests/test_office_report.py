"""kiosk-office report over SQLite and PostgreSQL: figures, CSV files, PNG charts, one HTML page."""
import csv
import shutil
import subprocess
from datetime import date, timedelta

import pytest
from PIL import Image

from kiosk import bundle as B
from kiosk.office.db import Database
from kiosk.office.ingest import ingest
from kiosk.office.kiosks import add_kiosk
from kiosk.office.report import collect
from kiosk.office.report_page import write_report
from officekit import db_url, pg_server  # noqa: F401  (fixtures)
from synckit import T0, enrol, make_kiosk

DAY2 = T0 + timedelta(days=1, hours=2)          # 2026-11-28 10:00


@pytest.fixture
def filled(db_url, tmp_path):
    """Day 1: 3 land + 2 civil-status tickets from 08:00, one citizen twice, one printer failure.
    Day 2: 4 civil-status tickets from 10:00, the same citizen once more. Exported, ingested."""
    k = make_kiosk(tmp_path / "kiosk")
    [cid] = enrol(k)
    day1 = k.issue(3, category=("dat-dai", "DD"))
    k.issue(2, citizen=cid, start=T0 + timedelta(minutes=10))
    with k.store() as s:
        for v in day1:
            s.mark_printed(v.id, v is not day1[0])
    k.issue(4, start=DAY2)
    k.issue(1, citizen=cid, start=DAY2 + timedelta(minutes=30))
    stick = tmp_path / "stick"
    (stick / B.SYNC_DIR).mkdir(parents=True)
    k.export(stick, now=DAY2 + timedelta(hours=1))
    with Database.open(db_url) as db:
        add_kiosk(db, k.kiosk_id, k.keys().kiosk.verify_key.encode().hex(), now=T0)
        ingest(stick, db=db, office=k.office, now=lambda: DAY2 + timedelta(days=2))
    return db_url


def test_the_figures(filled):
    with Database.open(filled) as db:
        d = collect(db)
    assert d.total == 10 and d.per_kiosk == [("k-01", 10)]
    assert d.per_day == [("2026-11-27", "dat-dai", 3), ("2026-11-27", "ho-tich", 2), ("2026-11-28", "ho-tich", 5)]
    assert d.per_hour == [(8, "dat-dai", 3), (8, "ho-tich", 2), (10, "ho-tich", 5)]
    assert (d.linked, d.citizens, d.returning, d.returning_share) == (3, 1, 1, 1.0)
    assert d.printer == [("2026-11-27", 5, 1, 2), ("2026-11-28", 5, 0, 5)]
    assert d.identified_by == {} and any("no 'identified_by' field" in n for n in d.notes)
    [delay] = d.delays
    assert delay.kiosk == "k-01" and delay.bundles == 1 and delay.max_hours == pytest.approx(47.0)


def test_since_and_until_select_service_days(filled):
    with Database.open(filled) as db:
        d = collect(db, since=date(2026, 11, 28))
        assert d.total == 5 and (d.citizens, d.returning) == (1, 0)
        assert collect(db, until=date(2026, 11, 27)).total == 5
        empty = collect(db, since=date(2027, 1, 1))
    assert empty.total == 0 and empty.notes == ["no visit in this period"]


def test_the_files(filled, tmp_path):
    out = tmp_path / "report"
    with Database.open(filled) as db:
        page, notes = write_report(db, out)
    with open(out / "tickets_per_day.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["service_day", "category", "tickets"] and ["2026-11-28", "ho-tich", "5"] in rows
    summary = dict(csv.reader(open(out / "summary.csv", encoding="utf-8")))
    assert summary["tickets"] == "10" and summary["identified by"] == "not exported by the kiosks"
    for name in ("tickets_per_day", "tickets_per_hour", "printer_per_day", "export_delay"):
        with Image.open(out / f"{name}.png") as img:
            assert img.format == "PNG" and img.size[0] >= 600
    text = page.read_text(encoding="utf-8")
    for name in ("tickets_per_day.png", "tickets_per_hour.png", "printer_per_day.png", "export_delay.png",
                 "summary.csv"):
        assert name in text
    assert "not exported by the kiosks" in text and "100.0 %" in text and notes


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_the_page_renders_in_headless_chromium(filled, tmp_path):
    browser = _chromium()
    if not browser:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); page screenshot not checked")
    out = tmp_path / "report"
    with Database.open(filled) as db:
        page, _ = write_report(db, out)
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-dev-shm-usage", "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1100,2400",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        colours = rgb.getcolors(1 << 20) or []
    # the charts were loaded and drawn: the page holds far more than the few colours of text on white
    assert len(colours) > 50
    # the printer chart's red is on the page
    assert any(abs(r - 0xc0) < 8 and abs(g - 0x39) < 8 and abs(b - 0x2b) < 8 for _, (r, g, b) in colours)


def test_report_command_line(filled, tmp_path, capsys):
    import sys

    from kiosk.office.cli import run

    assert run(["--db", filled, "report", "--since", "2026-11-27", "--out", str(tmp_path / "r")], sys.stdout) == 0
    out = capsys.readouterr().out
    assert "report written" in out and "note: identified by card or face" in out
    assert (tmp_path / "r" / "index.html").exists()
