"""ESC/POS thermal printers: a real one (USB, serial, network, device file) and a simulated one (.bin + .png).

Cheap 58/80 mm printers have no usable Vietnamese code page, so a slip goes out as a raster image and nothing
is ever sent as text: the stream is ESC @ (init), GS v 0 (the image), ESC d (feed) and GS V (partial cut).
Every fault (missing or busy device, no paper, a write that fails half way) becomes a `PrinterError` whose
message names the device; the connection is then dropped and reopened on the next print, which is the retry.

    printer = EscposPrinter("file", width_dots=576, device="/dev/usb/lp0")
    printer.print_image(image, name="2026-11-27_HT-001")      # raises PrinterError("... /dev/usb/lp0: ...")
"""
from __future__ import annotations

import copy
import errno
import io
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from escpos.constants import (
    ESC,
    GS,
    HW_INIT,
    RT_MASK_LOWPAPER,
    RT_MASK_NOPAPER,
    RT_MASK_ONLINE,
    RT_MASK_PAPER,
    RT_STATUS_ONLINE,
    RT_STATUS_PAPER,
)
from PIL import Image

from hardware.files import fsync_dir, replace_file

log = logging.getLogger(__name__)

CONNECTIONS = ("usb", "serial", "network", "file")

# ESC/POS bytes this module sends (python-escpos produces them; named here for `raster_image` and the docs).
ESC_INIT = HW_INIT             # ESC @
RASTER = GS + b"v0"            # GS v 0 m xL xH yL yH d...
FEED = ESC + b"d"              # ESC d n
CUT = GS + b"V"                # GS V m  |  GS V 66 n

#: Grey values darker than this become a printed dot. Above the 50% midpoint on purpose: anti-aliased
#: diacritics (the hook of "ỏ", the dot of "ạ") are thin, and a thermal head prints a dot or nothing.
INK_THRESHOLD = 170
_LPABORT = 0x0604              # linux/lp.h: make usblp/lp writes fail (ENOSPC) instead of waiting when paper is out


