"""The CCCD payload rules, one test per rule, on invented payloads (never a real person's)."""
from __future__ import annotations

import unicodedata
from datetime import date

import pytest

from kiosk.cccd import (CENTURY_SEX, FORMAT_6, FORMAT_7, LAYOUTS, PROVINCES, Card, InvalidCard, NotACard,
                        parse_card)

TODAY = date(2026, 12, 1)
# Invented: Hà Nội (001), 21st-century male (2), born 2003 (03), serial 001234.
FIELDS = ["001203001234", "", "Nguyễn Văn An", "01022003", "Nam", "Số 5 ngõ 12, Hà Nội", "15062021"]


def payload(**changes: str) -> str:
    names = ("number", "old_id", "name", "birth", "sex", "address", "issued")
    fields = dict(zip(names, FIELDS)) | changes
    return "|".join(fields[n] for n in names)


def parse(text: str) -> Card:
    return parse_card(text, today=TODAY)


def test_a_valid_seven_field_payload_gives_the_card():
    card = parse(payload(old_id="012345678"))
    assert card == Card("001203001234", "012345678", "Nguyễn Văn An", date(2003, 2, 1), "Nam",
                        "Số 5 ngõ 12, Hà Nội", date(2021, 6, 15), FORMAT_7)
    assert card.honorific == "ông" and card.province == "Hà Nội"
    assert card.age_on(date(2026, 1, 31)) == 22 and card.age_on(date(2026, 2, 1)) == 23


def test_an_empty_old_id_is_none():
    assert parse(payload()).old_id is None


def test_the_six_field_form_has_no_old_id_and_its_own_format_number():
    card = parse("079304000042|Trần Thị Bình|29022004|Nữ|Quận 1, TP. Hồ Chí Minh|01072024")
    assert (card.format, card.old_id, card.sex, card.honorific) == (FORMAT_6, None, "Nữ", "bà")
    assert card.birth_date == date(2004, 2, 29) and card.province == "Hồ Chí Minh"


def test_layouts_are_a_table_with_distinct_format_numbers():
    assert [layout.format for layout in LAYOUTS] == [FORMAT_7, FORMAT_6]
    assert len({len(layout.fields) for layout in LAYOUTS}) == len(LAYOUTS)


@pytest.mark.parametrize("text", [
    "https://example.invalid/pay?amount=10000",
    "00020101021238570010A000000727012700069704220113VQRQ00001234",   # a VietQR-like payment string
    '{"number": "001203001234", "name": "Nguyễn Văn An"}',
    "Xin chào",
    "",
    "a|b|c",
    "001203001234|Nguyễn Văn An",                                     # too few fields
    "x" + payload(),                                                    # first field not a number
    "０01203001234|Nguyễn Văn An|01022003|Nam|Hà Nội|15062021",         # a full-width digit
    payload() + "|" * 2000,
])
def test_a_qr_that_is_not_a_card_is_not_a_card(text):
    with pytest.raises(NotACard):
        parse(text)


@pytest.mark.parametrize("text", ["|".join(FIELDS + ["extra"]), "|".join(FIELDS + ["", "", "x"])])
def test_a_twelve_digit_number_in_an_unknown_layout_is_an_invalid_card_not_ignored(text):
    """A newer card generation with other fields should make the screen say "card not read", not stay silent."""
    with pytest.raises(InvalidCard, match="layout this kiosk does not know"):
        parse(text)


@pytest.mark.parametrize("number, rule", [
    ("00120300123", "12 digits"),
    ("0012030012345", "12 digits"),
    ("003203001234", "province"),        # 003 is no province's code
    ("099203001234", "province"),
    ("001003001234", "4th digit"),       # 0 = 20th century, born 2003
    ("001303001234", "4th digit"),       # 3 = female, the card says Nam
    ("001403001234", "4th digit"),       # 4 = 22nd century
    ("001204001234", "5th-6th"),         # born 2003, not 2004
])
def test_the_number_rules(number, rule):
    with pytest.raises(InvalidCard, match=rule):
        parse(payload(number=number))


def test_the_century_and_sex_digit_for_the_twentieth_century():
    assert parse(payload(number="079085000001", birth="31121985", sex="Nam")).number == "079085000001"
    assert parse(payload(number="079185000001", birth="31121985", sex="Nữ")).sex == "Nữ"
    with pytest.raises(InvalidCard, match="4th digit"):
        parse(payload(number="079285000001", birth="31121985"))


def test_the_century_sex_table_follows_the_circular():
    assert CENTURY_SEX[(19, "Nam")] == "0" and CENTURY_SEX[(19, "Nữ")] == "1"
    assert CENTURY_SEX[(20, "Nam")] == "2" and CENTURY_SEX[(20, "Nữ")] == "3"
    assert CENTURY_SEX[(23, "Nam")] == "8" and CENTURY_SEX[(23, "Nữ")] == "9"


