"""The call-staff output: a light or buzzer at the desk (gpiozero ``LED`` / ``Buzzer``), and the staff's reset button.

The citizens' call button is an ordinary kiosk button (``hardware.buttons``); the kiosk calls :meth:`StaffCall.call`
when it is pressed. The output stays on until staff press the reset button at the desk (its pin, handled here
on gpiozero's thread: nothing of the kiosk needs to run for the reset) or the kiosk calls :meth:`StaffCall.reset`.

Tests pass ``pin_factory=gpiozero.pins.mock.MockFactory()``: the output pin's ``state`` goes 1 on a call, 0 on
the reset.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger("hardware.staffcall")


class StaffCallError(Exception):
    """The output or reset pin could not be claimed; the message names the pin."""


class StaffCall:
    """A desk output turned on by a call and off by the staff's reset button (or :meth:`reset`)."""

    def __init__(self, output_pin: int, *, reset_pin: int | None = None, kind: str = "led", pull_up: bool = True,
                 bounce_time: float | None = 0.05, pin_factory: Any = None,
                 on_reset: Callable[[], None] | None = None) -> None:
        from gpiozero import LED, Button, Buzzer  # imported here: the module stays importable without gpiozero

        if kind not in ("led", "buzzer"):
            raise ValueError(f'kind must be "led" or "buzzer", not {kind!r}')
        self._on_reset = on_reset
        self._button: Any = None
        try:
            self._output: Any = (LED if kind == "led" else Buzzer)(output_pin, pin_factory=pin_factory)
        except Exception as exc:  # BadPinFactory (not a Pi), GPIOPinInUse, PinInvalidPin, permissions...
            raise StaffCallError(f"staff call {kind}: cannot use GPIO pin {output_pin}: "
                                 f"{type(exc).__name__}: {exc}") from exc
        if reset_pin is not None:
            try:
                self._button = Button(reset_pin, pull_up=pull_up, bounce_time=bounce_time, pin_factory=pin_factory)
            except Exception as exc:
                self._output.close()
                raise StaffCallError(f"staff reset button: cannot use GPIO pin {reset_pin}: "
                                     f"{type(exc).__name__}: {exc}") from exc
            self._button.when_pressed = self.reset

    def call(self) -> None:
        """A citizen asked for help: the output goes on (and stays on)."""
        self._output.on()

    def reset(self) -> None:
        """Staff took the call: the output goes off."""
        was_on = self.is_on
        self._output.off()
        if was_on and self._on_reset is not None:
            self._on_reset()

    @property
    def is_on(self) -> bool:
        return bool(self._output.is_active)

    def close(self) -> None:
        """Release the pins (the output goes off with them); safe to call twice."""
        if self._button is not None:
            self._button.when_pressed = None
            self._button.close()
            self._button = None
        self._output.close()


class LoggedStaffCall:
    """The simulation's desk: no pin, the call and the reset are log lines (``kiosk run --simulate``: H, then R)."""

    def __init__(self) -> None:
        self.is_on = False

    def call(self) -> None:
        if not self.is_on:
            log.warning("simulated desk: the call-staff light is ON (R resets it)")
        self.is_on = True

    def reset(self) -> None:
        if self.is_on:
            log.info("simulated desk: the call-staff light is off")
        self.is_on = False

    def close(self) -> None:
        self.is_on = False
