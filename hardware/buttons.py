"""Physical category buttons (and touchless IR sensors) on GPIO pins, through gpiozero.

Each named pin becomes a ``gpiozero.Button``; a press calls ``on_press(name)``. gpiozero calls it on its own
background thread, so ``on_press`` must do nothing but hand the name over (``queue.put``): the kiosk's loop
owns all the real work.

Active-low IR obstacle sensors (the common FC-51 / TCRT5000 / LM393 comparator boards, whose OUT pin goes LOW
when a hand is in front) work exactly like a push button wired to ground: keep ``pull_up=True``. A sensor that
drives its output HIGH on detection takes ``active_high=True`` (the internal pull resistor is then left off,
since the sensor drives the line both ways).

Example::

    events = queue.Queue()
    with GpioButtons({"ho-tich": 17, "dat-dai": 27}, events.put) as buttons:
        name = events.get()      # "ho-tich" when GPIO17 is pulled to ground

Tests pass ``pin_factory=gpiozero.pins.mock.MockFactory()`` and call ``pin.drive_low()``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class ButtonError(Exception):
    """A button's pin could not be claimed; the message names the button and the pin."""


class GpioButtons:
    """A set of named GPIO inputs that report presses by name.

    ``pins`` maps a name (a category key, ``"consent"``) to a BCM GPIO number. ``bounce_time`` (seconds)
    ignores contact chatter; ``pull_up=True`` means the input idles high and "pressed" is low (a button or an
    active-low sensor to ground). ``pin_factory`` is passed to gpiozero (None: gpiozero's default, lgpio on a
    Pi 5). Use as a context manager or call :meth:`close` to release the pins.
    """

    def __init__(self, pins: Mapping[str, int], on_press: Callable[[str], None], *, bounce_time: float | None = 0.05,
                 pull_up: bool = True, active_high: bool | None = None, pin_factory: Any = None):
        if not callable(on_press):
            raise TypeError("on_press must be callable")
        self._check_unique(pins)
        from gpiozero import Button  # imported here: the module stays importable where gpiozero is absent

        self._on_press = on_press
        self._buttons: dict[str, Any] = {}
        self.pins: dict[str, int] = dict(pins)
        for name, pin in self.pins.items():
            options: dict[str, Any] = {"bounce_time": bounce_time, "pin_factory": pin_factory}
            if active_high is None:
                options["pull_up"] = pull_up
            else:
                options["pull_up"] = None
                options["active_state"] = active_high
            try:
                button = Button(pin, **options)
            except Exception as exc:  # BadPinFactory (not a Pi), GPIOPinInUse, PinInvalidPin, permissions...
                self.close()
                raise ButtonError(f"button {name!r}: cannot use GPIO pin {pin}: "
                                  f"{type(exc).__name__}: {exc}") from exc
            button.when_pressed = self._callback_for(name)
            self._buttons[name] = button

    @staticmethod
    def _check_unique(pins: Mapping[str, int]) -> None:
        seen: dict[int, str] = {}
        for name, pin in pins.items():
            if pin in seen:
                raise ButtonError(f"buttons {seen[pin]!r} and {name!r} are both on GPIO pin {pin}")
            seen[pin] = name

    def _callback_for(self, name: str) -> Callable[[], None]:
        on_press = self._on_press

        def pressed() -> None:  # runs on gpiozero's thread: only hand the name over
            on_press(name)
        return pressed

    @property
    def names(self) -> tuple[str, ...]:
        """The button names, in the order they were given."""
        return tuple(self.pins)

    def is_pressed(self, name: str) -> bool:
        """Whether the named input is active right now (for a self-test)."""
        return bool(self._buttons[name].is_pressed)

    def close(self) -> None:
        """Release every pin (safe to call twice)."""
        buttons, self._buttons = self._buttons, {}
        for button in buttons.values():
            button.when_pressed = None
            button.close()

    def __enter__(self) -> "GpioButtons":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        pins = ", ".join(f"{name}=GPIO{pin}" for name, pin in self.pins.items())
        return f"GpioButtons({pins}{'' if self._buttons else ', closed'})"
