"""The real services behind the state machine: store first, then paper; consent receipt after the ticket."""
from datetime import datetime

import numpy as np

from kiosk.config import SIMULATION_CONFIG, load_config
from kiosk.index import FaceIndex
from kiosk.notices import staff
from kiosk.printing import PrintQueue
from kiosk.consent import SAMPLE
from kiosk.identity import DISAGREEMENTS, IDENTITY_FILE, CardBook, CardPolicy, load_secret, make_secret
from kiosk.services import KioskServices
from kiosk.visit import Known, VisitRequest
from kiosk.store import Store


class RecordingPrinter:
    """Stands in for kiosk.printing.TicketPrinter (behind the real PrintQueue); records what went to paper."""

    def __init__(self):
        self.printed = []
        self.fault = None
        self.working = True

    def print_ticket(self, content):
        self.printed.append(("ticket", content.ticket, content.visit_id))
        self.fault = None if self.working else "no paper"
        return self.working

    def print_slip(self, title, lines, name, qr=None):
        self.printed.append(("slip", name, lines[0]))
        return self.working


def _services(tmp_path, faults=(), secret=True, **policy):
    store = Store.open(tmp_path / "data", kiosk_id="sim-01")
    index = FaceIndex(*store.templates())
    printer = RecordingPrinter()
    now = datetime(2026, 11, 27, 9, 30)
    if secret:
        make_secret(tmp_path / "office-secret")
    book = CardBook.open(tmp_path / "data", secret=load_secret(tmp_path / "office-secret")[0])
    services = KioskServices(store=store, index=index, printer=PrintQueue(printer, inline=True), office="UBND",
                             kiosk_id="sim-01", categories=load_config(SIMULATION_CONFIG).categories,
                             wall=lambda: now, faults=faults, book=book, policy=CardPolicy(**policy))
    store.book = book          # closed with the store by the tests below
    return services, store, index, printer


def test_enrol_then_issue_prints_the_ticket_before_the_consent_receipt(tmp_path):
    services, store, index, printer = _services(tmp_path)
    try:
        encodings = np.random.default_rng(3).random((3, 128), dtype=np.float32)
        issued = services.issue(VisitRequest("ho-tich", encodings=encodings, consent=True))
        citizen = issued.citizen
        assert issued.enrolled and citizen in index and store.citizen(citizen) is not None
        assert [p[0] for p in printer.printed] == ["ticket", "slip"]
        assert printer.printed[1] == ("slip", f"consent-{citizen}", f"Mã công dân / Citizen id: {citizen}")
        [visit] = store.visits()
        assert visit.ticket == issued.ticket == "HT-001" and visit.citizen_id == citizen and visit.printed
        assert [c["text"] for c in store.consents()] == [SAMPLE.text]     # the words the citizen read
        services.issue(VisitRequest("ho-tich", citizen_id=citizen))   # the receipt went with its own visit only
        assert [p[0] for p in printer.printed] == ["ticket", "slip", "ticket"]
    finally:
        store.book.close()
        store.close()


def test_failed_print_is_stored_as_not_printed_and_shown_to_staff(tmp_path):
    services, store, _, printer = _services(tmp_path, faults=[staff("Camera lỗi", "Camera: unplugged")])
    try:
        printer.working = False
        issued = services.issue(VisitRequest("dat-dai"))
        assert not issued.printed and [v.printed for v in store.visits()] == [False]
        # Vietnamese first, for the office's staff; English below with the detail (issue 15)
        assert services.notice() == ("Máy in lỗi; vui lòng kiểm tra máy in · Camera lỗi\n"
                                     "Printer fault: no paper · Camera: unplugged")
        printer.working = True
        services.issue(VisitRequest("dat-dai"))
        assert services.notice() == "Camera lỗi\nCamera: unplugged"
    finally:
        store.book.close()
        store.close()


def test_greeting_shows_only_a_masked_name(tmp_path):
    services, store, _, _ = _services(tmp_path)
    try:
        citizen = services.issue(VisitRequest("ho-tich", encodings=np.ones((1, 128), np.float32), consent=True)).citizen
        assert services.who(citizen) == Known(None, None)  # enrolled by face alone: no name on record
    finally:
        store.book.close()
        store.close()


# -- cards: one record per person, the face as confirmation ----------------------------------------------------
AN = "001095001234||Nguyễn Văn An|01021995|Nam|Hà Nội|15062021"          # invented: 001 Hà Nội, male, 1995
CUC = "079198007777||Lê Thị Cúc|12121998|Nữ|TP HCM|20042021"              # invented: 079 TP HCM, female, 1998
BINH = "079310004321||Trần Thị Bình|05052010|Nữ|TP HCM|01012024"          # invented: female, born 2010 (a minor)
RNG = np.random.default_rng(11)
FACE = RNG.random(128, dtype=np.float32)


def _near(k, spread=0.05):
    """k encodings of the same face: close to FACE (well within the 0.54 threshold)."""
    return (FACE + spread * RNG.standard_normal((k, 128)) / np.sqrt(128)).astype(np.float32)


def _card_visit(services, payload, **kw):
    card = services.read_card(payload)
    assert card is not None and card.ok
    return services.issue(VisitRequest("ho-tich", card=card, **kw))


