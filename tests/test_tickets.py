"""Ticket numbers, ticket content and the masked greeting name (pure functions)."""
import dataclasses
import unicodedata
from datetime import datetime

import pytest

from kiosk.tickets import DEFAULT_GUIDANCE, TicketContent, format_issued, format_ticket, mask_name


@pytest.mark.parametrize("prefix, number, expected", [
    ("HT", 1, "HT-001"),
    ("HT", 42, "HT-042"),
    ("A", 999, "A-999"),
    ("HT", 1000, "HT-1000"),
    ("DD", 12345, "DD-12345"),
    ("TEST", 0, "TEST-000"),
])
def test_format_ticket_pads_to_three_digits_and_never_truncates(prefix, number, expected):
    assert format_ticket(prefix, number) == expected


@pytest.mark.parametrize("number", [-1, 1.5, "7", True])
def test_format_ticket_rejects_numbers_that_are_not_counts(number):
    with pytest.raises(ValueError, match="non-negative integer"):
        format_ticket("HT", number)


def test_format_ticket_rejects_an_empty_prefix():
    with pytest.raises(ValueError, match="prefix"):
        format_ticket("", 3)


def test_issued_time_is_printed_day_first_like_in_vietnam():
    assert format_issued(datetime(2026, 11, 27, 14, 5, 59)) == "27/11/2026 14:05"
    assert format_issued(datetime(2027, 1, 3, 7, 0)) == "03/01/2027 07:00"


def _content(**changes):
    values = dict(office="UBND Quận Ba Đình", ticket="HT-001", category_vi="Hộ tịch", category_en="Civil status",
                  issued_at=datetime(2026, 11, 27, 14, 5), kiosk_id="kiosk-01", visit_id="ab12")
    values.update(changes)
    return TicketContent(**values)


def test_ticket_content_is_frozen_and_has_default_guidance():
    content = _content()
    assert content.guidance == DEFAULT_GUIDANCE
    with pytest.raises(dataclasses.FrozenInstanceError):
        content.ticket = "HT-002"


@pytest.mark.parametrize("field", ["ticket", "visit_id"])
def test_ticket_content_needs_a_number_and_a_visit_id(field):
    with pytest.raises(ValueError, match=field):
        _content(**{field: ""})


def test_file_name_is_unique_per_day_and_file_safe():
    assert _content().file_name == "2026-11-27_HT-001"
    assert _content(ticket="HT/1 ễ").file_name == "2026-11-27_HT_1__"


@pytest.mark.parametrize("full, masked", [
    ("Nguyễn Văn An", "N****n V*n A*"),
    ("Trần Thị Bích Ngọc", "T**n T*ị B**h N**c"),
    ("Lê A", "L* A"),
    ("Đỗ   Quang  Huy", "Đ* Q***g H*y"),
    ("Ô", "Ô"),
    ("", ""),
])
def test_mask_name_keeps_first_and_last_letter_of_each_word(full, masked):
    assert mask_name(full) == masked


def test_mask_name_counts_letters_not_code_points():
    decomposed = unicodedata.normalize("NFD", "Nguyễn Văn An")
    assert len(decomposed) > len("Nguyễn Văn An")
    assert mask_name(decomposed) == "N****n V*n A*"
