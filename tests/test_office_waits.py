"""Waiting and service times in the office report (issue 18): per service and hour, median and 90th percentile,
from the counter page's stamps; over SQLite and PostgreSQL."""
from datetime import date

import pytest

from kiosk.office.db import Database
from kiosk.office.report_page import write_report
from kiosk.office.waits import ALL_HOURS, median_p90, service_times
from officekit import db_url, pg_server  # noqa: F401  (fixtures)


def _row(db, n, category, issued, called, served):
    db.execute("INSERT INTO counter (kiosk_id, visit_id, ticket, category, service_name, issued_at, scanned_at, "
               "called_at, served_at) VALUES ('kiosk-01', ?, ?, ?, ?, ?, ?, ?, ?)",
               (f"{n:016x}", f"T-{n:03d}", category, {"ho-tich": "Hộ tịch", "dat-dai": "Đất đai"}[category],
                issued, issued, called, served))


def _at(day, hh, mm):
    return f"2026-11-{day:02d}T{hh:02d}:{mm:02d}:00"


@pytest.fixture
def stamped(db_url):
    with Database.open(db_url) as db:
        for n, wait in enumerate((5, 10, 15, 20, 100)):                     # ho-tich, issued at 08:00
            service = {0: 3, 1: 4}.get(n)
            called = _at(27, 8 + wait // 60, wait % 60)
            served = _at(27, 8 + (wait + service) // 60, (wait + service) % 60) if service else None
            _row(db, n, "ho-tich", _at(27, 8, 0), called, served)
        _row(db, 10, "ho-tich", _at(27, 9, 0), _at(27, 9, 30), _at(27, 9, 42))     # 09:00: wait 30, service 12
        _row(db, 11, "ho-tich", _at(27, 9, 0), None, _at(27, 9, 50))              # served without "called"
        _row(db, 12, "dat-dai", _at(27, 10, 0), _at(27, 9, 0), None)               # kiosk clock wrong: no figure
        _row(db, 13, "dat-dai", _at(20, 10, 0), _at(20, 10, 7), _at(20, 10, 9))    # an earlier week
    return db_url


def test_median_and_90th_percentile():
    assert median_p90([]) == (None, None) and median_p90([4.0]) == (4.0, 4.0)
    assert median_p90([5, 10, 15, 20, 100]) == (15, pytest.approx(68))       # 20 + 0.6 * 80
    assert median_p90([3, 4]) == (3.5, pytest.approx(3.9))


def test_times_per_service_and_hour(stamped):
    with Database.open(stamped) as db:
        rows = {(t.category, t.hour): t for t in service_times(db, since=date(2026, 11, 27))}
    eight, nine, every = rows["ho-tich", 8], rows["ho-tich", 9], rows["ho-tich", ALL_HOURS]
    assert (eight.waits, eight.wait_median, eight.wait_p90) == (5, 15, pytest.approx(68))
    assert (eight.services, eight.service_median, eight.service_p90) == (2, 3.5, pytest.approx(3.9))
    assert (nine.waits, nine.wait_median, nine.services, nine.service_median) == (1, 30, 1, 12)
    assert every.waits == 6 and every.wait_median == 17.5 and every.services == 3
    assert every.service_name == "Hộ tịch"
    assert rows["dat-dai", 10].waits == 0 and rows["dat-dai", 10].wait_median is None     # nothing guessed


def test_the_report_shows_them(stamped, tmp_path):
    with Database.open(stamped) as db:
        page, notes = write_report(db, tmp_path / "r", since=date(2026, 11, 20))
    text = page.read_text(encoding="utf-8")
    assert "Waiting and service times" in text and "Hộ tịch (ho-tich)" in text and "68.0" in text
    csv = (tmp_path / "r" / "service_times.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0] == "service,hour,waits,wait_median_min,wait_p90_min,services,service_median_min,service_p90_min"
    assert "ho-tich,08,5,15.0,68.0,2,3.5,3.9" in csv and "dat-dai,all,1,7.0,7.0,1,2.0,2.0" in csv
