"""The hot-plug path (kiosk/stickwatch.py): a stick is mounted through udisks2 (faked on a private D-Bus), the
real ``kiosk export`` / ``kiosk import`` run as child processes, then unmount and power-off; the banner the
screen draws over any view; and tickets keep coming while a child is still running."""
import logging
import queue
import shutil
import sys
import textwrap
import time

import pytest
from fake_udisks import DEVICE, NOT_AUTHORIZED, private_bus, udisks  # noqa: F401  (fixtures)
from fakes import Clock, Services
from synckit import Office, make_kiosk

from hardware.usb import FolderSticks, Stick, StickEvent, UDisks2
from kiosk.loop import EventLoop
from kiosk.states import KioskMachine
from kiosk.visit import ButtonPressed
from kiosk.stickwatch import ChildCommand, StickWatch, follow, outcome
from kiosk.views import CategoryChoice, DoneView, IdleView, SyncBanner

CATEGORIES = (CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),)


def watch_for(mounter, command, banners=None, clock=None):
    watch = StickWatch(mounter, command, clock=clock or Clock())
    if banners is not None:
        watch.on_change = lambda: banners.append(watch.poll())
    return watch


def plug(watch, device=DEVICE, count=1, timeout=180):
    watch.event(StickEvent("added", Stick(device)))
    assert watch.wait_finished(count, timeout), "the stick was not handled in time"
    return watch.poll()


@pytest.fixture
def k(tmp_path):
    kiosk = make_kiosk(tmp_path)
    kiosk.issue(3)
    return kiosk


def kiosk_command(k):
    return ChildCommand.kiosk("--config", str(k.config))


# --------------------------------------------------------------------------------------- through udisks2
def test_a_kiosk_stick_is_mounted_exported_unmounted_and_powered_off(k, udisks):
    stick = udisks.state.folder
    (stick / "kiosk-sync").mkdir()
    banners = []
    watch = watch_for(UDisks2(bus_address=udisks.address, timeout=10), kiosk_command(k), banners)
    try:
        final = plug(watch)
    finally:
        watch.close()
    assert final.stage == "done", final
    assert final.progress == 1.0 and final.counts.startswith("3 visits")
    members = [m for m, _ in udisks.state.calls if m != "ResolveDevice"]
    assert members == ["Mount", "Unmount", "PowerOff"]
    assert not udisks.state.mounted and not udisks.state.powered
    assert Office(k).ingest(stick) == [1]                       # the office reads what the child wrote
    steps = [b.step for b in banners if b is not None and b.stage == "working"]
    assert steps[0] == "mount" and "export" in steps and "import" in steps and steps[-1] == "unmount"
    writing = [b for b in banners if b is not None and b.to_write]
    assert writing and writing[-1].written == writing[-1].to_write == 1
    progress = [b.progress for b in banners if b is not None]
    assert progress == sorted(progress)                          # the bar never goes back


def test_a_stick_without_kiosk_sync_is_left_alone(k, udisks, caplog):
    caplog.set_level(logging.INFO, "kiosk.usb")
    stick = udisks.state.folder
    (stick / "photos").mkdir()
    watch = watch_for(UDisks2(bus_address=udisks.address, timeout=10), kiosk_command(k))
    try:
        final = plug(watch, timeout=30)
    finally:
        watch.close()
    assert final.stage == "not_kiosk"
    assert sorted(p.name for p in stick.iterdir()) == ["photos"]        # nothing written to it
    members = [m for m, _ in udisks.state.calls if m != "ResolveDevice"]
    assert members == ["Mount", "Unmount"]                              # unmounted, not powered off
    assert "not a kiosk stick, left alone" in caplog.text


def test_a_link_named_kiosk_sync_is_not_a_kiosk_stick(k, udisks, tmp_path):
    (udisks.state.folder / "kiosk-sync").symlink_to(tmp_path)
    watch = watch_for(UDisks2(bus_address=udisks.address, timeout=10), kiosk_command(k))
    try:
        assert plug(watch, timeout=30).stage == "not_kiosk"
    finally:
        watch.close()


def test_a_mount_refused_by_polkit_is_a_clear_message_on_screen_and_in_the_journal(k, udisks, caplog):
    udisks.state.refuse_mount = (NOT_AUTHORIZED, "Not authorized to perform operation")
    watch = watch_for(UDisks2(bus_address=udisks.address, timeout=10), kiosk_command(k))
    try:
        final = plug(watch, timeout=30)
    finally:
        watch.close()
    assert final.stage == "error" and final.detail.startswith(f"not authorised to mount {DEVICE}")
    assert f"not authorised to mount {DEVICE}" in caplog.text
    assert [m for m, _ in udisks.state.calls if m != "ResolveDevice"] == ["Mount"]


