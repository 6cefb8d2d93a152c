"""``kiosk doctor``: the technician's self-test. Each check says OK or FAIL and why, in one line.

It opens every device the config names, the same way ``kiosk run`` does, so run it with the service
stopped (``systemctl stop kiosk``) for the camera, buttons and printer to be free.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import IO, Callable

from kiosk.config import Config

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
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame.font

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
    from kiosk.app import make_camera

    camera = make_camera(config)
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
    return Check("printer", ok, f"{config.printer.connection}: {status.detail}")


def check_buttons(config: Config) -> Check:
    if config.simulate:
        return Check("buttons", True, "simulation: keys 1-9 and Y")
    import queue

    from kiosk.app import make_buttons

    buttons = make_buttons(config, queue.Queue())
    buttons.close()
    pins = ", ".join(f"{c.key}={c.pin}" for c in config.categories)
    return Check("buttons", True, f"GPIO pins free and claimed: {pins}, consent={config.buttons.consent_pin}")


DEFAULT_CHECKS = [check_fonts, check_store, check_face_models, check_camera, check_printer, check_buttons]
