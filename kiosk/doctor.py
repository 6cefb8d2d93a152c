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
import stat
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Iterable

from kiosk.config import Config
from kiosk.doctor_machine import (  # noqa: F401  (the machine's checks; names kept importable from here)
    INSTALLED_UNIT, PLAUSIBLE_YEARS, REINSTALL, SHIPPED_UNIT, Check, check_clock, check_data, check_devices, check_disk,
    check_display, check_user, device_paths, group_name, latest_ticket, ntp_synchronised, unit_user_and_groups,
    user_name)

if TYPE_CHECKING:
    from hardware.usb import UDisks2


VIETNAMESE_SAMPLE = "Đăng ký kinh doanh Hộ tịch Chứng thực Xây dựng Đất đai Lao động Thương binh Xã hội ạảấầẩẫậ"


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
        ids = store.template_owners()      # counted without opening a sealed template (no key needed)
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
        return Check("buttons", True, "simulation: keys 1-9, Y and U (priority)")
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
    priority = config.rules.priority.pin
    return Check("buttons", True, f"GPIO pins free and claimed: {pins}, consent={config.buttons.consent_pin}"
                                  + (f", priority={priority}" if priority is not None else ""))


# ---------------------------------------------------------------------------------- the machine, as the service sees it

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


def check_privacy(config: Config) -> Check:
    """The data key opens this data folder (else: plain tickets only), and the audit log's chain is intact."""
    from kiosk.audit import verify
    from kiosk.datakey import KeySource, KeyUnavailable, describe, load_key

    source = KeySource(config.privacy.key_source, Path(config.privacy.key_file))
    if config.simulate and source.kind == "file" and not source.key_file.exists():
        return Check("privacy", True, f"simulation: the data key {source.key_file} is made on the first run")
    try:
        load_key(source, config.data_dir, write_check=False)
        key = f"data key ({describe(source)}) opens {config.data_dir}"
    except KeyUnavailable as exc:
        return Check("privacy", False, f"{exc}: the kiosk issues plain tickets only, face and card data unused")
    chain = verify(config.data_dir / "audit.jsonl")
    if not chain.ok:
        return Check("privacy", False, f"{key}; {chain.problem}")
    return Check("privacy", True, f"{key}; audit log intact ({chain.entries} entries)")


DEFAULT_CHECKS.append(check_privacy)


def check_sound(config: Config) -> Check:
    """The voice: every clip is installed and the loudspeaker opens (without one the kiosk runs silent)."""
    from hardware.speaker import MixerSpeaker
    from kiosk.voice import CLIPS, EXTENSION, texts

    if not config.voice.enabled:
        return Check("sound", True, "voice off in the config ([voice] enabled = false)")
    missing = [name for name in texts() if not (CLIPS / f"{name}{EXTENSION}").is_file()]
    if missing:
        return Check("sound", False, f"{len(missing)} voice clips missing in {CLIPS} (e.g. {missing[0]}): "
                                     f"reinstall, or record them with `make voice`")
    speaker = MixerSpeaker(config.voice.volume)
    try:
        if not speaker.available:
            return Check("sound", config.simulate, "no sound device: the kiosk runs silent (connect a speaker; the "
                                                   "service's user needs the audio group; or [voice] enabled = false)")
        return Check("sound", True, f"{len(texts())} voice clips, loudspeaker open (volume {config.voice.volume:g})")
    finally:
        speaker.close()


DEFAULT_CHECKS.append(check_sound)
