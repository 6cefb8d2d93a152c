"""The real services behind the state machine: store first, then paper; consent receipt after the ticket."""
from datetime import datetime

import numpy as np

from kiosk.config import SIMULATION_CONFIG, load_config
from kiosk.index import FaceIndex
from kiosk.printing import PrintQueue
from kiosk.consent import CONSENT_TEXT
from kiosk.services import KioskServices
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

    def print_slip(self, title, lines, name):
        self.printed.append(("slip", name, lines[0]))
        return self.working


def _services(tmp_path, faults=()):
    store = Store.open(tmp_path / "data", kiosk_id="sim-01")
    index = FaceIndex()
    printer = RecordingPrinter()
    now = datetime(2026, 11, 27, 9, 30)
    services = KioskServices(store=store, index=index, printer=PrintQueue(printer, inline=True), office="UBND",
                             kiosk_id="sim-01", categories=load_config(SIMULATION_CONFIG).categories,
                             wall=lambda: now, faults=faults)
    return services, store, index, printer


def test_enrol_then_issue_prints_the_ticket_before_the_consent_receipt(tmp_path):
    services, store, index, printer = _services(tmp_path)
    try:
        encodings = np.random.default_rng(3).random((3, 128), dtype=np.float32)
        citizen = services.enrol(encodings)
        assert printer.printed == []                       # nothing on paper before the ticket
        assert citizen in index and store.citizen(citizen) is not None
        issued = services.issue("ho-tich", citizen)
        assert [p[0] for p in printer.printed] == ["ticket", "slip"]
        assert printer.printed[1] == ("slip", f"consent-{citizen}", f"Mã công dân / Citizen id: {citizen}")
        [visit] = store.visits()
        assert visit.ticket == issued.ticket == "HT-001" and visit.citizen_id == citizen and visit.printed
        assert [c["text"] for c in store.consents()] == [CONSENT_TEXT]     # the words the citizen read
        services.issue("ho-tich", citizen)                 # the receipt is printed once, with its visit
        assert [p[0] for p in printer.printed] == ["ticket", "slip", "ticket"]
    finally:
        store.close()


def test_failed_print_is_stored_as_not_printed_and_shown_to_staff(tmp_path):
    services, store, _, printer = _services(tmp_path, faults=["Camera lỗi / camera: unplugged"])
    try:
        printer.working = False
        issued = services.issue("dat-dai", None)
        assert not issued.printed and [v.printed for v in store.visits()] == [False]
        assert services.notice() == "Máy in lỗi / printer fault: no paper · Camera lỗi / camera: unplugged"
        printer.working = True
        services.issue("dat-dai", None)
        assert services.notice() == "Camera lỗi / camera: unplugged"
    finally:
        store.close()


def test_greeting_shows_only_a_masked_name(tmp_path):
    services, store, _, _ = _services(tmp_path)
    try:
        citizen = services.enrol(np.ones((1, 128), np.float32))
        assert services.greeting_name(citizen) is None     # enrolled at the kiosk: no name on record
    finally:
        store.close()
