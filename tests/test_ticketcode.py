"""The sealed ticket code (issue 18): it decodes back at the counter, refuses any change or another office's key,
shows nothing personal without the office key, and is what the printed ticket's QR code holds."""
import base64
from datetime import datetime

import numpy as np
import pytest
from nacl.signing import SigningKey
from PIL import Image

from hardware.printer import SimulatedPrinter
from kiosk.bundle import OfficeKeys
from kiosk.cardread import decode_qr
from kiosk.config import SIMULATION_CONFIG, load_config
from kiosk.identity import CardBook, CardPolicy, load_secret, make_secret
from kiosk.index import FaceIndex
from kiosk.paths import FONT_REGULAR
from kiosk.printing import PrintQueue, TicketPrinter
from kiosk.services import KioskServices
from kiosk.states import VisitRequest
from kiosk.store import Store
from kiosk.ticketcode import (PREFIX, TicketCodeError, TicketFacts, TicketSealer, is_ticket_code, open_code, seal,
                              wire_bytes)

KIOSK = SigningKey(bytes(range(32)))
OFFICE = OfficeKeys.from_bytes(bytes(range(100, 164)))
OTHER_OFFICE = OfficeKeys.from_bytes(bytes(range(1, 65)))
KEYS = {"kiosk-01": KIOSK.verify_key}
# Invented citizen (001: Hà Nội), never a real person's.
FIELDS = {"name": "Nguyễn Văn An", "card_number": "001095001234", "birth_date": "1995-02-01"}
LINKED = TicketFacts("3f9a6c0e5b7d41a2", "KD-027", "kinh-doanh", "Đăng ký kinh doanh", datetime(2026, 11, 27, 14, 5, 9),
                     "kiosk-01", "ab" * 16, FIELDS)
UNLINKED = TicketFacts("0011223344556677", "HT-001", "ho-tich", "Hộ tịch", datetime(2026, 11, 27, 8, 0), "kiosk-01")


def _code(facts=LINKED, office=OFFICE, key=KIOSK):
    return seal(facts, signing_key=key, office=office.public())


def _reason(text, office=OFFICE, keys=KEYS):
    with pytest.raises(TicketCodeError) as err:
        open_code(text, office=office, kiosk_keys=keys)
    return err.value.reason


def test_a_sealed_code_decodes_back_with_the_office_key():
    for facts in (LINKED, UNLINKED):
        code = _code(facts)
        assert code.startswith(PREFIX) and is_ticket_code(code)
        assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" + "KT1")   # QR alphanumeric, no Shift, no accent
        assert open_code(code, office=OFFICE, kiosk_keys=KEYS) == facts
        assert open_code(" " + code.lower() + "\n", office=OFFICE, kiosk_keys=KEYS) == facts   # as a scanner types


def test_any_one_changed_byte_is_refused():
    wire = wire_bytes(_code())
    for i in range(len(wire)):
        changed = bytearray(wire)
        changed[i] ^= 0x01
        text = PREFIX + base64.b32encode(bytes(changed)).decode().rstrip("=")
        assert _reason(text) in {"not-a-code", "other-office", "damaged"}, i
    assert _reason(_code()[:-8]) in {"damaged", "not-a-code"}          # cut off


def test_another_office_key_an_unknown_kiosk_and_a_forged_signature_are_refused():
    assert _reason(_code(office=OTHER_OFFICE)) == "other-office"
    assert _reason(_code(), keys={"kiosk-02": KIOSK.verify_key}) == "unknown-kiosk"
    forged = _code(key=SigningKey(bytes(32)))              # sealed to this office by somebody else's key
    assert _reason(forged) == "signature"
    assert _reason("HT-001") == "not-a-code" and _reason("KT1ABC") == "not-a-code"
    assert _reason(UNLINKED.visit_id) == "plain"                       # a ticket printed without the office key
    assert _reason(_code().replace("A", "Â", 1)) == "input-method"     # Telex typed over the scanner


def test_the_code_holds_no_readable_personal_data_without_the_key():
    code = _code()
    wire = wire_bytes(code)
    for value in (*FIELDS.values(), "Nguyen", "001095001234", "1995", LINKED.citizen_id, "ab" * 4):
        for form in (value.encode("utf-8"), value.upper().encode("utf-8")):
            assert form not in wire and form not in code.encode()
    assert bytes.fromhex("ab" * 16) not in wire


