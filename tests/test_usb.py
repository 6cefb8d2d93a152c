"""hardware/usb.py: which udev devices are sticks, and udisks2 over D-Bus (faked on a private bus) to mount,
unmount and power off; every failure one line."""
import subprocess
import sys

import pytest
from fake_udisks import DEVICE, NOT_AUTHORIZED, private_bus, udisks  # noqa: F401  (fixtures)

from hardware.usb import FolderSticks, StickError, UDisks2, is_stick, stick_event

STICK = {"SUBSYSTEM": "block", "DEVTYPE": "partition", "DEVNAME": "/dev/sdb1", "ID_BUS": "usb",
         "ID_FS_USAGE": "filesystem", "ID_FS_TYPE": "vfat", "ID_FS_LABEL": "OFFICE"}


# ----------------------------------------------------------------------------------------------- udev filter
def test_a_usb_partition_with_a_file_system_on_a_removable_drive_is_a_stick():
    event = stick_event("add", STICK, "1")
    assert event is not None and event.action == "added"
    assert event.stick.device == "/dev/sdb1" and event.stick.label == "OFFICE"
    whole_disk = {**STICK, "DEVTYPE": "disk", "DEVNAME": "/dev/sdb"}     # a stick formatted without partitions
    assert is_stick(whole_disk, "1")


@pytest.mark.parametrize("change, removable", [
    ({"ID_BUS": "ata"}, "1"),                              # an internal disk
    ({}, "0"),                                             # a USB hard disk the kernel calls fixed
    ({}, None),                                            # removable unknown
    ({"ID_FS_USAGE": "other", "ID_FS_TYPE": "swap"}, "1"),  # swap
    ({"ID_FS_USAGE": "crypto"}, "1"),                      # LUKS: not ours to unlock
    ({"ID_FS_USAGE": ""}, "1"),                            # a disk holding a partition table
    ({"SUBSYSTEM": "usb"}, "1"),                           # the USB device itself, not a block device
    ({"DEVTYPE": "usb_interface"}, "1"),
    ({"DEVNAME": ""}, "1"),
])
def test_anything_else_is_not_a_stick(change, removable):
    assert not is_stick({**STICK, **change}, removable)
    assert stick_event("add", {**STICK, **change}, removable) is None


def test_removal_of_any_block_device_is_reported_and_changes_are_not_news():
    assert stick_event("remove", STICK, None).action == "removed"
    assert stick_event("change", STICK, "1") is None
    assert stick_event("remove", {**STICK, "SUBSYSTEM": "usb"}, None) is None


def test_no_block_device_of_this_machine_is_taken_for_a_stick():
    """Real pyudev Device objects (this machine has disks and loop devices, no stick): the filter says no."""
    pyudev = pytest.importorskip("pyudev")
    from hardware.usb import _removable

    devices = list(pyudev.Context().list_devices(subsystem="block"))
    if not devices:
        pytest.skip("no block devices visible to udev here")
    for device in devices:
        props = dict(device.properties)
        assert props.get("SUBSYSTEM") == "block"
        assert stick_event("add", props, _removable(device)) is None, device.device_node


def test_the_simulation_folder_reports_sticks_appearing_and_disappearing(tmp_path):
    events = []
    sticks = FolderSticks(tmp_path / "sticks", events.append)
    sticks.root.mkdir()
    (sticks.root / "a").mkdir()
    (sticks.root / "not-a-stick.txt").write_text("x")
    sticks.scan()
    assert [(e.action, e.stick.label) for e in events] == [("added", "a")]
    assert sticks.mount(events[0].stick.device) == sticks.root / "a"
    (sticks.root / "a").rmdir()
    sticks.scan()
    assert [(e.action, e.stick.label) for e in events] == [("added", "a"), ("removed", "a")]
    with pytest.raises(StickError, match="gone"):
        sticks.mount(str(sticks.root / "a"))


# ------------------------------------------------------------------------------------------ udisks2 on D-Bus
def test_mount_unmount_power_off_through_udisks2(udisks):
    client = UDisks2(bus_address=udisks.address, timeout=10)
    assert client.mount(DEVICE) == udisks.state.folder
    assert udisks.state.mounted
    assert client.mount(DEVICE) == udisks.state.folder          # mounted already: the same place, no 2nd mount
    client.unmount(DEVICE)
    client.power_off(DEVICE)
    assert not udisks.state.mounted and not udisks.state.powered
    members = [m for m, _ in udisks.state.calls if m != "ResolveDevice"]
    assert members == ["Mount", "Unmount", "PowerOff"]
    mount_options = udisks.state.calls[[m for m, _ in udisks.state.calls].index("Mount")][1]
    assert mount_options["auth.no_user_interaction"] is True     # nobody at a kiosk can type a password
    assert set(mount_options["options"].split(",")) >= {"nosuid", "nodev", "noexec"}
    assert ("ResolveDevice", {"path": DEVICE}) in udisks.state.calls


