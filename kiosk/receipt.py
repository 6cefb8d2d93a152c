"""Ticket and slip layout: content -> a 1-bit Pillow image exactly as wide as the printer's head.

Cheap ESC/POS printers have no usable Vietnamese code page, so nothing is printed as text: the whole slip is
drawn here (DejaVu Sans covers Vietnamese) and the printer receives pixels. The layout knows nothing about
connections (`hardware.printer` sends the image), so consent and deletion receipts reuse it.

    image = render_ticket(content, width_dots=576, font_path=paths.FONT_REGULAR)
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from hardware.printer import one_bit
from kiosk.text import wrap
from kiosk.tickets import TicketContent, format_issued

WHITE = 255
BLACK = 0

# Sizes are designed for the 384-dot head of a 58 mm printer and scaled with the width.
_BASE_WIDTH = 384
_QR_SHARE = 0.46        # the QR code's share of the paper width
_QR_MIN_MODULE = 4      # dots per QR module: 0.5 mm at 203 dpi, what phone and counter scanners read well


def render_ticket(content: TicketContent, *, width_dots: int, font_path: Path) -> Image.Image:
    """Draw a queue ticket: office, the number very large, category (vi + en), date/time, kiosk, guidance, QR
    (the sealed ticket code when there is one, else the visit id).

    Returns a mode "1" image ``width_dots`` wide (black = a printed dot). ``font_path`` is the regular face;
    the bold face is its ``-Bold`` sibling when present (DejaVuSans.ttf -> DejaVuSans-Bold.ttf).
    """
    layout = _Layout(width_dots, font_path)
    s = layout.scale
    layout.space(10 * s)
    layout.text(content.office, size=20 * s, bold=True)
    layout.rule()
    layout.text("SỐ THỨ TỰ  ·  YOUR NUMBER", size=14 * s)
    layout.space(4 * s)
    layout.fitted(content.ticket, max_size=120 * s, bold=True)
    layout.space(8 * s)
    layout.text(content.category_vi, size=28 * s, bold=True)
    if content.category_en:
        layout.space(2 * s)
        layout.text(content.category_en, size=18 * s)
    layout.rule()
    layout.text(format_issued(content.issued_at), size=22 * s, bold=True)
    layout.space(2 * s)
    layout.text(f"Kiosk: {content.kiosk_id}", size=16 * s)
    if content.guidance:
        layout.space(10 * s)
        layout.text(content.guidance, size=17 * s)
    layout.space(12 * s)
    layout.qr(content.code or content.visit_id)
    layout.space(4 * s)
    layout.text(content.visit_id, size=12 * s)
    layout.space(10 * s)
    return layout.finish()


def render_slip(title: str, lines: Sequence[str], *, width_dots: int, font_path: Path,
                qr: str | None = None) -> Image.Image:
    """Draw a text slip (consent receipt, deletion receipt): a bold centred title, then left-aligned lines, then
    ``qr`` (the consent receipt's withdrawal code, for the kiosk's camera) drawn like the ticket's QR code.

    An empty string in ``lines`` leaves a blank line. Same fonts, width and mode as `render_ticket`.
    """
    layout = _Layout(width_dots, font_path)
    s = layout.scale
    layout.space(10 * s)
    layout.text(title, size=24 * s, bold=True)
    layout.rule()
    for line in lines:
        if line.strip():
            layout.text(line, size=18 * s, align="left")
            layout.space(3 * s)
        else:
            layout.space(12 * s)
    if qr is not None:
        layout.space(8 * s)
        layout.qr(qr)
    layout.space(10 * s)
    return layout.finish()


@lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # The basic layout engine is enough (and deterministic across machines) because text is NFC-normalised:
    # every Vietnamese letter exists precomposed, so no combining mark needs placing.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=16)
def _line_box(path: str, size: int) -> tuple[int, int]:
    """Ascent and descent that hold the tallest Vietnamese capitals and the deepest descenders."""
    font = _font(path, size)
    top = font.getbbox("ỄẶỖỸĐ", anchor="ls")[1]
    bottom = font.getbbox("gjpqyỵ", anchor="ls")[3]
    return -int(top), int(bottom)


def _bold_sibling(font_path: Path) -> Path:
    bold = font_path.with_name(f"{font_path.stem}-Bold{font_path.suffix}")
    return bold if bold.is_file() else font_path


class _Layout:
    """Stacks blocks top to bottom, each a grey ("L") strip as wide as the paper; `finish` thresholds to 1-bit
    (`hardware.printer.one_bit`: the printer's own rule, so a slip looks the same whoever converts it)."""

    def __init__(self, width_dots: int, font_path: Path) -> None:
        if width_dots < 128 or width_dots % 8:
            raise ValueError(f"width_dots must be a multiple of 8 and at least 128, got {width_dots}")
        font_path = Path(font_path)
        if not font_path.is_file():
            raise FileNotFoundError(f"ticket font not found: {font_path}")
        self.width = width_dots
        self.scale = width_dots / _BASE_WIDTH
        self.margin = round(12 * self.scale)
        self.regular = str(font_path)
        self.bold = str(_bold_sibling(font_path))
        self.blocks: list[Image.Image] = []

    def space(self, height: float) -> None:
        self.blocks.append(Image.new("L", (self.width, max(1, round(height))), WHITE))

    def rule(self) -> None:
        pad = round(8 * self.scale)
        block = Image.new("L", (self.width, 2 * pad + 2), WHITE)
        ImageDraw.Draw(block).rectangle((self.margin, pad, self.width - self.margin - 1, pad + 1), fill=BLACK)
        self.blocks.append(block)

    def text(self, text: str, *, size: float, bold: bool = False, align: str = "center") -> None:
        path = self.bold if bold else self.regular
        size = max(8, round(size))
        font = _font(path, size)
        lines = wrap(_clean(text), font.getlength, self.width - 2 * self.margin)
        ascent, descent = _line_box(path, size)
        leading = round(size * 0.15)
        step = ascent + descent + leading
        block = Image.new("L", (self.width, step * len(lines) - leading), WHITE)
        draw = ImageDraw.Draw(block)
        for i, line in enumerate(lines):
            y = i * step + ascent
            if align == "center":
                draw.text((self.width / 2, y), line, font=font, fill=BLACK, anchor="ms")
            else:
                draw.text((self.margin, y), line, font=font, fill=BLACK, anchor="ls")
        self.blocks.append(block)

    def fitted(self, text: str, *, max_size: float, bold: bool) -> None:
        """One line, as large as fits between the margins (the ticket number)."""
        path = self.bold if bold else self.regular
        text = _clean(text)
        probe = 100
        length = _font(path, probe).getlength(text) or 1
        size = max(8, min(round(max_size), int(probe * (self.width - 2 * self.margin) / length)))
        while size > 8 and _font(path, size).getlength(text) > self.width - 2 * self.margin:
            size -= 1
        font = _font(path, size)
        left, top, right, bottom = font.getbbox(text, anchor="ls")
        block = Image.new("L", (self.width, int(bottom - top)), WHITE)
        ImageDraw.Draw(block).text((self.width / 2, -top), text, font=font, fill=BLACK, anchor="ms")
        self.blocks.append(block)

    def qr(self, data: str) -> None:
        self.blocks.append(_qr_block(data, self.width))

    def finish(self) -> Image.Image:
        height = sum(block.height for block in self.blocks)
        page = Image.new("L", (self.width, height), WHITE)
        y = 0
        for block in self.blocks:
            page.paste(block, (0, y))
            y += block.height
        return one_bit(page)


def _qr(data: str) -> tuple[int, list[list[bool]]]:
    """The QR code of ``data`` at level M, its version and modules (a sealed ticket code's A-Z2-7 go in the
    alphanumeric mode by themselves)."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    code.add_data(data.encode("utf-8"))
    code.make(fit=True)
    return int(code.version), code.get_matrix()


def qr_geometry(data: str, width: int) -> tuple[int, int, int]:
    """As the ticket draws ``data`` on ``width``-dot paper: QR version, modules across (quiet zone included),
    printer dots per module (benchmarks/ticket.py)."""
    version, matrix = _qr(data)
    return version, len(matrix), _module_dots(len(matrix), width)


def _module_dots(modules: int, width: int) -> int:
    return max(_QR_MIN_MODULE, int(width * _QR_SHARE) // modules)


def _qr_block(data: str, width: int) -> Image.Image:
    """The QR code drawn as pixels (not the printer's QR command), so the preview is exactly the paper."""
    import numpy as np

    modules = np.array(_qr(data)[1], dtype=bool)     # includes the 4-module quiet zone
    n = modules.shape[0]
    module = _module_dots(n, width)
    if n * module > width:
        raise ValueError(f"QR code content too long for {width}-dot paper: {len(data)} characters")
    pixels = np.where(modules, BLACK, WHITE).astype(np.uint8).repeat(module, axis=0).repeat(module, axis=1)
    block = Image.new("L", (width, n * module), WHITE)
    block.paste(Image.fromarray(pixels), ((width - n * module) // 2, 0))
    return block


def _clean(text: str) -> str:
    """NFC (precomposed letters for the basic layout engine), tabs/newlines as spaces."""
    return " ".join(unicodedata.normalize("NFC", text).split())
