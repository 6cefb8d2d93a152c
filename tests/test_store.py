"""kiosk.store: numbering, durability, day reset, clock jumps, start-up repair, the lock, citizens, `kiosk visits`."""
import io
import json
import logging
import os
import random
import shutil
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from kiosk.cli_store import print_visits
from kiosk.storage import JournalStorage, RecordLog
from kiosk.store import (
    ARCHIVE_DIR,
    CITIZENS_DIR,
    HOT_FILE,
    NUMBERS_FILE,
    TEMPLATES_FILE,
    ClockRepair,
    Store,
    StoreError,
    StoreLocked,
    service_day_of,
)

T0 = datetime(2026, 11, 27, 8, 0)
CONSENT = "Tôi đồng ý cho lưu đặc trưng khuôn mặt (v1)"


def open_store(path, **kw):
    kw.setdefault("kiosk_id", "k1")
    kw.setdefault("day_start_hour", 6)
    kw.setdefault("clock", lambda: T0)
    return Store.open(path, **kw)


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "data")
    yield s
    s.close()


def issue(store, category="ho-tich", prefix="HT", now=T0, citizen_id=None):
    return store.issue_ticket(category, prefix, citizen_id=citizen_id, now=now)


# ------------------------------------------------------------------------------------------- numbering
def test_numbers_count_per_category_and_format(store):
    a = [issue(store, now=T0 + timedelta(minutes=i)) for i in range(3)]
    b = issue(store, "dat-dai", "DD", now=T0 + timedelta(minutes=5))
    assert [v.ticket for v in a] == ["HT-001", "HT-002", "HT-003"]
    assert (b.ticket, b.number, b.category) == ("DD-001", 1, "dat-dai")
    assert a[0].printed is None and a[0].kiosk_id == "k1" and a[0].service_day == date(2026, 11, 27)
    assert len({v.id for v in a + [b]}) == 4


def test_four_digit_numbers(tmp_path):
    from kiosk.storage import SlotFile

    slots = SlotFile(tmp_path / "d" / NUMBERS_FILE)  # a busy day: 998 numbers already taken
    (tmp_path / "d").mkdir()
    slots.write({"day": "2026-11-27", "last": {"ho-tich": 998}, "latest": T0.isoformat()})
    slots.close()
    with open_store(tmp_path / "d") as s:
        assert [issue(s, now=T0 + timedelta(seconds=i)).ticket for i in (1, 2)] == ["HT-999", "HT-1000"]


def test_counter_resets_at_the_configured_hour(store):
    assert service_day_of(datetime(2026, 11, 28, 5, 59), 6) == date(2026, 11, 27)
    issue(store, now=datetime(2026, 11, 27, 9, 0))
    late = issue(store, now=datetime(2026, 11, 28, 5, 59))  # still the 27th's service day
    new = issue(store, now=datetime(2026, 11, 28, 6, 0))
    assert (late.number, late.service_day) == (2, date(2026, 11, 27))
    assert (new.number, new.service_day) == (1, date(2026, 11, 28))


def test_ticket_is_on_disk_when_issue_returns(store, tmp_path):
    v = issue(store)
    reader = Store.open_readonly(tmp_path / "data")  # a second reader, no lock needed, sees the file
    assert [x.id for x in reader.visits()] == [v.id]
    reader.close()