def test_a_stick_udisks2_has_not_seen_yet_is_waited_for_a_little(udisks):
    """udev tells udisks2 and the kiosk at the same time: the kiosk may ask first."""
    udisks.state.unknown_for = 3
    assert UDisks2(bus_address=udisks.address, timeout=10).mount(DEVICE) == udisks.state.folder
    assert [m for m, _ in udisks.state.calls].count("ResolveDevice") == 4
    udisks.state.unknown_for = 100
    with pytest.raises(StickError, match="udisks2 does not know it"):
        UDisks2(bus_address=udisks.address, timeout=10, settle=0.5).unmount(DEVICE)   # only mount waits
    with pytest.raises(StickError, match="udisks2 does not know it"):
        UDisks2(bus_address=udisks.address, timeout=10, settle=0.5).mount(DEVICE)


def test_a_mount_polkit_refuses_is_one_clear_line(udisks):
    udisks.state.refuse_mount = (NOT_AUTHORIZED, "Not authorized to perform operation")
    with pytest.raises(StickError) as err:
        UDisks2(bus_address=udisks.address, timeout=10).mount(DEVICE)
    assert str(err.value).startswith(f"not authorised to mount {DEVICE}: polkit refused the kiosk user")
    assert "50-kiosk-udisks.rules" in str(err.value) and "\n" not in str(err.value)


def test_unknown_device_busy_stick_and_no_udisks2_are_clear_lines(udisks, private_bus):
    client = UDisks2(bus_address=udisks.address, timeout=10, settle=0.3)
    with pytest.raises(StickError, match="udisks2 does not know it"):
        client.mount("/dev/sdq9")
    client.mount(DEVICE)
    udisks.state.refuse_unmount = ("org.freedesktop.UDisks2.Error.DeviceBusy", "target is busy")
    with pytest.raises(StickError, match="is busy"):
        client.unmount(DEVICE)
    udisks.state.refuse_unmount = None
    with pytest.raises(StickError, match="udisks2 could not power off .*still mounted"):
        client.power_off(DEVICE)
    udisks.stop()                                                  # udisks2 gone from the bus
    with pytest.raises(StickError, match="udisks2 is not running"):
        client.mount(DEVICE)


def test_no_bus_at_all_is_a_clear_line(tmp_path):
    client = UDisks2(bus_address=f"unix:path={tmp_path / 'no-bus'}", timeout=5, settle=0.3)
    with pytest.raises(StickError, match=r"cannot mount /dev/sdb1: no system D-Bus"):
        client.mount("/dev/sdb1")


def test_hardware_usb_imports_nothing_heavy_at_import():
    """pyudev and dbus-fast load when a stick watcher or udisks2 client is made, not when hardware.usb is imported."""
    code = "import sys, hardware.usb; print('pyudev' in sys.modules, 'dbus_fast' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_doctor_says_whether_a_stick_plugged_in_will_be_used(udisks, tmp_path):
    import dataclasses

    from kiosk.config import SIMULATION_CONFIG, load_config
    from kiosk.doctor import check_usb

    sim = load_config(SIMULATION_CONFIG)
    assert check_usb(sim).ok and "kiosk-sticks/" in check_usb(sim).detail
    real = dataclasses.replace(sim, sync=dataclasses.replace(sim.sync, hotplug="udisks"))
    client = UDisks2(bus_address=udisks.address, timeout=10)
    missing = check_usb(real, udisks=client, rule_dirs=[tmp_path])
    assert not missing.ok and "udisks2 2.9.4-fake answers, but polkit will refuse" in missing.detail
    (tmp_path / "50-kiosk-udisks.rules").write_text("polkit.addRule(function () {});")
    assert check_usb(real, udisks=client, rule_dirs=[tmp_path]).ok
    no_bus = UDisks2(bus_address=f"unix:path={tmp_path / 'no-bus'}", timeout=5)
    down = check_usb(real, udisks=no_bus, rule_dirs=[tmp_path])
    assert not down.ok and "no system D-Bus" in down.detail and 'hotplug = "off"' in down.detail


def test_the_udev_watcher_starts_finds_no_stick_here_and_stops():
    from hardware.usb import UdevSticks

    events = []
    try:
        watcher = UdevSticks(events.append)
    except StickError as exc:              # no netlink socket for udev here: the kiosk says the same line
        assert str(exc).startswith("udev: cannot watch for USB sticks")
        return
    watcher.start()
    watcher.close()
    assert events == []                    # this machine has no stick; its disks and loop devices are not one
