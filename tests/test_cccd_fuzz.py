"""10,000 random and mutated payloads through the CCCD parser: only NotACard/InvalidCard, and nothing accepted that
an independent oracle (the rules written again, differently, below) rejects. Seeded: the same cases every run."""
from __future__ import annotations

import json
import random
import re
import unicodedata
from datetime import date, datetime

from kiosk.cardgen import invent_fields, join_fields
from kiosk.cccd import Card, InvalidCard, NotACard, parse_card

TODAY = date(2026, 12, 1)
CASES = 10_000
SEED = 20261201

# The 63 province codes of Circular 07/2016/TT-BCA, written out again on purpose (not imported).
ORACLE_PROVINCES = set(
    "001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 033 034 035 036 037 038 040 "
    "042 044 045 046 048 049 051 052 054 056 058 060 062 064 066 067 068 070 072 074 075 077 079 080 082 083 084 "
    "086 087 089 091 092 093 094 095 096".split())
JUNK = ["\x00", "\t", "\n", "\r", "\x7f", "\u200b", "\u200d", "\ufeff", "\u00a0", "\u2028", "\u0301", "\u031b",
        "\ud800", "\U0001f600", "\uff10", "\u0663", "²", "|", "||", "'", "-", "<", "\\", "\"", "é", "ữ", "Đ", " "]
FIELD_NAMES = ("number", "old_id", "name", "birth", "sex", "address", "issued")


def oracle(text: str) -> tuple | None:
    """What a valid payload reads as (the Card's fields), or None: the rules of kiosk.cccd, restated."""
    if len(text) > 1000:
        return None
    parts = text.split("|")
    if len(parts) == 7:
        number, old_id, name, birth, sex, address, issued = parts
        layout = 1
    elif len(parts) == 6:
        (number, name, birth, sex, address, issued), old_id, layout = parts, "", 2
    else:
        return None
    if not re.fullmatch(r"[0-9]{12}", number) or number[:3] not in ORACLE_PROVINCES:
        return None
    if old_id and not re.fullmatch(r"[0-9]{9}|[0-9]{12}", old_id):
        return None
    sex = unicodedata.normalize("NFC", sex)
    if sex not in ("Nam", "Nữ"):
        return None
    name = unicodedata.normalize("NFC", name).strip(" ")
    if not 1 <= len(name) <= 100 or not any(unicodedata.category(c)[0] == "L" for c in name):
        return None
    if any(unicodedata.category(c)[0] not in "LM" and c not in " '-" for c in name):
        return None
    address = unicodedata.normalize("NFC", address).strip(" ")
    if not 1 <= len(address) <= 300 or any(c != " " and unicodedata.category(c)[0] in "CZ" for c in address):
        return None
    dates = []
    for value in (birth, issued):
        if not re.fullmatch(r"[0-9]{8}", value):
            return None
        try:
            day = datetime.strptime(value, "%d%m%Y").date()
        except ValueError:
            return None
        if not date(1900, 1, 1) <= day <= TODAY:
            return None
        dates.append(day)
    born, issue = dates
    if issue < born or issue < date(2016, 1, 1):
        return None
    century_digit = (born.year - 1900) // 100 * 2 + (sex == "Nữ")
    if number[3] != str(century_digit) or number[4:6] != str(born.year)[2:]:
        return None
    return (number, old_id or None, name, born, sex, address, issue, layout)


def valid_fields(rng: random.Random) -> dict[str, str]:
    return invent_fields(rng, today=TODAY)