def test_the_province_table_has_the_63_codes():
    assert len(PROVINCES) == 63 and all(len(code) == 3 and code.isdigit() for code in PROVINCES)
    assert {"001", "031", "048", "079", "092", "096"} <= PROVINCES.keys()


@pytest.mark.parametrize("old_id", ["12345678", "1234567890", "12345678a", "１２３４５６７８９"])
def test_the_old_id_is_9_digits(old_id):
    with pytest.raises(InvalidCard, match="old ID"):
        parse(payload(old_id=old_id))


def test_a_12_digit_old_id_is_accepted():
    assert parse(payload(old_id="001090000123")).old_id == "001090000123"


@pytest.mark.parametrize("sex", ["nam", "NAM", "Nu", "Male", "", "Nam ", "Nữ\u200b"])
def test_the_sex_is_exactly_nam_or_nu(sex):
    with pytest.raises(InvalidCard, match="sex"):
        parse(payload(sex=sex))


def test_nfd_input_is_read_as_nfc():
    text = unicodedata.normalize("NFD", payload(number="001303001234", sex="Nữ"))
    assert text != unicodedata.normalize("NFC", text)
    card = parse(text)
    assert (card.sex, card.name) == ("Nữ", "Nguyễn Văn An")
    assert unicodedata.is_normalized("NFC", card.address)


@pytest.mark.parametrize("birth, rule", [
    ("3002200", "ddmmyyyy"),
    ("01-02-03", "ddmmyyyy"),
    ("30022003", "real date"),
    ("29022003", "real date"),           # 2003 is not a leap year
    ("01132003", "real date"),
    ("02122026", "future"),              # tomorrow
    ("01011899", "before 1900"),
])
def test_the_birth_date_is_a_real_past_date(birth, rule):
    with pytest.raises(InvalidCard, match=rule):
        parse(payload(birth=birth))


def test_born_today_is_not_in_the_future():
    assert parse(payload(number="001326000001", sex="Nữ", birth="01122026", issued="01122026")).age_on(TODAY) == 0


@pytest.mark.parametrize("issued, rule", [
    ("02122026", "future"),
    ("31012003", "before birth"),
    ("31122015", "2016"),
    ("1506202", "ddmmyyyy"),
])
def test_the_issue_date(issued, rule):
    with pytest.raises(InvalidCard, match=rule):
        parse(payload(issued=issued))


@pytest.mark.parametrize("name, rule", [
    ("", "empty"),
    ("   ", "empty"),
    ("A" * 101, "longer than 100"),
    ("Nguyễn\tVăn An", "control"),
    ("Nguyễn\u200bVăn An", "control"),      # zero-width space (a format character)
    ("Nguyễn\u00a0Văn An", "unusual spaces"),
    ("Nguyễn Văn An 2", "letters"),
    ("Nguyễn <b>An</b>", "letters"),
    ("' -", "no letter"),
])
def test_the_name_rules(name, rule):
    with pytest.raises(InvalidCard, match=rule):
        parse(payload(name=name))


def test_minority_and_hyphenated_names_are_accepted():
    assert parse(payload(name="H'Hen Niê")).name == "H'Hen Niê"
    assert parse(payload(name=" Lê-Trần Thị Mai ")).name == "Lê-Trần Thị Mai"


@pytest.mark.parametrize("address, rule", [
    ("", "empty"),
    ("x" * 301, "longer than 300"),
    ("Hà Nội\n", "control"),
    ("Hà Nội\x00", "control"),
    ("Hà\u2028Nội", "unusual spaces"),
])
def test_the_address_rules(address, rule):
    with pytest.raises(InvalidCard, match=rule):
        parse(payload(address=address))


def test_an_address_may_hold_digits_and_punctuation():
    assert parse(payload(address="Số 12/3A, Tổ 4, P. Bến Nghé; Q.1")).address == "Số 12/3A, Tổ 4, P. Bến Nghé; Q.1"


def test_no_message_quotes_the_payload():
    secrets = {"number": "001203987654", "name": "Phạm Bảo Khánh", "address": "Thôn Đông Xá 77"}
    broken = [payload(number="0012039876540", name=secrets["name"], address=secrets["address"]),
              payload(number=secrets["number"], birth="99999999", name=secrets["name"]),
              payload(number=secrets["number"], name=secrets["name"] + "\t", address=secrets["address"]),
              payload(number=secrets["number"], sex="Khác", address=secrets["address"])]
    for text in broken:
        with pytest.raises(InvalidCard) as caught:
            parse(text)
        message = str(caught.value)
        assert not any(value in message for value in secrets.values()), message
        assert not any(part and part in message for part in text.split("|") if len(part) > 3), message


@pytest.mark.parametrize("text", [None, 12, b"001203001234||A|01022003|Nam|X|15062021"])
def test_a_non_string_is_not_a_card(text):
    with pytest.raises(NotACard):
        parse_card(text, today=TODAY)  # type: ignore[arg-type]