class PrinterError(Exception):
    """The printer could not print (or cannot be reached); the message names the device."""


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer said about itself; None = the connection cannot tell (no read-back, no answer)."""

    online: bool | None
    paper: bool | None
    detail: str
    paper_low: bool = False

    @property
    def blocks_printing(self) -> bool:
        return self.online is False or self.paper is False


def send_image(conn: Any, image: Image.Image) -> None:
    """The one sequence every printer gets: init, the raster image, feed, partial cut. No text at all."""
    conn.hw("INIT")
    conn.image(image, impl="bitImageRaster")
    conn.cut(mode="PART", feed=True)


def raster_image(data: bytes) -> Image.Image:
    """The image a printer prints from a stream made by `send_image` (used by the simulator's .png).

    Walks the stream command by command; anything else is a ValueError, so a stray byte cannot hide.
    """
    strips: list[Image.Image] = []
    i = 0
    while i < len(data):
        if data.startswith(ESC_INIT, i):
            i += 2
        elif data.startswith(FEED, i):
            i += 3
        elif data.startswith(CUT + b"B", i):
            i += 4
        elif data.startswith(CUT, i):
            i += 3
        elif data.startswith(RASTER, i):
            header = data[i + 3 : i + 8]
            if len(header) < 5:
                raise ValueError(f"truncated raster header at byte {i}")
            width_bytes = header[1] | header[2] << 8
            height = header[3] | header[4] << 8
            start = i + 8
            end = start + width_bytes * height
            if end > len(data):
                raise ValueError(f"raster image at byte {i} wants {width_bytes * height} bytes, stream has {len(data) - start}")
            # Raster bits: 1 = a printed (black) dot; Pillow's "1" raw mode "1;I" reads 1 as black.
            strips.append(Image.frombytes("1", (width_bytes * 8, height), data[start:end], "raw", "1;I"))
            i = end
        else:
            raise ValueError(f"unexpected byte 0x{data[i]:02x} at offset {i} of the printer stream")
    if not strips:
        raise ValueError("no raster image in the printer stream")
    page = Image.new("1", (max(s.width for s in strips), sum(s.height for s in strips)), 1)
    y = 0
    for strip in strips:
        page.paste(strip, (0, y))
        y += strip.height
    return page


class EscposPrinter:
    """A real printer through python-escpos, opened lazily on the first print and reopened after a failure.

    ``connection`` is "usb" (usb_vendor, usb_product), "serial" (serial_port, baudrate), "network" (host, port)
    or "file" (device, e.g. /dev/usb/lp0 of the kernel's usblp driver). ``factory`` (tests) returns a
    python-escpos printer object, e.g. a ``Dummy`` subclass, in place of the real connection.
    """

    def __init__(self, connection: str, *, width_dots: int, usb_vendor: int | None = None,
                 usb_product: int | None = None, serial_port: str | None = None, baudrate: int = 19200,
                 host: str | None = None, port: int = 9100, device: str | None = None,
                 factory: Callable[[], Any] | None = None, timeout: float = 5.0) -> None:
        if connection not in CONNECTIONS:
            raise ValueError(f"printer connection must be one of {', '.join(CONNECTIONS)}, got {connection!r}")
        needs = {"usb": ("usb_vendor", "usb_product"), "serial": ("serial_port",), "network": ("host",),
                 "file": ("device",)}[connection]
        given = {"usb_vendor": usb_vendor, "usb_product": usb_product, "serial_port": serial_port,
                 "host": host, "device": device}
        missing = [name for name in needs if given[name] in (None, "")]
        if missing and factory is None:
            raise ValueError(f"a {connection} printer needs {' and '.join(missing)}")
        self.connection = connection
        self.width_dots = width_dots
        self.usb_vendor, self.usb_product = usb_vendor, usb_product
        self.serial_port, self.baudrate = serial_port, baudrate
        self.host, self.port = host, port
        self.device = device
        self.timeout = timeout
        self._factory = factory
        self._conn: Any = None
        self._silent = False     # this connection never answered a status query

    @property
    def device_name(self) -> str:
        """How messages name the printer: ``USB printer 0416:5011``, ``printer device /dev/usb/lp0``..."""
        if self.connection == "usb":
            return f"USB printer {self.usb_vendor or 0:04x}:{self.usb_product or 0:04x}"
        if self.connection == "serial":
            return f"serial printer {self.serial_port} ({self.baudrate} baud)"
        if self.connection == "network":
            return f"network printer {self.host}:{self.port}"
        return f"printer device {self.device}"

    def __repr__(self) -> str:
        return f"EscposPrinter({self.device_name})"

    def print_image(self, image: Image.Image, *, name: str) -> None:
        """Print one slip; raises `PrinterError` (naming the device) if it did not, or may not have, come out."""
        image = _one_bit(image, self.width_dots)
        conn = self._open()
        before = self._query(conn)
        if before.blocks_printing:
            self._drop()
            raise PrinterError(f"{self.device_name}: not printing {name}: {before.detail}")
        try:
            send_image(conn, image)
            flush = getattr(conn, "flush", None)
            if callable(flush):
                flush()
        except Exception as exc:  # pyusb, pyserial, socket and python-escpos errors alike
            self._drop()
            hint = ""
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                hint = " (the kernel's printer driver says this when the paper is out)"
            raise PrinterError(f"{self.device_name}: sending {name} failed: {_one_line(exc)}{hint}") from exc
        after = self._query(conn)
        if after.blocks_printing:
            self._drop()
            raise PrinterError(f"{self.device_name}: {name} may not have printed: {after.detail}")
        if after.paper_low:
            log.warning("%s: paper roll nearly empty", self.device_name)

    def status(self) -> PrinterStatus:
        """Ask the printer (DLE EOT) whether it is online and has paper, where the connection reads back."""
        try:
            conn = self._open()
        except PrinterError as exc:
            return PrinterStatus(online=False, paper=None, detail=str(exc))
        return self._query(conn)

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> "EscposPrinter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- connection ------------------------------------------------------------------------------------------

    def _open(self) -> Any:
        if self._conn is not None:
            return self._conn
        try:
            conn = self._factory() if self._factory is not None else self._make()
            conn.profile = _paper_profile(self.width_dots)
            conn.open()
        except PrinterError:
            raise
        except Exception as exc:
            hint = " (libusb-1.0 is not installed)" if type(exc).__name__ == "NoBackendError" else ""
            raise PrinterError(f"cannot open {self.device_name}: {_one_line(exc)}{hint}") from exc
        self._conn = conn
        return conn

    def _make(self) -> Any:
        from escpos import printer as escpos_printer

        if self.connection == "usb":
            # pyusb's timeout is in ms; python-escpos's default 0 would wait forever for a status answer.
            return escpos_printer.Usb(self.usb_vendor, self.usb_product, timeout=int(self.timeout * 1000))
        if self.connection == "serial":
            return _serial_class()(devfile=self.serial_port, baudrate=self.baudrate, timeout=self.timeout)
        if self.connection == "network":
            return escpos_printer.Network(host=self.host, port=self.port, timeout=self.timeout)
        _check_device_file(self.device_name, self.device)
        return _file_class()(devfile=self.device)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._silent = False
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # closing a dead device may fail too; it is gone either way
                log.debug("%s: close failed: %s", self.device_name, exc)

    def _query(self, conn: Any) -> PrinterStatus:
        # python-escpos's is_online() reads "no answer" as offline and paper_status() as "plenty of paper";
        # a printer that never answers DLE EOT must still print, so the same query is parsed here with
        # None for "no answer".
        if not _can_read(conn):
            return PrinterStatus(None, None, f"{self.device_name}: status not readable on this connection")
        if self._silent:
            return PrinterStatus(None, None, f"{self.device_name}: does not answer status queries")
        online_byte = self._ask(conn, RT_STATUS_ONLINE)
        paper_byte = self._ask(conn, RT_STATUS_PAPER)
        if online_byte is None and paper_byte is None:
            # Some cheap printers ignore DLE EOT: ask once per connection, not (with a timeout) every ticket.
            log.info("%s does not answer status queries; printing without them", self.device_name)
            self._silent = True
        # RT_MASK_ONLINE is python-escpos's name for the bit a printer sets when it is offline.
        online = None if online_byte is None else not online_byte & RT_MASK_ONLINE
        paper, low = None, False
        if paper_byte is not None:
            if paper_byte & RT_MASK_NOPAPER == RT_MASK_NOPAPER:
                paper = False
            elif paper_byte & RT_MASK_LOWPAPER == RT_MASK_LOWPAPER:
                paper, low = True, True
            elif paper_byte & RT_MASK_PAPER == RT_MASK_PAPER:
                paper = True
        words = [{True: "online", False: "offline (cover open or error)", None: "online state unknown"}[online],
                 {True: "paper low" if low else "paper ok", False: "out of paper", None: "paper unknown"}[paper]]
        return PrinterStatus(online, paper, f"{self.device_name}: {', '.join(words)}", paper_low=low)

    def _ask(self, conn: Any, query: bytes) -> int | None:
        try:
            answer = conn.query_status(query)
        except Exception as exc:  # a timeout here means "does not answer", not "broken": the write will tell
            log.debug("%s: no status answer: %s", self.device_name, exc)
            return None
        return answer[0] if len(answer) else None


class SimulatedPrinter:
    """Writes what a printer would get: ``<name>.bin`` (the exact ESC/POS bytes) and ``<name>.png`` (the paper).

    The bytes come from the same `send_image` through python-escpos's ``Dummy``; the PNG is decoded back from
    those bytes, so it shows exactly what would print.
    """

    def __init__(self, out_dir: Path, *, width_dots: int) -> None:
        self.out_dir = Path(out_dir)
        self.width_dots = width_dots

    @property
    def device_name(self) -> str:
        return f"simulated printer {self.out_dir}"

    def print_image(self, image: Image.Image, *, name: str) -> None:
        from escpos.printer import Dummy

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ValueError(f"slip name must be a plain file name (letters, digits, . _ -), got {name!r}")
        dummy = Dummy()
        dummy.profile = _paper_profile(self.width_dots)
        send_image(dummy, _one_bit(image, self.width_dots))
        data = dummy.output
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            png = io.BytesIO()
            raster_image(data).save(png, "PNG")
            replace_file(self.out_dir / f"{name}.bin", data)
            replace_file(self.out_dir / f"{name}.png", png.getvalue())
            fsync_dir(self.out_dir)
        except OSError as exc:
            raise PrinterError(f"{self.device_name}: cannot write {name}: {exc}") from exc

    def status(self) -> PrinterStatus:
        return PrinterStatus(online=True, paper=True, detail=f"{self.device_name}: always ready")

    def close(self) -> None:
        pass


def _one_bit(image: Image.Image, width_dots: int) -> Image.Image:
    if image.width > width_dots:
        raise ValueError(f"image is {image.width} dots wide, the printer prints {width_dots}")
    return image if image.mode == "1" else one_bit(image)


def one_bit(image: Image.Image) -> Image.Image:
    """The dots a thermal head prints: each grey value at `INK_THRESHOLD` or darker becomes a dot."""
    return image.convert("L").point(lambda v: 255 if v >= INK_THRESHOLD else 0, mode="1")


def _file_class() -> type:
    """python-escpos's File, with the kernel's usblp driver told to fail a write when the paper is out."""
    from escpos.printer import File

    class KioskFile(File):
        def open(self, raise_not_found: bool = True) -> None:
            super().open(raise_not_found)
            if self._device:
                import fcntl

                try:
                    # Without LPABORT, usblp blocks a write for as long as the paper is out (forever, for a
                    # kiosk); with it the write fails with ENOSPC, which print_image reports as "paper out".
                    fcntl.ioctl(self._device.fileno(), _LPABORT, 1)
                except OSError:
                    pass  # not a kernel printer device (e.g. a serial adapter's node): nothing to set

    return KioskFile


def _serial_class() -> type:
    """python-escpos's Serial, fixed for status and flow control (serial printers are slow and stall)."""
    from escpos.printer import Serial

    class KioskSerial(Serial):
        def _read(self) -> bytes:
            # A DLE EOT answer is one byte; python-escpos reads 16, which always waits out the whole timeout.
            assert self.device
            return self.device.read(1)

        def _raw(self, msg: bytes) -> None:
            # With DSR/DTR flow control a printer out of paper holds the line: give each write the time its
            # bytes need at this baud rate (10 bits a byte) plus 5 s, instead of blocking the kiosk forever.
            assert self.device
            self.device.write_timeout = 5.0 + len(msg) * 10 / self.baudrate
            self.device.write(msg)

    return KioskSerial


def _paper_profile(width_dots: int) -> Any:
    """python-escpos's default profile with the paper width set (it then rejects a too-wide image itself)."""
    from escpos.capabilities import BaseProfile, get_profile

    data = copy.deepcopy(get_profile("default").profile_data)
    data["media"]["width"]["pixels"] = width_dots
    return type("KioskPaperProfile", (BaseProfile,), {"profile_data": data})()


def _can_read(conn: Any) -> bool:
    """True where the python-escpos class implements ``_read`` (USB, serial, network; not File or Dummy)."""
    from escpos.escpos import Escpos

    return getattr(type(conn), "_read", Escpos._read) is not Escpos._read


def _check_device_file(device_name: str, path: str | None) -> None:
    """python-escpos's File opens with "wb": a missing /dev/usb/lp0 would silently become a regular file."""
    try:
        mode = os.stat(path).st_mode if path else None
    except OSError as exc:
        raise PrinterError(f"cannot open {device_name}: {exc.strerror} (is the printer plugged in and on?)") from exc
    if mode is None or not stat.S_ISCHR(mode):
        raise PrinterError(f"cannot open {device_name}: not a character device (expected e.g. /dev/usb/lp0)")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
