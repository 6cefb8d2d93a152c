"""Config: the shipped files load, and every mistake names its key."""
import tomllib

import pytest

from kiosk.config import PACKAGED_CONFIGS, SIMULATION_CONFIG, ConfigError, load_config, parse_config


def _sim_raw():
    return tomllib.loads(SIMULATION_CONFIG.read_text(encoding="utf-8"))


def test_shipped_configs_load_with_the_office_categories():
    sim = load_config(SIMULATION_CONFIG)
    pi = load_config(PACKAGED_CONFIGS / "pi.toml")
    names = [c.name_vi for c in sim.categories]
    assert names == ["Hộ tịch", "Đất đai", "Chứng thực", "Xây dựng", "Đăng ký kinh doanh",
                     "Lao động – Thương binh và Xã hội"]
    assert all(c.name_en and c.prefix and c.pin is not None for c in sim.categories)
    assert sim.simulate and not pi.simulate
    assert pi.printer.connection == "usb" and pi.printer.width_dots == 576
    assert pi.camera.kind == "picamera2"


@pytest.mark.parametrize("mutate, key", [
    (lambda r: r["categories"][2].__setitem__("pin", "seven"), "categories[2].pin"),
    (lambda r: r["categories"][2].__setitem__("pin", 40), "categories[2].pin"),
    (lambda r: r["categories"][3].__setitem__("pin", 5), "categories[3].pin"),
    (lambda r: r["categories"][1].__setitem__("prefix", "HT"), "categories[1].prefix"),
    (lambda r: r["categories"][1].__setitem__("prefix", "Đ"), "categories[1].prefix"),
    (lambda r: r["categories"][0].pop("name_vi"), "categories[0].name_vi"),
    (lambda r: r["categories"][0].__setitem__("colour", "red"), "categories[0].colour"),
    (lambda r: r["printer"].__setitem__("paper_mm", 57), "printer.paper_mm"),
    (lambda r: r["printer"].__setitem__("connection", "bluetooth"), "printer.connection"),
    (lambda r: r["recognition"].__setitem__("threshold", "low"), "recognition.threshold"),
    (lambda r: r["recognition"].__setitem__("treshold", 0.5), "recognition.treshold"),
    (lambda r: r["camera"].__setitem__("kind", "files"), "camera.folder"),
    (lambda r: r["kiosk"].__setitem__("day_starts_at_hour", 25), "kiosk.day_starts_at_hour"),
    (lambda r: r.pop("kiosk"), "kiosk"),
    (lambda r: r.__setitem__("categories", []), "categories"),
    (lambda r: r["recognition"].__setitem__("unsure_below", 0.5), "recognition.unsure_below"),
    (lambda r: r["recognition"].__setitem__("unsure_below", "high"), "recognition.unsure_below"),
    (lambda r: r["recognition"].__setitem__("autolink_below", 0.6), "recognition.autolink_below"),
    (lambda r: r["identity"].__setitem__("keep", ["name", "phone"]), "identity.keep"),
    (lambda r: r["identity"].__setitem__("keep", "name"), "identity.keep"),
    (lambda r: r["identity"].__setitem__("ticket_fields", ["name", "phone"]), "identity.ticket_fields"),
    (lambda r: r["identity"].__setitem__("keep", ["card_number"]), "identity.keep"),   # never kept on the kiosk
    (lambda r: r["identity"].__setitem__("max_templates", 0), "identity.max_templates"),
    (lambda r: r["identity"].__setitem__("min_age_for_face", -1), "identity.min_age_for_face"),
    (lambda r: r["identity"].__setitem__("secret_file", 7), "identity.secret_file"),
    (lambda r: r["identity"].__setitem__("secrets", "x"), "identity.secrets"),
])
def test_errors_name_the_key(mutate, key):
    raw = _sim_raw()
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert str(err.value).startswith(f"{key}:"), str(err.value)


def test_real_kiosk_needs_every_pin():
    raw = _sim_raw()
    raw["kiosk"]["simulate"] = False
    raw["categories"][4].pop("pin")
    with pytest.raises(ConfigError, match=r"^categories\[4\]\.pin: a real kiosk needs a GPIO pin"):
        parse_config(raw)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "kiosk.toml"
    bad.write_text("[kiosk\nid = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="kiosk.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="missing.toml: config file not found"):
        load_config(tmp_path / "missing.toml")


def test_cli_exits_non_zero_with_the_key(tmp_path, capsys):
    from kiosk.__main__ import main

    raw = SIMULATION_CONFIG.read_text(encoding="utf-8").replace("pin = 13", 'pin = "x"')
    path = tmp_path / "kiosk.toml"
    path.write_text(raw, encoding="utf-8")
    assert main(["run", "--config", str(path), "--exit-after", "0"]) == 78
    assert "categories[2].pin: expected an integer GPIO pin" in capsys.readouterr().err


def test_identity_defaults_and_settings():
    raw = _sim_raw()
    del raw["identity"]
    raw["recognition"].pop("unsure_below")
    config = parse_config(raw)
    assert config.identity.secret_file == "/etc/kiosk/office-secret"
    assert config.identity.keep == ("name", "birth_date", "sex") and config.identity.max_templates == 5
    assert config.identity.min_age_for_face == 18
    assert config.identity.ticket_fields == ("name", "card_number", "birth_date")
    assert config.recognition.autolink_below is None and config.recognition.unsure_below is None
    raw["identity"] = {"keep": ["name", "address"], "max_templates": 3, "ticket_fields": ["name", "sex"]}
    raw["recognition"].update(autolink_below=0.4, unsure_below=0.6)
    config = parse_config(raw)
    assert config.identity.keep == ("name", "address") and config.identity.max_templates == 3
    assert config.identity.ticket_fields == ("name", "sex") and config.identity.keep == ("name", "address")
    assert (config.recognition.autolink_below, config.recognition.unsure_below) == (0.4, 0.6)


def test_the_main_stream_of_the_pi_config_gives_a_card_qr_two_px_per_module_at_25_cm():
    from hardware.camera import HFOV_CAMERA_MODULE_3, px_per_module

    pi = load_config(PACKAGED_CONFIGS / "pi.toml")
    assert px_per_module(pi.camera.width, hfov_deg=HFOV_CAMERA_MODULE_3, distance_mm=250, qr_mm=13,
                         modules=41) >= 2.0
    assert px_per_module(640, hfov_deg=HFOV_CAMERA_MODULE_3, distance_mm=250, qr_mm=13, modules=41) < 1.0
