"""The office's config updates, kept apart from the technician's config file.

Why apart: the service runs with ``ProtectSystem=full`` and ``/etc/kiosk`` belongs to root, so the kiosk user can
never rewrite ``/etc/kiosk/kiosk.toml`` (and should not: it holds this kiosk's hardware). An update the office
signed (kiosk/syncinbox.py) is written instead to ``<data folder>/office-config.toml`` (the state directory,
``/var/lib/kiosk``, is the kiosk's), atomically, the file it replaces kept as ``office-config.toml.previous``.
:func:`kiosk.config.load_config` layers it over the config file for exactly the keys the office may change
(:data:`UPDATABLE`): ``[kiosk] office`` and the ``[[categories]]`` (names, prefixes; never GPIO pins: a category
keeps the pin of the config file's category with the same key, a new one takes the pins of the categories the
office removed, in order), and the office's rules (kiosk/rules.py: ``[hours]``, ``[caps]``, ``[numbers]`` whole,
``[priority]`` but its pin). The running kiosk notices the new file when nobody is at the screen and no stick is in use, and exits with
:data:`EX_RESTART`, which the unit (``Restart=on-failure``) restarts in three seconds with the new config.

Rollback: copy ``office-config.toml.previous`` over ``office-config.toml``, or delete it to use
``/etc/kiosk/kiosk.toml`` alone; ``kiosk doctor`` says whether an office override is active.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import tomllib
from pathlib import Path
from typing import Any, Callable

from kiosk.storage import atomic_write

log = logging.getLogger("kiosk.config")

OVERRIDE_NAME = "office-config.toml"
EX_RESTART = 75                 # sysexits.h EX_TEMPFAIL: "try again"; the unit restarts on it
CHECK_SECONDS = 5.0             # how often the idle kiosk looks at the override file
UPDATABLE: dict[str, set[str] | None] = {"kiosk": {"office"}, "categories": None,   # None: the whole table
                                         "hours": None, "caps": None, "numbers": None,   # the office's rules
                                         "priority": {"age", "mark", "wait_seconds"}}     # (its pin is hardware)


class OfficeConfigError(Exception):
    """An office update that may not or cannot be used; one line."""


def override_path(data_dir: Path) -> Path:
    return Path(data_dir) / OVERRIDE_NAME


def check_update(update: dict[str, Any]) -> None:
    """Only the keys the office may change, categories as tables without pins."""
    for key, value in update.items():
        if key not in UPDATABLE:
            raise OfficeConfigError(f"{key} cannot be changed from the office (only kiosk.office, categories, "
                                    f"hours, caps, numbers, priority without its pin)")
        allowed = UPDATABLE[key]
        if allowed and (not isinstance(value, dict) or set(value) - allowed):
            raise OfficeConfigError(f"in [{key}] only {', '.join(sorted(allowed))} may change")
    cats = update.get("categories", [])
    if not isinstance(cats, list) or not all(isinstance(c, dict) for c in cats):
        raise OfficeConfigError("categories must be [[categories]] tables")
    if any("pin" in c for c in cats):
        raise OfficeConfigError("categories: GPIO pins belong to this kiosk's buttons, not to the office")


def layer(base: dict[str, Any], office: dict[str, Any]) -> dict[str, Any]:
    """The config file's TOML with the office's keys over it (pins from the file, by category key)."""
    raw = copy.deepcopy(base)
    if "kiosk" in office:
        raw.setdefault("kiosk", {})["office"] = office["kiosk"]["office"]
    for table in ("hours", "caps", "numbers"):      # the office's rules: its tables replace the file's whole
        if table in office:
            raw[table] = office[table]
    if "priority" in office:
        raw["priority"] = {**raw.get("priority", {}), **office["priority"]}
    if "categories" in office:
        old = [c for c in raw.get("categories", []) if isinstance(c, dict)]
        pins = {c.get("key"): c.get("pin") for c in old}
        keys = {c.get("key") for c in office["categories"]}
        freed = [c["pin"] for c in old if c.get("key") not in keys and c.get("pin") is not None]
        new = []
        for cat in office["categories"]:
            cat = dict(cat)
            pin = pins.get(cat.get("key"))
            if pin is None and freed:
                pin = freed.pop(0)
            if pin is not None:
                cat["pin"] = pin
            new.append(cat)
        raw["categories"] = new
    return raw


def read_override(data_dir: Path) -> dict[str, Any] | None:
    """The office's keys now in force, None without an override; OfficeConfigError when it is unusable."""
    path = override_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise OfficeConfigError(f"{path}: cannot read: {exc}") from None
    try:
        office = tomllib.loads(text)
        check_update(office)
    except (tomllib.TOMLDecodeError, OfficeConfigError) as exc:
        raise OfficeConfigError(f"{path}: {exc}") from None
    return office


