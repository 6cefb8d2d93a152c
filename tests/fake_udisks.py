"""udisks2 faked on a private D-Bus: a `dbus-daemon --session` of the test's own, and the few UDisks2 objects the
kiosk calls (Manager.ResolveDevice, a Block + Filesystem with Mount/Unmount, a Drive with PowerOff), served with
dbus-fast's service classes as Home Assistant's Supervisor does in its tests (python-dbusmock has no udisks2
template). The "mounted file system" is a folder of the test's.

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures from the annotations.
"""
import asyncio
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from dbus_fast import DBusError, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, dbus_property, method

BLOCK_PATH = "/org/freedesktop/UDisks2/block_devices/sdz1"
DRIVE_PATH = "/org/freedesktop/UDisks2/drives/Fake_Stick_0001"
DEVICE = "/dev/sdz1"
NOT_AUTHORIZED = "org.freedesktop.UDisks2.Error.NotAuthorizedCanObtain"


class State:
    """What the fake udisks2 was asked, and how it answers."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.mounted = False
        self.powered = True
        self.calls = []                 # (member, options with the Variants unpacked)
        self.refuse_mount = None        # (error name, text): Mount answers with that error
        self.refuse_unmount = None
        self.unknown_for = 0            # ResolveDevice knows nothing the first N times (udisks2 still probing)


def _plain(options):
    return {k: (v.value if isinstance(v, Variant) else v) for k, v in options.items()}


class Manager(ServiceInterface):
    def __init__(self, state):
        super().__init__("org.freedesktop.UDisks2.Manager")
        self.state = state

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> "s":
        return "2.9.4-fake"

    @method()
    def ResolveDevice(self, devspec: "a{sv}", options: "a{sv}") -> "ao":
        self.state.calls.append(("ResolveDevice", _plain(devspec)))
        if self.state.unknown_for > 0:
            self.state.unknown_for -= 1
            return []
        return [BLOCK_PATH] if devspec.get("path") and devspec["path"].value == DEVICE else []


class Block(ServiceInterface):
    def __init__(self, state):
        super().__init__("org.freedesktop.UDisks2.Block")
        self.state = state

    @dbus_property(access=PropertyAccess.READ)
    def Drive(self) -> "o":
        return DRIVE_PATH

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> "ay":
        return DEVICE.encode() + b"\0"


class Filesystem(ServiceInterface):
    def __init__(self, state):
        super().__init__("org.freedesktop.UDisks2.Filesystem")
        self.state = state

    @dbus_property(access=PropertyAccess.READ)
    def MountPoints(self) -> "aay":
        return [str(self.state.folder).encode() + b"\0"] if self.state.mounted else []

    @method()
    def Mount(self, options: "a{sv}") -> "s":
        self.state.calls.append(("Mount", _plain(options)))
        if self.state.refuse_mount:
            raise DBusError(*self.state.refuse_mount)
        self.state.mounted = True
        return str(self.state.folder)

    @method()
    def Unmount(self, options: "a{sv}"):
        self.state.calls.append(("Unmount", _plain(options)))
        if self.state.refuse_unmount:
            raise DBusError(*self.state.refuse_unmount)
        if not self.state.mounted:
            raise DBusError("org.freedesktop.UDisks2.Error.NotMounted", f"Device {DEVICE} is not mounted")
        self.state.mounted = False


class Drive(ServiceInterface):
    def __init__(self, state):
        super().__init__("org.freedesktop.UDisks2.Drive")
        self.state = state

    @dbus_property(access=PropertyAccess.READ)
    def Removable(self) -> "b":
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ConnectionBus(self) -> "s":
        return "usb"

    @method()
    def PowerOff(self, options: "a{sv}"):
        self.state.calls.append(("PowerOff", _plain(options)))
        if self.state.mounted:
            raise DBusError("org.freedesktop.UDisks2.Error.Failed", "a file system on it is still mounted")
        self.state.powered = False


class FakeUDisks:
    """The service on its own thread and event loop, as udisksd would be in its own process."""

    def __init__(self, address: str, folder: Path):
        self.address = address
        self.state = State(folder)
        self._ready = threading.Event()
        self._loop = None
        self._bus = None
        self._thread = threading.Thread(target=self._run, name="fake-udisks2", daemon=True)

    def start(self):
        self._thread.start()
        assert self._ready.wait(10), "the fake udisks2 did not start"
        return self

    def _run(self):
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()

    async def _serve(self):
        self._bus = await MessageBus(bus_address=self.address).connect()
        self._bus.export("/org/freedesktop/UDisks2/Manager", Manager(self.state))
        self._bus.export(BLOCK_PATH, Block(self.state))
        self._bus.export(BLOCK_PATH, Filesystem(self.state))
        self._bus.export(DRIVE_PATH, Drive(self.state))
        await self._bus.request_name("org.freedesktop.UDisks2")
        self._ready.set()

    def stop(self):
        if not self._thread.is_alive():
            return

        def _stop():
            self._bus.disconnect()
            self._loop.stop()
        self._loop.call_soon_threadsafe(_stop)
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def private_bus():
    """A dbus-daemon of the tests' own; its address (the kiosk's UDisks2 connects there, not the system bus)."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("dbus-daemon not installed (Debian package dbus; .ci/run installs it)")
    proc = subprocess.Popen([daemon, "--session", "--nofork", "--print-address=1"], stdout=subprocess.PIPE,
                            text=True)
    address = proc.stdout.readline().strip()
    assert address, "dbus-daemon printed no address"
    yield address
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def udisks(private_bus, tmp_path):
    folder = tmp_path / "media-stick"
    folder.mkdir()
    fake = FakeUDisks(private_bus, folder).start()
    yield fake
    fake.stop()