def test_an_unlinked_ticket_carries_no_personal_data():
    inner = open_code(_code(UNLINKED), office=OFFICE, kiosk_keys=KEYS)
    assert inner.citizen_id is None and dict(inner.fields) == {}
    with pytest.raises(ValueError):
        TicketFacts("00", "HT-1", "x", "x", datetime(2026, 1, 1), "k", None, {"name": "A"})
    sealer = TicketSealer(KIOSK, lambda: OFFICE.public(), ("name",))
    made = open_code(sealer.code(LINKED), office=OFFICE, kiosk_keys=KEYS)
    assert dict(made.fields) == {"name": "Nguyễn Văn An"}      # only the fields the office asked for
    assert TicketSealer(KIOSK, lambda: None).code(LINKED) is None  # no office key: no code


AN = "001095001234||Nguyễn Văn An|01021995|Nam|Hà Nội|15062021"     # invented, as in test_services.py


def print_tickets(tmp_path, *, office=OFFICE, width=384):
    """A card visit and a plain visit through the real services, on the simulated printer: its PNGs."""
    store = Store.open(tmp_path / "data", kiosk_id="kiosk-01")
    make_secret(tmp_path / "office-secret")
    book = CardBook.open(tmp_path / "data", secret=load_secret(tmp_path / "office-secret")[0])
    paper = SimulatedPrinter(tmp_path / "paper", width_dots=width)
    printer = TicketPrinter(paper, width_dots=width, font_path=FONT_REGULAR)
    services = KioskServices(store=store, index=FaceIndex(*store.templates()), office="UBND",
                             printer=PrintQueue(printer, inline=True), kiosk_id="kiosk-01",
                             categories=load_config(SIMULATION_CONFIG).categories,
                             wall=lambda: datetime(2026, 11, 27, 9, 30), book=book, policy=CardPolicy(),
                             sealer=TicketSealer(KIOSK, lambda: office.public() if office else None))
    try:
        linked = services.issue(VisitRequest("ho-tich", card=services.read_card(AN)))
        plain = services.issue(VisitRequest("dat-dai"))
    finally:
        book.close()
        store.close()
    return [(issued, tmp_path / "paper" / f"2026-11-27_{issued.ticket}.png") for issued in (linked, plain)]


def test_the_printed_ticket_qr_reads_back_as_the_sealed_code(tmp_path):
    (linked, linked_png), (plain, plain_png) = print_tickets(tmp_path)
    texts = [decode_qr(np.asarray(Image.open(png).convert("L"))) for png in (linked_png, plain_png)]
    assert all(len(t) == 1 and is_ticket_code(t[0]) for t in texts)
    card = open_code(texts[0][0], office=OFFICE, kiosk_keys=KEYS)
    assert (card.visit_id, card.ticket, card.citizen_id) == (linked.visit_id, linked.ticket, linked.citizen)
    assert dict(card.fields) == FIELDS and card.service_name == "Hộ tịch"
    none = open_code(texts[1][0], office=OFFICE, kiosk_keys=KEYS)
    assert none.visit_id == plain.visit_id and none.citizen_id is None and not none.fields


def test_without_the_office_key_the_ticket_keeps_its_plain_visit_id_qr(tmp_path):
    (linked, png), _ = print_tickets(tmp_path, office=None)
    assert decode_qr(np.asarray(Image.open(png).convert("L"))) == [linked.visit_id]


def test_the_ticket_benchmark_reads_every_code_back_from_paper():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ticket.py"
    out = subprocess.run([sys.executable, str(script), "--runs", "1"], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    lines = [line for line in out.splitlines() if line.startswith(("plain visit id", "sealed, "))]
    assert len(lines) == 3 and not any("NOT READ BACK" in line for line in lines)
    assert all("58mm: " in line and "80mm: " in line and "QR version" in line for line in lines)


def test_the_kiosk_seals_to_the_office_key_it_has_now(tmp_path):
    from kiosk.synckeys import load_kiosk_key, rotated_office_key_file, ticket_sealer, write_office_key

    key_file, office_file, data = tmp_path / "kiosk.key", tmp_path / "office.pub", tmp_path / "data"
    assert ticket_sealer(key_file, office_file, data, ("name",)) is None          # no kiosk key yet: plain QR
    key = load_kiosk_key(key_file, create=True)
    sealer = ticket_sealer(key_file, office_file, data, ("name",))
    assert sealer is not None and sealer.code(LINKED) is None                     # no office key yet: plain QR
    write_office_key(office_file, OFFICE.public())
    keys = {"kiosk-01": key.verify_key}
    assert dict(open_code(sealer.code(LINKED), office=OFFICE, kiosk_keys=keys).fields) == {"name": "Nguyễn Văn An"}
    write_office_key(rotated_office_key_file(data), OTHER_OFFICE.public())      # the office rotated its key
    assert open_code(sealer.code(UNLINKED), office=OTHER_OFFICE, kiosk_keys=keys) == UNLINKED
