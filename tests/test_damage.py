"""Every loss is proven and reported (issue 15, item 1): an emptied, cut or older file is set aside, never
deleted; the report names the file and how many records were lost; a checksum is never rewritten to match
damage without saying so; a crash between a write and its sidecar is no loss."""
from datetime import datetime, timedelta

import numpy as np
import pytest

from kiosk.datakey import DataKey
from kiosk.storage import JournalStorage
from kiosk.storage.files import _Appender
from kiosk.store import Store
from kiosk.store_base import CITIZEN_SHARDS

KEY = DataKey(bytes(range(32)))
T0 = datetime(2026, 11, 2, 9, 0)


def open_store(folder, now=T0):
    return Store.open(folder, kiosk_id="k-01", clock=lambda: now, key=KEY)


@pytest.fixture
def folder(tmp_path):
    """7 citizens with 3 templates each; 20 visits on 1 and 2 October, archived in visits/2026-10.jsonl."""
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    with open_store(data) as s:
        for _ in range(7):
            s.enrol(rng.random((3, 128), dtype=np.float32), now=T0, consent_text="Đồng ý")
        for day in (datetime(2026, 10, 1, 9), datetime(2026, 10, 2, 9)):
            for m in range(10):
                s.issue_ticket("ho-tich", "HT", citizen_id=None, now=day + timedelta(minutes=m))
        s.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0)            # moves October to its month file
    return data


def kept(path, label="corrupt"):
    return sorted(path.parent.glob(f"{path.name}.{label}-*"))


def test_an_emptied_templates_file_is_reported_with_the_templates_lost_and_kept(folder):
    path = folder / "templates.bin"
    size = path.stat().st_size
    path.write_bytes(b"")
    with open_store(folder) as s:
        assert any("templates.bin: 21 template record(s) lost" in p and "set aside" in p for p in s.problems)
        assert "templates.bin: 7 citizen(s) left without a face template by the loss" in s.problems
        assert s.templates()[0] == []
    assert kept(path) and kept(folder / "templates.sum")[0].read_bytes()  # the proof: the sidecar as it was
    assert f'"size":{size}' in kept(folder / "templates.sum")[0].read_text()
    with open_store(folder) as s:                                    # said once: the next start is quiet
        assert not [p for p in s.problems if "templates.bin" in p]


def test_an_emptied_citizens_shard_is_reported_with_the_citizens_lost(folder):
    with open_store(folder) as s:
        sizes = {s._shard(k)[0].path: len(s._shard(k)[0].peek().get("citizens", {})) for k in range(CITIZEN_SHARDS)}
    path, count = max(sizes.items(), key=lambda item: item[1])      # (shards are parsed on demand since the roster)
    path.write_bytes(b"")
    with open_store(folder) as s:
        lost = [p for p in s.problems if p.startswith(f"citizens/{path.name}")]
        assert lost and f"citizens: 0 of {count}" in lost[0] and "set aside" in lost[0]
        orphans = [p for p in s.problems if "templates.bin" in p]    # their faces: kept aside, not wiped
        assert orphans and f"{3 * count} template(s)" in orphans[0]
    assert kept(path) and kept(folder / "templates.bin", "orphans")


@pytest.mark.parametrize("cut", [0, "half", "older"])
def test_a_short_month_file_is_a_proven_loss_and_its_sum_is_kept(folder, cut):
    path = folder / "visits" / "2026-10.jsonl"
    data = path.read_bytes()
    if cut == "older":
        path.write_bytes(b"".join(line + b"\n" for line in data.split(b"\n")[:12]))
        expected = "8 of 20 record(s) lost"
    elif cut == "half":
        path.write_bytes(data[:len(data) // 2])
        expected = "of 20 record(s) lost"
    else:
        path.write_bytes(b"")
        expected = "20 of 20 record(s) lost"
    with open_store(folder) as s:
        reports = [p for p in s.problems if "2026-10.jsonl" in p]
        assert reports and expected in reports[0] and "set aside as 2026-10.jsonl.corrupt-" in reports[0]
        assert "incomplete last record" not in reports[0]            # a cut is no power cut: the .sum proves it
    assert kept(path)[0].read_bytes() == path.read_bytes() or cut == "half"
    assert f'"size":{len(data)}' in kept(path.with_suffix(".sum"))[0].read_text()


def test_a_deleted_month_file_is_reported_too(folder):
    (folder / "visits" / "2026-10.jsonl").unlink()
    with open_store(folder) as s:
        assert any("2026-10.jsonl: 20 of 20 record(s) lost" in p and "missing" in p for p in s.problems)


def test_numbers_bin_emptied_or_older_reaches_staff_and_is_written_again(folder):
    numbers = folder / "numbers.bin"
    older = numbers.read_bytes()
    with open_store(folder, T0 + timedelta(minutes=5)) as s:
        s.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0 + timedelta(minutes=5))
    numbers.write_bytes(older)
    with open_store(folder, T0 + timedelta(minutes=6)) as s:
        assert any(p.startswith("numbers.bin: older than hot.jsonl") for p in s.problems)
        assert s.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0 + timedelta(minutes=6)).number == 3
    numbers.write_bytes(b"")
    with open_store(folder, T0 + timedelta(minutes=7)) as s:
        assert any(p.startswith("numbers.bin: emptied or missing") for p in s.problems)
    with open_store(folder, T0 + timedelta(minutes=8)) as s:
        assert not [p for p in s.problems if "numbers.bin" in p]     # written again: quiet from then on


