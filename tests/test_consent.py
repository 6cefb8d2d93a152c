"""The consent wording (issue 10, item 7): built from the office and the retention settings, shown on the screen,
stored with each enrolment and printed on the receipt, the same text everywhere."""
from __future__ import annotations

import dataclasses
import os
from datetime import datetime

os.environ["SDL_VIDEODRIVER"] = "dummy"   # before pygame opens any display

import numpy as np

from kiosk.config import SIMULATION_CONFIG, load_config
from kiosk.consent import consent_wording
from kiosk.index import FaceIndex
from kiosk.printing import PrintQueue
from kiosk.screen import Screen
from kiosk.services import KioskServices, consent_receipt_lines
from kiosk.visit import VisitRequest
from kiosk.store import Store
from kiosk.views import CategoryChoice, ConsentView

OFFICE = "UBND xã Thử Nghiệm"        # invented
LAND = CategoryChoice("dat-dai", "Đất đai", "Land", "2")


def _config_wording():
    config = load_config(SIMULATION_CONFIG)
    config = dataclasses.replace(config, office=OFFICE,
                                 privacy=dataclasses.replace(config.privacy, templates_months=7, card_months=19))
    p = config.privacy
    return consent_wording(config.office, p.templates_months, p.card_months)


def test_the_text_names_the_office_the_months_the_law_the_purpose_and_the_way_out():
    wording = _config_wording()
    text = wording.text
    assert OFFICE in text and "7 tháng" in text and "7 months" in text and "19 tháng" in text
    assert "dữ liệu cá nhân nhạy cảm" in text and "sensitive personal data" in text
    assert "13/2023" in text and "91/2025" in text
    assert "Mục đích" in text and "Purpose" in text and "mã QR" in text and "tell the staff" in text
    # Vietnamese first, English second, in every pair the screen shows.
    assert wording.question[0].startswith("Lưu") and all("Ông/Bà" in p[0] or "không" in p[0] or "Rút" in p[0]
                                                         for p in wording.promises)
    other = consent_wording(OFFICE, 8, 19)
    assert other.version != wording.version and consent_wording(OFFICE, 7, 19).version == wording.version


class _Paper:
    def __init__(self):
        self.slips = []
        self.fault = None

    def print_ticket(self, content):
        return True

    def print_slip(self, title, lines, name, qr=None):
        self.slips.append(list(lines))
        return True


def test_the_consent_record_is_what_the_screen_showed_and_the_receipt_carries_the_same_facts(tmp_path):
    wording = _config_wording()
    with Screen((800, 480)) as screen:
        screen.draw(ConsentView(LAND, seconds_left=9, consent_button="Y", wording=wording))
        shown = " ".join(screen.drawn_text)
    for vi, en in (wording.question, *wording.promises):   # every word of the short form is on the screen
        assert all(word in shown for word in (vi + " " + en).split()), (vi, en)
    assert OFFICE.split()[-1] in shown and "7 tháng" in shown and "nhạy cảm" in shown

    store = Store.open(tmp_path / "data", kiosk_id="k1")
    paper = _Paper()
    try:
        services = KioskServices(store=store, index=FaceIndex(*store.templates()), printer=PrintQueue(paper, inline=True),
                                 office=OFFICE, kiosk_id="k1", categories=load_config(SIMULATION_CONFIG).categories,
                                 wall=lambda: datetime(2026, 12, 1, 9, 0), consent=wording)
        encodings = np.random.default_rng(5).random((3, 128), dtype=np.float32)
        issued = services.issue(VisitRequest("ho-tich", encodings=encodings, consent=True))
        [record] = store.consents()
        assert record["text"] == wording.text and record["text_version"] == wording.version
        for pair in (wording.question, *wording.promises):
            assert "\n".join(pair) in record["text"]
        [receipt] = paper.slips
        assert receipt[2:2 + len(wording.receipt)] == list(wording.receipt)
        assert f"Wording version: {wording.version}" in receipt[2 + len(wording.receipt)]
        assert receipt == consent_receipt_lines(issued.citizen, datetime(2026, 12, 1, 9, 0),
                                                receipt[-1].split(": ", 1)[1], wording)
    finally:
        store.close()
