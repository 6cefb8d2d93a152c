"""Low disk space: staff hear of it early, once per change, on screen and in the journal."""
import dataclasses
import logging
import os
import queue
from types import SimpleNamespace

from fakes import Clock, Services
from test_kiosk import sim_config
from kiosk.disk import MB, DiskWatch, free_bytes
from kiosk.loop import EventLoop
from kiosk.states import KioskMachine
from kiosk.visit import ButtonPressed
from kiosk.views import CategoryChoice, FailsafeView, IdleView


class FakeDisk:
    """Stands in for os.statvfs: ``free_mb`` is what an unprivileged user may still write."""

    def __init__(self, free_mb, total_mb=16_000):
        self.free_mb = free_mb
        self.total_mb = total_mb
        self.calls = 0

    def __call__(self, path):
        self.calls += 1
        return SimpleNamespace(f_frsize=4096, f_bavail=self.free_mb * MB // 4096, f_blocks=self.total_mb * MB // 4096)


def test_free_bytes_reads_the_nearest_existing_folder(tmp_path):
    seen = []
    disk = FakeDisk(500)
    free, total = free_bytes(tmp_path / "not" / "yet", lambda p: seen.append(p) or disk(p))
    assert (free, total) == (500 * MB, 16_000 * MB) and seen == [tmp_path]
    assert free_bytes(tmp_path)[0] > 0                                 # the real statvfs


def test_low_space_is_a_notice_and_one_journal_line_per_change(tmp_path, caplog):
    caplog.set_level(logging.INFO, "kiosk.disk")
    clock, disk = Clock(), FakeDisk(1000)
    watch = DiskWatch(tmp_path, min_free_mb=200, clock=clock, statvfs=disk)
    watch.poll()
    assert watch.notice is None and not caplog.records
    disk.free_mb = 150
    for _ in range(5):                                                 # five minutes low: one warning
        clock.t += 60
        watch.poll()
    assert watch.notice.startswith("Sắp hết bộ nhớ: còn 150 MB")
    assert "\nDisk almost full: 150 MB free in" in watch.notice
    assert "warning below 200 MB" in watch.notice
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "only 150 MB free" in caplog.records[0].getMessage()
    disk.free_mb = 5000
    clock.t += 60
    watch.poll()
    assert watch.notice is None
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]


def test_the_disk_is_read_once_a_minute_unless_forced(tmp_path):
    clock, disk = Clock(), FakeDisk(1000)
    watch = DiskWatch(tmp_path, min_free_mb=200, clock=clock, statvfs=disk)
    for _ in range(4800):                                              # ten minutes of turns, 8 a second
        watch.poll()
        clock.t += 0.125
    assert disk.calls == 10 and watch.next_due == 600.0
    watch.poll(force=True)
    assert disk.calls == 11


def test_a_failed_ticket_looks_at_the_disk_at_once_and_idle_then_says_why(tmp_path):
    clock, disk = Clock(), FakeDisk(1000)
    watch = DiskWatch(tmp_path, min_free_mb=200, clock=clock, statvfs=disk)

    class DiskServices(Services):
        def notice(self):
            return watch.notice

    services = DiskServices()
    machine = KioskMachine(office="UBND", categories=(CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),),
                           services=services, clock=clock)
    loop = EventLoop(machine=machine, events=queue.Queue(), clock=clock, disk=watch)
    loop.step()
    assert disk.calls == 1
    disk.free_mb = 0
    services.fail_issue = True                                         # OSError("disk full") from the store
    loop.events.put(ButtonPressed("ho-tich"))
    clock.t += 1
    loop.step()
    assert isinstance(machine.view, FailsafeView) and disk.calls == 2  # not a minute later
    clock.t += 5
    loop.step()
    assert isinstance(machine.view, IdleView) and "0 MB free" in machine.view.notice


def test_the_running_kiosk_warns_staff_at_start(tmp_path, monkeypatch):
    from kiosk.app import build_kiosk
    from kiosk.config import SIMULATION_CONFIG, load_config
    from kiosk.loop import FakeClock

    config = load_config(SIMULATION_CONFIG)
    config = dataclasses.replace(config, data_dir=tmp_path / "data", min_free_mb=300, printer=dataclasses.replace(
        config.printer, out_dir=str(tmp_path / "printed")))
    monkeypatch.setattr(os, "statvfs", FakeDisk(120))
    kiosk = build_kiosk(config, clock=FakeClock(), sync=True, use_gpio=False)
    try:
        notice = kiosk.loop.machine.view.notice
        assert "Disk almost full: 120 MB free" in notice and "below 300 MB" in notice
    finally:
        kiosk.close()


def test_a_full_disk_at_the_kiosk_is_said_to_citizens_and_staff_and_damages_nothing(tmp_path, monkeypatch):
    """ENOSPC while a ticket is saved: the citizen reads that the storage is full (Vietnamese first), staff get a
    notice until a ticket is saved again, the kiosk keeps trying, and every file opens clean afterwards."""
    import errno

    import kiosk.storage.files as files
    from kiosk.app import build_kiosk
    from kiosk.loop import FakeClock
    from kiosk.store import Store
    from kiosk.views import DoneView

    config = sim_config(tmp_path)
    clock = FakeClock()
    kiosk = build_kiosk(config, clock=clock, sync=True, use_gpio=False)
    loop, real_write = kiosk.loop, files._write_all

    def ticket() -> object:
        loop.events.put(ButtonPressed("ho-tich"))
        loop.step()
        loop.step()
        return loop.machine.view

    def full(fd, data):
        real_write(fd, data[:len(data) // 2])                       # half of it reaches the disk, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    try:
        assert ticket().ticket == "HT-001"
        clock.advance(config.timing.done_seconds)
        loop.step()
        monkeypatch.setattr(files, "_write_all", full)
        for _ in range(2):                                           # it keeps trying, and says so each time
            view = ticket()
            assert isinstance(view, FailsafeView) and view.disk_full and "No space left" in view.reason
            clock.advance(config.timing.failsafe_seconds)
            loop.step()
            notice = loop.machine.view.notice
            assert isinstance(loop.machine.view, IdleView) and notice.startswith("Bộ nhớ đầy")
            assert "Disk full: a ticket could not be saved" in notice
        monkeypatch.setattr(files, "_write_all", real_write)       # space freed
        view = ticket()
        assert isinstance(view, DoneView) and view.ticket not in ("HT-001",)
        clock.advance(config.timing.done_seconds)
        loop.step()
        assert "Bộ nhớ đầy" not in (loop.machine.view.notice or "")
    finally:
        kiosk.close()
    with Store.open(tmp_path / "data", kiosk_id="k") as store:     # nothing damaged, nothing repeated
        assert store.problems == [] and store.repairs == []
        tickets = [v.ticket for v in store.visits()]
        assert tickets[0] == "HT-001" and len(tickets) == 2 and len(set(tickets)) == 2


def test_the_disk_full_screen_speaks_plainly(tmp_path):
    from kiosk.screen_views import DISK_FULL_LINES

    texts = [line.text for line in DISK_FULL_LINES]
    assert texts[0].startswith("Xin lỗi! Bộ nhớ") and "full" in texts[1] and "nhân viên" in texts[2]
