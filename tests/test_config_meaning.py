"""Config values are checked for meaning, not only type: every number finite and in its range, each error naming
the key; `kiosk doctor` refuses the same file; mutated configs never reach a traceback (issue 15, item 2)."""
import math
import random
import tomllib

import pytest

from kiosk.config import LIMITS, SIMULATION_CONFIG, ConfigError, parse_config


def _sim_raw():
    return tomllib.loads(SIMULATION_CONFIG.read_text(encoding="utf-8"))


def _set(raw, dotted, value):
    section, key = dotted.split(".")
    if section == "kiosk" or section in raw:
        raw[section][key] = value
    else:
        raw[section] = {key: value}


def _refused(raw, key):
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert str(err.value).startswith(f"{key}:"), str(err.value)
    return str(err.value)


@pytest.mark.parametrize("key", sorted(LIMITS))
def test_each_limit_refuses_below_and_above_and_accepts_its_edges(key):
    low, high, low_ok = LIMITS[key]
    is_float = isinstance(_default(key), float)
    for bad in (low - 1, high + 1, low if not low_ok else None):
        if bad is None:
            continue
        raw = _sim_raw()
        _set(raw, key, float(bad) if is_float else int(bad))
        _refused(raw, key)
    raw = _sim_raw()
    _set(raw, key, float(high) if is_float else int(high))
    parse_config(raw)


def _default(key):
    from kiosk import config as cfg

    section, name = key.split(".")
    if section == "kiosk":
        return 200
    cls = cfg.Config.__dataclass_fields__[section].default_factory     # the section's dataclass
    default = cls.__dataclass_fields__[name].default
    return 0 if default is None else default


@pytest.mark.parametrize("key", ["camera.idle_fps", "timing.done_seconds", "recognition.threshold",
                                 "recognition.margin", "recognition.max_yaw_ratio", "recognition.unsure_below",
                                 "recognition.autolink_below", "buttons.bounce_time", "recognition.dominance"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400])
def test_nan_and_infinities_are_refused_by_name(key, value):
    raw = _sim_raw()
    _set(raw, key, value)
    _refused(raw, key)


@pytest.mark.parametrize("key, value", [
    ("screen.width", -800), ("screen.height", 0), ("camera.width", -640), ("categories[0].pin", -1),
    ("categories[0].pin", 28), ("buttons.consent_pin", 99), ("recognition.threshold", -0.5),
    ("recognition.enrol_frames", 2**63 - 1), ("recognition.confirm_frames", 0), ("kiosk.min_free_mb", -5),
    ("identity.max_templates", 10**9), ("privacy.card_months", 0), ("printer.port", 70000),
])
def test_meaningless_values_are_refused_by_name(key, value):
    raw = _sim_raw()
    if key.startswith("categories"):
        raw["categories"][0]["pin"] = value
    else:
        _set(raw, key, value)
    _refused(raw, key)


def test_a_folder_hotplug_needs_its_folder():
    raw = _sim_raw()
    raw["sync"]["sticks_folder"] = " "
    _refused(raw, "sync.sticks_folder")


def test_strings_with_nul_or_absurd_length_are_refused_by_name():
    raw = _sim_raw()
    raw["kiosk"]["data_dir"] = "data\x00dir"
    assert "control characters" in _refused(raw, "kiosk.data_dir")
    raw = _sim_raw()
    raw["printer"]["out_dir"] = "x" * 5000
    message = _refused(raw, "printer.out_dir")
    assert len(message) < 200
    raw = _sim_raw()
    raw["kiosk"]["id"] = "k" * 65
    _refused(raw, "kiosk.id")


def test_doctor_runs_the_same_validation(tmp_path, capsys):
    from kiosk.__main__ import main

    path = tmp_path / "kiosk.toml"
    path.write_text(SIMULATION_CONFIG.read_text(encoding="utf-8").replace("width = 800", "width = -800"),
                    encoding="utf-8")
    assert main(["doctor", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "screen.width: must be 160 to 8192, got -800" in err and "Traceback" not in err


def _numbers(config):
    import dataclasses

    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from _numbers(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield value


HOSTILE = [math.nan, math.inf, -math.inf, -1, -800, 0, 2**63 - 1, 10**30, 1e308, "x", "", "\x00", [], [1, "a"],
           {}, {"a": 1}, True, 0.5, 28, "a" * 2000]


def mutate(raw, rng):
    """One to three random edits: a value replaced by something hostile, a key or table removed."""
    for _ in range(rng.randint(1, 3)):
        tables = [(name, table) for name, table in raw.items() if isinstance(table, dict) and table]
        tables += [(f"categories[{i}]", c) for i, c in enumerate(raw.get("categories") or [])
                   if isinstance(c, dict) and c]
        if not tables:
            return
        what = rng.random()
        if what < 0.1:
            raw.pop(rng.choice(list(raw)), None)
            continue
        name, table = rng.choice(tables)
        key = rng.choice(list(table))
        if what < 0.25:
            del table[key]
        else:
            table[key] = rng.choice(HOSTILE)


def test_mutated_configs_are_accepted_and_buildable_or_refused_by_name(tmp_path):
    from kiosk.app import build_kiosk
    from kiosk.loop import FakeClock
    import dataclasses

    rng = random.Random(15)
    accepted = refused = built = 0
    for n in range(600):
        raw = _sim_raw()
        mutate(raw, rng)
        try:
            config = parse_config(raw)
        except ConfigError as exc:
            refused += 1
            assert ":" in str(exc) and "\n" not in str(exc)
            continue
        accepted += 1
        assert all(math.isfinite(v) for v in _numbers(config)), config
        if built < 3:       # a sample: the kiosk builds from what was accepted (headless, simulated devices)
            data = tmp_path / f"data{n}"
            config = dataclasses.replace(
                config, data_dir=data, simulate=True,
                camera=dataclasses.replace(config.camera, kind="none"),
                privacy=dataclasses.replace(config.privacy, key_source="file", key_file=str(tmp_path / f"k{n}")),
                identity=dataclasses.replace(config.identity, secret_file=str(data / "office-secret")),
                printer=dataclasses.replace(config.printer, connection="simulated", out_dir=str(tmp_path / "out")),
                sync=dataclasses.replace(config.sync, hotplug="off"))
            kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True)
            kiosk.close()
            built += 1
    assert refused > 300 and accepted > 20 and built == 3, (refused, accepted, built)
