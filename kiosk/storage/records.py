"""Self-checking records (``<crc32 hex> <json>\\n``), the scan that finds torn or damaged ones, and the
``name.sum`` sidecar holding the size and crc32 of a whole file."""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.storage.files import _read_bytes, atomic_write, keep_torn_tail, set_aside


def encode_record(obj: Any) -> bytes:
    """One line that proves its own integrity: a torn or altered line fails the checksum."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode_line(line: bytes) -> Any:
    """The record of one line (without its newline), or raise ValueError when it is damaged."""
    if len(line) < 10 or line[8] != 0x20:
        raise ValueError("not a record")
    body = line[9:]
    if int(line[:8], 16) != zlib.crc32(body):
        raise ValueError("checksum mismatch")
    return json.loads(body)


@dataclass
class Scan:
    """What reading a record file found."""

    records: list[Any] = field(default_factory=list)
    first_len: int = 0  # bytes of the first good record (a journal's snapshot)
    good_end: int = 0  # offset just past the last good record
    size: int = 0
    bad_lines: int = 0  # damaged lines anywhere
    damaged: bool = False  # damage other than one incomplete last line: the file needs rewriting

    @property
    def torn(self) -> bool:
        """Only the last line is incomplete or damaged (the normal trace of a power cut while appending)."""
        return not self.damaged and self.good_end < self.size


def scan_records(data: bytes, *, decode: bool = True) -> Scan:
    """Check every line of a record file; ``decode=False`` only verifies checksums (fast start-up check)."""
    scan = Scan(size=len(data))
    lines = data.split(b"\n")
    # A file ending with "\n" splits into [..., b""]: the final empty piece is not a line.
    complete, tail = lines[:-1], lines[-1]
    offset = 0
    bad_after_good = 0  # bad pieces since the last good record
    for line in complete:
        end = offset + len(line) + 1
        try:
            if decode:
                scan.records.append(_decode_line(line))
            elif len(line) < 10 or line[8] != 0x20 or int(line[:8], 16) != zlib.crc32(line[9:]):
                raise ValueError("checksum mismatch")
            else:
                scan.records.append(None)
        except (ValueError, UnicodeDecodeError):
            scan.bad_lines += 1
            bad_after_good += 1
        else:
            if len(scan.records) == 1:
                scan.first_len = end - offset
            if bad_after_good:
                scan.damaged = True  # good data after damaged data: not a simple torn tail
            bad_after_good = 0
            scan.good_end = end
        offset = end
    if tail:
        scan.bad_lines += 1
        bad_after_good += 1
    if bad_after_good > 1:
        scan.damaged = True  # more than one damaged line at the end: more than a torn append
    return scan


def _repair(path: Path, scan: Scan, rewrite: bytes) -> str | None:
    """Bring a damaged record file back to its last good state; return the note for the technician."""
    if scan.damaged:
        kept = set_aside(path)
        atomic_write(path, rewrite)
        return (f"{path.name}: damaged ({scan.bad_lines} bad record(s)); the good records were kept, "
                f"the damaged file was set aside as {kept.name}")
    if scan.torn:
        kept = keep_torn_tail(path, scan.good_end)
        return (f"{path.name}: incomplete last record ({scan.size - scan.good_end} bytes, power cut while "
                f"writing?) dropped; the bytes were kept in {kept.name}")
    return None


def read_checksum(path: Path) -> dict | None:
    """The size, crc32 and line count (``n``) last recorded for the whole of ``path`` (``name.sum``), or None."""
    data = _read_bytes(Path(path).with_suffix(".sum"))
    if not data:
        return None
    try:
        rec = _decode_line(data.rstrip(b"\n"))
    except (ValueError, UnicodeDecodeError):
        return None
    return rec if isinstance(rec, dict) and {"size", "crc"} <= rec.keys() else None


def write_checksum(path: Path, size: int | None = None, crc: int | None = None, lines: int | None = None) -> None:
    """Record size, crc32 and line count of the whole of ``path`` (computed from the file when not given).

    The sidecar is what proves a loss later (a file shorter than its ``.sum``), so it only ever follows a write
    that made the file longer, or comes before one that makes it shorter (:func:`replace_with_checksum`).
    """
    if size is None or crc is None:
        data = Path(path).read_bytes()
        size, crc, lines = len(data), zlib.crc32(data), data.count(b"\n")
    known = {"size": size, "crc": crc} if lines is None else {"size": size, "crc": crc, "n": lines}
    atomic_write(Path(path).with_suffix(".sum"), encode_record(known))


def replace_with_checksum(path: Path, data: bytes) -> None:
    """Replace a whole file that has a ``.sum``, the sidecar on the safe side of the rename: first when the file
    gets shorter, after when it grows. A crash in between then leaves a file at least as long as its sidecar
    says (checked record by record, nothing reported lost), never a shorter one (a false loss)."""
    try:
        shrinks = len(data) < Path(path).stat().st_size
    except FileNotFoundError:
        shrinks = False
    if shrinks:
        write_checksum(path, len(data), zlib.crc32(data), data.count(b"\n"))
    atomic_write(path, data)
    if not shrinks:
        write_checksum(path, len(data), zlib.crc32(data), data.count(b"\n"))


def _append_checksum(path: Path, known: dict | None, appended: bytes) -> None:
    """Update ``name.sum`` after an append: incrementally when it matched the file before the append."""
    size = Path(path).stat().st_size
    if known and known["size"] == size - len(appended) and "n" in known:
        write_checksum(path, size, zlib.crc32(appended, known["crc"]), known["n"] + appended.count(b"\n"))
    else:
        write_checksum(path)


def proven_loss(path: Path, known: dict, size: int, lost: str) -> str:
    """The report of ``lost`` (what is missing, counted) when ``path`` holds ``size`` bytes, fewer than its
    ``.sum`` proves it held: emptied, cut short or replaced by an older copy.

    The file and its sidecar are kept as ``name.corrupt-<time>`` / ``name.sum.corrupt-<time>`` (the proof, a
    copy: repairs may then cut the file in place), after which the sidecar may follow the file again.
    """
    kept = set_aside(path, copy=True) if path.exists() else None
    set_aside(path.with_suffix(".sum"), copy=True)
    return (f"{path.name}: {lost} lost: the file holds {size} of the {known['size']} bytes its checksum file "
            f"proves (emptied, cut short or replaced by an older copy); "
            + (f"set aside as {kept.name}" if kept else "the file is missing"))


# ------------------------------------------------------------------- a whole-file crc32 after bytes overwritten
# zlib's crc32_combine arithmetic (multmodp / x2nmodp, zlib 1.2.12), which Python's zlib does not expose, done
# on numpy arrays for all the changes at once: the crc32 of a file after some bytes were overwritten in place
# follows from the old crc32 and the changed bytes alone, so a deletion costs what it changes, not a read of
# the whole file. CRC-32 is affine: for equal lengths crc(a ^ b ^ c) = crc(a) ^ crc(b) ^ crc(c), and zeros in
# front of a change leave the zero-init register at zero.
_POLY = np.uint64(0xEDB88320)
_ONE = np.uint64(1)


def _multmodp(a: np.ndarray | np.uint64, b: np.ndarray | np.uint64) -> np.ndarray:
    """a(x) * b(x) mod P, element by element (bit-reflected, as zlib's multmodp)."""
    p = np.zeros(np.broadcast(a, b).shape, np.uint64)
    b = np.broadcast_to(b, p.shape).copy()
    for bit in range(31, -1, -1):
        p ^= np.where(a & np.uint64(1 << bit), b, np.uint64(0))
        b = np.where(b & _ONE, (b >> _ONE) ^ _POLY, b >> _ONE)
    return p


_X2N: list[np.uint64] = [np.uint64(1 << 30)]     # x^(2^k) mod P
for _ in range(63):
    _X2N.append(np.uint64(_multmodp(_X2N[-1], _X2N[-1])[()]))


_TABLES: dict[int, np.ndarray] = {}
_BYTE = np.uint64(0xFF)


def _times_x2n(k: int, p: np.ndarray) -> np.ndarray:
    """p(x) * x^(2^k) mod P for each element: multiplying by a constant is linear, so four 256-entry tables
    (one per byte of p) replace the 32 steps of :func:`_multmodp`."""
    table = _TABLES.get(k)
    if table is None:
        basis = np.array([b << (8 * j) for j in range(4) for b in range(256)], np.uint64)
        table = _TABLES[k] = _multmodp(basis, _X2N[k]).reshape(4, 256)
    out = table[0][p & _BYTE]
    for j in (1, 2, 3):
        out ^= table[j][(p >> np.uint64(8 * j)) & _BYTE]
    return out


def _shift(raw: np.ndarray, zero_bytes: np.ndarray) -> np.ndarray:
    """Each zero-init register ``raw`` after ``zero_bytes`` more zero bytes (times x^(8n) mod P)."""
    p = np.full(raw.shape, np.uint64(1 << 31))  # x^0
    n = zero_bytes.astype(np.uint64) << np.uint64(3)
    k = 0
    while n.any():
        p = np.where(n & _ONE, _times_x2n(k, p), p)
        n >>= _ONE
        k += 1
    return _multmodp(p, raw)


def crc32_overwritten(crc: int, size: int, changes: list[tuple[int, bytes, bytes]]) -> int:
    """The crc32 of a ``size``-byte file whose crc32 was ``crc``, after each (offset, old bytes, new bytes)."""
    if not changes:
        return crc
    zeros: dict[int, int] = {}
    raw, after = [], []
    for offset, old, new in changes:
        n = len(old)
        delta = (int.from_bytes(old, "big") ^ int.from_bytes(new, "big")).to_bytes(n, "big")
        if n not in zeros:
            zeros[n] = zlib.crc32(bytes(n))
        raw.append(zlib.crc32(delta) ^ zeros[n])       # the zero-init crc of the change alone
        after.append(size - offset - n)
    shifted = _shift(np.array(raw, np.uint64), np.array(after, np.int64))
    return crc ^ int(np.bitwise_xor.reduce(shifted))
