"""Withdrawal at the kiosk end to end through ``kiosk replay``: enrol with consent, show the consent receipt's PNG
(as the simulated printer left it) at the next visit, and delete or print; a forged code changes nothing."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from kiosk.replay import run_replay
from kiosk.store import Store

pytest.importorskip("zxingcpp", reason="zxing-cpp reads the receipt's QR code from the camera frame")


class SteadyFace:
    """A face engine that finds one fixed frontal face in every frame: dlib's stand-in, one encoding for all."""

    def detect(self, image, upsample=1):
        height, width = image.shape[:2]
        return [(height // 4, 3 * width // 4, 3 * height // 4, width // 4)]

    def landmarks(self, image, box):
        top, right, bottom, left = box
        return {"left_eye": [(left + 10, top + 20)], "right_eye": [(right - 10, top + 20)],
                "nose_tip": [((left + right) // 2, top + 40)]}

    def encode(self, image, box):
        return np.full(128, 0.07, np.float32)


@pytest.fixture
def enrolled(tmp_path):
    """(face image, data, out, citizen, consent receipt PNG) after one visit with consent."""
    face = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(face)
    data, out = tmp_path / "data", tmp_path / "out"
    [first] = run_replay([{"image": str(face), "category": "ho-tich", "consent": True, "confirm": False}],
                         data_dir=data, out_dir=out, engine=SteadyFace())
    assert first["enrolled"] and first["privacy"] is None
    [receipt] = out.glob(f"consent-{first['citizen']}*.png")
    return face, data, out, first["citizen"], receipt


def _show(path, data, out, choice):
    written = io.StringIO()
    [result] = run_replay([{"image": str(path), "category": None, "consent": False, "confirm": False,
                            "privacy": choice}], data_dir=data, out_dir=out, engine=SteadyFace(), out=written)
    assert json.loads(written.getvalue()) == result
    return result


def _citizens(data):
    from kiosk.cli_store import print_citizens

    listing = io.StringIO()
    assert print_citizens(data, as_json=True, out=listing) == 0
    return [json.loads(line)["id"] for line in listing.getvalue().splitlines()]


def test_the_receipt_shown_next_visit_deletes_the_citizen_everywhere(enrolled):
    face, data, out, citizen, receipt = enrolled
    result = _show(receipt, data, out, "delete")
    assert result["privacy"] == "deleted" and result["ticket"] is None
    assert list(out.glob(f"deleted-{citizen}*.png"))                 # the deletion receipt
    assert citizen not in _citizens(data)
    with Store.open(data, kiosk_id="check") as store:
        assert store.citizen(citizen) is None and citizen not in [c for c in store.template_owners()]
    [later] = run_replay([{"image": str(face), "category": "ho-tich", "consent": False, "confirm": True}],
                         data_dir=data, out_dir=out, engine=SteadyFace())
    assert not later["recognized"] and later["citizen"] is None and later["proposed"] is None
    assert _show(receipt, data, out, "delete")["privacy"] == "refused"    # a used receipt opens nothing


def test_print_prints_what_is_kept_and_deletes_nothing(enrolled):
    face, data, out, citizen, receipt = enrolled
    assert _show(receipt, data, out, "print")["privacy"] == "printed"
    assert list(out.glob(f"kept-{citizen}*.png"))
    assert citizen in _citizens(data)
    [later] = run_replay([{"image": str(face), "category": "ho-tich", "consent": False, "confirm": True}],
                         data_dir=data, out_dir=out, engine=SteadyFace())
    assert later["recognized"] and later["citizen"] == citizen


def test_a_forged_code_is_refused_and_nothing_changes(enrolled, tmp_path):
    from kiosk.receipt import render_slip
    from kiosk.paths import FONT_REGULAR

    face, data, out, citizen, receipt = enrolled
    forged = tmp_path / "forged.png"
    render_slip("Xác nhận đồng ý / Consent receipt", ["forged"], width_dots=576, font_path=FONT_REGULAR,
                qr=f"KIOSK-W1:{citizen}:not-the-secret").save(forged)
    before = sorted(p.name for p in out.iterdir())
    assert _show(forged, data, out, "delete")["privacy"] == "refused"
    assert sorted(p.name for p in out.iterdir()) == before             # nothing printed
    assert citizen in _citizens(data)


def test_a_privacy_line_needs_no_category_and_a_wrong_choice_is_named(tmp_path):
    from kiosk.replay import ScriptError, read_script

    receipt = tmp_path / "receipt.png"
    Image.new("RGB", (8, 8), "white").save(receipt)     # the script check decodes each image once
    script = tmp_path / "visits.jsonl"
    script.write_text('{"image": "receipt.png", "privacy": "print"}\n', encoding="utf-8")
    [visit] = read_script(script, ("ho-tich",))
    assert visit["privacy"] == "print" and visit["category"] is None and visit["image"] == str(receipt)
    script.write_text('{"image": "receipt.png", "privacy": "erase"}\n', encoding="utf-8")
    with pytest.raises(ScriptError, match="visits.jsonl:1: privacy must be one of delete, print"):
        read_script(script, ("ho-tich",))


def test_all_while_the_service_runs_enrol_delete_and_come_back_in_one_kiosk(tmp_path):
    """One running kiosk: the receipt printed by the first visit is shown in the second, the third is a stranger."""
    face = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(face)
    data, out = tmp_path / "data", tmp_path / "out"
    visit = {"image": str(face), "category": "ho-tich", "consent": True, "confirm": True}

    def script():                    # read lazily: the receipt exists once the first visit has printed it
        yield visit
        [receipt] = out.glob("consent-*.png")
        yield {"image": str(receipt), "category": None, "consent": False, "confirm": False, "privacy": "delete"}
        yield dict(visit, consent=False)

    first, deleted, later = run_replay(script(), data_dir=data, out_dir=out, engine=SteadyFace())
    assert first["enrolled"] and deleted["privacy"] == "deleted"
    assert later["ticket"] and not later["recognized"] and later["citizen"] is None and later["proposed"] is None
    assert _citizens(data) == [] and list(out.glob(f"deleted-{first['citizen']}*.png"))
