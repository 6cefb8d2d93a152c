"""The app's printing service: render a slip, send it, and never let a printer fault stop the queue.

The visit is stored before printing; here a fault only becomes ``False`` + a journal line + `fault` (the text
behind the screen's "please tell the staff" notice). The next ticket simply tries again (the printer reopens
its connection), and the journal says when the printer is back.

    printer = TicketPrinter(EscposPrinter("usb", width_dots=576, usb_vendor=0x0416, usb_product=0x5011),
                            width_dots=576, font_path=paths.FONT_REGULAR)
    printed = printer.print_ticket(content)        # store.mark_printed(visit.id, printed)
"""
from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from hardware.printer import PrinterError
from kiosk.receipt import render_slip, render_ticket
from kiosk.seams import Printer, SlipPrinter
from kiosk.tickets import TicketContent, format_ticket


class TicketPrinter:
    """Renders tickets and slips at the paper's width and prints them on any printer with ``print_image``."""

    def __init__(self, printer: Printer, *, width_dots: int, font_path: Path,
                 log: logging.Logger = logging.getLogger("kiosk.printer")) -> None:
        self.printer = printer
        self.width_dots = width_dots
        self.font_path = Path(font_path)
        self.log = log
        #: None while printing works; else what went wrong last (for the screen's staff notice).
        self.fault: str | None = None

    def print_ticket(self, content: TicketContent) -> bool:
        """True if the ticket came out; False (logged, `fault` set) if not. Never raises."""
        return self._print(lambda: render_ticket(content, width_dots=self.width_dots, font_path=self.font_path),
                           name=content.file_name, what=f"ticket {content.ticket}")

    def print_slip(self, title: str, lines: Sequence[str], name: str, qr: str | None = None) -> bool:
        """A consent or deletion receipt (``qr``: a code drawn under the lines); same contract as `print_ticket`."""
        return self._print(lambda: render_slip(title, lines, width_dots=self.width_dots, font_path=self.font_path,
                                               qr=qr),
                           name=name, what=f"slip {name}")

    def warm_up(self) -> None:
        """Load fonts, qrcode and python-escpos (~0.7 s here, seconds on a Pi) at start-up, not on the first
        citizen's ticket. Renders a throwaway ticket; prints nothing."""
        import escpos.printer  # noqa: F401  (its printer capabilities database is the slow part)

        render_ticket(printer_test_content(office="", kiosk_id="", now=datetime(2000, 1, 1)),
                      width_dots=self.width_dots, font_path=self.font_path)

    def _print(self, render: Callable[[], Image.Image], *, name: str, what: str) -> bool:
        try:
            self.printer.print_image(render(), name=name)
        except PrinterError as exc:
            self.fault = str(exc)
            self.log.error("printer fault, %s not printed: %s", what, exc)
            return False
        except Exception as exc:  # a bug in rendering or a driver must not stop the queue either
            self.fault = f"unexpected printer error: {type(exc).__name__}: {exc}"
            self.log.exception("printer fault, %s not printed (unexpected error)", what)
            return False
        if self.fault is not None:
            self.log.info("printer back: %s printed (last fault: %s)", what, self.fault)
            self.fault = None
        return True


class PrintQueue:
    """Prints on a thread of its own, so a slow or stuck printer never stalls the loop (nor its watchdog).

    Jobs go out in order (a consent receipt after its ticket). The outcome of each ticket is collected with
    :meth:`finished` on the loop's thread (by the services, which record it in the store the loop owns).
    ``inline=True`` prints at once in the caller's thread: replay and tests stay deterministic.
    """

    def __init__(self, ticket_printer: SlipPrinter, *, inline: bool = False) -> None:
        self._printer = ticket_printer
        self._inline = inline
        self._jobs: queue.Queue[tuple[str | None, Callable[[], bool]] | None] = queue.Queue()
        self._finished: queue.Queue[tuple[str, bool]] = queue.Queue()
        self._thread: threading.Thread | None = None
        if not inline:
            self._thread = threading.Thread(target=self._run, name="printer", daemon=True)
            self._thread.start()

    @property
    def fault(self) -> str | None:
        return self._printer.fault

    def ticket(self, key: str, content: TicketContent) -> None:
        """Print ``content``; its outcome comes back from :meth:`finished` as ``(key, printed)``."""
        self._submit(key, lambda: self._printer.print_ticket(content))

    def slip(self, title: str, lines: Sequence[str], name: str, qr: str | None = None) -> None:
        self._submit(None, lambda: self._printer.print_slip(title, lines, name, qr=qr))

    def finished(self) -> list[tuple[str, bool]]:
        """Tickets printed (True) or failed (False) since the last call."""
        done = []
        while True:
            try:
                done.append(self._finished.get_nowait())
            except queue.Empty:
                return done

    def close(self, timeout: float = 10.0) -> None:
        """Let queued jobs finish (up to ``timeout``), then stop the thread."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout)

    def _submit(self, key: str | None, job: Callable[[], bool]) -> None:
        if self._inline:
            self._record(key, job())
        else:
            self._jobs.put((key, job))

    def _record(self, key: str | None, printed: bool) -> None:
        if key is not None:
            self._finished.put((key, printed))

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            key, job = item
            self._record(key, job())        # TicketPrinter never raises: a fault is False + a log line


def printer_test_content(*, office: str, kiosk_id: str, now: datetime) -> TicketContent:
    """The technician's test ticket: every Vietnamese letter shape that a wrong code page would garble."""
    return TicketContent(
        office=office,
        ticket=format_ticket("TEST", 0),
        category_vi="Phiếu in thử — Máy in",
        category_en="Printer test ticket",
        issued_at=now,
        kiosk_id=kiosk_id,
        visit_id=f"print-test-{now:%Y%m%d-%H%M%S}",
        guidance="Kiểm tra: ă â đ ê ô ơ ư, dấu à á ả ã ạ, Ữ Ặ Ỗ rõ ràng; mã QR quét được.",
    )


def print_test(printer: Printer, *, width_dots: int, font_path: Path, office: str, kiosk_id: str,
               now: datetime | None = None, log: logging.Logger = logging.getLogger("kiosk.printer")) -> bool:
    """`kiosk print-test`: log what the printer says about itself, then print the test ticket."""
    log.info("printer status: %s", printer.status().detail)
    content = printer_test_content(office=office, kiosk_id=kiosk_id, now=now or datetime.now().replace(microsecond=0))
    ok = TicketPrinter(printer, width_dots=width_dots, font_path=font_path, log=log).print_ticket(content)
    if ok:
        log.info("test ticket printed on %s", printer.device_name)
    return ok