# ------------------------------------------------------------------------------------- any stick, any fault
def test_an_export_the_stick_refuses_is_its_one_line_and_the_stick_still_goes_off(k, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    sticks_root = tmp_path / "sticks"
    stick = sticks_root / "s1"
    (stick / "kiosk-sync").mkdir(parents=True)
    (stick / "kiosk-sync" / k.kiosk_id).write_text("a file where the kiosk's folder goes")
    folder = FolderSticks(sticks_root, lambda e: None)
    watch = watch_for(folder, kiosk_command(k))
    try:
        final = plug(watch, device=str(stick))
    finally:
        watch.close()
    assert final.stage == "error" and not final.pulled
    assert k.kiosk_id in final.detail and "\n" not in final.detail
    assert f"usb: {stick}: {final.detail}" in caplog.text          # the same line in the journal
    assert f"usb: {stick} unmounted and powered off" in caplog.text


WAITING_CHILD = textwrap.dedent("""
    import pathlib, sys, time
    verb, release = sys.argv[1], pathlib.Path(sys.argv[-1])
    if verb == "import":
        print("the inbox is empty")
        sys.exit(0)
    print("... acknowledged by the office up to bundle 0; reading the kiosk's data", flush=True)
    for _ in range(1200):
        if release.exists():
            break
        time.sleep(0.05)
    print("... bundle 1 made: 2 visits", flush=True)
    print("... writing bundle 1 (1,234 bytes), 1 of 1", flush=True)
    print("... bundle 1 written, read back and verified", flush=True)
""")


@pytest.fixture
def waiting(tmp_path):
    """A stand-in `kiosk export` that waits until the test releases it, and a folder stick for it."""
    script = tmp_path / "child.py"
    script.write_text(WAITING_CHILD)
    release = tmp_path / "release"
    stick = tmp_path / "sticks" / "s1"
    (stick / "kiosk-sync").mkdir(parents=True)
    command = ChildCommand((sys.executable, str(script)), ("--release", str(release)))
    return command, release, stick


def wait_for(predicate, timeout=60):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_tickets_keep_coming_while_the_export_child_runs(waiting):
    command, release, stick = waiting
    clock, services = Clock(), Services()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock)

    class Screen:
        shown = []

        def show(self, view, overlay=None):
            self.shown.append((view, overlay))

        def poll(self):
            return []

    class Notifier:
        lines = []

        def heartbeat(self):
            pass

        def status(self, line):
            self.lines.append(line)

        def next_due(self):
            return None

    screen, notifier = Screen(), Notifier()
    watch = StickWatch(FolderSticks(stick.parent, lambda e: None), command, clock=clock)
    loop = EventLoop(machine=machine, events=queue.Queue(), clock=clock, screen=screen, sticks=watch,
                     notifier=notifier)
    try:
        watch.event(StickEvent("added", Stick(str(stick))))
        wait_for(lambda: (b := watch.poll()) is not None and b.step == "export")
        loop.events.put(ButtonPressed("ho-tich"))
        loop.step()
        assert services.issued == [("ho-tich", None)]           # the ticket, while the export child still waits
        assert not release.exists() and watch.finished == 0
        view, overlay = screen.shown[-1]
        assert isinstance(view, DoneView) and overlay is not None and overlay.stage == "working"
        assert notifier.lines[-1].endswith("; USB stick: export")      # systemctl status says so too
        release.touch()
        assert watch.wait_finished(1, 60)
        assert not loop.events.empty()                            # the stick thread woke the loop
        loop.step()
        assert screen.shown[-1][1].stage == "done" and screen.shown[-1][1].counts == "2 visits"
    finally:
        release.touch()
        watch.close()


def test_a_stick_pulled_out_stops_the_child_and_says_nothing_is_lost(waiting):
    command, release, stick = waiting
    clock = Clock()
    watch = StickWatch(FolderSticks(stick.parent, lambda e: None), command, clock=clock, linger=60)
    try:
        watch.event(StickEvent("added", Stick(str(stick))))
        wait_for(lambda: (b := watch.poll()) is not None and b.step == "export")
        watch.event(StickEvent("removed", Stick(str(stick))))
        assert watch.wait_finished(1, 30)                         # the child was stopped, not waited for
        final = watch.poll()
        assert final.stage == "error" and final.pulled
        assert not release.exists()
        clock.advance(61)
        assert watch.poll() is None                               # a finished banner goes away by itself
    finally:
        release.touch()
        watch.close()