def layered(base: dict[str, Any], data_dir: Path) -> tuple[dict[str, Any], str | None]:
    """``base`` with the office override layered (if any and usable); the problem with it, if any."""
    from kiosk.config import ConfigError, parse_config

    try:
        office = read_override(data_dir)
        if office is None:
            return base, None
        raw = layer(base, office)
        parse_config(raw)
    except (OfficeConfigError, ConfigError) as exc:
        why = f"office config override not used: {exc}"
        log.warning("%s (the config file alone is used)", why)
        return base, why
    return raw, None


def write_override(config_path: Path, data_dir: Path, update_text: str) -> None:
    """Merge an office update into the override, check the whole config, write it atomically (previous kept).

    OfficeConfigError: the update is refused (changes nothing); OSError: the files cannot be read or written.
    """
    import tomlkit

    from kiosk.config import ConfigError, parse_config

    try:
        update = tomllib.loads(update_text)
    except tomllib.TOMLDecodeError as exc:
        raise OfficeConfigError(f"not valid TOML: {exc}") from None
    check_update(update)
    base = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    try:
        current = read_override(data_dir) or {}
    except OfficeConfigError:
        current = {}                            # an unusable override is replaced, and kept as .previous
    office = {**current, **update}
    try:
        parse_config(layer(base, office))
    except ConfigError as exc:
        raise OfficeConfigError(f"refused by the config schema: {exc}") from None
    doc = tomlkit.document()
    doc.add(tomlkit.comment("Written by `kiosk import` from the office's signed update; layered over the config"))
    doc.add(tomlkit.comment("file for kiosk.office and categories. Delete it to use the config file alone."))
    for key, value in office.items():
        doc.add(key, value)
    path = override_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        atomic_write(path.with_name(OVERRIDE_NAME + ".previous"), path.read_bytes())
    atomic_write(path, tomlkit.dumps(doc).encode("utf-8"))


def fingerprint(data_dir: Path) -> str | None:
    try:
        return hashlib.sha256(override_path(data_dir).read_bytes()).hexdigest()
    except OSError:
        return None


class OfficeConfigWatch:
    """On the loop thread, when idle: a new office override calls ``on_change`` (the kiosk restarts with it),
    once ``busy()`` is false: never while the stick that brought it is still in use or its banner is up (a
    restart would stop the import child and leave the stick mounted)."""

    def __init__(self, data_dir: Path, *, clock: Callable[[], float], on_change: Callable[[], None],
                 busy: Callable[[], bool] = lambda: False) -> None:
        self.data_dir, self._clock, self._on_change, self._busy = Path(data_dir), clock, on_change, busy
        self._seen = fingerprint(data_dir)
        self.next_due = clock() + CHECK_SECONDS

    def poll(self) -> None:
        now = self._clock()
        if now < self.next_due:
            return
        self.next_due = now + CHECK_SECONDS
        current = fingerprint(self.data_dir)
        if current != self._seen and not self._busy():
            self._seen = current
            log.info("the office's config changed (%s): restarting to use it", override_path(self.data_dir))
            self._on_change()
