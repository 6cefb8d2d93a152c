"""hardware.printer: the exact ESC/POS stream, the simulator's files, status queries and every kind of fault.

Printers are python-escpos's own ``Dummy`` (subclassed to answer status queries or to fail), a real device file
(/dev/full: every write fails), and the real Network and Serial connections talking to a fake printer end on a
local TCP socket and a pseudo-terminal.
"""
import errno
import logging
import os
import socket
import stat
import threading

import numpy as np
import pytest
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Dummy
from PIL import Image, ImageChops, ImageDraw

from hardware.printer import EscposPrinter, PrinterError, PrinterStatus, SimulatedPrinter, raster_image

ONLINE_OK, OFFLINE = 0x12, 0x1A          # DLE EOT 1 answers (bit 3 = offline)
PAPER_OK, PAPER_LOW, NO_PAPER = 0x12, 0x1E, 0x72   # DLE EOT 4 answers


def walk(stream: bytes):
    """Split an ESC/POS stream into commands; bytes that belong to no command would print as text."""
    commands, text = [], bytearray()
    i = 0
    while i < len(stream):
        two = stream[i:i + 2]
        if two == b"\x1b@":
            commands.append(("init",))
            i += 2
        elif stream[i:i + 3] == b"\x1dv0":
            mode, xl, xh, yl, yh = stream[i + 3:i + 8]
            width_bytes, height = xl + 256 * xh, yl + 256 * yh
            data = stream[i + 8:i + 8 + width_bytes * height]
            assert len(data) == width_bytes * height, "raster data cut short"
            commands.append(("raster", mode, width_bytes * 8, height, data))
            i += 8 + width_bytes * height
        elif two == b"\x1bd":
            commands.append(("feed", stream[i + 2]))
            i += 3
        elif two == b"\x1dV":
            commands.append(("cut", stream[i + 2]))
            i += 3
        elif two == b"\x10\x04":
            commands.append(("status", stream[i + 2]))
            i += 3
        else:
            text.append(stream[i])
            i += 1
    return commands, bytes(text)


def ticket_like(width, height=700):
    """An image with text-like strokes, a solid bar and a checker patch (QR-like) at the given width."""
    image = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, width - 11, 60), fill=0)
    draw.text((20, 100), "HT-001", fill=0)
    for y in range(200, 400, 8):
        for x in range(20, 220, 8):
            if (x // 8 + y // 8) % 2:
                draw.rectangle((x, y, x + 7, y + 7), fill=0)
    return image


class Factory:
    """Makes the python-escpos object for each (re)open and keeps them, so tests can read what was sent."""

    def __init__(self, *classes):
        self.classes = list(classes)
        self.made = []

    def __call__(self):
        cls = self.classes.pop(0) if len(self.classes) > 1 else self.classes[0]
        conn = cls()
        self.made.append(conn)
        return conn


class AnsweringDummy(Dummy):
    """A Dummy that reads back: answers DLE EOT 1 / DLE EOT 4 from queues (last answer repeats)."""

    online = [ONLINE_OK]
    paper = [PAPER_OK]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._answers = {b"\x10\x04\x01": list(self.online), b"\x10\x04\x04": list(self.paper)}
        self._last = b""

    def _raw(self, msg):
        super()._raw(msg)
        self._last = msg

    def _read(self):
        queue = self._answers[self._last]
        value = queue.pop(0) if len(queue) > 1 else queue[0]
        return b"" if value is None else bytes([value])


def answering(online=(ONLINE_OK,), paper=(PAPER_OK,)):
    return type("Answering", (AnsweringDummy,), {"online": list(online), "paper": list(paper)})


# -- the byte stream ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [384, 576])
def test_stream_is_init_raster_of_the_paper_width_feed_and_partial_cut(width):
    factory = Factory(Dummy)
    printer = EscposPrinter("file", width_dots=width, device="/dev/usb/lp0", factory=factory)
    image = ticket_like(width)
    printer.print_image(image, name="t")
    stream = factory.made[0].output

    assert stream.startswith(b"\x1b@")
    assert stream.endswith(b"\x1bd\x06\x1dV\x01")            # feed 6 lines, then GS V 1 = partial cut
    commands, text = walk(stream)
    assert text == b"", f"bytes sent as text: {text[:40]!r}"
    assert all(byte <= 0x7F for byte in text)
    assert [c[0] for c in commands] == ["init", "raster", "feed", "cut"]
    _, mode, raster_width, height, data = commands[1]
    assert (mode, raster_width, height) == (0, width, image.height)
    # the raster is the image: bit 1 = black dot, rows of width/8 bytes
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).reshape(height, width)
    assert np.array_equal(bits == 1, ~np.asarray(image))