def test_issue_fsyncs_the_visit_and_the_number_before_returning(store, tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    v = issue(store)
    data = tmp_path / "data"
    assert str(data / NUMBERS_FILE) in synced and str(data / HOT_FILE) in synced
    assert synced.index(str(data / NUMBERS_FILE)) < synced.index(str(data / HOT_FILE))  # number first
    assert v.id in (data / HOT_FILE).read_text()


def test_a_ticket_and_its_printer_answer_change_only_their_own_documents(tmp_path):
    """Writes cost what they change: the visits already in the hot file are neither copied nor compared."""
    s = open_store(tmp_path / "d")
    for i in range(200):
        issue(s, now=T0 + timedelta(seconds=i))
    hot = s._hot_storage.peek()
    visits, old_doc = hot["visits"], hot["visits"]["1"]
    before = (tmp_path / "d" / HOT_FILE).stat().st_size
    v = issue(s, now=T0 + timedelta(hours=1))
    s.mark_printed(v.id, True)
    after = s._hot_storage.peek()
    assert after["visits"] is visits and after["visits"]["1"] is old_doc      # the same objects, not copies
    assert (tmp_path / "d" / HOT_FILE).stat().st_size - before < 1024        # two small records appended
    s.close()
    s = open_store(tmp_path / "d", clock=lambda: T0 + timedelta(hours=2))
    assert [x.printed for x in s.visits()][-2:] == [None, True] and s.problems == []
    assert issue(s, now=T0 + timedelta(hours=2)).ticket == "HT-202"
    s.close()


def test_numbers_continue_after_reopen_and_printed_is_kept(tmp_path):
    s = open_store(tmp_path / "d")
    v = issue(s)
    s.mark_printed(v.id, True)
    s.close()
    s = open_store(tmp_path / "d")
    assert issue(s, now=T0 + timedelta(minutes=1)).ticket == "HT-002"
    assert [x.printed for x in s.visits()] == [True, None]
    assert s.problems == []
    s.close()


def test_old_days_move_to_month_files_and_stay_listed(store, tmp_path):
    days = [T0 + timedelta(days=d) for d in range(6)]  # crosses into December
    ids = [issue(store, now=day).id for day in days]
    hot = JournalStorage(tmp_path / "data" / HOT_FILE, readonly=True).read()["visits"]
    assert sorted(d["id"] for d in hot.values()) == sorted(ids[-2:])  # today and yesterday only
    months = sorted(p.name for p in (tmp_path / "data" / ARCHIVE_DIR).iterdir())
    assert months == ["2026-11.jsonl", "2026-11.sum"]  # the sum makes the start-up check one crc32 pass
    assert [v.id for v in store.visits()] == ids
    assert [v.id for v in store.visits(since=date(2026, 11, 30))] == ids[3:]
    store.mark_printed(ids[0], False)  # an archived visit can still be marked
    assert next(store.visits()).printed is False


def test_crash_while_archiving_lists_each_visit_once(tmp_path):
    s = open_store(tmp_path / "d")
    ids = [issue(s, now=T0 + timedelta(days=d)).id for d in range(3)]
    s.close()
    # As if the kiosk died after copying the 27th to the month file but before removing it from hot.jsonl:
    archived = tmp_path / "d" / ARCHIVE_DIR / "2026-11.jsonl"
    copy = archived.read_bytes()
    s = open_store(tmp_path / "d")
    hot = JournalStorage(tmp_path / "d" / HOT_FILE, readonly=True).read()["visits"]
    assert ids[0] not in {d["id"] for d in hot.values()}
    s.close()
    from kiosk.storage import encode_record
    with open(tmp_path / "d" / HOT_FILE, "ab") as f:  # put the archived visit back into the hot file
        f.write(encode_record({"set": {"visits": {"99": next(
            r for r in RecordLog.load(archived, repair=False)[0] if r.get("id") == ids[0])}}}))
    assert archived.read_bytes() == copy
    s = open_store(tmp_path / "d")
    listed = [v.id for v in s.visits()]
    assert sorted(listed) == sorted(ids) and len(listed) == 3
    issue(s, now=T0 + timedelta(days=4))  # the next day change archives it again: still listed once
    assert sorted(v.id for v in s.visits() if v.service_day < date(2026, 12, 1)) == sorted(ids)
    s.close()


def test_failing_archive_does_not_stop_tickets(store, tmp_path):
    issue(store, now=T0)
    (tmp_path / "data" / ARCHIVE_DIR).write_text("not a folder")  # moving old visits will fail
    v = issue(store, now=T0 + timedelta(days=3))
    assert (v.ticket, v.service_day) == ("HT-001", date(2026, 11, 30))
    assert any("moving old visits" in p for p in store.problems)
    assert [x.service_day for x in store.visits()] == [date(2026, 11, 27), date(2026, 11, 30)]


def test_unknown_visit_is_an_error(store):
    with pytest.raises(StoreError, match="unknown visit"):
        store.mark_printed("feedbeef", True)


# ------------------------------------------------------------------------------------------- clock
def test_clock_backwards_keeps_counting_on_the_latest_day(store, caplog):
    issue(store, now=datetime(2026, 11, 27, 10, 0))
    issue(store, now=datetime(2026, 11, 27, 10, 5))
    with caplog.at_level(logging.WARNING, logger="kiosk.store"):
        stale = issue(store, now=datetime(2024, 1, 1, 9, 0))  # Pi without RTC, stale boot time
        again = issue(store, now=datetime(2024, 1, 1, 9, 1))
    assert (stale.number, stale.service_day) == (3, date(2026, 11, 27))
    assert (again.number, again.service_day) == (4, date(2026, 11, 27))
    assert len([r for r in caplog.records if "clock went back" in r.message]) == 1  # said once per jump
    assert any("clock went back" in p for p in store.problems)
    fixed = issue(store, now=datetime(2026, 11, 28, 8, 0))  # NTP corrects it: a new day
    assert (fixed.number, fixed.service_day) == (1, date(2026, 11, 28))


def test_small_backwards_step_within_tolerance_is_not_a_jump(store):
    issue(store, now=datetime(2026, 11, 27, 10, 0))
    v = issue(store, now=datetime(2026, 11, 27, 9, 59, 30))
    assert v.number == 2 and store.problems == []


def test_backwards_across_the_reset_hour_does_not_restart_the_day(store):
    issue(store, now=datetime(2026, 11, 28, 6, 0, 30))  # first ticket of the 28th
    v = issue(store, now=datetime(2026, 11, 28, 5, 59, 50))  # clock nudged back 40 s, before the reset hour
    assert (v.number, v.service_day) == (2, date(2026, 11, 28))


def test_clock_behind_at_start_is_reported(tmp_path):
    s = open_store(tmp_path / "d")
    issue(s, now=datetime(2026, 11, 27, 10, 0))
    s.close()
    s = open_store(tmp_path / "d", clock=lambda: datetime(2024, 1, 1, 0, 0))
    assert any("clock went back" in p for p in s.problems)
    assert issue(s, now=datetime(2024, 1, 1, 0, 1)).ticket == "HT-002"
    s.close()


def test_accepting_the_clock_after_a_jump_forward_numbers_today_again_above_todays_numbers(tmp_path):
    s = open_store(tmp_path / "d")
    morning = [issue(s, now=datetime(2026, 11, 27, 9, m)) for m in range(3)]        # HT-001..003 today
    issue(s, "dat-dai", "DD", now=datetime(2026, 11, 27, 9, 5))
    ahead = [issue(s, now=datetime(2099, 1, 1, 9, m)) for m in range(2)]            # NTP answered 2099
    assert [v.service_day for v in ahead] == [date(2099, 1, 1)] * 2
    stuck = issue(s, now=datetime(2026, 11, 27, 10, 0))                              # clock right again...
    assert stuck.service_day == date(2099, 1, 1) and stuck.number == 3               # ...numbering is not
    s.close()

    s = open_store(tmp_path / "d", clock=lambda: datetime(2026, 11, 27, 10, 30))
    assert s.accept_clock(datetime(2026, 11, 27, 10, 30)) == ClockRepair(
        was_latest=datetime(2099, 1, 1, 9, 1), was_day=date(2099, 1, 1), day=date(2026, 11, 27),
        continues_after={"dat-dai": 1, "ho-tich": 3}, future_visits=3)
    assert s.accept_clock(datetime(2026, 11, 27, 10, 31)) is None                    # nothing left to repair
    after = issue(s, now=datetime(2026, 11, 27, 10, 32))
    assert (after.ticket, after.service_day) == ("HT-004", date(2026, 11, 27))       # above this morning's
    assert issue(s, "dat-dai", "DD", now=datetime(2026, 11, 27, 10, 33)).ticket == "DD-002"
    assert s.problems == []
    s.close()

    s = open_store(tmp_path / "d", clock=lambda: datetime(2026, 11, 27, 11, 0))      # it stays repaired
    assert s.problems == [] and s.numbering_day == date(2026, 11, 27)
    assert issue(s, now=datetime(2026, 11, 27, 11, 0)).ticket == "HT-005"
    kept = {v.id: v for v in s.visits()}
    assert all(v.id in kept for v in morning + ahead + [stuck])                     # nothing deleted
    hot = JournalStorage(tmp_path / "d" / HOT_FILE, readonly=True).peek()["visits"].values()
    assert not any(d["service_day"] > "2026-11-27" for d in hot)                     # archived to their month
    s.close()

    s = open_store(tmp_path / "d", clock=lambda: datetime(2099, 1, 1, 8, 0))         # when that day really comes
    assert issue(s, now=datetime(2099, 1, 1, 8, 0)).ticket == "HT-004"               # no repeat on that day either
    s.close()


def test_accepting_the_clock_is_refused_read_only_and_a_no_op_when_it_is_not_behind(tmp_path):
    s = open_store(tmp_path / "d")
    issue(s, now=datetime(2026, 11, 27, 9, 0))
    assert s.accept_clock(datetime(2026, 11, 27, 9, 1)) is None
    s.close()
    r = Store.open_readonly(tmp_path / "d")
    with pytest.raises(StoreError):
        r.accept_clock(datetime(2026, 11, 27, 9, 0))
    r.close()


def _jumped_ahead(folder) -> datetime:
    """A store with HT-001 today and HT-001 of 2099 (the clock ran ahead); returns the right time now."""
    s = open_store(folder)
    issue(s, now=datetime(2026, 11, 27, 9, 0))
    issue(s, now=datetime(2099, 1, 1, 9, 0))
    s.close()
    return datetime(2026, 11, 27, 10, 0)


def test_accepting_the_clock_cut_short_after_the_hot_file_leaves_the_safe_old_state(tmp_path, monkeypatch):
    from kiosk.storage import StorageError

    today = _jumped_ahead(tmp_path / "d")
    s = open_store(tmp_path / "d", clock=lambda: today)

    def power_cut(marks):
        raise StorageError("numbers.bin: write failed")
    monkeypatch.setattr(s._numbers, "write", power_cut)          # the hot file is written, numbers.bin is not
    with pytest.raises(StoreError, match="clock not accepted"):
        s.accept_clock(today)
    s.close()
    monkeypatch.undo()
    s = open_store(tmp_path / "d", clock=lambda: today)
    assert s.numbering_day == date(2099, 1, 1)                     # still the old state: nothing repeats
    assert s.accept_clock(today).continues_after == {"ho-tich": 1}  # and the repair simply runs again
    assert issue(s, now=today).ticket == "HT-002"
    s.close()


def test_kiosk_clock_tells_the_technician_then_accepts_the_clock_only_with_the_lock(tmp_path, capsys):
    from kiosk.__main__ import main
    from kiosk.config import SIMULATION_CONFIG
    from kiosk.cli_store import clock_command

    today = _jumped_ahead(tmp_path / "d")
    options = dict(kiosk_id="k1", day_start_hour=6, now=today)

    assert clock_command(tmp_path / "d", accept=False, **options) == 1
    out = capsys.readouterr().out
    assert "numbering stays on service day 2099-01-01" in out and "kiosk clock --accept-now" in out
    assert main(["clock", "--config", str(SIMULATION_CONFIG), "--data", str(tmp_path / "d")]) == 1  # real clock

    running = open_store(tmp_path / "d", clock=lambda: today)
    assert clock_command(tmp_path / "d", accept=True, **options) == 3
    assert "stop the service first" in capsys.readouterr().err
    running.close()

    assert clock_command(tmp_path / "d", accept=True, **options) == 0
    assert ("accepted: numbering moves from service day 2099-01-01 back to 2026-11-27 (ho-tich after 1); "
            "1 visit(s)") in capsys.readouterr().out
    assert clock_command(tmp_path / "d", accept=False, **options) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert clock_command(tmp_path / "missing", accept=False, **options) == 2


# ------------------------------------------------------------------------------------------- start-up repair
def _filled(tmp_path, n=25):
    """A data folder with tickets of 3 days, citizens and templates; returns (folder, tickets issued)."""
    folder = tmp_path / "filled"
    s = open_store(folder)
    rng = np.random.default_rng(1)
    citizens = [s.enrol(rng.random((3, 128), dtype=np.float32), now=T0, consent_text=CONSENT) for _ in range(4)]
    issued = []
    for i in range(n):
        now = T0 + timedelta(hours=2 * i)
        v = issue(s, now=now, citizen_id=citizens[i % 4].id if i % 3 else None)
        s.mark_printed(v.id, i % 5 != 0)
        issued.append(v)
    s.forget(citizens[0].id, now=T0 + timedelta(days=2))
    s.close()
    return folder, issued


def _next_is_new(folder, issued):
    """Reopen; the store must work and the next number of the last day must be above all issued there."""
    s = open_store(folder)
    last_day = issued[-1].service_day
    v = issue(s, now=issued[-1].issued_at + timedelta(minutes=1))
    taken = [x.number for x in issued if x.service_day == last_day and x.category == "ho-tich"]
    assert v.service_day == last_day and v.number > max(taken)
    ids, matrix = s.templates()
    assert matrix.shape == (len(ids), 128)
    assert all(s.citizen(i) is not None for i in set(ids))
    return s


CORRUPTIBLE = [HOT_FILE, CITIZENS_DIR, TEMPLATES_FILE, NUMBERS_FILE, "audit.jsonl", f"{ARCHIVE_DIR}/2026-11.jsonl"]


def _file(folder, name):
    """The file to damage; for the citizens folder, its biggest shard."""
    path = folder / name
    return max(path.iterdir(), key=lambda p: p.stat().st_size) if path.is_dir() else path


@pytest.mark.parametrize("name", CORRUPTIBLE)
def test_truncated_file_at_random_offsets(tmp_path, name):
    folder, issued = _filled(tmp_path)
    name = _file(folder, name).relative_to(folder)
    original = (folder / name).read_bytes()
    rng = random.Random(str(name))
    for cut in rng.sample(range(len(original)), 8):
        work = tmp_path / f"cut{cut}"
        shutil.copytree(folder, work)
        (work / name).write_bytes(original[:cut])
        open_store(work).close()
        _assert_nothing_deleted(work / name, original[:cut])
        _next_is_new(work, issued).close()


def _assert_nothing_deleted(path, before):
    """The bytes a repair removed from ``path`` are in a ``.torn-`` or ``.corrupt-`` file beside it."""
    now = path.read_bytes() if path.exists() else b""
    torn = b"".join(p.read_bytes() for p in path.parent.glob(path.name + ".torn-*"))
    corrupt = [p.read_bytes() for p in path.parent.glob(path.name + ".corrupt-*")]
    kept = len(before) - len(torn)
    assert now.startswith(before) or before in corrupt or (
        torn and now[:kept] == before[:kept] and before[kept:] == torn)


@pytest.mark.parametrize("name", CORRUPTIBLE)
def test_garbage_file_is_set_aside_and_kiosk_keeps_issuing(tmp_path, name, caplog):
    folder, issued = _filled(tmp_path)
    name = str(_file(folder, name).relative_to(folder))
    junk = random.Random(name).randbytes((folder / name).stat().st_size)
    (folder / name).write_bytes(junk)
    with caplog.at_level(logging.WARNING, logger="kiosk.store"):
        s = open_store(folder)
    assert s.problems, "the technician must be told"
    assert any(name.split("/")[-1] in r.message for r in caplog.records)
    s.close()
    _assert_nothing_deleted(folder / name, junk)
    assert not (folder / name).exists() or not (folder / name).read_bytes().startswith(junk)
    _next_is_new(folder, issued).close()
    s = open_store(folder)  # once repaired, the next start is clean
    assert [p for p in s.problems if "clock" not in p] == []
    s.close()


def test_leftovers_of_interrupted_atomic_writes_are_removed(tmp_path):
    folder, issued = _filled(tmp_path)
    leftovers = [folder / ".hot.jsonl.tmp-99-abcd", folder / CITIZENS_DIR / ".00.jsonl.tmp-99-abcd"]
    for p in leftovers:
        p.write_bytes(b"half a snapshot")
    _next_is_new(folder, issued).close()
    assert not any(p.exists() for p in leftovers)


def test_lost_hot_file_numbers_continue_from_numbers_bin(tmp_path):
    folder, issued = _filled(tmp_path)
    (folder / HOT_FILE).unlink()
    s = _next_is_new(folder, issued)
    assert any("tickets are missing" in p for p in s.problems)
    s.close()


def test_crashes_between_taking_and_saving_a_number_skip_it_quietly(tmp_path):
    from kiosk.storage import SlotFile

    def crash_after_taking(number):  # numbers.bin written, the kiosk dies before the visit is saved
        slots = SlotFile(tmp_path / "d" / NUMBERS_FILE)
        slots.read()
        slots.write({"day": "2026-11-27", "last": {"ho-tich": number}, "latest": T0.isoformat()})
        slots.close()

    s = open_store(tmp_path / "d")
    for i in range(3):
        issue(s, now=T0 + timedelta(minutes=i))
    s.close()
    crash_after_taking(4)
    open_store(tmp_path / "d").close()  # start, then a second crash in the same window
    crash_after_taking(5)
    s = open_store(tmp_path / "d")
    assert [p for p in s.problems if "clock" not in p] == []  # nothing was lost: no alarm
    assert issue(s, now=T0 + timedelta(minutes=5)).number == 6
    s.close()
    crash_after_taking(9)  # numbers 7..9 taken but their visits are gone: real loss, reported
    s = open_store(tmp_path / "d")
    assert any("tickets are missing (ho-tich up to 9" in p for p in s.problems)
    assert issue(s, now=T0 + timedelta(minutes=6)).number == 10
    s.close()


def test_hot_file_cut_at_a_record_boundary_is_noticed(tmp_path):
    folder, issued = _filled(tmp_path)
    lines = (folder / HOT_FILE).read_bytes().split(b"\n")
    (folder / HOT_FILE).write_bytes(b"\n".join(lines[:-5]) + b"\n")  # looks like a clean, shorter journal
    assert issued[-2].service_day == issued[-1].service_day  # two tickets of that day are cut off
    s = _next_is_new(folder, issued)
    assert any("tickets are missing" in p for p in s.problems)
    s.close()


# ------------------------------------------------------------------------------------------- one writer
def test_second_store_on_the_same_folder_is_refused(store, tmp_path):
    with pytest.raises(StoreLocked, match=f"{tmp_path / 'data'}.*pid {os.getpid()}"):
        open_store(tmp_path / "data")
    issue(store)  # the first one is undisturbed


def test_second_process_is_refused_with_a_clear_message(store, tmp_path):
    code = ("import sys; from kiosk.store import Store, StoreLocked\n"
            "try:\n    Store.open(sys.argv[1], kiosk_id='k2')\n"
            "except StoreLocked as e:\n    print(e); sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data")], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert proc.returncode == 3, proc.stderr
    assert str(tmp_path / "data") in proc.stdout and f"pid {os.getpid()}" in proc.stdout


