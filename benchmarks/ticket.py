"""How long one ticket takes to render (Pillow) and encode (ESC/POS raster bytes); target < 50 ms.

Baseline, measured in the same run: python-escpos sending the same content as text (its code-page
"magic encode"), the way that prints "?" for Vietnamese on cheap printers; the ratio is what drawing the
ticket as pixels costs over that. Also prints the size of the byte stream and how long it takes to send
over a serial line, the slowest connection a kiosk may use.

The sealed ticket code (kiosk/ticketcode.py, issue 18) for an unlinked and a linked ticket: its size in bytes and
characters, the QR version it needs and the printer dots per QR module on 58 and 80 mm paper (at least 4 dots,
0.5 mm at 203 dpi, for a cheap scanner on thermal paper); baseline: the plain visit-id QR of a ticket printed
without the office key, measured in the same run. The codes are decoded back from the printed paper's PNG.

    .venv/bin/python benchmarks/ticket.py                    # numbers
    .venv/bin/python benchmarks/ticket.py --write-previews   # also docs/images/ticket-58mm.png, -80mm.png
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.benchkit import load  # noqa: E402
from hardware.printer import EscposPrinter, SimulatedPrinter  # noqa: E402
from kiosk.paths import FONT_REGULAR  # noqa: E402
from kiosk.receipt import qr_geometry, render_ticket  # noqa: E402
from kiosk.tickets import SAMPLE_TICKET, format_issued  # noqa: E402

TARGET_MS = 50.0
PAPERS = {"58mm": 384, "80mm": 576}
CONTENT = SAMPLE_TICKET


def render_and_encode(width: int) -> bytes:
    """The kiosk's own path: render, then EscposPrinter.print_image into python-escpos's Dummy."""
    from escpos.printer import Dummy

    made = []
    printer = EscposPrinter("file", width_dots=width, device="/dev/usb/lp0",
                            factory=lambda: made.append(Dummy()) or made[-1])
    printer.print_image(render_ticket(CONTENT, width_dots=width, font_path=FONT_REGULAR), name="bench")
    return made[0].output


def as_text() -> bytes:
    from escpos.printer import Dummy

    dummy = Dummy()
    dummy.hw("INIT")
    for line in (CONTENT.office, CONTENT.ticket, CONTENT.category_vi, CONTENT.category_en,
                 format_issued(CONTENT.issued_at), f"Kiosk: {CONTENT.kiosk_id}", CONTENT.guidance):
        dummy.textln(line)
    dummy.cut(mode="PART")
    return dummy.output


def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def sealed_codes(runs: int) -> None:
    """Sizes and QR geometry of the sealed code, against the plain visit id; read back from the printed PNG."""
    from dataclasses import replace
    from datetime import datetime

    import numpy as np
    from nacl.signing import SigningKey
    from PIL import Image

    from kiosk.bundle import OfficeKeys
    from kiosk.cardread import decode_qr
    from kiosk.ticketcode import TicketFacts, open_code, seal, wire_bytes

    kiosk, office = SigningKey.generate(), OfficeKeys.generate()
    unlinked = TicketFacts("3f9a6c0e5b7d41a2", CONTENT.ticket, "kinh-doanh", CONTENT.category_vi,
                           datetime(2026, 11, 27, 14, 5, 9), CONTENT.kiosk_id)
    # an invented citizen (card number of the Hà Nội province code, never a real person's); a long name
    linked = replace(unlinked, citizen_id="ab" * 16, fields={"name": "Nguyễn Thị Phương Thảo",
                                                              "card_number": "001195001234",
                                                              "birth_date": "1995-02-01"})
    cases = [("plain visit id (baseline)", unlinked.visit_id, unlinked.visit_id)]
    seal_ms = statistics.median(timed(lambda: seal(linked, signing_key=kiosk, office=office.public()), runs))
    cpu = time.process_time()
    for _ in range(runs):
        seal(linked, signing_key=kiosk, office=office.public())
    seal_cpu = (time.process_time() - cpu) / runs * 1000
    for name, facts in (("sealed, unlinked", unlinked), ("sealed, linked", linked)):
        code = seal(facts, signing_key=kiosk, office=office.public())
        cases.append((name, code, facts))
    for name, text, facts in cases:
        size = len(wire_bytes(text)) if text.startswith("KT1") else len(text)
        papers = []
        for paper, width in PAPERS.items():
            version, modules, dots = qr_geometry(text, width)
            image = render_ticket(replace(CONTENT, code=text), width_dots=width, font_path=FONT_REGULAR)
            with tempfile.TemporaryDirectory() as tmp:
                SimulatedPrinter(Path(tmp), width_dots=width).print_image(image, name="t")
                read = decode_qr(np.asarray(Image.open(Path(tmp) / "t.png").convert("L")))
            back = read == [text] and (not isinstance(facts, TicketFacts) or open_code(
                read[0], office=office, kiosk_keys={CONTENT.kiosk_id: kiosk.verify_key}) == facts)
            papers.append(f"{paper}: {dots} dots/module, {modules * dots} dots wide "
                          f"({modules * dots / width:.0%} of the paper){'' if back else ', NOT READ BACK'}")
        print(f"{name}: {size} bytes, {len(text)} characters, QR version {version} ({modules} modules with the "
              f"quiet zone); " + "; ".join(papers))
    base = len(cases[0][1])
    print(f"sealed code over the plain visit id: {len(cases[1][1]) / base:.1f}x (unlinked), "
          f"{len(cases[2][1]) / base:.1f}x (linked) the characters; sealing takes {seal_ms:.2f} ms wall (median of {runs}), "
          f"{seal_cpu:.2f} ms CPU (mean) ({load()})")


def write_previews() -> None:
    out = REPO / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for paper, width in PAPERS.items():
            image = render_ticket(CONTENT, width_dots=width, font_path=FONT_REGULAR)
            SimulatedPrinter(Path(tmp), width_dots=width).print_image(image, name=paper)
            shutil.copyfile(Path(tmp) / f"{paper}.png", out / f"ticket-{paper}.png")
            print(f"wrote {out / f'ticket-{paper}.png'} (decoded from the ESC/POS bytes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--write-previews", action="store_true", help="write docs/images/ticket-{58,80}mm.png")
    args = parser.parse_args()

    start = time.perf_counter()
    render_and_encode(PAPERS["58mm"])
    cold = (time.perf_counter() - start) * 1000
    print(f"first ticket (fonts + qrcode loaded): {cold:.1f} ms")

    text_ms = statistics.median(timed(as_text, args.runs))
    print(f"baseline, same content as python-escpos text: {text_ms:.2f} ms, {len(as_text())} bytes "
          f"(Vietnamese comes out as '?')")
    worst = 0.0
    for paper, width in PAPERS.items():
        render_ms = statistics.median(timed(
            lambda: render_ticket(CONTENT, width_dots=width, font_path=FONT_REGULAR), args.runs))
        times = sorted(timed(lambda: render_and_encode(width), args.runs))
        median, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
        worst = max(worst, p95)
        size = len(render_and_encode(width))
        serial = ", ".join(f"{size * 10 / baud:.1f} s at {baud}" for baud in (9600, 19200, 115200))
        print(f"{paper} ({width} dots): render {render_ms:.1f} ms, render+encode median {median:.1f} ms "
              f"p95 {p95:.1f} ms ({median / text_ms:.0f}x the text baseline); "
              f"{size} bytes -> serial {serial} baud")
    print(f"target < {TARGET_MS:.0f} ms per ticket: {'met' if worst < TARGET_MS else 'MISSED'} "
          f"(worst p95 {worst:.1f} ms)")

    sealed_codes(args.runs)
    if args.write_previews:
        write_previews()
    return 0


if __name__ == "__main__":
    sys.exit(main())
