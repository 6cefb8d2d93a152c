"""The crash torture of benchmarks/crash.py, kept short: SIGKILL a ticket-issuing kiosk, reopen, check."""
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "crash.py"


def _crash_module():
    spec = importlib.util.spec_from_file_location("crash_torture", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sigkill_at_random_instants_loses_and_repeats_nothing(tmp_path):
    crash = _crash_module()
    result = crash.torture(tmp_path, kills=12, seed=7, max_run=0.15, report=lambda line: None)
    assert result["printed"] > 10, result  # the child really issued tickets between kills
    assert result["priority_visits"] > 0, result    # the priority series was tortured too (issue 13)
    assert result["repeated_in_store"] == 0
    assert result["repeated_on_paper"] == 0
    assert result["printed_missing"] == 0
    assert result["templates_without_citizen"] == 0
    assert result["losses_reported"] == 0           # a kill loses nothing acknowledged: no loss may be claimed


def test_sigkill_during_enrolments_and_forgets_claims_no_loss(tmp_path):
    """The .count sidecars of the citizens' shards and the .sum of templates.bin change around each enrolment
    and deletion: a kill between a sidecar and its file must never read as a loss at the next start."""
    crash = _crash_module()
    result = crash.torture(tmp_path, kills=16, seed=11, max_run=0.2, report=lambda line: None, enrol_rate=0.5)
    # how much gets done before each kill depends on the machine's load: enough that kills met both kinds of change
    assert result["enrolments"] >= 8 and result["forgets"] >= 1, result
    assert result["losses_reported"] == 0 and result["templates_without_citizen"] == 0, result


def test_verify_catches_repeats_and_missing_tickets(tmp_path):
    """The checker itself can fail: a number printed twice, or printed but not stored, is reported."""
    import json

    from kiosk.store import Store

    crash = _crash_module()
    with Store.open(tmp_path / "data", kiosk_id="t", day_start_hour=crash.DAY_START_HOUR) as store:
        v = store.issue_ticket("ho-tich", "HT", citizen_id=None, now=crash.START)
    line = json.dumps({"id": v.id, "ticket": v.ticket, "number": v.number, "category": v.category,
                       "day": v.service_day.isoformat()}) + "\n"
    (tmp_path / "printed.log").write_text(line)
    assert crash.verify(tmp_path)["repeated_on_paper"] == 0
    (tmp_path / "printed.log").write_text(line * 2)
    assert crash.verify(tmp_path)["repeated_on_paper"] == 1
    (tmp_path / "printed.log").write_text(line.replace(v.id, "0" * 16))
    assert crash.verify(tmp_path)["printed_missing"] == 1


def test_priority_series_survive_a_reopen_and_never_meet_the_normal_series(tmp_path):
    """Numbers taken in either series stay taken after a reopen; a kiosk's range ends in SeriesFull, not a wrap."""
    from datetime import datetime, timedelta

    from kiosk.store import Store
    from kiosk.store_numbers import SeriesFull

    now = datetime(2026, 12, 1, 8, 0)
    with Store.open(tmp_path, kiosk_id="t") as store:
        tickets = [store.issue_ticket("ho-tich", "HT", citizen_id=None, now=now + timedelta(minutes=i),
                                      mark="U" if i % 2 else "").ticket for i in range(4)]
    assert tickets == ["HT-001", "HT-U01", "HT-002", "HT-U02"]
    with Store.open(tmp_path, kiosk_id="t") as store:
        assert store.highest_taken("ho-tich", now, "U") == 2 and store.highest_taken("ho-tich", now) == 2
        assert store.issue_ticket("ho-tich", "HT", citizen_id=None, now=now + timedelta(hours=1),
                                  mark="U").ticket == "HT-U03"
        assert store.issue_ticket("dat-dai", "DD", citizen_id=None, now=now + timedelta(hours=1),
                                  numbers=(500, 500)).ticket == "DD-500"
        with pytest.raises(SeriesFull, match="500-500 are used up"):
            store.issue_ticket("dat-dai", "DD", citizen_id=None, now=now + timedelta(hours=1), numbers=(500, 500))
