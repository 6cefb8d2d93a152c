"""The doctor's checks of the machine the kiosk runs on: who runs it and in which groups, the device files, the
display driver, the data folder, free space and the clock. Each reads what it needs through keyword arguments, so tests inject it.
"""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Mapping

from kiosk.config import Config

INSTALLED_UNIT = Path("/etc/systemd/system/kiosk.service")
SHIPPED_UNIT = Path(__file__).resolve().parents[1] / "systemd" / "kiosk.service"
PLAUSIBLE_YEARS = range(2024, 2100)   # a Pi without a real-time clock may boot in 1970 or at its last shutdown
REINSTALL = "or re-run sudo ./install.sh"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def unit_user_and_groups(paths: Iterable[Path] = (INSTALLED_UNIT, SHIPPED_UNIT)) -> tuple[str, list[str]]:
    """``User=`` and ``SupplementaryGroups=`` of the installed unit (else the shipped one)."""
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        user, groups = "kiosk", []
        for line in text.splitlines():
            key, _, value = line.strip().partition("=")
            if key == "User":
                user = value.strip()
            elif key == "SupplementaryGroups":
                groups += value.split()
        return user, groups
    return "kiosk", []


def check_user(config: Config, *, uid: int | None = None, gids: Iterable[int] | None = None,
               unit: tuple[str, list[str]] | None = None) -> Check:
    """Who runs the doctor, against the unit's user and the device groups the unit gives it."""
    uid = os.geteuid() if uid is None else uid
    me = user_name(uid)
    service_user, unit_groups = unit or unit_user_and_groups()
    if me != service_user:
        if config.simulate:
            return Check("user", True, f"running as {me} (simulation; the service runs as {service_user})")
        return Check("user", False, f"running as {me}, but the service runs as {service_user}, so permissions "
                                    f"differ: run sudo -u {service_user} kiosk doctor")
    mine = {group_name(g) for g in (os.getgroups() if gids is None else gids)}
    missing = [g for g in unit_groups if g not in mine and _group_exists(g)]
    if missing:
        return Check("user", False, f"{me} is not in the group(s) {', '.join(missing)} the service gets "
                                    f"(SupplementaryGroups= applies only inside the unit): sudo usermod -aG "
                                    f"{','.join(missing)} {me}, {REINSTALL}")
    return Check("user", True, f"running as {me}, like the service, in its device groups"
                               f" ({', '.join(g for g in unit_groups if g in mine) or 'none asked'})")


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def device_paths(config: Config, *, dev: Path = Path("/dev"), sys_usb: Path = Path("/sys/bus/usb/devices"),
                 environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The device files ``kiosk run`` will open with this config (those that exist)."""
    from kiosk.display import choose_driver

    wanted: list[Path] = []
    if not config.simulate:
        wanted += sorted(dev.glob("gpiochip*"))
    if config.camera.kind == "picamera2":
        wanted += sorted(dev.glob("video*")) + sorted(dev.glob("media*")) + sorted(dev.glob("dma_heap/*"))
    elif config.camera.kind == "opencv":
        wanted.append(dev / f"video{config.camera.device}")
    if (choose_driver(config.screen.driver, environ, simulate=config.simulate).name or "").lower() == "kmsdrm":
        wanted += sorted(dev.glob("dri/card*")) + sorted(dev.glob("dri/renderD*"))
    p = config.printer
    if p.connection == "file":
        wanted.append(Path(p.device))
    elif p.connection == "serial":
        wanted.append(Path(p.serial_port))
    elif p.connection == "usb":
        wanted += _usb_device(sys_usb, dev, p.usb_vendor, p.usb_product)
    return [path for path in wanted if path.exists()]


def _usb_device(sys_usb: Path, dev: Path, vendor: int | None, product: int | None) -> list[Path]:
    """/dev/bus/usb/BBB/DDD of the USB device vendor:product (what libusb opens), from sysfs."""
    found = []
    for device in sorted(sys_usb.glob("*")) if sys_usb.is_dir() else []:
        try:
            ids = (int((device / "idVendor").read_text(), 16), int((device / "idProduct").read_text(), 16))
            bus, number = int((device / "busnum").read_text()), int((device / "devnum").read_text())
        except (OSError, ValueError):
            continue
        if ids == (vendor, product):
            found.append(dev / "bus" / "usb" / f"{bus:03d}" / f"{number:03d}")
    return found


def check_devices(config: Config, *, paths: list[Path] | None = None,
                  access: Callable[[Path, int], bool] = os.access, uid: int | None = None) -> Check:
    """Every device file the kiosk will open is readable and writable by this user; if not, which group gives it."""
    paths = device_paths(config) if paths is None else paths
    me = user_name(os.geteuid() if uid is None else uid)
    if not paths:
        return Check("devices", True, "no device files to open (simulation)" if config.simulate else
                     "none of the device files the config needs is there (the checks above say what is missing)")
    denied = [path for path in paths if not access(path, os.R_OK | os.W_OK)]
    if denied:
        groups = sorted({group_name(path.stat().st_gid) for path in denied})
        return Check("devices", False, f"{', '.join(map(str, denied))} not accessible to {me} (group "
                                       f"{', '.join(groups)}): sudo usermod -aG {','.join(groups)} {me} and log in "
                                       f"again, {REINSTALL}")
    return Check("devices", True, f"{len(paths)} device files open to {me}: {', '.join(map(str, paths))}")


def check_display(config: Config, *, environ: Mapping[str, str] = os.environ) -> Check:
    """Open the display with the driver the service will use, and say which that is."""
    from kiosk.display import DisplayError, probe

    try:
        detail = probe(config.screen.driver, simulate=config.simulate, environ=environ)
    except DisplayError as exc:
        return Check("display", False, str(exc).removeprefix("display: "))
    return Check("display", True, detail)


def check_data(config: Config, *, uid: int | None = None,
               access: Callable[[Path, int], bool] = os.access) -> Check:
    """The data folder exists (or can be made), and it and everything in it belong to this user."""
    uid = os.geteuid() if uid is None else uid
    me, path = user_name(uid), config.data_dir
    make = f"sudo install -d -o {me} -g {me} -m 0750 {path}"
    if not path.exists():
        parent = path.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if access(parent, os.W_OK | os.X_OK):
            return Check("data", True, f"{path} does not exist yet; the kiosk makes it")
        return Check("data", False, f"{path} does not exist and {me} cannot make it: {make}")
    if not path.is_dir():
        return Check("data", False, f"{path} is not a folder: move it away, then {make}")
    foreign = [p for p in [path, *path.rglob("*")] if p.lstat().st_uid != uid]
    if foreign:
        owner = user_name(foreign[0].lstat().st_uid)
        return Check("data", False, f"{len(foreign)} file(s) in {path} belong to {owner}, not {me} (e.g. "
                                    f"{foreign[0]}): sudo chown -R {me}:{me} {path}")
    if not access(path, os.W_OK | os.X_OK):
        return Check("data", False, f"{path} is not writable by {me}: sudo chmod u+rwx {path}")
    return Check("data", True, f"{path}: belongs to {me}, writable")


def check_disk(config: Config, *, statvfs: Callable | None = None) -> Check:
    from kiosk.disk import MB, free_bytes

    free, total = free_bytes(config.data_dir, statvfs or os.statvfs)
    where = f"{free // MB} MB free of {total // MB} MB in {config.data_dir}"
    if free < config.min_free_mb * MB:
        return Check("disk", False, f"only {where} (staff are warned below {config.min_free_mb} MB): make room "
                                    f"(sudo journalctl --vacuum-size=50M, sudo apt clean) or use a larger SD card")
    return Check("disk", True, f"{where} (staff are warned below {config.min_free_mb} MB)")


def ntp_synchronised() -> bool | None:
    """timedatectl's NTPSynchronized, or None where it cannot be asked."""
    if shutil.which("timedatectl") is None:
        return None
    try:
        done = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    answer = done.stdout.strip()
    return {"yes": True, "no": False}.get(answer) if done.returncode == 0 else None


def latest_ticket(data_dir: Path) -> datetime | None:
    """When the latest ticket was issued, read beside a running kiosk; None when there is none to read."""
    from kiosk.store import Store

    try:
        store = Store.open_readonly(data_dir)
    except Exception:  # no data yet, or unreadable: the store check says so
        return None
    try:
        return store.latest_issued
    finally:
        store.close()


def check_clock(config: Config, *, now: datetime | None = None, latest: datetime | None | str = "read",
                ntp: Callable[[], bool | None] = ntp_synchronised) -> Check:
    """A plausible date, not behind the latest ticket; whether NTP is synchronised is said, not judged."""
    now = datetime.now() if now is None else now
    last = latest_ticket(config.data_dir) if isinstance(latest, str) else latest
    synced = ntp()
    sync = {True: "NTP synchronised", False: "NTP not synchronised (timedatectl)", None: "NTP state unknown"}[synced]
    set_it = "let NTP set it (network) or sudo timedatectl set-time 'YYYY-MM-DD HH:MM'"
    if now.year not in PLAUSIBLE_YEARS:
        return Check("clock", False, f"the clock says {now:%Y-%m-%d %H:%M}, which cannot be right ({sync}): {set_it}")
    if last is not None and now < last:
        return Check("clock", False, f"the clock ({now:%Y-%m-%d %H:%M}) is behind the latest ticket "
                                     f"({last:%Y-%m-%d %H:%M}; {sync}): {set_it}, then see `kiosk clock`")
    after = f", after the latest ticket ({last:%Y-%m-%d %H:%M})" if last else ""
    return Check("clock", True, f"{now:%Y-%m-%d %H:%M}{after}; {sync}")
