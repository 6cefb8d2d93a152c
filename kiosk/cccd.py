"""The payload of a chip-based CCCD card's QR code, parsed and validated before anything is stored.

Pure: no device library, no I/O. The QR holds ``|``-separated fields::

    number(12 digits)|old ID (9 digits, may be empty)|full name|birth date ddmmyyyy|Nam or Nữ|address|issue date ddmmyyyy

(the 6-field form has no old-ID field). A QR that is not a card at all (a payment code, a URL) raises
:class:`NotACard`, which the kiosk ignores; a card-shaped payload that fails a rule raises :class:`InvalidCard`,
and the visit gets a plain ticket with nothing stored.

Example::

    card = parse_card("001203001234||Nguyễn Văn An|01022003|Nam|Hà Nội|15062021", today=date(2026, 12, 1))
    card.honorific      # "ông"
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

FORMAT_7 = 1     # number|old id|name|birth|sex|address|issued  (cards issued 2021-2024)
FORMAT_6 = 2     # number|name|birth|sex|address|issued          (no old-ID field)

SEXES = ("Nam", "Nữ")
MAX_NAME = 100
MAX_ADDRESS = 300


class NotACard(ValueError):
    """The text is not a CCCD payload at all (a URL, a payment code): ignored."""


class InvalidCard(ValueError):
    """A CCCD-shaped payload that breaks a rule; the message names the rule, never the payload."""


@dataclass(frozen=True)
class Card:
    number: str              # 12 digits; stored only as a keyed hash (see kiosk.identity)
    old_id: str | None       # 9 digits, or None
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

    def age_on(self, day: date) -> int:
        """Whole years of age on ``day``."""
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


def parse_card(text: str, *, today: date) -> Card:
    """Parse and validate one QR payload; raise NotACard or InvalidCard."""
    if not isinstance(text, str) or "|" not in text:
        raise NotACard("no field separator")
    fields = text.split("|")
    if len(fields) not in (6, 7) or not (fields[0].isascii() and fields[0].isdigit()):
        raise NotACard("not the CCCD field layout")
    if len(fields) == 7:
        number, old_id, name, birth, sex, address, issued = fields
        layout = FORMAT_7
    else:
        number, name, birth, sex, address, issued = fields
        old_id, layout = "", FORMAT_6
    if len(number) != 12:
        raise InvalidCard("the card number must have 12 digits")
    if old_id and not (len(old_id) == 9 and old_id.isascii() and old_id.isdigit()):
        raise InvalidCard("the old ID must have 9 digits")
    name, address = _text(name, "name", MAX_NAME), _text(address, "address", MAX_ADDRESS)
    sex = unicodedata.normalize("NFC", sex)
    if sex not in SEXES:
        raise InvalidCard("sex must be Nam or Nữ")
    birth_date, issue_date = _date(birth, "birth date", today), _date(issued, "issue date", today)
    if issue_date < birth_date:
        raise InvalidCard("issued before birth")
    return Card(number, old_id or None, name, birth_date, sex, address, issue_date, layout)


def _text(value: str, what: str, limit: int) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if not value or len(value) > limit:
        raise InvalidCard(f"the {what} is empty or longer than {limit} characters")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise InvalidCard(f"the {what} holds control characters")
    return value


def _date(value: str, what: str, today: date) -> date:
    if len(value) != 8 or not (value.isascii() and value.isdigit()):
        raise InvalidCard(f"the {what} must be ddmmyyyy")
    try:
        day = date(int(value[4:]), int(value[2:4]), int(value[:2]))
    except ValueError:
        raise InvalidCard(f"the {what} is not a real date") from None
    if day > today or day.year < 1900:
        raise InvalidCard(f"the {what} is in the future or before 1900")
    return day
