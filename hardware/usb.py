"""USB sticks: which block devices are sticks (pyudev), and mounting them as the unprivileged kiosk user.

Mounting, unmounting and powering off go through udisks2 over D-Bus (dbus-fast), never ``mount`` as root:
udisks2 asks polkit, and ``systemd/50-kiosk-udisks.rules`` allows exactly those three actions on removable USB
drives to the ``kiosk`` user. In simulation a folder stands in for both udev and udisks2 (:class:`FolderSticks`):
each sub-folder that appears in it is a stick, already "mounted" at itself.

Every failure is a :class:`StickError` with one line a technician can act on. The udev monitor runs on its own
thread and only hands events to a callback (like gpiozero's), which must not block.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

log = logging.getLogger("hardware.usb")

BUS_NAME = "org.freedesktop.UDisks2"
MANAGER_PATH = "/org/freedesktop/UDisks2/Manager"
MANAGER = "org.freedesktop.UDisks2.Manager"
BLOCK = "org.freedesktop.UDisks2.Block"
FILESYSTEM = "org.freedesktop.UDisks2.Filesystem"
DRIVE = "org.freedesktop.UDisks2.Drive"
PROPERTIES = "org.freedesktop.DBus.Properties"
# udisks2 adds nosuid,nodev itself for a user's mount; noexec too, so nothing on a stick is ever run.
MOUNT_OPTIONS = "nosuid,nodev,noexec"


class StickError(Exception):
    """A stick that could not be found, mounted, unmounted or powered off; one line for the screen and journal."""


@dataclass(frozen=True)
class Stick:
    device: str            # "/dev/sdb1" (or the stand-in folder)
    label: str = ""        # the file system's label, for the journal


@dataclass(frozen=True)
class StickEvent:
    action: str            # "added" | "removed"
    stick: Stick


def is_stick(props: Mapping[str, str], removable: str | None) -> bool:
    """A block device with a file system on it, on the USB bus, of a drive the kernel calls removable.

    ``props`` are the device's udev properties, ``removable`` the ``removable`` sysfs attribute of its disk
    ("1" for a stick). A disk with a partition table, a swap partition, an internal or SD-card drive: no.
    """
    return (props.get("SUBSYSTEM") == "block" and props.get("DEVTYPE") in ("partition", "disk")
            and props.get("ID_FS_USAGE") == "filesystem" and props.get("ID_BUS") == "usb"
            and bool(props.get("DEVNAME")) and removable == "1")


def stick_event(action: str, props: Mapping[str, str], removable: str | None) -> StickEvent | None:
    """The event a udev action on a block device means for the kiosk, or None (not a stick, not news)."""
    device = props.get("DEVNAME", "")
    stick = Stick(device, props.get("ID_FS_LABEL", ""))
    if action == "add" and is_stick(props, removable):
        return StickEvent("added", stick)
    if action == "remove" and device and props.get("SUBSYSTEM") == "block":
        return StickEvent("removed", stick)     # its sysfs is gone already: whoever uses it decides
    return None


def _removable(device: Any) -> str | None:
    """The ``removable`` attribute of the disk a pyudev block device is (or is a partition of)."""
    disk = device if device.device_type == "disk" else device.find_parent("block", "disk")
    if disk is None:
        return None
    try:
        value = disk.attributes.get("removable")
    except (OSError, KeyError):
        return None
    return value.decode().strip() if isinstance(value, bytes) else None


class UdevSticks:
    """Watches udev for sticks (pyudev's monitor thread) and reports each as a :class:`StickEvent`."""

    def __init__(self, on_event: Callable[[StickEvent], None]) -> None:
        self._on_event = on_event
        try:
            import pyudev

            self._context = pyudev.Context()
            monitor = pyudev.Monitor.from_netlink(self._context)
            monitor.filter_by("block")
            self._observer = pyudev.MonitorObserver(monitor, callback=self._on_device, name="udev-sticks")
        except Exception as exc:  # no libudev, no netlink socket (a container): no hot-plug, said once
            raise StickError(f"udev: cannot watch for USB sticks: {exc}") from None

    def start(self) -> None:
        """Start watching; a stick already plugged in at start counts as just added."""
        self._observer.start()
        for device in self._context.list_devices(subsystem="block"):
            event = stick_event("add", dict(device.properties), _removable(device))
            if event is not None:
                self._on_event(event)

    def _on_device(self, device: Any) -> None:
        try:
            event = stick_event(device.action or "", dict(device.properties),
                                _removable(device) if device.action == "add" else None)
        except Exception:  # a device that vanished while we looked: not a stick we can use
            log.exception("udev: reading %s", getattr(device, "device_node", "a device"))
            return
        if event is not None:
            self._on_event(event)

    def close(self) -> None:
        self._observer.stop()


class FolderSticks:
    """Simulation: every sub-folder of ``root`` is a plugged-in stick, mounted at itself; deleting it pulls it out.

    Also the mounter of those sticks (mount returns the folder, unmount and power-off only log), so the
    hot-plug path runs the same way without udev, udisks2 or a stick.
    """

    def __init__(self, root: Path, on_event: Callable[[StickEvent], None], *, period: float = 1.0) -> None:
        self.root = Path(root)
        self._on_event = on_event
        self._period = period
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="folder-sticks", daemon=True)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def scan(self) -> None:
        """Compare the folder with the last look and report what appeared and disappeared."""
        try:
            now = {str(p) for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()}
        except OSError as exc:
            log.warning("simulated sticks: %s: %s", self.root, exc)
            return
        for device in sorted(now - self._seen):
            self._on_event(StickEvent("added", Stick(device, Path(device).name)))
        for device in sorted(self._seen - now):
            self._on_event(StickEvent("removed", Stick(device, Path(device).name)))
        self._seen = now

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scan()
            self._stop.wait(self._period)

    def mount(self, device: str) -> Path:
        if not Path(device).is_dir():
            raise StickError(f"{device}: the simulated stick is gone")
        return Path(device)

    def unmount(self, device: str) -> None:
        log.info("simulated stick %s unmounted", device)

    def power_off(self, device: str) -> None:
        log.info("simulated stick %s powered off", device)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


