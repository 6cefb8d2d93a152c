"""The image pixel limit is a setting (``[camera] max_image_pixels``, issue 15 item 3): checked for meaning, and
the one replay's input check and the files camera both obey."""
import dataclasses
import json

import pytest
from PIL import Image

from hardware.camera import CameraError, FileCamera
from kiosk.config import SIMULATION_CONFIG, CameraConfig, ConfigError, load_config
from kiosk.replay import MAX_PIXELS


def _config_file(tmp_path, value):
    text = SIMULATION_CONFIG.read_text(encoding="utf-8")
    assert "max_image_pixels = 40000000" in text          # the shipped configs name the key
    path = tmp_path / "kiosk.toml"
    path.write_text(text.replace("max_image_pixels = 40000000", f"max_image_pixels = {value}"), encoding="utf-8")
    return path


def test_the_default_limit_is_forty_megapixels_and_replay_uses_it():
    assert CameraConfig().max_image_pixels == 40_000_000 == MAX_PIXELS
    assert load_config(SIMULATION_CONFIG).camera.max_image_pixels == 40_000_000


@pytest.mark.parametrize("value", ["0", "-5", "9999", "100000001", "nan", '"big"', "1e7"])
def test_a_limit_out_of_bounds_or_not_an_integer_is_a_config_error_naming_the_key(tmp_path, value):
    with pytest.raises(ConfigError) as err:
        load_config(_config_file(tmp_path, value))
    assert "camera.max_image_pixels" in str(err.value)


@pytest.mark.parametrize("value", [10_000, 100_000_000, 2_000_000])
def test_a_limit_in_bounds_is_taken(tmp_path, value):
    assert load_config(_config_file(tmp_path, value)).camera.max_image_pixels == value


def test_replay_refuses_an_image_over_the_configured_limit_though_under_the_default(tmp_path, capsys):
    from kiosk.__main__ import main

    Image.new("RGB", (200, 100), "white").save(tmp_path / "face.png")     # 20,000 pixels
    script = tmp_path / "visits.jsonl"
    script.write_text(json.dumps({"image": "face.png", "category": "ho-tich"}) + "\n", encoding="utf-8")
    data, out = tmp_path / "data", tmp_path / "out"
    argv = ["replay", str(script), "--data", str(data), "--out", str(out)]
    assert main(argv + ["--config", str(_config_file(tmp_path, 19_999))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "200x100 pixels, over the limit of 19,999" in err, err
    assert not data.exists() and not out.exists()
    assert main(argv + ["--config", str(_config_file(tmp_path, 20_000))]) == 0     # at the limit: played


def test_the_files_camera_refuses_an_image_over_its_limit_before_decoding(tmp_path):
    Image.new("RGB", (200, 100), "white").save(tmp_path / "a.png")
    with FileCamera(tmp_path, max_pixels=19_999) as camera, pytest.raises(CameraError) as err:
        camera.read()
    assert "over the limit of 19,999" in str(err.value)
    with FileCamera(tmp_path, max_pixels=20_000) as camera:
        assert camera.read().shape == (100, 200, 3)


def test_the_kiosk_builds_its_files_camera_with_the_configured_limit(tmp_path):
    from kiosk.app import make_camera

    config = load_config(_config_file(tmp_path, 12_345))
    files = dataclasses.replace(config, camera=dataclasses.replace(config.camera, kind="files",
                                                                   folder=str(tmp_path)))
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    for camera in (make_camera(files), make_camera(config, folder=tmp_path)):
        assert isinstance(camera, FileCamera) and camera.max_pixels == 12_345
        camera.close()
