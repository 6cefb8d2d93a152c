"""The ``[rating]`` and ``[staff]`` sections of the config (issue 13): satisfaction rating buttons and the
call-staff button with its light or buzzer at the desk. Parsed by :func:`kiosk.config.parse_config`.

Both are off unless the config turns them on (a real kiosk then needs every pin). Pins are BCM numbers, checked
with the other buttons' (one use a pin).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class RatingConfig:
    enabled: bool = False
    good_pin: int | None = None        # "Hài lòng" (satisfied)
    ok_pin: int | None = None          # "Bình thường" (neutral)
    bad_pin: int | None = None         # "Chưa hài lòng" (not satisfied)


@dataclass(frozen=True)
class StaffConfig:
    enabled: bool = False
    call_pin: int | None = None        # the citizens' "call staff" button
    reset_pin: int | None = None       # at the desk, out of the citizens' reach: turns the output off
    output_pin: int | None = None      # the light or buzzer at the desk (an output: never a button's pin)
    output: str = "led"                # "led" | "buzzer" (gpiozero LED / Buzzer: on while a call waits)


def desk_sections(raw: dict[str, Any], section: Callable[..., Any]) -> tuple[RatingConfig, StaffConfig]:
    """The two sections, through the config's own section reader (``kiosk.config._section``)."""
    from kiosk.config import ConfigError

    staff = section(raw, "staff", StaffConfig)
    if staff.output not in ("led", "buzzer"):
        raise ConfigError(f'staff.output: expected "led" or "buzzer", not {staff.output!r}')
    return section(raw, "rating", RatingConfig), staff


def desk_pins(rating: RatingConfig, staff: StaffConfig) -> list[tuple[str, int | None]]:
    """(config key, pin) of every pin the enabled features use, for the config's one-use-a-pin check."""
    pins: list[tuple[str, int | None]] = []
    if rating.enabled:
        pins += [(f"rating.{name}", getattr(rating, name)) for name in ("good_pin", "ok_pin", "bad_pin")]
    if staff.enabled:
        pins += [(f"staff.{name}", getattr(staff, name)) for name in ("call_pin", "reset_pin", "output_pin")]
    return pins
