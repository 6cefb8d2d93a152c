"""Replay scripts are checked whole before anything runs; errors name the line."""
import json

import pytest

from kiosk.replay import ScriptError, read_script

CATEGORIES = ("ho-tich", "dat-dai")


def _image(path, size=(8, 8)):
    from PIL import Image

    Image.new("RGB", size, "white").save(path)


def _write(tmp_path, lines):
    script = tmp_path / "visits.jsonl"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return script


def test_relative_images_resolve_against_the_script_folder(tmp_path):
    (tmp_path / "faces").mkdir()
    _image(tmp_path / "faces" / "a.jpg")
    script = _write(tmp_path, [
        json.dumps({"image": "faces/a.jpg", "category": "ho-tich", "consent": True}),
        "",
        json.dumps({"image": None, "category": "dat-dai"}),
    ])
    visits = read_script(script, CATEGORIES)
    assert visits == [
        {"image": str(tmp_path / "faces" / "a.jpg"), "category": "ho-tich", "consent": True, "confirm": False},
        {"image": None, "category": "dat-dai", "consent": False, "confirm": False},
    ]


@pytest.mark.parametrize("bad_line, message", [
    ('{"image": "missing.jpg", "category": "ho-tich"}', "image not found"),
    ('{"image": null, "category": "xay-nha"}', "unknown category 'xay-nha'"),
    ('{"image": null, "category": "ho-tich", "consent": "yes"}', "consent must be true or false"),
    ('{"image": null, "category": "ho-tich", "confirm": 1}', "confirm must be true or false"),
    ('{"image": [], "category": "ho-tich"}', "image must be a path, a list of paths or null"),
    ('{"image": ["faces/a.jpg", "card.png"], "category": "ho-tich"}', "image not found"),
    ('{"image": null, "category": "ho-tich", "name": "A"}', "unknown field(s) name"),
    ('{"image": null, "category": ', "not JSON"),
    ('[1, 2]', "a visit must be a JSON object"),
])
def test_bad_line_is_named(tmp_path, bad_line, message):
    (tmp_path / "faces").mkdir()
    _image(tmp_path / "faces" / "a.jpg")         # only the second image is missing
    script = _write(tmp_path, ['{"image": null, "category": "ho-tich"}', bad_line])
    with pytest.raises(ScriptError) as err:
        read_script(script, CATEGORIES)
    assert f"visits.jsonl:2: {message}" in str(err.value)


def test_cli_rejects_before_running(tmp_path, capsys):
    from kiosk.__main__ import main

    script = _write(tmp_path, ['{"image": null, "category": "ho-tich"}', '{"image": null, "category": "nope"}'])
    data, out = tmp_path / "data", tmp_path / "out"
    assert main(["replay", str(script), "--data", str(data), "--out", str(out)]) == 2
    assert "visits.jsonl:2: unknown category 'nope'" in capsys.readouterr().err
    assert not data.exists() and not out.exists()      # nothing ran


def test_a_visit_may_show_several_images_in_turn(tmp_path):
    for name in ("face.jpg", "card.png"):
        _image(tmp_path / name)
    script = _write(tmp_path, [json.dumps({"image": ["face.jpg", "card.png"], "category": "ho-tich",
                                           "confirm": True})])
    [visit] = read_script(script, CATEGORIES)
    assert visit["image"] == [str(tmp_path / "face.jpg"), str(tmp_path / "card.png")] and visit["confirm"]
