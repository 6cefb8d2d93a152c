"""Face templates: fixed-size binary records (128 float32 and a crc32 each) that numpy loads in one pass."""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from kiosk.storage.files import StorageError, _Appender, _free_name, atomic_write, keep_torn_tail, set_aside
from kiosk.storage.records import _append_checksum, read_checksum, write_checksum

TEMPLATE_MAGIC = b"KIOSKTPL"
TEMPLATE_VERSION = 1
TEMPLATE_DIM = 128
HEADER = TEMPLATE_MAGIC + np.array([TEMPLATE_VERSION, 0], "<u4").tobytes()  # 16 bytes
RECORD = np.dtype([("kind", "u1"), ("id", "S16"), ("vec", "<f4", (TEMPLATE_DIM,)), ("crc", "<u4")])
RECORD_SIZE = RECORD.itemsize  # 533
LIVE, WIPED = 1, 0


def _record_bytes(kind: int, cid: bytes, vec: np.ndarray) -> bytes:
    body = bytes([kind]) + cid + np.ascontiguousarray(vec, "<f4").tobytes()
    return body + np.array([zlib.crc32(body)], "<u4").tobytes()


_WIPED_ID = b"\0" * 16
_WIPED_RECORD = _record_bytes(WIPED, _WIPED_ID, np.zeros(TEMPLATE_DIM, "<f4"))


def hex_ids(ids: np.ndarray) -> list[str]:
    """"S16" ids as hex strings; consecutive rows of one citizen share one string object (memory at 100k)."""
    text = np.ascontiguousarray(ids, "S16").view(np.uint8).tobytes().hex()  # keeps trailing zero bytes
    out: list[str] = []
    last = ""
    for i in range(0, len(text), 32):
        piece = text[i:i + 32]
        if piece != last:
            last = piece
        out.append(last)
    return out


@dataclass
class TemplateCheck:
    """Where the live templates are: their rows in the file, the owner of each (16 raw bytes)."""

    rows: np.ndarray  # record indexes of live records
    ids: np.ndarray  # "S16" owner of each live record
    bad: int = 0
    problems: list[str] = field(default_factory=list)
    matrix: np.ndarray | None = None  # N x 128 float32 of the live records, when asked for