def test_the_same_card_is_the_same_citizen_and_its_number_is_never_stored(tmp_path):
    services, store, index, printer = _services(tmp_path)
    try:
        first = _card_visit(services, AN)
        again = _card_visit(services, AN)
        other = _card_visit(services, CUC)
        assert first.citizen and first.citizen == again.citizen != other.citizen
        assert first.identified_by == "card" and not first.enrolled and index.citizen_count == 0
        assert services.who(first.citizen) == Known("N****n V*n A*", "ông")
        assert services.who(other.citizen).honorific == "bà"
        assert [v.citizen_id for v in store.visits()] == [first.citizen, first.citizen, other.citizen]
        read = services.read_card(AN)
        assert read.citizen_id == first.citizen and not read.has_templates and not read.minor
        stored = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
        assert b"001095001234" not in stored and b"079198007777" not in stored
        assert "Nguyễn Văn An".encode() in (tmp_path / "data" / IDENTITY_FILE).read_bytes()   # keep = name, ...
        assert "Hà Nội".encode() not in (tmp_path / "data" / IDENTITY_FILE).read_bytes()       # no address
    finally:
        store.book.close()
        store.close()


def test_the_office_secret_makes_the_key(tmp_path):
    services, store, _, _ = _services(tmp_path)
    try:
        other = CardBook(tmp_path / "other.jsonl", secret=b"another office's secret!")
        assert services.read_card(AN).key != other.key("001095001234")
        assert services.read_card(AN).key == CardBook(tmp_path / "x.jsonl", secret=load_secret(
            tmp_path / "office-secret")[0]).key("001095001234")         # the kiosks of one office agree
    finally:
        store.book.close()
        store.close()


def test_not_a_card_invalid_card_and_no_secret(tmp_path):
    services, store, _, _ = _services(tmp_path)
    try:
        assert services.read_card("https://example.invalid/pay?id=1") is None
        assert services.read_card(AN.replace("01021995", "31021995")).ok is False     # no 31 February
    finally:
        store.book.close()
        store.close()
    services, store, _, _ = _services(tmp_path / "nosecret", secret=False)
    try:
        assert services.read_card(AN) is None                                        # cards not used
        assert services.issue(VisitRequest("ho-tich")).ticket == "HT-001"            # tickets go on
    finally:
        store.book.close()
        store.close()


def test_card_with_consent_keeps_the_face_then_the_face_refreshes_it(tmp_path):
    services, store, index, printer = _services(tmp_path, max_templates=5)
    try:
        first = _card_visit(services, AN, encodings=_near(3), consent=True)
        citizen = first.citizen
        assert first.enrolled and len(index.templates_of(citizen)) == 3
        assert printer.printed[-1] == ("slip", f"consent-{citizen}", f"Mã công dân / Citizen id: {citizen}")
        assert services.read_card(AN).has_templates
        newest = _near(3)
        second = _card_visit(services, AN, encodings=newest, face_match=citizen)
        assert second.citizen == citizen and not second.enrolled
        kept = index.templates_of(citizen)
        assert len(kept) == 5 and np.allclose(kept[-3:], newest)        # the oldest one went
        stranger = RNG.random((3, 128), dtype=np.float32) + 1.0
        _card_visit(services, AN, encodings=stranger)                    # the face does not confirm the card
        assert np.allclose(index.templates_of(citizen), kept)
        ids, matrix = Store.templates(store)                             # and the store agrees with the index
        assert ids.count(citizen) == 5 and np.allclose(matrix[[i == citizen for i in ids]], kept)
    finally:
        store.book.close()
        store.close()


def test_face_of_one_record_with_the_card_of_another_the_card_wins(tmp_path):
    services, store, index, printer = _services(tmp_path)
    try:
        an = _card_visit(services, AN, encodings=_near(3), consent=True).citizen
        cuc = _card_visit(services, CUC, encodings=_near(2), face_match=an, consent=True)
        assert cuc.citizen != an and not cuc.enrolled and cuc.citizen not in index
        assert len(index.templates_of(an)) == 3
        assert store.book.count(DISAGREEMENTS) == 1
    finally:
        store.book.close()
        store.close()


def test_a_minor_never_gets_face_templates(tmp_path):
    services, store, index, _ = _services(tmp_path)
    try:
        assert services.read_card(BINH).minor
        issued = _card_visit(services, BINH, encodings=_near(3), consent=True)
        assert issued.citizen and not issued.enrolled and index.citizen_count == 0
        assert store.citizen(issued.citizen) is None                    # no face record, no consent
    finally:
        store.book.close()
        store.close()


def test_a_failed_ticket_after_an_enrolment_never_hands_its_receipt_to_the_next_citizen(tmp_path, monkeypatch):
    """Item 11: the receipt travels with its visit; before, it waited in the services for the next ticket."""
    services, store, index, printer = _services(tmp_path)
    try:
        real = store.issue_ticket
        calls = []

        def failing_once(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise OSError("disk full")
            return real(*args, **kwargs)

        monkeypatch.setattr(store, "issue_ticket", failing_once)
        try:
            services.issue(VisitRequest("ho-tich", encodings=_near(3), consent=True))
        except OSError:
            pass
        nxt = services.issue(VisitRequest("dat-dai"))                    # the next citizen, unknown
        assert nxt.citizen is None and not nxt.enrolled
        assert printer.printed == [("ticket", nxt.ticket, nxt.visit_id)]   # no one else's consent receipt
    finally:
        store.book.close()
        store.close()
