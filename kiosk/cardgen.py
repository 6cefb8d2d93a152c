"""Invented CCCD cards: payloads of fictional people and pictures of a card with its QR, for tests and benchmarks.

Nothing here is a real person's data: names, addresses and serial numbers are drawn at random from a seeded
``random.Random``, and the numbers obey :mod:`kiosk.cccd`'s rules so the payloads validate. ``qrcode`` (the QR
writer, a dependency of python-escpos) is imported only by :func:`qr_modules`.

Example::

    rng = random.Random(7)
    text = invent_payload(rng, today=date(2026, 12, 1))       # "04810512345...|...|Lê Thị Hoa|..."
    picture = card_image(text, px_per_module=4, rng=rng)      # RGB uint8: a light card with the QR and clutter
"""
from __future__ import annotations

import random
from datetime import date, timedelta

import numpy as np

from kiosk.cccd import CENTURY_SEX, FIRST_ISSUE, PROVINCES

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
          "Dương", "Lý")
MIDDLE = {"Nam": ("Văn", "Hữu", "Đức", "Minh", "Quang", "Thành"), "Nữ": ("Thị", "Ngọc", "Thu", "Thanh", "Mỹ")}
GIVEN = {"Nam": ("An", "Bảo", "Cường", "Dũng", "Hải", "Hùng", "Khánh", "Long", "Nam", "Phúc", "Quân", "Sơn",
                 "Tuấn", "Việt"),
         "Nữ": ("Anh", "Chi", "Dung", "Giang", "Hà", "Hoa", "Hương", "Lan", "Linh", "Mai", "Ngân", "Nhung",
                "Thảo", "Trang", "Yến")}
STREETS = ("Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Lý Thường Kiệt", "Điện Biên Phủ",
           "Phan Đình Phùng", "Quang Trung")
WARDS = ("Phường 3", "Phường Bến Thành", "Phường Láng Hạ", "Xã Tân Phú", "Phường An Hải", "Xã Đông Hòa",
         "Phường Hòa Khánh", "Thị trấn Yên Viên")


def invent_fields(rng: random.Random, *, today: date) -> dict[str, str]:
    """The seven fields of a fictional card (empty old ID one time in three) that pass :func:`parse_card`."""
    sex = rng.choice(("Nam", "Nữ"))
    birth = date(1930, 1, 1) + timedelta(days=rng.randrange((today - date(1930, 1, 1)).days + 1))
    first_issue = max(FIRST_ISSUE, birth)
    issued = first_issue + timedelta(days=rng.randrange((today - first_issue).days + 1))
    province = rng.choice(sorted(PROVINCES))
    number = f"{province}{CENTURY_SEX[(birth.year // 100, sex)]}{birth.year % 100:02d}{rng.randrange(10**6):06d}"
    name = " ".join((rng.choice(FAMILY), rng.choice(MIDDLE[sex]), rng.choice(GIVEN[sex])))
    address = (f"Số {rng.randrange(1, 300)} đường {rng.choice(STREETS)}, {rng.choice(WARDS)}, "
               f"{PROVINCES[rng.choice(sorted(PROVINCES))]}")
    return {"number": number, "old_id": "" if rng.random() < 1 / 3 else f"{rng.randrange(10**9):09d}",
            "name": name, "birth": birth.strftime("%d%m%Y"), "sex": sex, "address": address,
            "issued": issued.strftime("%d%m%Y")}


def join_fields(fields: dict[str, str], *, six: bool = False) -> str:
    """The payload text of ``fields``: the 7-field layout, or the 6-field one without the old ID."""
    order = ("number", "name", "birth", "sex", "address", "issued") if six else \
        ("number", "old_id", "name", "birth", "sex", "address", "issued")
    return "|".join(fields[key] for key in order)


def invent_payload(rng: random.Random, *, today: date) -> str:
    """One fictional, valid payload; one in five in the 6-field layout."""
    return join_fields(invent_fields(rng, today=today), six=rng.random() < 0.2)


def qr_modules(text: str) -> np.ndarray:
    """The QR symbol of ``text``'s UTF-8 bytes (one byte-mode segment, error correction M): one pixel per module,
    0 = dark, 255 = light, with the 4-module quiet zone.

    Drawn with the ``qrcode`` package: zxing-cpp's own writer splits the text into segments that OpenCV 5.0's
    decoder rejects ("mode 14 not implemented"), which would make the benchmark's comparison unfair."""
    import qrcode

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(text.encode("utf-8"), optimize=0)
    code.make(fit=True)
    return np.where(np.array(code.get_matrix(), dtype=bool), 0, 255).astype(np.uint8)


def card_image(text: str, *, px_per_module: int = 4, rng: random.Random | None = None) -> np.ndarray:
    """A light ID-card-shaped picture (85.6 x 54 mm proportions) with the QR at the top right and grey text-like
    bars elsewhere, as RGB uint8; the QR is drawn ``px_per_module`` pixels per module."""
    rng = rng or random.Random(0)
    symbol = np.kron(qr_modules(text), np.ones((px_per_module, px_per_module), dtype=np.uint8))
    side = symbol.shape[0]
    height = int(side * 3.4)                     # a ~13 mm QR (with its quiet zone ~16 mm) on a 54 mm high card
    width = int(height * 85.6 / 54)
    card = np.empty((height, width, 3), dtype=np.uint8)
    card[:] = (rng.randrange(215, 245), rng.randrange(215, 240), rng.randrange(200, 235))
    top, left = max(1, height // 12), width - side - max(1, width // 20)
    card[top:top + side, left:left + side] = symbol[..., None]
    line = max(2, side // 18)
    y = top
    while y + line < height - line:              # lines of "text": dark bars of random lengths
        x = width // 16
        limit = left - width // 20 if y < top + side else width - width // 16
        while x < limit:
            word = rng.randrange(line * 2, line * 8)
            card[y:y + line, x:min(x + word, limit)] = rng.randrange(40, 120)
            x += word + line
        y += line * 2 + rng.randrange(line)
    return card