def test_tall_slips_go_out_in_several_rasters_of_full_width():
    factory = Factory(Dummy)
    printer = EscposPrinter("file", width_dots=384, device="/dev/usb/lp0", factory=factory)
    image = ticket_like(384, height=2000)
    printer.print_image(image, name="long")
    commands, text = walk(factory.made[0].output)
    rasters = [c for c in commands if c[0] == "raster"]
    assert text == b"" and len(rasters) == 3
    assert {c[2] for c in rasters} == {384} and sum(c[3] for c in rasters) == 2000
    assert ImageChops.logical_xor(raster_image(factory.made[0].output), image).getbbox() is None


def test_grey_images_are_thresholded_and_too_wide_ones_refused():
    factory = Factory(Dummy)
    printer = EscposPrinter("file", width_dots=384, device="/dev/usb/lp0", factory=factory)
    printer.print_image(Image.new("L", (384, 50), 40), name="grey")
    assert np.asarray(raster_image(factory.made[0].output)).sum() == 0     # dark grey prints black
    with pytest.raises(ValueError, match="577 dots wide"):
        printer.print_image(Image.new("1", (577, 50), 1), name="wide")


def test_raster_image_refuses_a_stream_with_stray_bytes():
    with pytest.raises(ValueError, match="0x41 at offset 2"):
        raster_image(b"\x1b@A")
    with pytest.raises(ValueError, match="no raster image"):
        raster_image(b"\x1b@\x1bd\x06\x1dV\x01")


# -- the simulated printer ---------------------------------------------------------------------------------


def test_simulated_printer_writes_the_same_bytes_and_the_paper_as_png(tmp_path):
    image = ticket_like(576)
    factory = Factory(Dummy)
    EscposPrinter("file", width_dots=576, device="/dev/usb/lp0", factory=factory).print_image(image, name="a")
    simulated = SimulatedPrinter(tmp_path / "printed", width_dots=576)
    simulated.print_image(image, name="2026-11-27_HT-001")

    assert (tmp_path / "printed/2026-11-27_HT-001.bin").read_bytes() == factory.made[0].output
    with Image.open(tmp_path / "printed/2026-11-27_HT-001.png") as png:
        assert png.size == image.size
        assert ImageChops.logical_xor(png.convert("1"), image).getbbox() is None
    assert simulated.status() == PrinterStatus(True, True, f"simulated printer {tmp_path / 'printed'}: always ready")
    assert sorted(p.name for p in (tmp_path / "printed").iterdir()) == [
        "2026-11-27_HT-001.bin", "2026-11-27_HT-001.png"]          # no temporary files left behind


