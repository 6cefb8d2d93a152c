"""Ticket and slip rendering: width, 1-bit mode, Vietnamese glyphs, the QR code read back, a reference image.

The reference renderings in tests/reference/ were made by `render_ticket` with the fixed content below. When a
layout change is intended, regenerate them with

    .venv/bin/python tests/test_receipt.py --regenerate

and look at the new PNGs before committing them.
"""
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageFont

from kiosk.paths import FONT_BOLD, FONT_REGULAR
from kiosk.receipt import render_slip, render_ticket
from kiosk.tickets import SAMPLE_TICKET

REFERENCE_DIR = Path(__file__).parent / "reference"
REGENERATE = f"{sys.executable} tests/test_receipt.py --regenerate"

# FreeType's anti-aliasing can differ by a grey level between Pillow wheels, flipping the odd edge dot at the
# ink threshold. A real layout change (a moved line, a lost diacritic, a resized QR code) changes thousands of
# dots; 0.1% of a 58 mm ticket is ~200 dots, smaller than one letter.
MAX_DIFFERENT_DOTS = 0.001

REFERENCE_CONTENT = SAMPLE_TICKET
WIDTHS = {"58mm": 384, "80mm": 576}


def _render(width, content=REFERENCE_CONTENT):
    return render_ticket(content, width_dots=width, font_path=FONT_REGULAR)


def _ink(image):
    """Bounding box of the black (printed) dots; None if there are none."""
    return ImageChops.invert(image.convert("L")).getbbox()


def _decode_qr(image):
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp (requirements-dev.txt) decodes the QR code")
    return [(r.format, r.text) for r in zxingcpp.read_barcodes(image.convert("L"))]


@pytest.mark.parametrize("paper, width", WIDTHS.items())
def test_ticket_is_one_bit_at_the_printer_width(paper, width):
    image = _render(width)
    assert image.mode == "1"
    assert image.width == width
    assert 1.2 * width < image.height < 3 * width      # a ticket, not a strip or a scroll
    assert _ink(image) is not None


@pytest.mark.parametrize("paper, width", WIDTHS.items())
def test_ticket_matches_the_reference_rendering(paper, width, tmp_path):
    reference_path = REFERENCE_DIR / f"ticket-{paper}.png"
    assert reference_path.is_file(), f"missing {reference_path}; create it with: {REGENERATE}"
    image = _render(width)
    reference = Image.open(reference_path).convert("1")
    assert image.size == reference.size, (
        f"ticket is {image.size}, reference {reference.size}. If the layout change is intended: {REGENERATE}")
    diff = ImageChops.logical_xor(image, reference)
    different = int(np.count_nonzero(np.asarray(diff)))
    if different > MAX_DIFFERENT_DOTS * image.width * image.height:
        actual_path = tmp_path / f"ticket-{paper}-actual.png"
        image.save(actual_path)
        diff.save(tmp_path / f"ticket-{paper}-diff.png")
        pytest.fail(f"{different} dots differ from {reference_path} (rendering saved to {actual_path}). "
                    f"If the change is intended, regenerate the references with: {REGENERATE}")


@pytest.mark.parametrize("paper, width", WIDTHS.items())
def test_qr_code_on_the_ticket_reads_back_as_the_visit_id(paper, width):
    assert _decode_qr(_render(width))[0][1] == REFERENCE_CONTENT.visit_id
    uuid_like = "0d7f5a52-6a38-4c1b-9d4e-5b3c2a1f0e99"
    from dataclasses import replace
    assert [text for _, text in _decode_qr(_render(width, replace(REFERENCE_CONTENT, visit_id=uuid_like)))] == [
        uuid_like]


def test_the_category_is_printed_with_its_diacritics():
    from dataclasses import replace
    with_marks = _render(384)
    without_marks = _render(384, replace(REFERENCE_CONTENT, category_vi="Dang ky kinh doanh"))
    assert with_marks.size == without_marks.size
    changed = ImageChops.logical_xor(with_marks, without_marks).getbbox()
    assert changed is not None
    # Only the category line differs: the change lies in one band well below the top and above the QR code.
    assert 100 < changed[1] and changed[3] - changed[1] < 60


def _vietnamese_letters():
    bases = "aăâeêioôơuưy"
    tones = ["", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323"]
    letters = [unicodedata.normalize("NFC", b + t) for b in bases for t in tones] + ["đ"]
    return letters + [letter.upper() for letter in letters]


@pytest.mark.parametrize("font_path", [FONT_REGULAR, FONT_BOLD], ids=["regular", "bold"])
def test_the_font_has_every_vietnamese_letter_precomposed(font_path):
    letters = _vietnamese_letters()
    assert len(letters) == 146 and all(len(letter) == 1 for letter in letters)
    font = ImageFont.truetype(str(font_path), 24)
    missing_glyph = bytes(font.getmask("\uffff"))
    missing = [letter for letter in letters if bytes(font.getmask(letter)) == missing_glyph]
    assert missing == []


def test_decomposed_input_renders_like_precomposed():
    from dataclasses import replace
    nfd = replace(REFERENCE_CONTENT, category_vi=unicodedata.normalize("NFD", REFERENCE_CONTENT.category_vi),
                  office=unicodedata.normalize("NFD", REFERENCE_CONTENT.office))
    assert ImageChops.logical_xor(_render(384), _render(384, nfd)).getbbox() is None


def test_long_numbers_still_fit_on_58mm_paper():
    from dataclasses import replace
    image = _render(384, replace(REFERENCE_CONTENT, ticket="KD-12345"))
    assert image.width == 384
    # the 12 dot side margins stay white: the number was shrunk to fit, not clipped
    assert _ink(image.crop((0, 0, 10, image.height))) is None
    assert _ink(image.crop((374, 0, 384, image.height))) is None


def test_slip_wraps_long_lines_and_keeps_blank_ones():
    lines = ["Mã công dân: c-0001",
             "Bạn đã đồng ý cho kiosk lưu đặc trưng khuôn mặt để nhận diện lần sau; có thể rút lại bất cứ lúc nào.",
             "", "Xóa dữ liệu: đến quầy hỗ trợ."]
    slip = render_slip("Biên nhận đồng ý", lines, width_dots=384, font_path=FONT_REGULAR)
    one_line = render_slip("Biên nhận đồng ý", lines[:1], width_dots=384, font_path=FONT_REGULAR)
    assert slip.mode == "1" and slip.width == 384
    assert slip.height > one_line.height + 4 * 18      # the long line wrapped onto several lines
    assert _ink(slip.crop((0, 0, 10, slip.height))) is None
    assert _ink(slip.crop((374, 0, 384, slip.height))) is None


def test_bad_width_and_missing_font_are_named():
    with pytest.raises(ValueError, match="multiple of 8"):
        render_ticket(REFERENCE_CONTENT, width_dots=380, font_path=FONT_REGULAR)
    with pytest.raises(FileNotFoundError, match="nope.ttf"):
        render_ticket(REFERENCE_CONTENT, width_dots=384, font_path=Path("/nowhere/nope.ttf"))


def regenerate() -> None:
    REFERENCE_DIR.mkdir(exist_ok=True)
    for paper, width in WIDTHS.items():
        path = REFERENCE_DIR / f"ticket-{paper}.png"
        _render(width).save(path)
        print(f"wrote {path}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(f"usage: {sys.argv[0]} --regenerate   (rewrites the reference renderings in {REFERENCE_DIR})")
    regenerate()
