"""Every printed document speaks to the citizen as the screen does, "Ông/Bà", never "bạn" (issue 15 item 6).

The text is caught where it becomes pixels (``kiosk.receipt._Layout``), so a document added later, or a line
added to one, is covered without being listed here."""
import re
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from kiosk import receipt
from kiosk.consent import consent_wording
from kiosk.printing import printer_test_content
from kiosk.receipt import render_slip, render_ticket
from kiosk.replay import run_replay
from kiosk.services import consent_receipt_lines, deletion_receipt_lines
from kiosk.tickets import DEFAULT_GUIDANCE, SAMPLE_TICKET
from kiosk.paths import FONT_REGULAR

FAMILIAR = re.compile(r"\b(bạn|cậu|em|anh|chị)\b", re.IGNORECASE)   # "you" said to a friend, not a citizen
WHEN = datetime(2026, 12, 1, 9, 30)


@pytest.fixture
def printed(monkeypatch):
    """Every string drawn on paper from now on, in order."""
    drawn: list[str] = []
    text, fitted = receipt._Layout.text, receipt._Layout.fitted

    def record_text(self, value, **kwargs):
        drawn.append(value)
        return text(self, value, **kwargs)

    def record_fitted(self, value, **kwargs):
        drawn.append(value)
        return fitted(self, value, **kwargs)

    monkeypatch.setattr(receipt._Layout, "text", record_text)
    monkeypatch.setattr(receipt._Layout, "fitted", record_fitted)
    return drawn


def _polite(lines):
    for line in lines:
        assert not FAMILIAR.search(line), f"printed with a familiar 'you': {line!r}"


def test_the_familiar_word_check_itself_catches_bạn():
    with pytest.raises(AssertionError):
        _polite(["Vui lòng chờ gọi số của bạn."])
    with pytest.raises(AssertionError):
        _polite(["BẠN đã đồng ý"])


def test_ticket_guidance_and_consent_receipt_say_ông_bà(printed):
    wording = consent_wording("UBND phường Bến Nghé", 12, 24)
    render_ticket(SAMPLE_TICKET, width_dots=384, font_path=FONT_REGULAR)
    assert "Ông/Bà" in DEFAULT_GUIDANCE and DEFAULT_GUIDANCE in printed
    printed.clear()
    render_slip("Xác nhận đồng ý / Consent receipt", consent_receipt_lines("ab" * 16, WHEN, "CODE", wording),
                width_dots=384, font_path=FONT_REGULAR, qr="CODE")
    assert sum("Ông/Bà" in line for line in printed) >= 1
    _polite(printed)


@pytest.mark.parametrize("office", ["UBND Quận Ba Đình — Bộ phận Một cửa", "UBND phường Bến Nghé"])
def test_no_printed_template_says_bạn(printed, office):
    wording = consent_wording(office, 6, 36)
    render_ticket(printer_test_content(office=office, kiosk_id="k1", now=WHEN), width_dots=576,
                  font_path=FONT_REGULAR)
    render_slip("Biên nhận xoá dữ liệu / Deletion receipt", deletion_receipt_lines("cd" * 16, WHEN),
                width_dots=576, font_path=FONT_REGULAR)
    _polite([*printed, *wording.receipt, wording.text, *(vi for vi, _ in wording.promises)])


def test_every_document_a_replay_prints_says_ông_bà_and_never_bạn(tmp_path, printed):
    """Ticket, consent receipt, "what is kept" and deletion receipt, as the kiosk prints them."""
    pytest.importorskip("zxingcpp", reason="zxing-cpp reads the receipt's QR code from the camera frame")
    from test_privacy_replay import SteadyFace

    face = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(face)
    data, out = tmp_path / "data", tmp_path / "out"

    def play(**visit):
        return run_replay([{"category": None, "consent": False, "confirm": False, **visit}],
                          data_dir=data, out_dir=out, engine=SteadyFace())[0]

    citizen = play(image=str(face), category="ho-tich", consent=True)["citizen"]
    [consent] = out.glob(f"consent-{citizen}*.png")
    assert play(image=str(consent), privacy="print")["privacy"] == "printed"
    assert play(image=str(consent), privacy="delete")["privacy"] == "deleted"
    for name in ("consent-", "kept-", "deleted-"):
        assert list(out.glob(f"{name}{citizen}*.png")), name
    titles = {"Xác nhận đồng ý / Consent receipt", "Dữ liệu kiosk lưu / What the kiosk keeps",
              "Biên nhận xoá dữ liệu / Deletion receipt", "SỐ THỨ TỰ  ·  YOUR NUMBER"}
    assert titles <= set(printed)
    assert sum("Ông/Bà" in line for line in printed) >= 2     # the ticket's guidance, the receipt's purpose
    _polite(printed)
