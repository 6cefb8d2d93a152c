"""kiosk doctor: every check says OK or FAIL with the reason, and the exit code tells a script."""
import dataclasses
import io
import os
from datetime import datetime
from pathlib import Path

import pytest

from kiosk.config import SIMULATION_CONFIG, load_config
from kiosk.doctor import check_printer, check_store, report, run_checks
from kiosk.store import Store


NAMES = ["user", "display", "fonts", "data", "office", "disk", "clock", "store", "secret", "faces", "camera",
         "printer", "buttons", "devices", "usb", "privacy", "sound"]


def test_simulation_passes_every_check(tmp_path, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    config = dataclasses.replace(load_config(SIMULATION_CONFIG), data_dir=tmp_path / "data")
    results = run_checks(config)
    assert [r.name for r in results] == NAMES
    assert all(r.ok for r in results), results
    out = io.StringIO()
    assert report(results, out) == 0 and f"all {len(NAMES)} checks passed" in out.getvalue()


def test_missing_printer_device_fails_naming_it(tmp_path):
    config = load_config(SIMULATION_CONFIG)
    config = dataclasses.replace(config, printer=dataclasses.replace(
        config.printer, connection="file", device=str(tmp_path / "lp0")))
    [result] = run_checks(config, checks=[check_printer])
    assert not result.ok and "lp0" in result.detail
    out = io.StringIO()
    assert report([result], out) == 1 and out.getvalue().startswith("FAIL printer")


def test_store_in_use_by_the_running_kiosk_is_reported_not_failed(tmp_path):
    config = dataclasses.replace(load_config(SIMULATION_CONFIG), data_dir=tmp_path / "data")
    store = Store.open(config.data_dir, kiosk_id=config.kiosk_id)
    try:
        [result] = run_checks(config, checks=[check_store])
    finally:
        store.close()
    assert result.ok and "in use" in result.detail


def test_a_repair_that_lost_nothing_is_reported_and_passes_a_lost_file_fails(tmp_path):
    from kiosk.store import NUMBERS_FILE
    from kiosk.storage import SlotFile

    config = dataclasses.replace(load_config(SIMULATION_CONFIG), data_dir=tmp_path / "data")
    store = Store.open(config.data_dir, kiosk_id=config.kiosk_id)
    for _ in range(2):                                                # both copies of numbers.bin written
        store.issue_ticket("ho-tich", "HT", citizen_id=None, now=datetime.now())
    store.close()
    numbers = config.data_dir / NUMBERS_FILE
    data = bytearray(numbers.read_bytes())
    data[SlotFile.SLOT + 20:SlotFile.SLOT + 40] = b"\xff" * 20     # a torn write in one of the two copies
    numbers.write_bytes(bytes(data))
    [result] = run_checks(config, checks=[check_store])
    assert result.ok and f"repaired: {NUMBERS_FILE}: one copy damaged" in result.detail

    numbers.write_bytes(b"\xff" * 100)                               # both copies gone: set aside, reported
    [result] = run_checks(config, checks=[check_store])
    assert not result.ok and "unreadable, set aside" in result.detail


def test_a_crashing_check_is_a_failed_check(tmp_path):
    def check_boom(config):
        raise RuntimeError("no such device")

    [result] = run_checks(load_config(SIMULATION_CONFIG), checks=[check_boom])
    assert not result.ok and result.name == "boom" and "no such device" in result.detail


def test_cli(tmp_path, capsys, monkeypatch):
    from kiosk.__main__ import main

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert main(["doctor", "--simulate", "--data", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "OK   fonts" in out and f"all {len(NAMES)} checks passed" in out
    assert "OK   display    opened with SDL video driver 'dummy' (chosen by SDL_VIDEODRIVER)" in out


def test_a_serial_printer_too_slow_for_raster_tickets_fails(tmp_path):
    config = load_config(SIMULATION_CONFIG)
    slow = dataclasses.replace(config, printer=dataclasses.replace(
        config.printer, connection="serial", serial_port=str(tmp_path / "ttyUSB0"), baudrate=19200))
    [result] = run_checks(slow, checks=[check_printer])
    assert not result.ok and "19200 baud needs 33 s per ticket" in result.detail


# --- the machine as the service meets it: display, user, groups, devices, data folder, disk, clock -------------

def _pi_config(tmp_path, **changes):
    from kiosk.config import PACKAGED_CONFIGS

    config = load_config(PACKAGED_CONFIGS / "pi.toml")
    return dataclasses.replace(config, data_dir=tmp_path / "data", **changes)


def test_a_display_driver_this_pygame_lacks_fails_naming_it_and_the_fix(tmp_path, monkeypatch, capsys):
    from kiosk.__main__ import main
    from kiosk.doctor import check_display

    monkeypatch.setenv("SDL_VIDEODRIVER", "nosuchdriver")
    assert main(["doctor", "--simulate", "--data", str(tmp_path / "d")]) == 1
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if line.startswith("FAIL display")]
    assert "no 'nosuchdriver' video driver (it has " in line and "dummy" in line
    assert os.environ["SDL_VIDEODRIVER"] == "nosuchdriver"                  # the environment is left as found

    # The config's [screen] driver is what the doctor opens when the environment names none (a shell, not the unit),
    config = _pi_config(tmp_path)
    assert config.screen.driver == "kmsdrm"
    [result] = [check_display(dataclasses.replace(config, screen=dataclasses.replace(
        config.screen, driver="nosuchdriver")), environ={})]
    assert not result.ok and "no 'nosuchdriver' video driver" in result.detail
    # ... and SDL_VIDEODRIVER, as the unit sets it, wins over the config.
    result = check_display(config, environ={"SDL_VIDEODRIVER": "dummy"})
    assert result.ok and "'dummy' (chosen by SDL_VIDEODRIVER)" in result.detail


def test_the_installed_pygame_has_kmsdrm():
    """pygame-ce's SDL has the service's driver (SDL names it "KMSDRM"; SDL_VIDEODRIVER matches any case)."""
    from kiosk.display import sdl_video_drivers

    drivers = sdl_video_drivers()
    assert drivers is not None and "kmsdrm" in [d.lower() for d in drivers], drivers


def test_kmsdrm_missing_names_the_pygame_to_install(tmp_path, monkeypatch):
    """A pygame built without KMS/DRM (pip's plain pygame wheel: these drivers) gets the line naming the fix."""
    import kiosk.display
    from kiosk.doctor import check_display

    monkeypatch.setattr(kiosk.display, "sdl_video_drivers", lambda: ["x11", "wayland", "offscreen", "dummy"])
    result = check_display(_pi_config(tmp_path), environ={})
    assert not result.ok and "no 'kmsdrm' video driver" in result.detail and "pygame-ce" in result.detail


def test_the_unit_user_and_groups_come_from_the_unit_file():
    from kiosk.doctor import SHIPPED_UNIT, unit_user_and_groups

    user, groups = unit_user_and_groups([SHIPPED_UNIT])
    assert user == "kiosk" and {"gpio", "video", "render"} <= set(groups)
    assert unit_user_and_groups([Path("/nonexistent.service")]) == ("kiosk", [])


def test_running_as_another_user_than_the_service_fails_with_the_command_to_use(tmp_path):
    from kiosk.doctor import check_user

    result = check_user(_pi_config(tmp_path), uid=0, unit=("kiosk", ["gpio"]))
    assert not result.ok and "running as root, but the service runs as kiosk" in result.detail
    assert result.detail.endswith("run sudo -u kiosk kiosk doctor")
    assert check_user(load_config(SIMULATION_CONFIG), uid=0, unit=("kiosk", [])).ok       # simulation: said only


def test_a_device_group_the_unit_gives_but_the_user_lacks_fails_with_usermod(tmp_path):
    from kiosk.doctor import check_user

    config = _pi_config(tmp_path)
    unit = ("root", ["root", "no-such-group-here"])            # groups the OS lacks are not asked for
    result = check_user(config, uid=0, gids=[], unit=unit)
    assert not result.ok and "root is not in the group(s) root the service gets" in result.detail
    assert "sudo usermod -aG root root, or re-run sudo ./install.sh" in result.detail
    result = check_user(config, uid=0, gids=[0], unit=unit)
    assert result.ok and "in its device groups (root)" in result.detail


def test_the_devices_the_config_opens_are_found(tmp_path):
    from kiosk.doctor import device_paths

    dev, usb = tmp_path / "dev", tmp_path / "sys-usb"
    for name in ("gpiochip0", "gpiochip4", "video0", "media0", "dma_heap/linux,cma", "dri/card1", "dri/renderD128",
                 "bus/usb/001/004", "ttyUSB0"):
        (dev / name).parent.mkdir(parents=True, exist_ok=True)
        (dev / name).touch()
    for name, ids in (("1-1", ("0416", "5011", "1", "4")), ("1-2", ("046d", "0825", "1", "5"))):
        (usb / name).mkdir(parents=True)
        for field, value in zip(("idVendor", "idProduct", "busnum", "devnum"), ids):
            (usb / name / field).write_text(value + "\n")
    paths = device_paths(_pi_config(tmp_path), dev=dev, sys_usb=usb, environ={})
    assert [str(p.relative_to(dev)) for p in paths] == [
        "gpiochip0", "gpiochip4", "video0", "media0", "dma_heap/linux,cma", "dri/card1", "dri/renderD128",
        "bus/usb/001/004"]


def test_a_device_the_user_cannot_open_names_its_group_and_the_fix(tmp_path):
    import grp

    from kiosk.doctor import check_devices

    chip = tmp_path / "gpiochip0"
    chip.touch()
    group = grp.getgrgid(chip.stat().st_gid).gr_name
    config = _pi_config(tmp_path)
    result = check_devices(config, paths=[chip], access=lambda path, mode: False, uid=0)
    assert not result.ok and f"{chip} not accessible to root (group {group})" in result.detail
    assert f"sudo usermod -aG {group} root" in result.detail and "install.sh" in result.detail
    result = check_devices(config, paths=[chip], access=lambda path, mode: True, uid=0)
    assert result.ok and "1 device files open to root" in result.detail


def test_the_data_folder_must_belong_to_the_user_and_be_writable(tmp_path):
    from kiosk.doctor import check_data

    config = _pi_config(tmp_path)
    me = os.geteuid()
    assert check_data(config, uid=me).detail.endswith("does not exist yet; the kiosk makes it")
    result = check_data(config, uid=me, access=lambda path, mode: False)
    assert not result.ok and "cannot make it: sudo install -d -o" in result.detail
    (config.data_dir / "visits").mkdir(parents=True)
    (config.data_dir / "visits" / "2026-11.jsonl").touch()
    assert check_data(config, uid=me).ok
    other = me + 4242                                     # the kiosk user, while the files were made by someone else
    result = check_data(config, uid=other)
    assert not result.ok and "3 file(s) in" in result.detail
    assert result.detail.endswith(f"sudo chown -R uid {other}:uid {other} {config.data_dir}")
    result = check_data(config, uid=me, access=lambda path, mode: False)
    assert not result.ok and "is not writable" in result.detail and "sudo chmod u+rwx" in result.detail


def test_free_disk_space_below_the_threshold_fails_with_what_to_do(tmp_path):
    from types import SimpleNamespace

    from kiosk.doctor import check_disk

    def statvfs(free_mb):
        return lambda path: SimpleNamespace(f_frsize=4096, f_bavail=free_mb * 256, f_blocks=30_000 * 256)

    config = dataclasses.replace(_pi_config(tmp_path), min_free_mb=250)
    low = check_disk(config, statvfs=statvfs(180))
    assert not low.ok and low.detail.startswith("only 180 MB free of 30000 MB in")
    assert "warned below 250 MB" in low.detail and "journalctl --vacuum-size" in low.detail
    ok = check_disk(config, statvfs=statvfs(9000))
    assert ok.ok and ok.detail.startswith("9000 MB free of 30000 MB")


def test_the_clock_must_be_plausible_and_not_behind_the_latest_ticket(tmp_path):
    from kiosk.doctor import check_clock

    config = _pi_config(tmp_path)
    booted_in_1970 = check_clock(config, now=datetime(1970, 1, 1, 0, 5), latest=None, ntp=lambda: False)
    assert not booted_in_1970.ok and "1970-01-01 00:05, which cannot be right (NTP not synchronised" \
        in booted_in_1970.detail and "timedatectl set-time" in booted_in_1970.detail
    # The latest ticket, read from the store beside a running kiosk.
    store = Store.open(config.data_dir, kiosk_id="k")
    store.issue_ticket("ho-tich", "HT", citizen_id=None, now=datetime(2026, 11, 30, 9, 30))
    store.close()
    behind = check_clock(config, now=datetime(2026, 11, 29, 8, 0), ntp=lambda: None)
    assert not behind.ok and "behind the latest ticket (2026-11-30 09:30; NTP state unknown)" in behind.detail
    assert "kiosk clock" in behind.detail
    fine = check_clock(config, now=datetime(2026, 12, 1, 8, 0), ntp=lambda: True)
    assert fine.ok and fine.detail == "2026-12-01 08:00, after the latest ticket (2026-11-30 09:30); NTP synchronised"


def test_ntp_state_comes_from_timedatectl(tmp_path, monkeypatch):
    from kiosk.doctor import ntp_synchronised

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "timedatectl"
    monkeypatch.setenv("PATH", str(bin_dir))
    assert ntp_synchronised() is None                                        # not there: unknown
    for answer, expected in (("yes", True), ("no", False)):
        fake.write_text(f'#!/bin/sh\n[ "$*" = "show -p NTPSynchronized --value" ] && echo {answer}\n')
        fake.chmod(0o755)
        assert ntp_synchronised() is expected


def test_a_camera_library_that_fails_to_load_is_a_failed_line_with_the_fix(tmp_path, monkeypatch):
    import sys

    from kiosk.doctor import check_camera

    standin = tmp_path / "standin" / "picamera2"
    standin.mkdir(parents=True)
    (standin / "__init__.py").write_text("raise ValueError('numpy.dtype size changed')\n")
    monkeypatch.syspath_prepend(str(standin.parent))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    result = check_camera(_pi_config(tmp_path))
    assert not result.ok and "ValueError: numpy.dtype size changed" in result.detail
    assert "the system's numpy" in result.detail and "tickets, without faces" in result.detail


def test_the_office_secret_must_be_there_private_readable_by_the_service_and_long_enough(tmp_path):
    import pwd

    from kiosk.doctor import check_secret
    from kiosk.identity import make_secret

    me = pwd.getpwuid(os.geteuid()).pw_name
    secret = tmp_path / "office-secret"
    config = _pi_config(tmp_path)
    config = dataclasses.replace(config, identity=dataclasses.replace(config.identity, secret_file=str(secret)))
    unit = (me, [])

    missing = check_secret(config, unit=unit)
    assert not missing.ok and "not found, so CCCD cards are not read" in missing.detail
    assert "copy the same file from another kiosk of this office" in missing.detail and "install.sh" in missing.detail
    assert check_secret(dataclasses.replace(config, simulate=True), unit=unit).ok     # the simulation makes it

    assert make_secret(secret)
    good = check_secret(config, unit=unit)
    assert good.ok and "64 hex digits, mode 0600" in good.detail and f"readable by {me}" in good.detail
    other = tmp_path / "copy"
    other.write_bytes(secret.read_bytes())
    other.chmod(0o600)
    copy = check_secret(dataclasses.replace(config, identity=dataclasses.replace(config.identity,
                                                                                 secret_file=str(other))), unit=unit)
    fingerprint = good.detail.split("fingerprint ")[1][:8]
    assert fingerprint in copy.detail and secret.read_text().strip()[:8] not in good.detail

    secret.chmod(0o644)
    world = check_secret(config, unit=unit)
    assert not world.ok and "open to every user" in world.detail and f"sudo chmod o-rwx {secret}" in world.detail
    secret.chmod(0o640)
    unreadable = check_secret(config, unit=unit, access=lambda path, mode: False)
    assert not unreadable.ok and f"is not readable by {me}" in unreadable.detail
    assert f"sudo chgrp {me} {secret} && sudo chmod 0640 {secret}" in unreadable.detail

    secret.write_text("too short\n")
    short = check_secret(config, unit=unit)
    assert not short.ok and "fewer than 16 bytes" in short.detail and "copy the same file" in short.detail


def test_the_office_secret_is_judged_for_the_service_user_when_another_runs_the_doctor(tmp_path):
    import grp
    import pwd

    from kiosk.doctor import check_secret
    from kiosk.identity import make_secret

    secret = tmp_path / "office-secret"
    make_secret(secret)
    config = _pi_config(tmp_path)
    config = dataclasses.replace(config, identity=dataclasses.replace(config.identity, secret_file=str(secret)))
    try:
        nobody = pwd.getpwnam("nobody")  # the service's user here; the file belongs to whoever runs the tests
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    if os.geteuid() != 0:
        pytest.skip("giving the file to nobody's group needs root")
    result = check_secret(config, unit=("nobody", []))
    assert not result.ok and "is not readable by nobody" in result.detail
    os.chown(secret, -1, nobody.pw_gid)
    secret.chmod(0o640)
    assert check_secret(config, unit=("nobody", [])).ok, grp.getgrgid(nobody.pw_gid)


def test_privacy_check_says_when_the_key_does_not_open_the_data_or_the_audit_chain_is_broken(tmp_path):
    from kiosk.datakey import KeySource, load_key, make_key_file
    from kiosk.doctor import check_privacy

    base = load_config(SIMULATION_CONFIG)
    key_file = tmp_path / "keys" / "data.key"
    config = dataclasses.replace(base, data_dir=tmp_path / "data", simulate=False,
                                 privacy=dataclasses.replace(base.privacy, key_file=str(key_file)))
    load_key(KeySource("file", key_file, create=True), config.data_dir)
    Store.open(config.data_dir, kiosk_id="k1").close()
    [ok] = run_checks(config, checks=[check_privacy])
    assert ok.ok and "audit log intact" in ok.detail
    audit = config.data_dir / "audit.jsonl"
    audit.write_bytes(audit.read_bytes() + audit.read_bytes())       # the same entry twice: out of order
    [broken] = run_checks(config, checks=[check_privacy])
    assert not broken.ok and "audit.jsonl" in broken.detail
    key_file.unlink()
    make_key_file(key_file)                                          # another key
    [wrong] = run_checks(config, checks=[check_privacy])
    assert not wrong.ok and "plain tickets only" in wrong.detail


def test_sound_opens_the_loudspeaker_or_says_the_kiosk_runs_silent(tmp_path, monkeypatch):
    import pygame

    from kiosk.doctor import check_sound
    from kiosk.voice import texts

    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    result = check_sound(_pi_config(tmp_path))
    assert result.ok and f"{len(texts())} voice clips, loudspeaker open" in result.detail

    def no_device(*args, **kwargs):
        raise pygame.error("ALSA: Couldn't open audio device")

    monkeypatch.setattr(pygame.mixer, "init", no_device)
    result = check_sound(_pi_config(tmp_path))
    assert not result.ok and "runs silent" in result.detail and "audio group" in result.detail
    off = _pi_config(tmp_path)
    off = dataclasses.replace(off, voice=dataclasses.replace(off.voice, enabled=False))
    assert check_sound(off).ok