def mutate(rng: random.Random, text: str) -> str:
    """One to three random changes of the kinds a misread, a forged or a foreign QR brings."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(10)
        if kind == 0 and text:                                      # flip one byte of the UTF-8 text
            raw = bytearray(text.encode("utf-8", "surrogatepass"))
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            text = raw.decode("utf-8", "replace")
        elif kind == 1:                                             # swap two fields
            parts = text.split("|")
            i, j = rng.randrange(len(parts)), rng.randrange(len(parts))
            parts[i], parts[j] = parts[j], parts[i]
            text = "|".join(parts)
        elif kind == 2 and "|" in text:                             # delete or duplicate a separator
            positions = [i for i, c in enumerate(text) if c == "|"]
            i = rng.choice(positions)
            text = text[:i] + ("" if rng.random() < 0.5 else "||") + text[i + 1:]
        elif kind == 3:                                             # unicode junk anywhere
            i = rng.randrange(len(text) + 1)
            text = text[:i] + rng.choice(JUNK) + text[i:]
        elif kind == 4:                                             # very long
            i = rng.randrange(len(text) + 1)
            text = text[:i] + rng.choice("aÂ9 |") * rng.choice((50, 301, 1200)) + text[i:]
        elif kind == 5:                                             # NFD or NFKD
            text = unicodedata.normalize(rng.choice(("NFD", "NFKD")), text)
        elif kind == 6 and text[:1].isdigit():                      # change one digit of the number
            i = rng.choice((0, 1, 2, 3, 3, 4, 5, 6, 11))
            text = text[:i] + str(rng.randrange(10)) + text[i + 1:]
        elif kind == 7:                                             # change one digit anywhere (often a date)
            digits = [i for i, c in enumerate(text) if c.isdigit()]
            if digits:
                i = rng.choice(digits)
                text = text[:i] + str(rng.randrange(10)) + text[i + 1:]
        elif kind == 8:                                             # cut the text short
            text = text[:rng.randrange(len(text) + 1)]
        else:                                                       # change the sex field
            parts = text.split("|")
            if len(parts) >= 5:
                parts[-3] = rng.choice(("Nam", "Nữ", "nam", "NỮ", "Nu", "Khác", unicodedata.normalize("NFD", "Nữ")))
                text = "|".join(parts)
    return text


def random_text(rng: random.Random) -> str:
    """Text that was never a card: URLs, payment strings, JSON, random unicode."""
    kind = rng.randrange(5)
    if kind == 0:
        return f"https://example.invalid/{rng.randrange(10**6)}?q={'|'.join('x' * rng.randrange(4))}"
    if kind == 1:
        return "000201010212" + "".join(rng.choice("0123456789ABCDEF") for _ in range(rng.randrange(20, 120)))
    if kind == 2:
        return json.dumps(valid_fields(rng), ensure_ascii=rng.random() < 0.5)
    if kind == 3:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(0, 200)))
    return "|".join(str(rng.randrange(10**12)) for _ in range(rng.randrange(1, 9)))


def cases(rng: random.Random):
    for n in range(CASES):
        if n % 10 == 0:
            yield random_text(rng)
        else:
            text = join_fields(valid_fields(rng), six=rng.random() < 0.3)
            yield text if n % 10 == 1 else mutate(rng, text)


def test_ten_thousand_payloads_raise_only_card_errors_and_no_invalid_card_is_accepted():
    rng = random.Random(SEED)
    accepted = rejected = 0
    for text in cases(rng):
        expected = oracle(text)
        try:
            card = parse_card(text, today=TODAY)
        except (NotACard, InvalidCard):
            assert expected is None, f"a valid payload was rejected: {text!r}"
            rejected += 1
            continue
        assert isinstance(card, Card)
        assert expected is not None, f"an invalid payload was accepted: {text!r}"
        assert (card.number, card.old_id, card.name, card.birth_date, card.sex, card.address,
                card.issue_date, card.format) == expected
        accepted += 1
    assert accepted + rejected == CASES
    # Both sides exercised: the untouched ones (a tenth) and some harmless mutations pass, most mutations fail.
    assert accepted >= CASES // 10 and rejected >= CASES // 2, (accepted, rejected)


def test_the_oracle_agrees_on_known_cases():
    """The oracle itself could be wrong; pin it on hand-made cases."""
    good = "001203001234||Nguyễn Văn An|01022003|Nam|Hà Nội|15062021"
    assert oracle(good) is not None and oracle(good.replace("|Nam|", "|Nữ|")) is None
    assert oracle(good.replace("001203", "001103")) is None and oracle(good.replace("001203", "001204")) is None
    assert oracle(good.replace("001203", "003203")) is None and oracle(good.replace("15062021", "15062015")) is None
    assert oracle("079304000042|Trần Thị Bình|29022004|Nữ|Quận 1|01072024") is not None