def test_lock_is_released_on_close(tmp_path):
    open_store(tmp_path / "d").close()
    open_store(tmp_path / "d").close()


def test_readonly_store_refuses_writes(store, tmp_path):
    reader = Store.open_readonly(tmp_path / "data")
    with pytest.raises(StoreError, match="read-only"):
        issue(reader)
    reader.close()


# ------------------------------------------------------------------------------------------- citizens
def test_enrol_templates_touch_forget(store, tmp_path):
    rng = np.random.default_rng(0)
    enc = rng.random((4, 128), dtype=np.float32)
    c = store.enrol(enc, now=T0, consent_text=CONSENT)
    other = store.enrol(rng.random((2, 128), dtype=np.float32), now=T0, consent_text=CONSENT)
    ids, matrix = store.templates()
    assert ids == [c.id] * 4 + [other.id] * 2 and np.array_equal(matrix[:4], enc)
    store.touch(c.id, T0 + timedelta(days=1))
    assert store.citizen(c.id).last_seen == T0 + timedelta(days=1)
    assert [r["text"] for r in store.consents()] == [CONSENT, CONSENT]
    store.forget(c.id, now=T0 + timedelta(days=2))
    assert store.citizen(c.id) is None
    assert store.templates()[0] == [other.id] * 2
    assert enc[0].tobytes() not in (tmp_path / "data" / TEMPLATES_FILE).read_bytes()
    receipt = store.receipts()[0]
    assert receipt["citizen"] == c.id and receipt["templates_deleted"] == 4 and receipt["consent_id"] == c.consent_id
    store.forget(c.id, now=T0)  # twice is harmless
    with pytest.raises(StoreError, match="unknown citizen"):
        store.forget("00" * 16, now=T0)


