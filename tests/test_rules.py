"""kiosk/rules.py on its own: opening hours, caps and kiosk ranges parsed from the config's tables and asked
with the time passed in."""
from datetime import datetime

import pytest

from kiosk.rules import RulesError, parse_rules

SERVICES = ["ho-tich", "dat-dai"]
OFFICE = {"hours": {day: ["07:30-11:30", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
          | {"sat": ["07:30-11:30"], "dat-dai": {"mon": ["08:00-10:00"], "tue": ["08:00-10:00"]}},
          "caps": {"ho-tich": 3, "office": 5}}


def why(rules, service, at, taken=0, office=0, closed=False):
    refusal = rules.refusal(service, "Hộ tịch" if service == "ho-tich" else "Đất đai", "X", at, taken=taken,
                            taken_office=office, closed=closed)
    return None if refusal is None else (refusal.reason, refusal.tile_vi)


def test_hours_say_when_the_service_opens_next():
    rules = parse_rules(OFFICE, SERVICES, "k1")
    assert why(rules, "ho-tich", datetime(2026, 11, 30, 7, 29)) == ("closed", "Mở lúc 07:30")    # Monday
    assert why(rules, "ho-tich", datetime(2026, 11, 30, 7, 30)) is None
    assert why(rules, "ho-tich", datetime(2026, 11, 30, 11, 30)) == ("closed", "Mở lúc 13:00")
    assert why(rules, "ho-tich", datetime(2026, 11, 30, 16, 59)) is None
    assert why(rules, "ho-tich", datetime(2026, 12, 5, 12, 0)) == ("closed", "Mở lúc 07:30 thứ Hai")  # Saturday
    assert why(rules, "ho-tich", datetime(2026, 12, 6, 9, 0)) == ("closed", "Mở lúc 07:30 thứ Hai")   # Sunday


def test_a_service_with_its_own_hours_opens_only_when_both_are_open():
    rules = parse_rules(OFFICE, SERVICES, "k1")
    assert why(rules, "dat-dai", datetime(2026, 11, 30, 7, 45)) == ("closed", "Mở lúc 08:00")
    assert why(rules, "dat-dai", datetime(2026, 11, 30, 9, 0)) is None
    assert why(rules, "dat-dai", datetime(2026, 11, 30, 10, 0)) == ("closed", "Mở lúc 08:00 thứ Ba")
    assert why(rules, "dat-dai", datetime(2026, 12, 2, 9, 0)) == ("closed", "Mở lúc 08:00 thứ Hai")   # Wednesday


def test_caps_per_service_and_for_the_office_and_a_closure():
    rules = parse_rules(OFFICE, SERVICES, "k1")
    monday = datetime(2026, 11, 30, 9, 0)
    assert why(rules, "ho-tich", monday, taken=2, office=2) is None
    assert why(rules, "ho-tich", monday, taken=3, office=3) == ("full", "Hết số hôm nay")
    assert why(rules, "dat-dai", monday, taken=1, office=5) == ("full", "Hết số hôm nay")     # the office's cap
    assert why(rules, "dat-dai", monday, closed=True) == ("closed", "Tạm ngừng hôm nay")


def test_always_open_and_no_tables_mean_no_refusal():
    for raw in ({}, {"hours": {"always_open": True}}):
        rules = parse_rules(raw, SERVICES, "k1")
        assert why(rules, "ho-tich", datetime(2026, 12, 6, 3, 0)) is None
        assert rules.numbers("k1", "ho-tich") == (1, 999_999)


def test_kiosk_ranges_per_service_or_for_all():
    rules = parse_rules({"numbers": {"k1": [1, 499], "k2": {"ho-tich": [500, 999], "dat-dai": [500, 599]}}},
                        SERVICES, "k2")
    assert rules.numbers("k1", "ho-tich") == (1, 499) and rules.numbers("k2", "ho-tich") == (500, 999)
    assert rules.numbers("k1", "dat-dai") == (1, 499) and rules.numbers("k2", "dat-dai") == (500, 599)


@pytest.mark.parametrize("raw, message", [
    ({"hours": {"mon": ["7:30-11:30"]}}, "hours.mon: '7:30-11:30' is not a span HH:MM-HH:MM"),
    ({"hours": {"mon": ["11:30-07:30"]}}, "hours.mon: '11:30-07:30' ends before it starts"),
    ({"hours": {"monday": ["07:30-11:30"]}}, "hours.monday: not a weekday"),
    ({"hours": {"always_open": True, "mon": []}}, "set either always_open or the weekdays' hours"),
    ({"hours": {"mon": "07:30-11:30"}}, "hours.mon: expected a list"),
    ({"caps": {"xay-dung": 3}}, "caps.xay-dung: not a service key"),
    ({"caps": {"ho-tich": 0}}, "caps.ho-tich: expected a whole number 1-999999"),
    ({"priority": {"mark": "u1"}}, "priority.mark: 1-2 upper-case ASCII letters"),
    ({"priority": {"wait_seconds": float("nan")}}, "priority.wait_seconds: a number of seconds 0-30"),
    ({"priority": {"colour": 1}}, "priority.colour: unknown key"),
    ({"numbers": {"k1": [10, 1]}}, "numbers.k1: first number 10 is above the last 1"),
    ({"numbers": {"k1": "1-499"}}, "numbers.k1: expected [first, last] or a table"),
    ({"numbers": {"k1": {"nope": [1, 2]}}}, "numbers.k1.nope: not a service key"),
])
def test_bad_tables_name_their_key(raw, message):
    with pytest.raises(RulesError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_rules(raw, SERVICES, "k1")
