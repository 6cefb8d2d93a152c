"""decode_qr on invented cards (kiosk.cardgen): exact text back, greyscale or RGB, small codes via the enlarged pass."""
from __future__ import annotations

import random
from datetime import date

import cv2
import numpy as np
import pytest

from kiosk.cardgen import card_image, invent_payload, qr_modules
from kiosk.cardread import UPSCALE, UPSCALE_WINDOW, _enlarged_centre, decode_qr, enlarge2x
from kiosk.cccd import parse_card

TODAY = date(2026, 12, 1)


@pytest.fixture
def text() -> str:
    return invent_payload(random.Random(42), today=TODAY)


def framed(card: np.ndarray, size=(1280, 720)) -> np.ndarray:
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    h, w = card.shape[:2]
    top, left = (size[1] - h) // 2, (size[0] - w) // 2
    frame[top:top + h, left:left + w] = card
    return frame


def test_a_card_in_a_frame_reads_back_exactly_and_parses(text):
    frame = framed(card_image(text, px_per_module=3))
    assert decode_qr(frame) == [text]
    assert decode_qr(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)) == [text]
    assert parse_card(decode_qr(frame)[0], today=TODAY).number == text.split("|")[0]


def test_a_frame_without_a_qr_gives_nothing():
    assert decode_qr(np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)) == []
    assert decode_qr(np.zeros((10, 10), np.uint8)) == []


def test_a_code_too_coarse_for_one_pass_is_read_by_the_enlarged_pass(text):
    card = card_image(text, px_per_module=6)
    small = cv2.resize(card, None, fx=1.5 / 6, fy=1.5 / 6, interpolation=cv2.INTER_AREA)   # 1.5 px/module
    turn = cv2.getRotationMatrix2D((small.shape[1] / 2, small.shape[0] / 2), 5, 1.0)
    small = cv2.GaussianBlur(cv2.warpAffine(small, turn, small.shape[1::-1], borderValue=(90, 90, 90)), (0, 0), 0.5)
    frame = framed(small)
    assert decode_qr(frame, upscale=False) == []
    assert decode_qr(frame) == [text]


def test_the_enlarged_pass_costs_the_same_on_a_big_frame():
    assert _enlarged_centre(np.zeros((1296, 2304), np.uint8)).shape == (UPSCALE_WINDOW[1] * UPSCALE,
                                                                        UPSCALE_WINDOW[0] * UPSCALE)
    assert _enlarged_centre(np.zeros((480, 640), np.uint8)).shape == (480 * UPSCALE, 640 * UPSCALE)


def test_a_big_frame_with_the_card_in_a_corner_is_read(text):
    frame = np.full((1296, 2304, 3), 120, np.uint8)
    card = card_image(text, px_per_module=3)
    frame[:card.shape[0], -card.shape[1]:] = card
    assert decode_qr(frame) == [text]


def test_bytes_that_are_not_utf8_come_back_as_zxings_text_not_an_error():
    import qrcode

    code = qrcode.QRCode(border=4)
    code.add_data("Café|Hà".encode("latin-1", "replace"), optimize=0)
    symbol = np.where(np.array(code.get_matrix(), dtype=bool), 0, 255).astype(np.uint8)
    texts = decode_qr(np.kron(symbol, np.ones((4, 4), np.uint8)))
    assert len(texts) == 1 and texts[0].startswith("Caf")


def test_the_invented_qr_is_a_version_7_or_8_symbol_with_its_quiet_zone(text):
    side = qr_modules(text).shape[0] - 8
    assert side in (45, 49)          # versions 7 and 8: 17 + 4 x version modules


def test_a_picture_of_the_wrong_shape_is_a_value_error():
    with pytest.raises(ValueError, match="H x W"):
        decode_qr(np.zeros((4, 4, 2), np.uint8))


@pytest.mark.parametrize("shape", [(720, 1280), (7, 5), (1, 1)])
def test_the_enlargement_is_opencvs_bicubic_within_a_few_grey_levels(shape):
    """enlarge2x stands in for cv2.resize(INTER_CUBIC), whose sharper kernel reads more small codes than Pillow's."""
    grey = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    ours = enlarge2x(grey)
    theirs = cv2.resize(grey, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    assert ours.shape == theirs.shape == (2 * shape[0], 2 * shape[1]) and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - theirs).max() <= 4
    flat = np.full((6, 9), 200, np.uint8)
    assert (enlarge2x(flat) == 200).all()                  # the weights sum to one: no drift, no ringing