def test_templates_after_reopen_match_their_citizens(tmp_path):
    """The matrix loaded by the start-up check is handed over row-aligned with the ids."""
    rng = np.random.default_rng(7)
    enrolled = {}
    with open_store(tmp_path / "d") as s:
        for _ in range(12):
            enc = rng.random((3, 128), dtype=np.float32)
            enrolled[s.enrol(enc, now=T0, consent_text=CONSENT).id] = enc
        gone = next(iter(enrolled))
        s.forget(gone, now=T0)
        del enrolled[gone]
    with open_store(tmp_path / "d") as s:
        ids, matrix = s.templates()
        again = s.templates()  # later calls read the file: the same answer
    assert sorted(set(ids)) == sorted(enrolled) and len(ids) == 33
    for row, cid in zip(matrix, ids):
        assert any(np.array_equal(row, e) for e in enrolled[cid])
    assert again[0] == ids and np.array_equal(again[1], matrix)


def test_enrol_rejects_bad_input(store):
    with pytest.raises(ValueError, match="k x 128"):
        store.enrol(np.zeros((2, 127)), now=T0, consent_text=CONSENT)
    with pytest.raises(ValueError, match="consent"):
        store.enrol(np.zeros((1, 128)), now=T0, consent_text=" ")
    assert store.templates()[0] == []


