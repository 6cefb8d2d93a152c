"""The payload of a chip-based CCCD card's QR code, parsed and validated before anything is stored.

Pure: no device library, no I/O. The QR holds ``|``-separated fields::

    number(12 digits)|old ID (9 digits, may be empty)|full name|birth date ddmmyyyy|Nam or Nữ|address|issue date ddmmyyyy

(the 6-field form has no old-ID field). A QR that is not a card at all (a payment code, a URL, JSON) raises
:class:`NotACard`, which the kiosk ignores; a card-shaped payload that fails a rule raises :class:`InvalidCard`
(so does a 12-digit number followed by more fields than any known layout: a newer card must be reported
unread, not ignored), and the visit gets a plain ticket with nothing stored. No other exception leaves
:func:`parse_card` for any ``str``, and no message quotes the payload (a person's data; logs must not hold it).

The rules, from the numbering of Circular 07/2016/TT-BCA (Art. 7; kept by Circular 59/2021/TT-BCA):
digits 1-3 are the province of birth registration (:data:`PROVINCES`), digit 4 the sex and century of birth
(:data:`CENTURY_SEX`), digits 5-6 the last two digits of the birth year, digits 7-12 a random serial (no
check digit exists to test).

Layouts are tried in order (:data:`LAYOUTS`); a new card generation with another field layout is one more entry
there, and ``Card.format`` says which one was read.

Example::

    card = parse_card("001203001234||Nguyễn Văn An|01022003|Nam|Hà Nội|15062021", today=date(2026, 12, 1))
    card.honorific      # "ông"
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

FORMAT_7 = 1     # number|old id|name|birth|sex|address|issued  (chip cards issued 2021-2024)
FORMAT_6 = 2     # number|name|birth|sex|address|issued          (no old-ID field)

SEXES = ("Nam", "Nữ")
MAX_NAME = 100
MAX_ADDRESS = 300
MAX_PAYLOAD = 1000           # a card's QR holds ~90-250 characters; far longer text is something else
FIRST_ISSUE = date(2016, 1, 1)  # the 12-digit CCCD started in 2016: an earlier issue date is not a CCCD's
NAME_PUNCTUATION = " '-"     # besides letters: ethnic-minority names such as "H'Hen Niê", hyphenated names

# Province codes (digits 1-3): Circular 07/2016/TT-BCA, Appendix ("Danh mục mã tỉnh ..."), the 63 provinces
# and centrally-run cities. The 2025 mergers (34 provinces from 1 July 2025) changed no number already issued:
# the personal identification number is for life (Law on Identification 2023, Art. 12), so every card in
# circulation keeps one of these codes and all 63 stay valid. Should the ministry publish codes for the merged
# provinces that are not in this table, they are added here.
PROVINCES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn", "008": "Tuyên Quang",
    "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu", "014": "Sơn La", "015": "Yên Bái",
    "017": "Hòa Bình", "019": "Thái Nguyên", "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang",
    "025": "Phú Thọ", "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định", "037": "Ninh Bình",
    "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh", "044": "Quảng Bình", "045": "Quảng Trị",
    "046": "Thừa Thiên Huế", "048": "Đà Nẵng", "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định",
    "054": "Phú Yên", "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng", "070": "Bình Phước",
    "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai", "077": "Bà Rịa - Vũng Tàu", "079": "Hồ Chí Minh",
    "080": "Long An", "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long",
    "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ", "093": "Hậu Giang",
    "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}

# Digit 4 (Circular 07/2016/TT-BCA, Art. 7.2): the century of birth and the sex. 20th century (1900-1999)
# male 0 / female 1; 21st 2 / 3; 22nd 4 / 5; 23rd 6 / 7; 24th 8 / 9. Keyed by (first two digits of the
# birth year, sex).
CENTURY_SEX: dict[tuple[int, str], str] = {
    (19 + i, sex): str(2 * i + k) for i in range(5) for k, sex in enumerate(SEXES)
}


class NotACard(ValueError):
    """The text is not a CCCD payload at all (a URL, a payment code): ignored."""


class InvalidCard(ValueError):
    """A CCCD-shaped payload that breaks a rule; the message names the rule, never the payload."""


@dataclass(frozen=True)
class Card:
    number: str              # 12 digits; stored only as a keyed hash (see kiosk.identity)
    old_id: str | None       # 9 (or 12) digits, or None
    name: str                # NFC
    birth_date: date
    sex: str                 # "Nam" | "Nữ"
    address: str
    issue_date: date
    format: int              # which payload layout was read (FORMAT_7, FORMAT_6)

    @property
    def honorific(self) -> str:
        """How the greeting addresses the holder: "ông" (Nam) or "bà" (Nữ)."""
        return "ông" if self.sex == "Nam" else "bà"

    @property
    def province(self) -> str:
        """The province of birth registration the number's first three digits name (pre-2025 name)."""
        return PROVINCES[self.number[:3]]

    def age_on(self, day: date) -> int:
        """Whole years of age on ``day``."""
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


