"""kiosk.printing: the app's printing service turns every printer fault into False + a journal line + `fault`,
and says when the printer is back. Printers are real `EscposPrinter`s over python-escpos ``Dummy`` subclasses
and the `SimulatedPrinter` writing files."""
import errno
import logging
from datetime import datetime

import pytest
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Dummy
from PIL import Image

from hardware.printer import EscposPrinter, SimulatedPrinter
from kiosk.paths import FONT_REGULAR
from kiosk.printing import TicketPrinter, print_test
from kiosk.tickets import TicketContent

CONTENT = TicketContent(office="UBND Quận Ba Đình — Bộ phận Một cửa", ticket="KD-027",
                        category_vi="Đăng ký kinh doanh", category_en="Business registration",
                        issued_at=datetime(2026, 11, 27, 14, 5), kiosk_id="kiosk-01",
                        visit_id="3f9a6c0e5b7d41a28c1e9f0b6d2a7c45")


class Switchable:
    """Factory for EscposPrinter: the printer is 'broken' (one of the fault kinds) until `back()`."""

    def __init__(self, broken):
        self.broken = broken
        self.working = True
        self.made = []

    def back(self):
        self.working = True

    def __call__(self):
        conn = Dummy() if self.working else self.broken()
        self.made.append(conn)
        return conn


class Unplugged(Dummy):
    def open(self):
        raise DeviceNotFoundError("Could not open the specified file /dev/usb/lp0:\n[Errno 2] No such file")


class NoPaper(Dummy):
    def _read(self):
        return b"\x72" if self._output_list[-1] == b"\x10\x04\x04" else b"\x12"


class CablePulledMidWrite(Dummy):
    def _raw(self, msg):
        if msg.startswith(b"\x1dv0"):
            raise OSError(errno.EIO, "Input/output error")
        super()._raw(msg)


def _decode_qr(image):
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp (requirements-dev.txt) decodes the QR code")
    return [r.text for r in zxingcpp.read_barcodes(image.convert("L"))]


def test_ticket_on_the_simulated_printer_is_a_png_whose_qr_gives_the_visit(tmp_path):
    service = TicketPrinter(SimulatedPrinter(tmp_path, width_dots=576), width_dots=576, font_path=FONT_REGULAR)
    assert service.print_ticket(CONTENT) is True
    assert service.fault is None
    with Image.open(tmp_path / "2026-11-27_KD-027.png") as png:
        assert png.width == 576
        assert _decode_qr(png) == [CONTENT.visit_id]
    assert (tmp_path / "2026-11-27_KD-027.bin").read_bytes().startswith(b"\x1b@\x1dv0")


@pytest.mark.parametrize("broken, words", [
    (Unplugged, "cannot open printer device /dev/usb/lp0"),
    (NoPaper, "out of paper"),
    (CablePulledMidWrite, "Input/output error"),
], ids=["raises-on-open", "no-paper", "fails-mid-write"])
def test_a_fault_is_logged_shown_and_cleared_when_the_printer_is_back(broken, words, caplog):
    factory = Switchable(broken)
    factory.working = False
    printer = EscposPrinter("file", width_dots=384, device="/dev/usb/lp0", factory=factory)
    service = TicketPrinter(printer, width_dots=384, font_path=FONT_REGULAR, log=logging.getLogger("kiosk.printer"))

    with caplog.at_level(logging.INFO, logger="kiosk.printer"):
        assert service.print_ticket(CONTENT) is False
        assert service.fault is not None and words in service.fault and "/dev/usb/lp0" in service.fault
        assert service.print_ticket(CONTENT) is False          # still broken: tried again, still reported
        factory.back()
        assert service.print_ticket(CONTENT) is True           # the next ticket prints
        assert service.print_ticket(CONTENT) is True

    assert service.fault is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    backs = [r for r in caplog.records if "printer back" in r.getMessage()]
    assert len(errors) == 2 and all("KD-027 not printed" in r.getMessage() for r in errors)
    assert len(backs) == 1 and words in backs[0].getMessage()
    assert factory.made[-1].output.startswith(b"\x1b@") and factory.made[-1].output.endswith(b"\x1dV\x01")


def test_an_unexpected_error_does_not_escape(caplog):
    class Exploding:
        def print_image(self, image, *, name):
            raise RuntimeError("driver bug")

    service = TicketPrinter(Exploding(), width_dots=384, font_path=FONT_REGULAR)
    with caplog.at_level(logging.ERROR, logger="kiosk.printer"):
        assert service.print_ticket(CONTENT) is False
    assert "RuntimeError: driver bug" in service.fault
    assert "Traceback" in caplog.text or caplog.records[0].exc_info is not None


def test_slip_prints_under_its_name(tmp_path):
    service = TicketPrinter(SimulatedPrinter(tmp_path, width_dots=384), width_dots=384, font_path=FONT_REGULAR)
    assert service.print_slip("Biên nhận xóa dữ liệu", ["Mã công dân: c-0001", "Đã xóa: 27/11/2026 14:05"],
                              "deletion-c-0001") is True
    with Image.open(tmp_path / "deletion-c-0001.png") as png:
        assert png.width == 384 and png.height > 100


def test_print_test_prints_a_readable_test_ticket(tmp_path, caplog):
    printer = SimulatedPrinter(tmp_path, width_dots=384)
    with caplog.at_level(logging.INFO, logger="kiosk.printer"):
        ok = print_test(printer, width_dots=384, font_path=FONT_REGULAR, office="UBND Phường Điện Biên",
                        kiosk_id="kiosk-07", now=datetime(2026, 11, 27, 9, 30, 5))
    assert ok is True
    with Image.open(tmp_path / "2026-11-27_TEST-000.png") as png:
        assert _decode_qr(png) == ["print-test-20261127-093005"]
    assert "always ready" in caplog.text and "test ticket printed" in caplog.text


def test_print_test_reports_a_missing_printer(tmp_path, caplog):
    printer = EscposPrinter("file", width_dots=384, device=str(tmp_path / "lp0"))
    with caplog.at_level(logging.INFO, logger="kiosk.printer"):
        assert print_test(printer, width_dots=384, font_path=FONT_REGULAR, office="x", kiosk_id="k") is False
    assert f"cannot open printer device {tmp_path / 'lp0'}" in caplog.text


def test_warm_up_prints_nothing_and_needs_the_font(tmp_path):
    service = TicketPrinter(SimulatedPrinter(tmp_path / "out", width_dots=384), width_dots=384,
                            font_path=FONT_REGULAR)
    service.warm_up()
    assert not (tmp_path / "out").exists()
    broken = TicketPrinter(SimulatedPrinter(tmp_path / "out", width_dots=384), width_dots=384,
                           font_path=tmp_path / "missing.ttf")
    with pytest.raises(FileNotFoundError, match="missing.ttf"):
        broken.warm_up()                       # a missing font shows at start-up, not at the first ticket
