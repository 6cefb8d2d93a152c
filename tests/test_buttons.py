"""GPIO buttons driven through gpiozero's own MockFactory: presses arrive by name, errors name the pin."""
from __future__ import annotations

import queue
import threading
import warnings

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from hardware.buttons import ButtonError, GpioButtons

WAIT = 5.0  # generous upper bound for a callback on gpiozero's thread; the test never sleeps


@pytest.fixture
def factory():
    pin_factory = MockFactory()
    yield pin_factory
    pin_factory.close()


def test_press_low_reports_the_name(factory):
    events: queue.Queue[str] = queue.Queue()
    with GpioButtons({"ho-tich": 17, "dat-dai": 27}, events.put, pin_factory=factory):
        factory.pin(27).drive_low()
        assert events.get(timeout=WAIT) == "dat-dai"
        factory.pin(27).drive_high()
        factory.pin(17).drive_low()
        assert events.get(timeout=WAIT) == "ho-tich"
    assert events.empty()


def test_release_is_not_a_press(factory):
    pressed = threading.Event()
    with GpioButtons({"y": 22}, lambda name: pressed.set(), pin_factory=factory):
        factory.pin(22).drive_high()
        assert not pressed.is_set()
        factory.pin(22).drive_low()
        assert pressed.wait(WAIT)


def test_ir_sensor_active_high(factory):
    pressed = threading.Event()
    with GpioButtons({"land": 5}, lambda name: pressed.set(), active_high=True, pin_factory=factory) as buttons:
        factory.pin(5).drive_low()
        assert not pressed.is_set()
        factory.pin(5).drive_high()
        assert pressed.wait(WAIT)
        assert buttons.is_pressed("land")


def test_pull_down_wiring_presses_high(factory):
    got: list[str] = []
    done = threading.Event()

    def on_press(name):
        got.append(name)
        done.set()

    with GpioButtons({"a": 6}, on_press, pull_up=False, pin_factory=factory):
        factory.pin(6).drive_high()
        assert done.wait(WAIT)
    assert got == ["a"]


def test_close_releases_the_pins(factory):
    buttons = GpioButtons({"a": 17}, lambda name: None, pin_factory=factory)
    assert "GPIO17" in repr(buttons)
    buttons.close()
    buttons.close()
    Button(17, pin_factory=factory).close()   # would raise GPIOPinInUse if the pin were still held


def test_pin_in_use_names_button_and_pin_and_releases_the_others(factory):
    taken = Button(27, pin_factory=factory)
    try:
        with pytest.raises(ButtonError, match=r"'dat-dai'.*GPIO pin 27.*GPIOPinInUse"):
            GpioButtons({"ho-tich": 17, "dat-dai": 27}, lambda name: None, pin_factory=factory)
        Button(17, pin_factory=factory).close()   # the first button was released on failure
    finally:
        taken.close()


def test_invalid_pin_names_it(factory):
    with pytest.raises(ButtonError, match=r"'x'.*GPIO pin 99"):
        GpioButtons({"x": 99}, lambda name: None, pin_factory=factory)


def test_two_names_on_one_pin_is_refused(factory):
    with pytest.raises(ButtonError, match=r"'a' and 'b' are both on GPIO pin 4"):
        GpioButtons({"a": 4, "b": 4}, lambda name: None, pin_factory=factory)


def test_no_pin_factory_off_a_pi_is_a_clear_error(monkeypatch):
    """Off a Pi, gpiozero finds no pin factory (BadPinFactory): the error must name the pin, not crash obscurely."""
    from gpiozero import Device

    if Device.pin_factory is not None:
        pytest.skip("a pin factory is already configured in this process")
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    try:
        import lgpio  # noqa: F401
        pytest.skip("lgpio is installed: this machine may have real GPIO")
    except ImportError:
        pass
    with warnings.catch_warnings():   # gpiozero warns about each factory it falls back from
        warnings.simplefilter("ignore")
        with pytest.raises(ButtonError, match=r"'ho-tich'.*GPIO pin 17.*BadPinFactory"):
            GpioButtons({"ho-tich": 17}, lambda name: None)