@dataclass(frozen=True)
class Layout:
    """One payload layout: its format number and the name of each ``|``-separated field, in order."""
    format: int
    fields: tuple[str, ...]


# Tried in order; the first layout whose field count fits and whose rules pass is the card's.
LAYOUTS: tuple[Layout, ...] = (
    Layout(FORMAT_7, ("number", "old_id", "name", "birth", "sex", "address", "issued")),
    Layout(FORMAT_6, ("number", "name", "birth", "sex", "address", "issued")),
)


def parse_card(text: str, *, today: date) -> Card:
    """Parse and validate one QR payload; raise NotACard or InvalidCard, nothing else."""
    if not isinstance(text, str) or "|" not in text:
        raise NotACard("no field separator")
    if len(text) > MAX_PAYLOAD:
        raise NotACard("far longer than a card's payload")
    fields = text.split("|")
    if not _is_digits(fields[0]):
        raise NotACard("the first field is not a number")
    fitting = [layout for layout in LAYOUTS if len(layout.fields) == len(fields)]
    if not fitting:
        # More fields than any known layout after a 12-digit number: maybe a newer card generation, and the
        # screen should say the card was not read rather than ignore it.
        if _is_digits(fields[0], 12) and len(fields) > max(len(layout.fields) for layout in LAYOUTS):
            raise InvalidCard(f"a card layout this kiosk does not know ({len(fields)} fields)")
        raise NotACard("not a CCCD field layout")
    first_error: InvalidCard | None = None
    for layout in fitting:
        try:
            return _validate(layout, dict(zip(layout.fields, fields)), today)
        except InvalidCard as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _validate(layout: Layout, raw: dict[str, str], today: date) -> Card:
    number = raw["number"]
    if not _is_digits(number, 12):
        raise InvalidCard("the card number must have 12 digits")
    if number[:3] not in PROVINCES:
        raise InvalidCard("the card number does not start with a province code")
    old_id = raw.get("old_id", "")
    # A 12-digit CMND (issued 2012-2016) can also be the old ID; most are 9 digits.
    if old_id and not (_is_digits(old_id, 9) or _is_digits(old_id, 12)):
        raise InvalidCard("the old ID must have 9 or 12 digits")
    sex = unicodedata.normalize("NFC", raw["sex"])
    if sex not in SEXES:
        raise InvalidCard("sex must be Nam or Nữ")
    name = _text(raw["name"], "name", MAX_NAME)
    if not all(c.isalpha() or unicodedata.category(c).startswith("M") or c in NAME_PUNCTUATION for c in name):
        raise InvalidCard("the name holds characters other than letters, spaces, ' and -")
    if not any(c.isalpha() for c in name):
        raise InvalidCard("the name has no letter")
    address = _text(raw["address"], "address", MAX_ADDRESS)
    birth_date = _date(raw["birth"], "birth date", today)
    issue_date = _date(raw["issued"], "issue date", today)
    if issue_date < birth_date:
        raise InvalidCard("issued before birth")
    if issue_date < FIRST_ISSUE:
        raise InvalidCard("issued before the CCCD existed (2016)")
    if number[3] != CENTURY_SEX.get((birth_date.year // 100, sex)):
        raise InvalidCard("the number's 4th digit does not match the sex and century of birth")
    if number[4:6] != f"{birth_date.year % 100:02d}":
        raise InvalidCard("the number's 5th-6th digits do not match the birth year")
    return Card(number, old_id or None, name, birth_date, sex, address, issue_date, layout.format)


def _is_digits(value: str, length: int | None = None) -> bool:
    """ASCII digits only (``str.isdigit`` also takes Arabic-Indic and superscript digits)."""
    return bool(value) and value.isascii() and value.isdigit() and (length is None or len(value) == length)


def _text(value: str, what: str, limit: int) -> str:
    """NFC, trimmed, non-empty, at most ``limit`` characters, and no control, format or odd space character."""
    value = unicodedata.normalize("NFC", value).strip(" ")
    if not value or len(value) > limit:
        raise InvalidCard(f"the {what} is empty or longer than {limit} characters")
    if any(c != " " and unicodedata.category(c)[0] in "CZ" for c in value):
        raise InvalidCard(f"the {what} holds control characters or unusual spaces")
    return value


def _date(value: str, what: str, today: date) -> date:
    if not _is_digits(value, 8):
        raise InvalidCard(f"the {what} must be ddmmyyyy")
    try:
        day = date(int(value[4:]), int(value[2:4]), int(value[:2]))
    except ValueError:
        raise InvalidCard(f"the {what} is not a real date") from None
    if day > today or day.year < 1900:
        raise InvalidCard(f"the {what} is in the future or before 1900")
    return day