def test_yesterdays_visits_in_the_hot_file_are_proven_too(tmp_path):
    data = tmp_path / "d"
    with open_store(data) as s:
        for m in range(4):
            s.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0 + timedelta(minutes=m))
        s.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0 + timedelta(days=1))
    (data / "hot.jsonl").write_bytes(b"")
    with open_store(data, T0 + timedelta(days=1, hours=1)) as s:
        report = [p for p in s.problems if p.startswith("hot.jsonl: tickets are missing")][0]
        assert "ho-tich up to 4 on 2026-11-02: 4 visit(s) lost" in report and "set aside" in report


def test_a_crash_between_the_count_sidecar_and_the_append_is_no_loss(tmp_path, monkeypatch):
    path = tmp_path / "00.jsonl"
    storage = JournalStorage(path, guard=True)
    storage.apply({"citizens": {"1": {"id": "a"}, "2": {"id": "b"}}})

    def power_cut(self, data):
        raise SystemExit("power cut")

    monkeypatch.setattr(_Appender, "append", power_cut)
    with pytest.raises(SystemExit):
        storage.apply(dels={"citizens": ["1"]})       # the sidecar's first step is on disk, the deletion is not
    monkeypatch.undo()
    again = JournalStorage(path, guard=True)
    assert again.problems == [] and not again.damaged and len(again.peek()["citizens"]) == 2
    again.apply(dels={"citizens": ["1"]})
    again.close()
    path.write_bytes(b"")
    emptied = JournalStorage(path, guard=True)
    assert emptied.damaged and "1 record(s) lost (citizens: 0 of 1)" in emptied.problems[0]
    assert "set aside as 00.jsonl.corrupt-" in emptied.problems[0]


def test_a_template_rewrite_writes_its_sum_first(folder, monkeypatch):
    """Compaction replaces templates.bin by a shorter file: a crash before the rename must not look like a loss."""
    import kiosk.storage.records as records

    with open_store(folder) as s:
        templates = s._templates
        rows = s._tpl_rows
        real = records.atomic_write

        def crash(path, data):
            if path.name == "templates.bin":
                raise SystemExit("power cut")
            real(path, data)

        monkeypatch.setattr(records, "atomic_write", crash)
        with pytest.raises(SystemExit):
            templates.compact(rows[:3])
        monkeypatch.setattr(records, "atomic_write", real)
    with open_store(folder) as s:
        assert not [p for p in s.problems if "templates" in p] and len(s.templates()[0]) == 21


@pytest.mark.parametrize("crash_at", ["before the rename", "after the rename"])
def test_sealing_a_clear_templates_file_grows_it_and_a_crash_claims_no_loss(tmp_path, monkeypatch, crash_at):
    """Sealed records are longer than clear ones: the .sum follows the rename, so a kill on either side of it
    leaves a file at least as long as its .sum says."""
    import kiosk.storage.records as records

    data = tmp_path / "data"
    rng = np.random.default_rng(1)
    with Store.open(data, kiosk_id="k-01", clock=lambda: T0) as s:      # an older kiosk: no key, clear templates
        for _ in range(3):
            s.enrol(rng.random((2, 128), dtype=np.float32), now=T0, consent_text="Đồng ý")
    real_write, real_sum = records.atomic_write, records.write_checksum

    def crash_write(path, data):
        if path.name == "templates.bin" and crash_at == "before the rename":
            raise SystemExit("power cut")
        real_write(path, data)

    def crash_sum(path, *args):
        if path.name == "templates.bin" and args and crash_at == "after the rename":
            raise SystemExit("power cut")
        real_sum(path, *args)

    monkeypatch.setattr(records, "atomic_write", crash_write)
    monkeypatch.setattr(records, "write_checksum", crash_sum)
    with pytest.raises(SystemExit):
        open_store(data)
    monkeypatch.undo()
    with open_store(data) as s:
        assert not [p for p in s.problems if "lost" in p] and len(s.templates()[0]) == 6


def test_a_loss_found_by_the_running_kiosk_is_a_staff_notice(tmp_path):
    """The kiosk checks the month files on a thread after READY; what it proves lost reaches the screen."""
    from kiosk.app import build_kiosk
    from kiosk.loop import FakeClock
    from test_kiosk import sim_config

    config = sim_config(tmp_path)
    kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True)
    for day in (1, 2):
        kiosk.store.issue_ticket("ho-tich", "HT", citizen_id=None, now=datetime(2026, 10, day, 9))
    kiosk.store.issue_ticket("ho-tich", "HT", citizen_id=None, now=datetime(2026, 11, 2, 9))
    kiosk.close()
    (config.data_dir / "visits" / "2026-10.jsonl").write_bytes(b"")
    kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True, defer_archive_check=True)
    try:
        assert "2026-10.jsonl" not in (kiosk.loop.machine.view.notice or "")     # not checked before READY
        kiosk.archives.start()
        kiosk.archives.close()                                                  # (joins the check's thread)
        kiosk.loop.step()
        assert "2026-10.jsonl: 2 of 2 record(s) lost" in (kiosk.loop.machine.view.notice or "")
    finally:
        kiosk.close()
