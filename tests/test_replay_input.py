"""Hostile replay input is refused whole, in one line naming the line, before any ticket (issue 15, item 3);
a full disk during replay stops it in one line."""
import json
import struct
import zlib

import pytest
from PIL import Image

from kiosk.replay import MAX_PIXELS, ScriptError, read_script

CATEGORIES = ("ho-tich", "dat-dai")
GOOD = '{"image": null, "category": "ho-tich"}'


def _script(tmp_path, lines, encoding="utf-8"):
    script = tmp_path / "visits.jsonl"
    script.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return script


def _refused(script, where=None):
    with pytest.raises(ScriptError) as err:
        read_script(script, CATEGORIES)
    message = str(err.value)
    assert "\n" not in message and len(message) < 300, message
    if where:
        assert f"visits.jsonl:{where}:" in message, message
    return message


def huge_png(path, width, height):
    """A PNG whose header says width x height: its body is never read by a check that reads headers only."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def huge_jpeg(path, width, height):
    """A small real JPEG whose frame header is rewritten to say width x height."""
    Image.new("RGB", (16, 16), "white").save(path, "JPEG")
    raw = bytearray(path.read_bytes())
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_utf16_or_utf32_script_is_one_line(tmp_path, encoding):
    message = _refused(_script(tmp_path, [GOOD], encoding))
    assert "not UTF-8 text" in message and "save the script as UTF-8" in message


def test_a_latin1_script_names_the_line(tmp_path):
    script = _script(tmp_path, [GOOD, '{"image": null, "category": "hộ-tịch"}'], "utf-8")
    script.write_bytes(script.read_bytes().replace("ộ".encode(), b"\xf4"))
    assert "byte 0xf4" in _refused(script, 2)


def test_a_utf8_bom_is_accepted(tmp_path):
    assert len(read_script(_script(tmp_path, [GOOD], "utf-8-sig"), CATEGORIES)) == 1


@pytest.mark.parametrize("line, message", [
    ('{"image": null, "category": ["ho-tich"]}', "unknown category ['ho-tich']"),
    ('{"image": null, "category": {"a": 1}}', "unknown category"),
    ('{"image": null, "category": null}', "unknown category None"),
    ('{"image": "' + "a" * 300 + '.jpg", "category": "ho-tich"}', "cannot read image"),
    ('{"image": "' + "a/" * 600 + '.jpg", "category": "ho-tich"}', "longer than 1024"),
    ('{"image": "", "category": "ho-tich"}', "image path empty"),
    ('{"image": 7, "category": "ho-tich"}', "image must be a path"),
    ("[" * 100000, "nested too deeply"),
    ('{"' + "x" * 5000 + '": 1}', "unknown field(s) xxx"),
])
def test_wrong_field_types_and_paths_name_the_line(tmp_path, line, message):
    script = _script(tmp_path, [GOOD, line])
    got = _refused(script, 2)
    assert message in got, got


def test_a_file_that_is_not_an_image_names_the_line(tmp_path):
    (tmp_path / "face.jpg").write_text("hello", encoding="utf-8")
    script = _script(tmp_path, [GOOD, GOOD, json.dumps({"image": "face.jpg", "category": "ho-tich"})])
    assert "not an image" in _refused(script, 3)


def test_a_corrupt_png_body_is_refused_by_its_checksums(tmp_path):
    Image.new("RGB", (32, 32), "red").save(tmp_path / "face.png")
    raw = bytearray((tmp_path / "face.png").read_bytes())
    raw[raw.index(b"IDAT") + 6] ^= 0xFF
    (tmp_path / "face.png").write_bytes(bytes(raw))
    script = _script(tmp_path, [json.dumps({"image": "face.png", "category": "ho-tich"})])
    assert "cannot read image" in _refused(script, 1)


@pytest.mark.parametrize("make, size", [(huge_png, (30000, 30000)), (huge_jpeg, (12000, 12000)),
                                        (huge_png, (8000, 5001))])
def test_a_huge_image_is_refused_from_its_header_before_any_decoding(tmp_path, make, size):
    make(tmp_path / "big.img", *size)
    assert (tmp_path / "big.img").stat().st_size < 10_000        # nothing behind the header to decode
    script = _script(tmp_path, [GOOD, json.dumps({"image": ["big.img"], "category": "ho-tich"})])
    message = _refused(script, 2)
    assert "too large" in message or "over the limit" in message
    assert size[0] * size[1] > MAX_PIXELS


def test_the_cli_refuses_a_hostile_script_before_any_ticket(tmp_path, capsys):
    from kiosk.__main__ import main

    huge_jpeg(tmp_path / "big.jpg", 12000, 12000)
    script = _script(tmp_path, [GOOD, json.dumps({"image": "big.jpg", "category": "ho-tich"})])
    data, out = tmp_path / "data", tmp_path / "out"
    assert main(["replay", str(script), "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kiosk replay:") and err.count("\n") == 1 and "visits.jsonl:2:" in err
    assert not data.exists() and not out.exists()


def test_a_full_disk_during_replay_stops_in_one_line_and_keeps_the_tickets(tmp_path, monkeypatch, capsys):
    import errno

    from kiosk.__main__ import main
    from kiosk.store import Store

    real = Store.issue_ticket
    issued = []

    def issue_until_full(self, *args, **kwargs):
        if len(issued) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "data" / "hot.jsonl"))
        issued.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "issue_ticket", issue_until_full)
    script = _script(tmp_path, [GOOD] * 4)
    data, out = tmp_path / "data", tmp_path / "out"
    assert main(["replay", str(script), "--data", str(data), "--out", str(out)]) == 3
    captured = capsys.readouterr()
    assert [json.loads(line)["ticket"] for line in captured.out.splitlines()] == ["HT-001", "HT-002"]
    [said] = [line for line in captured.err.splitlines() if line.startswith("kiosk replay:")]
    assert "stopped at visit 3 of 4" in said and "is full" in said and "tickets stored so far are kept" in said
    monkeypatch.undo()
    with Store.open_readonly(data) as store:
        assert [v.ticket for v in store.visits()] == ["HT-001", "HT-002"]


def test_a_cut_jpeg_is_refused_before_any_ticket(tmp_path):
    Image.effect_noise((64, 64), 50).convert("RGB").save(tmp_path / "face.jpg", "JPEG")
    raw = (tmp_path / "face.jpg").read_bytes()
    (tmp_path / "face.jpg").write_bytes(raw[:len(raw) // 2])
    script = _script(tmp_path, [GOOD, json.dumps({"image": "face.jpg", "category": "ho-tich"})])
    assert "cannot read image" in _refused(script, 2)