def test_the_done_banner_goes_when_the_stick_is_pulled_out(waiting):
    command, release, stick = waiting
    release.touch()
    watch = StickWatch(FolderSticks(stick.parent, lambda e: None), command, clock=Clock())
    try:
        assert plug(watch, device=str(stick), timeout=60).stage == "done"
        watch.event(StickEvent("removed", Stick(str(stick))))
        assert watch.poll() is None
    finally:
        watch.close()


# ------------------------------------------------------------------------------------------- the wording
def test_progress_lines_and_exit_statuses():
    b = SyncBanner("working", step="export", progress=0.1)
    b = follow(b, "... bundle 4 made: 120 visits, 3 consents")
    assert b.counts == "120 visits, 3 consents" and b.progress == 0.3
    b = follow(b, "... writing bundle 3 (10,000 bytes), 1 of 2")
    assert (b.written, b.to_write) == (0, 2)
    b = follow(b, "... bundle 3 written, read back and verified")
    assert (b.written, b.progress) == (1, 0.55)
    assert follow(b, "note: something") == b
    assert outcome("export", 0, []) is None
    assert outcome("export", 2, ["kiosk export: /m/kiosk-sync: [Errno 30] Read-only file system"]) \
        == "/m/kiosk-sync: [Errno 30] Read-only file system"
    assert "exit status -15" in outcome("export", -15, [])
    assert outcome("import", 0, ["applied:  a.signed: office config written to /var/lib/kiosk/office-config.toml "
                                 "(over /etc/kiosk/kiosk.toml; ...); the kiosk restarts with it when idle"]) \
        == "new config from the office: the kiosk restarts with it when idle"
    assert "see the journal" in outcome("import", 1, ["REJECTED: x.signed: bad signature"])


def test_the_screen_draws_the_banner_over_any_view_and_keeps_the_ticket_number():
    pytest.importorskip("pygame")
    from kiosk.screen import Screen
    from kiosk.screen_sync import sample_banners

    screen = Screen((800, 480))
    try:
        done = DoneView("HT-007", CATEGORIES[0], printed=True)
        screen.draw(done, SyncBanner("done", progress=1.0, counts="3 visits"))
        assert "HT-007" in screen.drawn_text
        assert "Có thể rút USB" in screen.drawn_text and "You may remove the stick" in screen.drawn_text
        screen.draw(IdleView("UBND", CATEGORIES), SyncBanner("not_kiosk"))
        assert {"USB không dùng cho kiosk", "This stick is not for the kiosk"} <= set(screen.drawn_text)
        assert "Hộ tịch" in screen.drawn_text                    # the categories are still there
        for banner in sample_banners().values():
            screen.draw(IdleView("UBND", CATEGORIES), banner)
        screen.draw(IdleView("UBND", CATEGORIES))
        assert not any("USB" in t for t in screen.drawn_text)
    finally:
        screen.close()


# ------------------------------------------------------------------------------------------ the composition
def test_the_config_chooses_udev_the_simulation_folder_or_nothing(k, tmp_path):
    import dataclasses

    from hardware.usb import FolderSticks as Folder
    from kiosk.app import make_sticks
    from kiosk.config import ConfigError, load_config

    config = load_config(k.config)
    assert config.sync.hotplug == "udisks"                       # the default: a real kiosk
    folder = dataclasses.replace(config, sync=dataclasses.replace(config.sync, hotplug="folder",
                                                                  sticks_folder=str(tmp_path / "sticks")))
    faults = []
    watch, source = make_sticks(folder, k.config, clock=Clock(), faults=faults)
    try:
        assert isinstance(source, Folder) and isinstance(watch, StickWatch) and not faults
        argv = watch._command.argv("export", tmp_path)
        assert argv[-10:] == [sys.executable, "-m", "kiosk", "export", "--to", str(tmp_path),
                             "--config", str(k.config), "--data", str(config.data_dir)]
        assert argv[:-10] in ([], [shutil.which("nice"), "-n", "10"])     # at a lower priority where nice exists
    finally:
        watch.close()
    off = dataclasses.replace(config, sync=dataclasses.replace(config.sync, hotplug="off"))
    assert make_sticks(off, k.config, clock=Clock(), faults=faults) == (None, None)
    k.config.write_text(k.config.read_text() + 'hotplug = "usb"\n')
    with pytest.raises(ConfigError, match="sync.hotplug"):
        load_config(k.config)