def test_simulated_printer_names_its_folder_when_it_cannot_write(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(PrinterError, match="not-a-dir"):
        SimulatedPrinter(blocker, width_dots=384).print_image(ticket_like(384), name="t")
    with pytest.raises(ValueError, match="plain file name"):
        SimulatedPrinter(tmp_path, width_dots=384).print_image(ticket_like(384), name="../escape")


# -- status ------------------------------------------------------------------------------------------------


def test_status_is_unknown_where_the_connection_cannot_read_back():
    printer = EscposPrinter("file", width_dots=384, device="/dev/usb/lp0", factory=Factory(Dummy))
    status = printer.status()
    assert (status.online, status.paper) == (None, None)
    assert "/dev/usb/lp0" in status.detail


@pytest.mark.parametrize("online, paper, expected", [
    (ONLINE_OK, PAPER_OK, (True, True, False, "online, paper ok")),
    (ONLINE_OK, PAPER_LOW, (True, True, True, "online, paper low")),
    (ONLINE_OK, NO_PAPER, (True, False, False, "online, out of paper")),
    (OFFLINE, PAPER_OK, (False, True, False, "offline")),
    (None, None, (None, None, False, "online state unknown, paper unknown")),
])
def test_status_reads_the_real_time_answers(online, paper, expected):
    printer = EscposPrinter("usb", width_dots=384, usb_vendor=0x0416, usb_product=0x5011,
                            factory=Factory(answering([online], [paper])))
    status = printer.status()
    assert (status.online, status.paper, status.paper_low) == expected[:3]
    assert expected[3] in status.detail and "USB printer 0416:5011" in status.detail


def test_status_of_a_printer_that_cannot_be_opened_is_offline_and_says_why(tmp_path):
    status = EscposPrinter("file", width_dots=384, device=str(tmp_path / "lp0")).status()
    assert status.online is False and str(tmp_path / "lp0") in status.detail


# -- faults ------------------------------------------------------------------------------------------------


class BusyOnOpen(Dummy):
    def open(self):
        raise DeviceNotFoundError("Could not open the specified file /dev/usb/lp0:\n[Errno 16] Device or resource busy")


class FailsMidWrite(Dummy):
    """Accepts ESC @, then the cable is pulled while the image goes out."""

    def _raw(self, msg):
        if msg.startswith(b"\x1dv0"):
            raise OSError(errno.EIO, "Input/output error")
        super()._raw(msg)


def test_a_printer_that_raises_on_open_gives_an_error_naming_the_device():
    printer = EscposPrinter("file", width_dots=384, device="/dev/usb/lp0", factory=Factory(BusyOnOpen))
    with pytest.raises(PrinterError, match=r"cannot open printer device /dev/usb/lp0: .*busy"):
        printer.print_image(ticket_like(384), name="t")


def test_a_missing_or_wrong_device_file_is_named_and_never_created(tmp_path):
    missing = tmp_path / "lp0"
    with pytest.raises(PrinterError, match=f"{missing}: No such file"):
        EscposPrinter("file", width_dots=384, device=str(missing)).print_image(ticket_like(384), name="t")
    assert not missing.exists()            # python-escpos alone would have created a regular file here
    regular = tmp_path / "regular"
    regular.write_bytes(b"")
    with pytest.raises(PrinterError, match=f"{regular}: not a character device"):
        EscposPrinter("file", width_dots=384, device=str(regular)).print_image(ticket_like(384), name="t")


def test_no_paper_stops_before_anything_is_sent():
    factory = Factory(answering(paper=[NO_PAPER]))
    printer = EscposPrinter("usb", width_dots=384, usb_vendor=0x0416, usb_product=0x5011, factory=factory)
    with pytest.raises(PrinterError, match="USB printer 0416:5011: not printing t: .*out of paper"):
        printer.print_image(ticket_like(384), name="t")
    commands, _ = walk(factory.made[0].output)
    assert {c[0] for c in commands} == {"status"}          # asked, then sent nothing


def test_offline_printer_is_not_sent_the_ticket():
    factory = Factory(answering(online=[OFFLINE]))
    printer = EscposPrinter("network", width_dots=384, host="10.0.0.9", factory=factory)
    with pytest.raises(PrinterError, match=r"network printer 10.0.0.9:9100: .*offline"):
        printer.print_image(ticket_like(384), name="t")
    assert b"\x1b@" not in factory.made[0].output


def test_paper_running_out_during_the_print_is_a_fault():
    factory = Factory(answering(paper=[PAPER_OK, NO_PAPER]))
    printer = EscposPrinter("usb", width_dots=384, usb_vendor=1, usb_product=2, factory=factory)
    with pytest.raises(PrinterError, match="t may not have printed: .*out of paper"):
        printer.print_image(ticket_like(384), name="t")


def test_fails_mid_write_then_prints_on_a_fresh_connection_when_back():
    factory = Factory(FailsMidWrite, Dummy)
    printer = EscposPrinter("file", width_dots=384, device="/dev/usb/lp0", factory=factory)
    with pytest.raises(PrinterError, match="printer device /dev/usb/lp0: sending t1 failed: .*Input/output error"):
        printer.print_image(ticket_like(384), name="t1")
    printer.print_image(ticket_like(384), name="t2")               # the retry is simply the next print
    assert len(factory.made) == 2                                   # it reopened
    assert [c[0] for c in walk(factory.made[1].output)[0]] == ["init", "raster", "feed", "cut"]


def test_a_failed_open_is_retried_on_the_next_print():
    factory = Factory(BusyOnOpen, Dummy)
    printer = EscposPrinter("file", width_dots=384, device="/dev/usb/lp0", factory=factory)
    with pytest.raises(PrinterError):
        printer.print_image(ticket_like(384), name="t1")
    printer.print_image(ticket_like(384), name="t2")
    assert factory.made[1].output.startswith(b"\x1b@")


def test_a_working_connection_is_opened_once():
    factory = Factory(Dummy)
    printer = EscposPrinter("file", width_dots=384, device="/dev/usb/lp0", factory=factory)
    for n in range(3):
        printer.print_image(ticket_like(384, 40), name=f"t{n}")
    assert len(factory.made) == 1
    assert [c[0] for c in walk(factory.made[0].output)[0]].count("cut") == 3


@pytest.mark.parametrize("paper", [PAPER_LOW, None], ids=["paper-low", "no-answer"])
def test_low_paper_or_no_answer_still_prints(paper, caplog):
    factory = Factory(answering(online=[None if paper is None else ONLINE_OK], paper=[paper]))
    printer = EscposPrinter("usb", width_dots=384, usb_vendor=1, usb_product=2, factory=factory)
    with caplog.at_level(logging.WARNING, logger="hardware.printer"):
        printer.print_image(ticket_like(384), name="t")
    assert b"\x1b@\x1dv0" in factory.made[0].output
    assert ("nearly empty" in caplog.text) == (paper == PAPER_LOW)


def test_a_real_device_file_that_fails_every_write():
    if not (os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)):
        pytest.skip("/dev/full (a device whose writes fail with ENOSPC) is not present")
    # ENOSPC is also what the kernel's usblp driver answers when the paper is out (we set LPABORT on open)
    printer = EscposPrinter("file", width_dots=384, device="/dev/full")
    with pytest.raises(PrinterError, match="printer device /dev/full: sending t failed: .*No space left.*paper is out"):
        printer.print_image(ticket_like(384), name="t")
    printer.close()


