"""``kiosk doctor``: the technician's self-test. Each check says OK, or FAIL with the reason and the fix, in one line.

It opens every device the config names, the same way ``kiosk run`` does, so run it with the service
stopped (``systemctl stop kiosk``) for the camera, buttons and printer to be free, and as the service's
user (``sudo -u kiosk kiosk doctor``) so that permissions are the ones the service will meet. Checks
that read the machine (user, groups, clock, disk) take what they read as keyword arguments, so tests
inject it.
"""
from __future__ import annotations

import grp
import hashlib
import hmac
import os
import pwd
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Iterable, Mapping

from kiosk.config import Config

if TYPE_CHECKING:
    from hardware.usb import UDisks2

INSTALLED_UNIT = Path("/etc/systemd/system/kiosk.service")
SHIPPED_UNIT = Path(__file__).resolve().parents[1] / "systemd" / "kiosk.service"
PLAUSIBLE_YEARS = range(2024, 2100)   # a Pi without a real-time clock may boot in 1970 or at its last shutdown
REINSTALL = "or re-run sudo ./install.sh"

VIETNAMESE_SAMPLE = "Đăng ký kinh doanh Hộ tịch Chứng thực Xây dựng Đất đai Lao động Thương binh Xã hội ạảấầẩẫậ"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(config: Config, *, checks: list[Callable[[Config], Check]] | None = None) -> list[Check]:
    results = []
    for check in checks or DEFAULT_CHECKS:
        try:
            results.append(check(config))
        except Exception as exc:  # a check that crashes is a failed check, not a crashed doctor
            results.append(Check(check.__name__.removeprefix("check_"), False, f"{type(exc).__name__}: {exc}"))
    return results


