"""The crash torture of benchmarks/crash.py, kept short: SIGKILL a ticket-issuing kiosk, reopen, check."""
import importlib.util
from pathlib import Path

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
    assert result["repeated_in_store"] == 0
    assert result["repeated_on_paper"] == 0
    assert result["printed_missing"] == 0
    assert result["templates_without_citizen"] == 0
    assert result["losses_reported"] == 0           # a kill loses nothing acknowledged: no loss may be claimed


def test_sigkill_during_enrolments_and_forgets_claims_no_loss(tmp_path):
    """The .count sidecars of the citizens' shards and the .sum of templates.bin change around each enrolment
    and deletion: a kill between a sidecar and its file must never read as a loss at the next start."""
    crash = _crash_module()
    result = crash.torture(tmp_path, kills=12, seed=11, max_run=0.2, report=lambda line: None, enrol_rate=0.5)
    assert result["enrolments"] > 20 and result["forgets"] > 3, result
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
