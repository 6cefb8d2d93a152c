"""The config's value checks shared by its sections: types, text, the error every check raises.

Split from ``kiosk.config`` (which re-exports :class:`ConfigError`) so that file keeps to its sections.
"""
from __future__ import annotations

import math
from typing import Any


class ConfigError(ValueError):
    """A config file that cannot be used; the message starts with the file and the key."""


MAX_TEXT = 1000          # characters in any string value (paths, names): more is a mistake, not a setting


def _coerce(key: str, value: Any, default: Any, annotation: object) -> Any:
    optional = "None" in str(annotation)
    if value is None and optional:
        return None
    kind = type(default) if default is not None else int
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {_short(value)}")
        return value
    if kind is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {_short(value)}")
        try:
            number = float(value)
        except OverflowError:           # an integer of 400 digits
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {_short(value)}")
        return number
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_short(value)}")
        _check_text(key, value)
        return value
    raise ConfigError(f"{key}: unsupported value {value!r}")  # pragma: no cover - schema bug


def _check_text(key: str, value: str) -> None:
    """A string the kiosk can use as a path or print: no NUL or control characters, not absurdly long."""
    if len(value) > MAX_TEXT:
        raise ConfigError(f"{key}: at most {MAX_TEXT} characters, got {len(value)}")
    if any(ord(c) < 32 for c in value):
        raise ConfigError(f"{key}: control characters are not allowed, got {_short(value)}")


def _short(value: Any) -> str:
    """``repr`` cut to one readable line: the error names the key, not a 10,000-character value."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