def test_templates_without_a_citizen_are_wiped_at_start(tmp_path):
    s = open_store(tmp_path / "d")
    enc = np.random.default_rng(3).random((2, 128), dtype=np.float32)
    s._templates.append(b"\x01" * 16, enc)  # as if a crash lost the citizen record
    s.close()
    s = open_store(tmp_path / "d")
    assert s.templates()[0] == []
    assert enc[0].tobytes() not in (tmp_path / "d" / TEMPLATES_FILE).read_bytes()
    s.close()


# ------------------------------------------------------------------------------------------- kiosk visits
def test_print_visits_json_and_text(tmp_path):
    s = open_store(tmp_path / "d")
    a = issue(s, now=datetime(2026, 11, 26, 9, 0))
    b = issue(s, "dat-dai", "DD", now=datetime(2026, 11, 27, 9, 30), citizen_id="ab" * 16)
    s.mark_printed(b.id, True)
    out = io.StringIO()
    assert print_visits(tmp_path / "d", None, True, out=out) == 0  # while the kiosk holds the lock
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows[1] == {"ticket": "DD-001", "category": "dat-dai", "time": "2026-11-27T09:30:00",
                       "citizen": "ab" * 16, "printed": True, "id": b.id, "kiosk": "k1", "number": 1,
                       "service_day": "2026-11-27", "identified_by": None}
    out = io.StringIO()
    print_visits(tmp_path / "d", date(2026, 11, 27), False, out=out)
    assert "DD-001" in out.getvalue() and a.ticket not in out.getvalue()
    s.close()