def test_device_file_connection_writes_the_stream_to_a_character_device():
    if not (os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)):
        pytest.skip("/dev/null is not present")
    with EscposPrinter("file", width_dots=384, device="/dev/null") as printer:
        printer.print_image(ticket_like(384), name="t")
        assert printer.status().online is None          # python-escpos's File cannot read back


@pytest.mark.parametrize("kwargs, message", [
    (dict(connection="bluetooth"), "usb, serial, network, file"),
    (dict(connection="usb", usb_vendor=0x0416), "usb_product"),
    (dict(connection="serial"), "serial_port"),
    (dict(connection="network"), "host"),
    (dict(connection="file"), "device"),
])
def test_missing_connection_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EscposPrinter(width_dots=384, **kwargs)


# -- real connections against a fake printer end -----------------------------------------------------------


class PrinterEnd:
    """The printer's side of a byte pipe: keeps what arrives and answers DLE EOT queries with fixed bytes."""

    def __init__(self, read, write, *, online=ONLINE_OK, paper=PAPER_OK):
        self.read, self.write = read, write
        self.answers = {1: online, 4: paper}
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        scanned = 0
        while True:
            try:
                chunk = self.read()
            except OSError:
                return
            if not chunk:
                return
            self.received += chunk
            # test images contain no 0x10 byte, so every DLE EOT n here is a query
            while (i := self.received.find(b"\x10\x04", scanned)) >= 0 and i + 2 < len(self.received):
                self.write(bytes([self.answers[self.received[i + 2]]]))
                scanned = i + 3

    def join(self):
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def plain_image(width):
    image = Image.new("1", (width, 120), 1)
    ImageDraw.Draw(image).rectangle((8, 8, width - 9, 60), fill=0)
    return image


