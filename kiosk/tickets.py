"""What a ticket says, as plain values: the number format, the content, the masked greeting name.

Pure (no Pillow, no printer): the same content feeds the paper (`kiosk.receipt`) and the screen.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

#: The line under the number when the config gives none: what the citizen does next.
DEFAULT_GUIDANCE = "Vui lòng chờ gọi số và đến quầy khi số của Ông/Bà hiện trên bảng."


def format_ticket(prefix: str, number: int, mark: str = "") -> str:
    """The printed ticket number: ``format_ticket("HT", 1) == "HT-001"``, ``("HT", 1234) -> "HT-1234"``.

    Zero-padded to three digits so a day's tickets line up; more digits past 999 (never truncated,
    because a number handed out must never repeat). A series ``mark`` (priority) comes first, two digits:
    ``format_ticket("HT", 1, "U") == "HT-U01"``.
    """
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise ValueError(f"ticket number must be a non-negative integer, got {number!r}")
    if not prefix:
        raise ValueError("ticket prefix must not be empty")
    return f"{prefix}-{mark}{number:02d}" if mark else f"{prefix}-{number:03d}"


def format_issued(issued_at: datetime) -> str:
    """Vietnamese date and time as printed: ``27/11/2026 14:05``."""
    return issued_at.strftime("%d/%m/%Y %H:%M")


@dataclass(frozen=True)
class TicketContent:
    """Everything printed on one ticket; the renderer decides only where it goes."""

    office: str          # "UBND Quận Ba Đình — Bộ phận Một cửa"
    ticket: str          # "HT-001", from format_ticket
    category_vi: str     # "Hộ tịch"
    category_en: str     # "Civil status"
    issued_at: datetime  # local, naive
    kiosk_id: str
    visit_id: str        # the visit's identifier, encoded in the QR code for the counter's scanner
    guidance: str = DEFAULT_GUIDANCE
    code: str | None = None   # the sealed ticket code (kiosk/ticketcode.py) for the QR; None: the visit id alone

    def __post_init__(self) -> None:
        if not self.ticket:
            raise ValueError("TicketContent.ticket must not be empty")
        if not self.visit_id:
            raise ValueError("TicketContent.visit_id must not be empty (it is the QR code's content)")

    @property
    def file_name(self) -> str:
        """A file-safe name unique per kiosk and day (numbers never repeat within a day): ``2026-11-27_HT-001``."""
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in self.ticket)
        return f"{self.issued_at:%Y-%m-%d}_{safe}"


# The ticket shown in the README and kept as the tests' reference rendering: change it and both change.
SAMPLE_TICKET = TicketContent(
    office="UBND Quận Ba Đình — Bộ phận Một cửa",
    ticket="KD-027",
    category_vi="Đăng ký kinh doanh",
    category_en="Business registration",
    issued_at=datetime(2026, 11, 27, 14, 5),
    kiosk_id="kiosk-01",
    visit_id="3f9a6c0e5b7d41a28c1e9f0b6d2a7c45",
    guidance="Vui lòng chờ gọi số và đến quầy khi số của Ông/Bà hiện trên bảng.",
)


def mask_name(full_name: str) -> str:
    """A name for the greeting that a bystander cannot read in full: ``"Nguyễn Văn An" -> "N****n V*n A*"``.

    Each word keeps its first and last letter and the middle becomes ``*``; words of one or two letters keep
    only their first letter. Works on letters, not bytes or code points: the text is NFC-normalised first, so
    "ễ" typed as e + two combining marks counts as one letter.
    """
    words = unicodedata.normalize("NFC", full_name).split()
    masked = []
    for word in words:
        if len(word) <= 2:
            masked.append(word[0] + "*" * (len(word) - 1))
        else:
            masked.append(word[0] + "*" * (len(word) - 2) + word[-1])
    return " ".join(masked)
