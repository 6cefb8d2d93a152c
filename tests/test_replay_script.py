"""Replay scripts are checked whole before anything runs; errors name the line."""
import json

import pytest

from kiosk.replay import ScriptError, read_script

CATEGORIES = ("ho-tich", "dat-dai")


def _write(tmp_path, lines):
    script = tmp_path / "visits.jsonl"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return script


def test_relative_images_resolve_against_the_script_folder(tmp_path):
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "a.jpg").write_bytes(b"not looked at yet")
    script = _write(tmp_path, [
        json.dumps({"image": "faces/a.jpg", "category": "ho-tich", "consent": True}),
        "",
        json.dumps({"image": None, "category": "dat-dai"}),
    ])
    visits = read_script(script, CATEGORIES)
    assert visits == [
        {"image": str(tmp_path / "faces" / "a.jpg"), "category": "ho-tich", "consent": True},
        {"image": None, "category": "dat-dai", "consent": False},
    ]


@pytest.mark.parametrize("bad_line, message", [
    ('{"image": "missing.jpg", "category": "ho-tich"}', "image not found"),
    ('{"image": null, "category": "xay-nha"}', "unknown category 'xay-nha'"),
    ('{"image": null, "category": "ho-tich", "consent": "yes"}', "consent must be true or false"),
    ('{"image": null, "category": "ho-tich", "name": "A"}', "unknown field(s) name"),
    ('{"image": null, "category": ', "not JSON"),
    ('[1, 2]', "a visit must be a JSON object"),
])
def test_bad_line_is_named(tmp_path, bad_line, message):
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
