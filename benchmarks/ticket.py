"""How long one ticket takes to render (Pillow) and encode (ESC/POS raster bytes); target < 50 ms.

Baseline, measured in the same run: python-escpos sending the same content as text (its code-page
"magic encode"), the way that prints "?" for Vietnamese on cheap printers; the ratio is what drawing the
ticket as pixels costs over that. Also prints the size of the byte stream and how long it takes to send
over a serial line, the slowest connection a kiosk may use.

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

from hardware.printer import EscposPrinter, SimulatedPrinter  # noqa: E402
from kiosk.paths import FONT_REGULAR  # noqa: E402
from kiosk.receipt import render_ticket  # noqa: E402
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

    if args.write_previews:
        write_previews()
    return 0


if __name__ == "__main__":
    sys.exit(main())
