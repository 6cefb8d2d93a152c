"""Withdrawal at the kiosk, service side (issue 10, item 3): the receipt's code, checked; what is kept; delete."""
from __future__ import annotations

from datetime import datetime

import numpy as np

from kiosk.identity import CardBook
from kiosk.index import FaceIndex
from kiosk.store import Store
from kiosk.withdrawal import Withdrawals, new_secret, parse, payload

NOW = datetime(2026, 12, 1, 10, 0)


def test_a_genuine_code_opens_what_is_kept_and_deletes_everything(tmp_path):
    data = tmp_path / "data"
    face = np.random.default_rng(3).random((3, 128), dtype=np.float32)
    secret, kept_hash = new_secret()
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW) as store:
        book = CardBook.open(data, secret=b"s" * 32)
        cid, _ = book.link("cd" * 32, {"name": "Phạm Văn Rút", "sex": "Nam"}, now=NOW)
        store.enrol(face, now=NOW, consent_text="yes", citizen_id=cid, withdrawal_hash=kept_hash)
        assert secret not in (data / "citizens").joinpath(f"{int(cid[:2], 16) % 64:02x}.jsonl").read_text()
        index = FaceIndex([cid] * 3, face)
        w = Withdrawals(store=store, book=book, index=index, wall=lambda: NOW)
        code = payload(cid, secret)
        assert w.verify(code) == cid
        assert w.verify(payload(cid, secret + "x")) is None          # a forged secret
        assert w.verify(payload("ab" * 16, secret)) is None          # somebody else's id
        assert w.verify("001095001234|...") is None and parse("KIOSK-W1:zz") is None
        lines = "\n".join(w.kept(cid).lines())
        assert "P**m V*n R*t" in lines and "Face templates: 3" in lines and "name, sex" in lines
        assert "Phạm" not in lines
        w.delete(cid)
        assert cid not in index and store.citizen(cid) is None and book.record(cid) is None
        assert w.verify(code) is None                                 # the code dies with the data
        assert [r["citizen"] for r in store.receipts()] == [cid]
        book.close()


class SlipRecorder:
    """Stands in for kiosk.printing.TicketPrinter behind the real PrintQueue: keeps each slip's lines."""

    fault = None

    def __init__(self):
        self.slips = []

    def print_ticket(self, content):
        return True

    def print_slip(self, title, lines, name, qr=None):
        self.slips.append(list(lines))
        return True


def test_the_consent_receipt_carries_the_code_and_the_store_only_its_hash(tmp_path):
    from kiosk.config import SIMULATION_CONFIG, load_config
    from kiosk.printing import PrintQueue
    from kiosk.services import KioskServices
    from kiosk.visit import VisitRequest

    with Store.open(tmp_path / "data", kiosk_id="k1", clock=lambda: NOW) as store:
        index = FaceIndex(*store.templates())
        printer = SlipRecorder()
        services = KioskServices(store=store, index=index, printer=PrintQueue(printer, inline=True), office="UBND",
                                 kiosk_id="k1", categories=load_config(SIMULATION_CONFIG).categories,
                                 wall=lambda: NOW)
        face = np.random.default_rng(5).random((3, 128), dtype=np.float32)
        citizen = services.issue(VisitRequest("ho-tich", encodings=face, consent=True)).citizen
        [slip] = printer.slips
        [code] = [line.split(": ", 1)[1] for line in slip if line.startswith("Mã rút lại")]
        w = Withdrawals(store=store, book=None, index=index, wall=lambda: NOW)
        assert w.verify(code) == citizen
        secret = parse(code)[1]
        assert all(secret not in p.read_text(errors="replace") for p in (tmp_path / "data").rglob("*.jsonl"))
        services.issue(VisitRequest("ho-tich"))                      # the next visit carries no code
        assert len(printer.slips) == 1


def test_the_consent_receipt_png_carries_the_code_as_a_qr_that_zxing_reads_back(tmp_path):
    """The real rendering on the simulated printer: the code on paper is the one the kiosk accepts."""
    import pytest
    from hardware.printer import SimulatedPrinter
    from PIL import Image

    from kiosk.config import SIMULATION_CONFIG, load_config
    from kiosk.paths import FONT_REGULAR
    from kiosk.printing import PrintQueue, TicketPrinter
    from kiosk.services import KioskServices
    from kiosk.visit import VisitRequest

    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp (requirements-dev.txt) decodes the QR code")
    out = tmp_path / "out"
    with Store.open(tmp_path / "data", kiosk_id="k1", clock=lambda: NOW) as store:
        index = FaceIndex(*store.templates())
        printer = TicketPrinter(SimulatedPrinter(out, width_dots=576), width_dots=576, font_path=FONT_REGULAR)
        services = KioskServices(store=store, index=index, printer=PrintQueue(printer, inline=True), office="UBND",
                                 kiosk_id="k1", categories=load_config(SIMULATION_CONFIG).categories,
                                 wall=lambda: NOW)
        face = np.random.default_rng(6).random((3, 128), dtype=np.float32)
        citizen = services.issue(VisitRequest("ho-tich", encodings=face, consent=True)).citizen
        [png] = out.glob(f"*consent-{citizen}*.png")
        with Image.open(png) as image:
            [code] = [r.text for r in zxingcpp.read_barcodes(image.convert("L"))]
        assert services.check_code(code).citizen == citizen
        assert services.check_code(code[:-2] + "xx").citizen is None          # a forged secret
        assert services.check_code("https://pay.example/qr") is None          # not a code at all
        services.print_kept(citizen)
        services.delete_citizen(citizen)
        assert citizen not in index and store.citizen(citizen) is None
        assert services.check_code(code).citizen is None                       # used up with its citizen
        names = sorted(p.name for p in out.glob("*.png"))
        assert any(f"kept-{citizen}" in n for n in names) and any(f"deleted-{citizen}" in n for n in names)


def test_a_code_the_store_cannot_check_is_refused_not_a_crash(tmp_path):
    from kiosk.config import SIMULATION_CONFIG, load_config
    from kiosk.printing import PrintQueue
    from kiosk.services import KioskServices

    class BrokenStore:
        data_dir = None

        def withdrawal_hash(self, citizen_id):
            raise OSError("disk gone")

    services = KioskServices(store=BrokenStore(), index=None, printer=PrintQueue(SlipRecorder(), inline=True),
                             office="UBND", kiosk_id="k1", categories=load_config(SIMULATION_CONFIG).categories,
                             wall=lambda: NOW)
    assert services.check_code(payload("ab" * 16, "secret")).citizen is None
    assert services.check_code("not a code") is None