class TemplateFile:
    """Face templates as ``[kind u8][citizen id 16 B][128 x float32][crc32]`` records after a 16-byte header.

    Appending is durable on return; a torn last record fails its crc and is dropped. Deleting (``wipe``)
    overwrites the citizen's records in place with zeros — the template bytes are gone from the file at once,
    and a wipe torn by a power cut is just a record with a bad crc, which is dropped as well.
    ``templates.sum`` holds the crc32 of the whole file: when it matches, start-up skips the per-record check.
    """

    CHUNK = 16384  # records per read while checking (about 8.7 MB)

    def __init__(self, path: Path):
        self.path = Path(path)
        self._out = _Appender(self.path)

    def _records_in(self, size: int) -> int:
        return max(0, (size - len(HEADER)) // RECORD_SIZE)

    def _chunks(self, f, *, verify: bool = True) -> Iterator[tuple[int, np.ndarray, np.ndarray, bytes]]:
        """(first record index, records, crc ok mask, raw bytes) over the file, chunk by chunk."""
        size = os.fstat(f.fileno()).st_size
        total = self._records_in(size)
        for start in range(0, total, self.CHUNK):
            count = min(self.CHUNK, total - start)
            f.seek(len(HEADER) + start * RECORD_SIZE)
            buf = f.read(count * RECORD_SIZE)
            count = len(buf) // RECORD_SIZE
            recs = np.frombuffer(buf, RECORD, count=count)
            if verify:
                mv = memoryview(buf)[:count * RECORD_SIZE]
                crc = zlib.crc32
                ok = np.fromiter(
                    (crc(mv[i:i + RECORD_SIZE - 4]) for i in range(0, count * RECORD_SIZE, RECORD_SIZE)),
                    np.uint32, count) == recs["crc"]
            else:
                ok = np.ones(count, bool)
            yield start, recs, ok, buf

    @staticmethod
    def _vectors(recs: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The float32 templates of records ``idx`` (a plain byte-column copy: fast on unaligned records)."""
        raw = recs.view(np.uint8).reshape(len(recs), RECORD_SIZE)
        return np.ascontiguousarray(raw[idx, 17:17 + 4 * TEMPLATE_DIM]).view("<f4")

    def check(self, *, repair: bool, collect: bool = False) -> TemplateCheck:
        """Verify every record; with ``repair`` cut a torn tail and rewrite a file damaged in the middle.

        ``collect`` also returns the live templates as a matrix, so start-up reads the file once.
        """
        known = read_checksum(self.path)
        if known is not None:
            intact = self._check(repair=False, collect=collect, whole_crc=known)
            if intact is not None:
                return intact
        result = self._check(repair=repair, collect=collect)
        assert result is not None  # only a whole-file checksum check answers None
        if repair and self.path.exists():
            write_checksum(self.path)
        return result

    def _check(self, *, repair: bool, collect: bool, whole_crc: dict | None = None) -> TemplateCheck | None:
        """One pass over the file. With ``whole_crc``, records are trusted if the whole file matches that
        checksum — and None is returned when it does not."""
        result = TemplateCheck(rows=np.zeros(0, np.int64), ids=np.zeros(0, "S16"))
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return result
        rows, ids = [], []
        bad_rows: list[int] = []
        with f:
            header = f.read(len(HEADER))
            header_ok = header == HEADER
            size = os.fstat(f.fileno()).st_size
            if whole_crc is not None and (whole_crc["size"] != size or not header_ok):
                return None
            running = zlib.crc32(header)
            total = self._records_in(size)
            # Filled in place: pages past the live rows are never touched, so they cost no memory.
            matrix = np.empty((total, TEMPLATE_DIM), np.float32) if collect else None
            filled = 0
            for start, recs, ok, buf in self._chunks(f, verify=whole_crc is None):
                if whole_crc is not None:
                    running = zlib.crc32(buf, running)
                live = ok & (recs["kind"] == LIVE)
                idx = np.flatnonzero(live)
                rows.append(idx + start)
                ids.append(recs["id"][idx].copy())
                if matrix is not None:
                    matrix[filled:filled + len(idx)] = self._vectors(recs, idx)
                    filled += len(idx)
                bad_rows.extend((np.flatnonzero(~ok) + start).tolist())
            if whole_crc is not None:
                f.seek(len(HEADER) + total * RECORD_SIZE)
                if zlib.crc32(f.read(), running) != whole_crc["crc"]:
                    return None  # changed behind our back (or damaged): check record by record
        result.rows = np.concatenate(rows) if rows else result.rows
        result.ids = np.concatenate(ids) if ids else result.ids
        result.bad = len(bad_rows)
        if matrix is not None:
            result.matrix = matrix[:filled]
        end_good = len(HEADER) + total * RECORD_SIZE
        torn_only = header_ok and (
            (not bad_rows and size > end_good) or (bad_rows == [total - 1] and size == end_good))
        if not header_ok and size == 0:
            return result
        if (bad_rows or size != end_good or not header_ok) and repair:
            if torn_only:
                cut = end_good if not bad_rows else end_good - RECORD_SIZE
                kept = keep_torn_tail(self.path, cut)
                result.problems.append(f"{self.path.name}: incomplete last template record dropped "
                                       f"(power cut while writing?); the bytes were kept in {kept.name}")
                if bad_rows:
                    result.bad = 0
            else:
                kept = set_aside(self.path)
                self._rewrite(result.rows)
                result.rows = np.arange(len(result.rows), dtype=np.int64)
                result.problems.append(
                    f"{self.path.name}: damaged ({len(bad_rows)} bad record(s)"
                    f"{', bad header' if not header_ok else ''}); the good templates were kept, the damaged "
                    f"file was set aside as {kept.name}")
                result.bad = 0
        return result

    def _copy(self, rows: np.ndarray, target: Path) -> None:
        """Write a fresh template file at ``target`` holding only the given records."""
        with open(self.path, "rb") as f:
            parts = [HEADER]
            for r in rows.tolist():
                f.seek(len(HEADER) + r * RECORD_SIZE)
                parts.append(f.read(RECORD_SIZE))
        atomic_write(target, b"".join(parts))

    def _rewrite(self, rows: np.ndarray) -> None:
        """Replace the file by one holding only the given records (used by repair and compaction)."""
        self._copy(rows, self.path)
        self._out.reopen()
        write_checksum(self.path)

    def set_aside_rows(self, rows: np.ndarray, label: str) -> Path:
        """Keep copies of some records in ``templates.bin.<label>-<time>``, then wipe them here."""
        target = _free_name(self.path, label)
        self._copy(np.asarray(rows, np.int64), target)
        self.wipe(rows)
        return target

    def load(self, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The given live records as (hex ids, N x 128 float32), read in chunks (no second copy of the file)."""
        matrix = np.empty((len(rows), TEMPLATE_DIM), np.float32)
        ids = np.empty(len(rows), "S16")
        if not len(rows):
            return [], matrix
        filled = 0
        with open(self.path, "rb") as f:
            for start, recs, ok, _ in self._chunks(f):
                lo, hi = np.searchsorted(rows, [start, start + len(recs)])
                if lo == hi:
                    continue
                local = rows[lo:hi] - start
                keep = ok[local] & (recs["kind"][local] == LIVE)
                local = local[keep]
                n = len(local)
                matrix[filled:filled + n] = self._vectors(recs, local)
                ids[filled:filled + n] = recs["id"][local]
                filled += n
        return hex_ids(ids[:filled]), matrix[:filled]

    def append(self, cid: bytes, vectors: np.ndarray) -> np.ndarray:
        """Append one citizen's templates durably; return their record indexes."""
        vectors = np.asarray(vectors, np.float32).reshape(-1, TEMPLATE_DIM)
        size = self.path.stat().st_size if self.path.exists() else 0
        if size == 0:
            atomic_write(self.path, HEADER)
            self._out.reopen()
            size = len(HEADER)
        first = self._records_in(size)
        known = read_checksum(self.path)
        data = b"".join(_record_bytes(LIVE, cid, v) for v in vectors)
        self._out.append(data)
        _append_checksum(self.path, known, data)
        return np.arange(first, first + len(vectors), dtype=np.int64)

    def wipe(self, rows: Iterable[int]) -> None:
        """Overwrite records with zeros in place and make it durable (deletion really removes the bytes)."""
        rows = list(rows)
        if not rows:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY)
        except OSError as exc:
            raise StorageError(f"cannot open {self.path} for writing: {exc}") from exc
        try:
            for r in rows:
                os.pwrite(fd, _WIPED_RECORD, len(HEADER) + int(r) * RECORD_SIZE)
            os.fsync(fd)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}") from exc
        finally:
            os.close(fd)
        write_checksum(self.path)  # deletion is rare: one crc32 pass keeps start-up fast

    def compact(self, rows: np.ndarray) -> np.ndarray:
        """Drop wiped records by rewriting the file atomically; return the new indexes of ``rows``."""
        self._rewrite(rows)
        return np.arange(len(rows), dtype=np.int64)

    def close(self) -> None:
        self._out.close()