def test_print_visits_on_a_folder_without_data(tmp_path, capsys):
    assert print_visits(tmp_path / "nothing", None, True, out=io.StringIO()) == 2
    assert str(tmp_path / "nothing") in capsys.readouterr().err


def test_the_month_files_scan_can_wait_for_a_thread_after_start(tmp_path):
    """check_archives=False (kiosk run): opening skips the full scan; check_archives() finds and sets aside."""
    folder, issued = _filled(tmp_path)
    month = folder / ARCHIVE_DIR / "2026-11.jsonl"
    junk = random.Random(7).randbytes(month.stat().st_size)
    month.write_bytes(junk)
    s = open_store(folder, check_archives=False)
    assert [p for p in s.problems if "clock" not in p] == []         # not read yet
    found = s.check_archives()
    assert found and all("2026-11.jsonl" in p for p in found) and found[0] in s.problems
    s.close()
    _assert_nothing_deleted(month, junk)
    assert not month.exists() or not month.read_bytes().startswith(junk)


def test_how_the_citizen_was_known_is_kept_with_the_visit_for_the_office(tmp_path):
    """identified_by ("card" | "face") travels with the visit (and the export): the office counts it."""
    path = tmp_path / "data"
    with open_store(path) as s:
        card = s.issue_ticket("ho-tich", "HT", citizen_id="c" * 32, now=T0, identified_by="card")
        plain = s.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0, identified_by="face")
    assert card.identified_by == "card" and plain.identified_by is None     # no citizen, no "how"
    with Store.open_readonly(path) as s:
        by_id = {v.id: v.to_json() for v in s.visits()}
    assert by_id[card.id]["identified_by"] == "card" and by_id[plain.id]["identified_by"] is None