def report(results: list[Check], out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    for r in results:
        out.write(f"{'OK  ' if r.ok else 'FAIL'} {r.name:<10} {r.detail}\n")
    failed = [r.name for r in results if not r.ok]
    out.write(f"{len(results) - len(failed)} passed, {len(failed)} failed\n" if failed
              else f"all {len(results)} checks passed\n")
    return 1 if failed else 0


def check_fonts(config: Config) -> Check:
    import pygame.font   # (fonts need no display: the display check opens that with the service's driver)

    from kiosk.paths import FONT_BOLD, FONT_REGULAR

    pygame.font.init()
    missing = set()
    for path in (FONT_REGULAR, FONT_BOLD):
        if not path.is_file():
            return Check("fonts", False, f"{path} is missing")
        font = pygame.font.Font(str(path), 20)
        names = [c.name_vi for c in config.categories] + [config.office, VIETNAMESE_SAMPLE]
        for text in names:
            missing |= {ch for ch, m in zip(text, font.metrics(text)) if m is None}
    if missing:
        return Check("fonts", False, f"no glyph for {''.join(sorted(missing))!r}")
    return Check("fonts", True, f"{FONT_REGULAR.name} covers the office's Vietnamese text")


def check_store(config: Config) -> Check:
    from kiosk.store import Store, StoreLocked

    try:
        store = Store.open(config.data_dir, kiosk_id=config.kiosk_id, day_start_hour=config.day_start_hour)
    except StoreLocked as exc:
        return Check("store", True, f"in use by the running kiosk ({exc})")
    try:
        ids, matrix = store.templates()
        detail = "; ".join([f"{config.data_dir}: {len(set(ids))} enrolled citizens, {len(ids)} face templates",
                            *store.problems, *(f"repaired: {r}" for r in store.repairs)])
        return Check("store", not store.problems, detail)
    finally:
        store.close()


def _readable_by(user: str, st: os.stat_result) -> bool | None:
    """Whether ``user`` may read a file of this owner and mode (None: no such user on this machine)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    if st.st_uid == entry.pw_uid:
        return bool(st.st_mode & stat.S_IRUSR)
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def secret_fingerprint(secret: bytes) -> str:
    """A short tag of the office secret that gives nothing of it away: equal on the kiosks of one office."""
    return hmac.new(secret, b"queue-kiosk office secret fingerprint", hashlib.sha256).hexdigest()[:8]


def check_secret(config: Config, *, uid: int | None = None, access: Callable[[Path, int], bool] = os.access,
                 unit: tuple[str, list[str]] | None = None) -> Check:
    """The office secret for CCCD cards: there, readable by the service's user, not world-readable, long enough.

    Without it the kiosk issues tickets but reads no card; with a different file on each kiosk of one office
    the kiosks would not agree on who is who, hence the fingerprint to compare between kiosks."""
    from kiosk.identity import MIN_SECRET_BYTES, load_secret

    path = Path(config.identity.secret_file)
    me = user_name(os.geteuid() if uid is None else uid)
    service_user = (unit or unit_user_and_groups())[0]
    copy = (f"copy the same file from another kiosk of this office (every kiosk of one office needs the same "
            f"secret), or for the office's first kiosk make it as the README says, {REINSTALL}")
    permissions = f"sudo chgrp {service_user} {path} && sudo chmod 0640 {path}"
    if not path.exists():
        if config.simulate:
            return Check("secret", True, f"{path} is not there yet; the simulation makes it on first start")
        return Check("secret", False, f"{path} not found, so CCCD cards are not read: {copy}")
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        return Check("secret", False, f"{path} is not a file: move it away, then {copy}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_IRWXO:
        return Check("secret", False, f"{path} is open to every user of this machine (mode {mode:04o}): "
                                      f"sudo chmod o-rwx {path}")
    readable = access(path, os.R_OK) if me == service_user else _readable_by(service_user, st)
    if readable is None:            # no such user here (a development machine): judge by who runs the doctor
        readable, service_user = access(path, os.R_OK), me
    if not readable:
        return Check("secret", False, f"{path} is not readable by {service_user} (owner {user_name(st.st_uid)}, "
                                      f"group {group_name(st.st_gid)}, mode {mode:04o}): {permissions}")
    secret, why = load_secret(path)
    if secret is None:
        return Check("secret", False, f"{why} (the kiosk needs at least {MIN_SECRET_BYTES}; install.sh writes 64 "
                                      f"hex digits), so CCCD cards are not read: {copy}")
    form = "64 hex digits" if len(secret) == 64 and all(c in b"0123456789abcdef" for c in secret.lower()) \
        else f"{len(secret)} bytes"
    return Check("secret", True, f"{path}: {form}, mode {mode:04o}, readable by {service_user}; fingerprint "
                                 f"{secret_fingerprint(secret)} (must be the same on every kiosk of the office)")


def check_face_models(config: Config) -> Check:
    if not config.recognition.enabled:
        return Check("faces", True, "recognition disabled in the config")
    import numpy as np

    from kiosk.faces import FaceRecognitionEngine

    started = time.monotonic()
    engine = FaceRecognitionEngine()
    engine.detect(np.zeros((240, 320, 3), np.uint8))
    return Check("faces", True, f"face models loaded and ran in {time.monotonic() - started:.1f} s")


def check_camera(config: Config) -> Check:
    from hardware.camera import CameraError
    from kiosk.app import make_camera

    try:
        camera = make_camera(config)
    except CameraError as exc:
        fix = "" if "install" in str(exc) else \
            "; check the cable and `rpicam-hello --list-cameras`, with the service stopped (sudo systemctl stop kiosk)"
        return Check("camera", False, f"{exc}{fix} (the kiosk still issues tickets, without faces)")
    if camera is None:
        return Check("camera", config.simulate, "no camera (simulation)" if config.simulate else "no camera")
    try:
        frame = camera.read()
        if frame is None:
            return Check("camera", False, f"{type(camera).__name__} gave no frame")
        return Check("camera", True, f"{type(camera).__name__}: frame {frame.shape[1]}x{frame.shape[0]}")
    finally:
        camera.close()


# An 80 mm raster ticket is about 62 KB; a serial line carries baud/10 bytes a second.
TICKET_BYTES = {384: 27_000, 576: 63_000}
MAX_PRINT_SECONDS = 10.0


def check_printer(config: Config) -> Check:
    from kiosk.app import make_printer

    p = config.printer
    if p.connection == "serial":
        seconds = TICKET_BYTES[p.width_dots] / (p.baudrate / 10)
        if seconds > MAX_PRINT_SECONDS:
            return Check("printer", False, f"serial {p.serial_port} at {p.baudrate} baud needs {seconds:.0f} s per "
                                           f"ticket: set the printer and printer.baudrate to 115200, or use USB")
    printer = make_printer(config)
    try:
        status = printer.status()
    finally:
        printer.close()
    ok = status.online is not False and status.paper is not False
    fix = "" if ok else "; check power, cable and paper (`lsusb` for usb_vendor:usb_product), and the devices line"
    return Check("printer", ok, f"{config.printer.connection}: {status.detail}{fix}")


def check_buttons(config: Config) -> Check:
    if config.simulate:
        return Check("buttons", True, "simulation: keys 1-9 and Y")
    import queue

    from hardware.buttons import ButtonError
    from kiosk.app import make_buttons

    try:
        buttons = make_buttons(config, queue.Queue())
    except ButtonError as exc:
        return Check("buttons", False, f"{exc}; stop the service first (sudo systemctl stop kiosk) and see the "
                                       f"devices line for the gpio group")
    buttons.close()
    pins = ", ".join(f"{c.key}={c.pin}" for c in config.categories)
    return Check("buttons", True, f"GPIO pins free and claimed: {pins}, consent={config.buttons.consent_pin}")


# ---------------------------------------------------------------------------------- the machine, as the service sees it

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


POLKIT_RULE = "50-kiosk-udisks.rules"
POLKIT_RULE_DIRS = (Path("/etc/polkit-1/rules.d"), Path("/usr/share/polkit-1/rules.d"))


def check_usb(config: Config, *, udisks: UDisks2 | None = None,
              rule_dirs: Iterable[Path] = POLKIT_RULE_DIRS) -> Check:
    """Whether a stick plugged in will be used: udisks2 answers on the system bus and the polkit rule is there."""
    from hardware.usb import StickError, UDisks2

    if config.sync.hotplug == "off":
        return Check("usb", True, "hot-plug off ([sync] hotplug): sticks only from a shell (kiosk export / import)")
    if config.sync.hotplug == "folder":
        return Check("usb", True, f"simulation: a folder made in {config.sync.sticks_folder}/ is a stick plugged in")
    try:
        version = (udisks or UDisks2(timeout=5)).version()
    except StickError as exc:
        return Check("usb", False, f"{exc} (or set [sync] hotplug = \"off\")")
    if not any((folder / POLKIT_RULE).is_file() for folder in rule_dirs):
        return Check("usb", False, f"udisks2 {version} answers, but polkit will refuse the kiosk: sudo install -m 0644 "
                                   f"systemd/{POLKIT_RULE} /etc/polkit-1/rules.d/")
    return Check("usb", True, f"udisks2 {version} on the system bus; polkit rule {POLKIT_RULE} installed")


def check_office_config(config: Config) -> Check:
    """Whether an office override (kiosk/officeconfig.py) is in force over the config file, and whether it is used."""
    from kiosk.officeconfig import OfficeConfigError, override_path, read_override

    path = override_path(config.data_dir)
    try:
        office = read_override(config.data_dir)
    except OfficeConfigError as exc:
        return Check("office", False, f"{exc}: the config file alone is used; delete it or wait for the next update")
    if office is None:
        return Check("office", True, "no office override: the config file alone is used")
    used = ("kiosk" not in office or office["kiosk"]["office"] == config.office) and \
        ("categories" not in office or [c.get("key") for c in office["categories"]] == [c.key for c in config.categories])
    if not used:
        return Check("office", False, f"{path} is not used: with the config file it fails the schema (see the journal)")
    keys = ", ".join(k if k != "kiosk" else "kiosk.office" for k in office)
    return Check("office", True, f"office override active: {path} sets {keys} (office {config.office!r}); "
                                 f"delete it to use the config file alone")


DEFAULT_CHECKS: list[Callable[[Config], Check]] = [
    check_user, check_display, check_fonts, check_data, check_office_config, check_disk, check_clock, check_store,
    check_secret, check_face_models, check_camera, check_printer, check_buttons, check_devices, check_usb,
]