class UDisks2:
    """Mount, unmount and power off a stick through udisks2 on the system bus (or ``bus_address``: tests).

    Each call opens its own connection and runs to the end (seconds at most) on the calling thread: the
    kiosk calls it from its stick thread, never from the loop.
    """

    def __init__(self, *, bus_address: str | None = None, timeout: float = 30.0,
                 mount_options: str = MOUNT_OPTIONS, settle: float = 5.0) -> None:
        self._address = bus_address
        self._timeout = timeout
        self._options = mount_options
        self._settle = settle       # udisks2 hears of a new stick from udev too, maybe after us: wait this long

    def mount(self, device: str) -> Path:
        """Mount ``device``'s file system (or find where it already is); returns the mount point."""
        return Path(self._run(self._mount(device), "mount", device))

    def unmount(self, device: str) -> None:
        self._run(self._unmount(device), "unmount", device)

    def power_off(self, device: str) -> None:
        """Cut the drive's power (after unmount): its light goes out and it may be pulled."""
        self._run(self._power_off(device), "power off", device)

    def version(self) -> str:
        """udisks2's version: it answers on the bus (``kiosk doctor``)."""
        return str(self._run(self._version(), "reach udisks2 for", "sticks"))

    # -- D-Bus ------------------------------------------------------------------------------------------
    def _run(self, work: Any, what: str, device: str) -> Any:
        try:
            return asyncio.run(asyncio.wait_for(work, self._timeout))
        except StickError:
            raise
        except asyncio.TimeoutError:
            raise StickError(f"udisks2 did not answer within {self._timeout:.0f} s to {what} {device}") from None
        except Exception as exc:  # no bus socket, refused, auth: the bus itself is missing
            raise StickError(f"cannot {what} {device}: no system D-Bus ({type(exc).__name__}: {exc})") from None

    async def _bus(self) -> Any:
        from dbus_fast import BusType
        from dbus_fast.aio import MessageBus

        bus = MessageBus(bus_address=self._address, bus_type=BusType.SYSTEM)
        return await bus.connect()

    async def _call(self, bus: Any, path: str, interface: str, member: str, what: str, device: str,
                    signature: str = "", body: list[Any] | None = None) -> list[Any]:
        from dbus_fast import DBusError, Message, MessageType

        try:
            reply = await bus.call(Message(destination=BUS_NAME, path=path, interface=interface, member=member,
                                           signature=signature, body=body or []))
        except DBusError as exc:
            raise StickError(_explain(str(exc.type), str(exc.text), what, device)) from None
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise StickError(_explain(reply.error_name or "", text, what, device))
        return list(reply.body)

    async def _get(self, bus: Any, path: str, interface: str, name: str, what: str, device: str) -> Any:
        [value] = await self._call(bus, path, PROPERTIES, "Get", what, device, "ss", [interface, name])
        return value.value

    async def _block(self, bus: Any, device: str, what: str) -> str:
        from dbus_fast import Variant

        found = await self._call(bus, MANAGER_PATH, MANAGER, "ResolveDevice", what, device, "a{sv}a{sv}",
                                 [{"path": Variant("s", device)}, {}])
        if not found or not found[0]:
            raise StickError(f"cannot {what} {device}: udisks2 does not know it (pulled out?)")
        return str(found[0][0])

    async def _settled(self, bus: Any, device: str) -> tuple[str, list[bytes]]:
        """The block object and its mount points, once udisks2 has seen the device and probed its file system."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settle
        while True:
            try:
                block = await self._block(bus, device, "mount")
                return block, list(await self._get(bus, block, FILESYSTEM, "MountPoints", "mount", device))
            except StickError:
                if loop.time() >= deadline:
                    raise
            await asyncio.sleep(0.2)

    def _auth(self) -> dict[str, Any]:
        from dbus_fast import Variant

        return {"auth.no_user_interaction": Variant("b", True)}   # a kiosk has nobody to type a password

    async def _mount(self, device: str) -> str:
        from dbus_fast import Variant

        bus = await self._bus()
        try:
            block, points = await self._settled(bus, device)
            if points:   # mounted already (by us before a restart): use it
                return bytes(points[0]).rstrip(b"\0").decode("utf-8", "replace")
            options = {**self._auth(), "options": Variant("s", self._options)}
            [path] = await self._call(bus, block, FILESYSTEM, "Mount", "mount", device, "a{sv}", [options])
            return str(path)
        finally:
            bus.disconnect()

    async def _version(self) -> str:
        bus = await self._bus()
        try:
            return str(await self._get(bus, MANAGER_PATH, MANAGER, "Version", "reach udisks2 for", "sticks"))
        finally:
            bus.disconnect()

    async def _unmount(self, device: str) -> None:
        bus = await self._bus()
        try:
            block = await self._block(bus, device, "unmount")
            await self._call(bus, block, FILESYSTEM, "Unmount", "unmount", device, "a{sv}", [self._auth()])
        finally:
            bus.disconnect()

    async def _power_off(self, device: str) -> None:
        bus = await self._bus()
        try:
            block = await self._block(bus, device, "power off")
            drive = await self._get(bus, block, BLOCK, "Drive", "power off", device)
            if not drive or drive == "/":
                raise StickError(f"cannot power off {device}: udisks2 knows no drive for it")
            await self._call(bus, drive, DRIVE, "PowerOff", "power off", device, "a{sv}", [self._auth()])
        finally:
            bus.disconnect()


def _explain(error: str, text: str, what: str, device: str) -> str:
    """A D-Bus error name -> the one line a technician can act on."""
    if error in ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"):
        return f"cannot {what} {device}: udisks2 is not running (install the udisks2 package)"
    if error.startswith("org.freedesktop.UDisks2.Error.NotAuthorized") or error.endswith("AccessDenied"):
        return (f"not authorised to {what} {device}: polkit refused the kiosk user "
                f"(install systemd/50-kiosk-udisks.rules in /etc/polkit-1/rules.d/)")
    if error == "org.freedesktop.UDisks2.Error.DeviceBusy":
        return f"cannot {what} {device}: it is busy (a file still open on it)"
    if error in ("org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout"):
        return f"cannot {what} {device}: udisks2 did not answer"
    if error in ("org.freedesktop.DBus.Error.InvalidArgs", "org.freedesktop.DBus.Error.UnknownInterface",
                 "org.freedesktop.DBus.Error.UnknownMethod"):
        return f"cannot {what} {device}: no file system udisks2 can {what} there ({text or error})"
    return f"udisks2 could not {what} {device}: {text or error}"
