"""Which SDL video driver the kiosk draws with, and whether the installed pygame has it.

The service sets ``SDL_VIDEODRIVER=kmsdrm`` (fullscreen straight on the panel, no desktop); the config may name
one too (``[screen] driver``) so that ``kiosk doctor`` run from a shell opens the display the way the service
will. The environment wins over the config, as SDL itself lets it. A pygame whose SDL was built without the
driver (pip's plain ``pygame`` wheel has no KMS/DRM) fails with ``pygame.error: kmsdrm not available``; this
module turns that into one line naming the driver and the fix, and an exit status systemd will not restart.
"""
from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pygame

EX_CONFIG = 78          # sysexits.h: the unit's RestartPreventExitStatus=78 stops a restart loop
ENV = "SDL_VIDEODRIVER"
HEADLESS_DRIVERS = ("dummy", "offscreen")   # no window, no keyboard: nothing to poll


class DisplayError(Exception):
    """The display could not be opened; ``missing_driver`` when this pygame's SDL lacks the driver for good."""

    def __init__(self, message: str, *, missing_driver: bool = False) -> None:
        super().__init__(message)
        self.missing_driver = missing_driver


@dataclass(frozen=True)
class DriverChoice:
    name: str | None     # None: SDL picks (x11, wayland, kmsdrm, ... in its own order)
    source: str          # where the name came from, for the technician


def choose_driver(configured: str = "", environ: Mapping[str, str] = os.environ, *,
                  simulate: bool = False) -> DriverChoice:
    """The driver the kiosk will use: ``SDL_VIDEODRIVER`` if set (the unit sets it), else ``[screen] driver``.

    A simulation on a machine with no desktop (CI, ssh) draws headless, as ``make run`` does.
    """
    if environ.get(ENV):
        return DriverChoice(environ[ENV], ENV)
    if configured:
        return DriverChoice(configured, "[screen] driver")
    if simulate and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return DriverChoice("dummy", "simulation without a desktop")
    return DriverChoice(None, "default")


def apply_driver(configured: str, environ: MutableMapping[str, str] = os.environ, *,
                 simulate: bool = False) -> DriverChoice:
    """Put the chosen driver where SDL reads it (before the display opens) and return the choice."""
    choice = choose_driver(configured, environ, simulate=simulate)
    if choice.name:
        environ[ENV] = choice.name
    return choice


def sdl_video_drivers() -> list[str] | None:
    """The video drivers compiled into the SDL that pygame loaded, or None when that cannot be told.

    pygame has no call for it, so ask SDL itself (``SDL_GetVideoDriver``) in the library pygame mapped:
    the wheel's bundled ``libSDL2-2*.so`` or Debian's ``libSDL2-2.0.so.0``.
    """
    import pygame  # noqa: F401  (maps its SDL into the process)

    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libSDL2-2" in line.rsplit("/", 1)[-1]}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            sdl = ctypes.CDLL(path)
            sdl.SDL_GetVideoDriver.restype = ctypes.c_char_p
            sdl.SDL_GetVideoDriver.argtypes = [ctypes.c_int]
            return [sdl.SDL_GetVideoDriver(i).decode() for i in range(sdl.SDL_GetNumVideoDrivers())]
        except (OSError, AttributeError):
            continue
    return None


def missing_driver_message(driver: str, available: list[str]) -> str:
    fix = ("install pygame-ce (its aarch64 wheel has KMS/DRM) or Debian's python3-pygame in a venv made with "
           "--system-site-packages: re-run sudo ./install.sh" if driver.lower() == "kmsdrm"
           else f"install a pygame whose SDL has {driver!r}, or set SDL_VIDEODRIVER / [screen] driver to one it has")
    return f"display: this pygame's SDL has no {driver!r} video driver (it has {', '.join(available)}): {fix}"


def open_failure_message(driver: str | None, error: Exception) -> str:
    name = driver or "SDL's default driver"
    hint = ("is the panel connected, the kiosk user in the video and render groups, the service stopped (sudo "
            "systemctl stop kiosk) and no desktop holding the display (use Raspberry Pi OS Lite)"
            if (driver or "").lower() == "kmsdrm"
            else "SDL_VIDEODRIVER=dummy runs headless")
    return f"display: cannot open the display with {name}: {error}; {hint}"


def open_display(size: tuple[int, int], *, fullscreen: bool) -> tuple[pygame.Surface, str]:
    """``pygame.display.set_mode`` for the kiosk, or a DisplayError that says which driver and what to do.

    Returns the display surface and the name of the driver SDL used.
    """
    import pygame

    driver = os.environ.get(ENV) or None
    try:
        pygame.display.init()
        surface = pygame.display.set_mode((0, 0), pygame.FULLSCREEN) if fullscreen else pygame.display.set_mode(size)
    except pygame.error as exc:
        pygame.display.quit()
        available = sdl_video_drivers()
        if driver and available is not None and driver.lower() not in [d.lower() for d in available]:
            raise DisplayError(missing_driver_message(driver, available), missing_driver=True) from exc
        raise DisplayError(open_failure_message(driver, exc)) from exc
    return surface, pygame.display.get_driver()


def probe(configured: str = "", *, simulate: bool = False, size: tuple[int, int] = (320, 240),
          environ: Mapping[str, str] = os.environ) -> str:
    """Open and close the display as the service would (``kiosk doctor``); a line saying which driver it used.

    The driver is chosen from ``environ`` (the process's environment unless a test gives another); SDL reads
    it from the real environment, which is left as it was found. Raises DisplayError.
    """
    import pygame

    choice = choose_driver(configured, environ, simulate=simulate)
    before = os.environ.get(ENV)
    try:
        if choice.name:
            os.environ[ENV] = choice.name
        else:
            os.environ.pop(ENV, None)
        surface, used = open_display(size, fullscreen=False)
        sizes = pygame.display.get_desktop_sizes() if hasattr(pygame.display, "get_desktop_sizes") else []
        width, height = sizes[0] if sizes else surface.get_size()
        chosen = f"chosen by {choice.source}" if choice.name else "SDL's own choice"
        return f"opened with SDL video driver {used!r} ({chosen}), display {width}x{height}"
    finally:
        pygame.display.quit()
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