@pytest.fixture
def tcp_printer():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    ends = []

    def accept(**answers):
        def serve_one():
            conn, _ = server.accept()
            ends.append(PrinterEnd(lambda: conn.recv(65536), conn.sendall, **answers))
        thread = threading.Thread(target=serve_one, daemon=True)
        thread.start()
        return server.getsockname()[1], thread, ends

    yield accept
    server.close()


def test_network_printer_over_a_real_socket(tcp_printer):
    port, accepted, ends = tcp_printer()
    printer = EscposPrinter("network", width_dots=384, host="127.0.0.1", port=port, timeout=5)
    printer.print_image(plain_image(384), name="t")
    assert printer.status() == PrinterStatus(True, True, f"network printer 127.0.0.1:{port}: online, paper ok")
    printer.close()
    accepted.join(timeout=10)
    ends[0].join()
    commands, text = walk(bytes(ends[0].received))
    assert text == b""
    assert [c[0] for c in commands] == ["status"] * 2 + ["init", "raster", "feed", "cut"] + ["status"] * 4


def test_network_printer_without_paper_gets_only_the_questions(tcp_printer):
    port, accepted, ends = tcp_printer(paper=NO_PAPER)
    printer = EscposPrinter("network", width_dots=384, host="127.0.0.1", port=port, timeout=5)
    with pytest.raises(PrinterError, match=f"network printer 127.0.0.1:{port}: .*out of paper"):
        printer.print_image(plain_image(384), name="t")
    accepted.join(timeout=10)
    ends[0].join()                      # the failed print closed the connection
    assert b"\x1b@" not in ends[0].received


def test_network_printer_that_is_not_there_is_named():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()                       # nothing listens on this port now
    printer = EscposPrinter("network", width_dots=384, host="127.0.0.1", port=port, timeout=2)
    with pytest.raises(PrinterError, match=f"cannot open network printer 127.0.0.1:{port}: .*refused"):
        printer.print_image(plain_image(384), name="t")


def test_serial_printer_over_a_pseudo_terminal():
    pytest.importorskip("serial", reason="pyserial (python-escpos[serial]) drives serial printers")
    main_fd, printer_fd = os.openpty()
    try:
        end = PrinterEnd(lambda: os.read(main_fd, 65536), lambda b: os.write(main_fd, b))
        printer = EscposPrinter("serial", width_dots=384, serial_port=os.ttyname(printer_fd), baudrate=19200,
                                timeout=2)
        printer.print_image(plain_image(384), name="t")
        assert printer.status().paper is True
        printer.close()
    finally:
        os.close(printer_fd)            # the printer end's read now fails with EIO and its thread ends
    end.join()
    os.close(main_fd)
    commands, text = walk(bytes(end.received))
    assert text == b"" and ["init", "raster", "feed", "cut"] == [c[0] for c in commands if c[0] != "status"]


def test_serial_port_that_does_not_exist_is_named(tmp_path):
    pytest.importorskip("serial", reason="pyserial (python-escpos[serial]) drives serial printers")
    port = str(tmp_path / "ttyUSB7")
    with pytest.raises(PrinterError, match=f"cannot open serial printer {port}"):
        EscposPrinter("serial", width_dots=384, serial_port=port).print_image(plain_image(384), name="t")


def test_usb_printer_that_is_not_there_is_named():
    printer = EscposPrinter("usb", width_dots=384, usb_vendor=0x0416, usb_product=0x5011)
    with pytest.raises(PrinterError, match="cannot open USB printer 0416:5011"):
        printer.print_image(plain_image(384), name="t")


def test_a_printer_that_never_answers_is_asked_once_per_connection():
    factory = Factory(answering(online=[None], paper=[None]))
    printer = EscposPrinter("usb", width_dots=384, usb_vendor=1, usb_product=2, factory=factory)
    for n in range(3):
        printer.print_image(plain_image(384), name=f"t{n}")
    commands, _ = walk(factory.made[0].output)
    assert [c[0] for c in commands].count("status") == 2
    assert [c[0] for c in commands].count("cut") == 3
    assert "does not answer" in printer.status().detail
