"""Face templates: fixed-size binary records (128 float32, sealed with the data key, and a crc32 each) that numpy
loads in one pass."""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

from kiosk.storage.files import StorageError, _Appender, _free_name, atomic_write, keep_torn_tail, set_aside
from kiosk.storage.records import (
    _append_checksum,
    crc32_overwritten,
    proven_loss,
    read_checksum,
    replace_with_checksum,
    write_checksum,
)

TEMPLATE_MAGIC = b"KIOSKTPL"
TEMPLATE_VERSION = 1          # clear templates (before encryption at rest; read only to migrate them)
SEALED_VERSION = 2            # each template sealed with the data key (kiosk.datakey)
TEMPLATE_DIM = 128
VEC_BYTES = 4 * TEMPLATE_DIM
SEAL_OVERHEAD = 40            # kiosk.datakey.OVERHEAD: 24-byte nonce + 16-byte tag
HEADER = TEMPLATE_MAGIC + np.array([TEMPLATE_VERSION, 0], "<u4").tobytes()  # 16 bytes
SEALED_HEADER = TEMPLATE_MAGIC + np.array([SEALED_VERSION, 0], "<u4").tobytes()
RECORD = np.dtype([("kind", "u1"), ("id", "S16"), ("vec", "<f4", (TEMPLATE_DIM,)), ("crc", "<u4")])
RECORD_SIZE = RECORD.itemsize  # 533
SEALED_RECORD = np.dtype([("kind", "u1"), ("id", "S16"), ("box", f"V{VEC_BYTES + SEAL_OVERHEAD}"), ("crc", "<u4")])
LIVE, WIPED = 1, 0


class Sealer(Protocol):
    """What the template file needs of the data key (:class:`kiosk.datakey.DataKey`)."""
    def seal(self, plain: bytes, aad: bytes) -> bytes: ...
    def open(self, sealed: bytes, aad: bytes) -> bytes: ...
    def open_many(self, data: bytes, offsets: Sequence[int], *, aad_len: int, sealed_len: int,
                  out: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Layout:
    """One version of the file: its header and record type."""
    version: int
    header: bytes
    dtype: np.dtype

    @property
    def size(self) -> int:
        return self.dtype.itemsize


CLEAR = Layout(TEMPLATE_VERSION, HEADER, RECORD)
SEALED = Layout(SEALED_VERSION, SEALED_HEADER, SEALED_RECORD)   # 573-byte records


def _layout_of(header: bytes) -> Layout | None:
    return {CLEAR.header: CLEAR, SEALED.header: SEALED}.get(header)


def _with_crc(body: bytes) -> bytes:
    return body + np.array([zlib.crc32(body)], "<u4").tobytes()


def _record_bytes(kind: int, cid: bytes, vec: np.ndarray) -> bytes:
    return _with_crc(bytes([kind]) + cid + np.ascontiguousarray(vec, "<f4").tobytes())


def _sealed_record_bytes(key: Sealer, cid: bytes, vec: np.ndarray) -> bytes:
    """A live sealed record: the owner id stays clear (to find, wipe and count), the template is sealed to it."""
    return _with_crc(bytes([LIVE]) + cid + key.seal(np.ascontiguousarray(vec, "<f4").tobytes(), cid))


_WIPED_ID = b"\0" * 16
_WIPED = {CLEAR.version: _record_bytes(WIPED, _WIPED_ID, np.zeros(TEMPLATE_DIM, "<f4")),
          SEALED.version: _with_crc(bytes(SEALED.size - 4))}


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
    lost: int = 0  # template records the checksum file proves were there and are not any more
    # The live records' float32 templates, when asked for: one array per chunk read (k x 128), in file order, so
    # that whoever takes them can free each piece once used instead of holding a second 154 MB matrix beside
    # the first (the face index at 300,000 templates).
    parts: list[np.ndarray] | None = None

    @property
    def matrix(self) -> np.ndarray | None:
        """The collected templates as one N x 128 matrix (a copy)."""
        if self.parts is None:
            return None
        return np.concatenate(self.parts) if self.parts else np.zeros((0, TEMPLATE_DIM), np.float32)


class TemplateFile:
    """Face templates as ``[kind u8][citizen id 16 B][template][crc32]`` records after a 16-byte header.

    With a data key (``key``) the template is sealed (``SEALED``, version 2: nonce + XChaCha20-Poly1305 of the
    128 float32, the owner id as associated data); without one the file is the older clear format (version 1),
    which :meth:`migrate` seals in one atomic rewrite. A reader without the key still sees the owner ids (to
    count and wipe), never a template.

    Appending is durable on return; a torn last record fails its crc and is dropped. Deleting (``wipe``)
    overwrites the citizen's records in place with zeros — the template bytes are gone from the file at once,
    and a wipe torn by a power cut is just a record with a bad crc, which is dropped as well.
    ``templates.sum`` holds the crc32 of the whole file: when it matches, start-up skips the per-record check.
    """

    CHUNK = 32768  # records per read while checking (about 19 MB; its templates 17 MB: kiosk.memory.BIG_BLOCK)

    def __init__(self, path: Path, key: Sealer | None = None):
        self.path = Path(path)
        self.key = key
        self._out = _Appender(self.path)
        self.unopened = 0    # live records whose seal did not open at the last check (changed bytes): not used
        self.layout = SEALED if key is not None else CLEAR
        try:
            with open(self.path, "rb") as f:
                found = _layout_of(f.read(len(HEADER)))
        except OSError:
            found = None
        if found is not None:
            self.layout = found   # a clear file waits for migrate(); a sealed one is read (ids only) without a key

    @property
    def needs_sealing(self) -> bool:
        """A key is there but the file still holds clear templates."""
        return self.key is not None and self.layout is CLEAR and self.path.exists()

    def _records_in(self, size: int) -> int:
        return max(0, (size - len(HEADER)) // self.layout.size)

    def _chunks(self, f, *, verify: bool = True) -> Iterator[tuple[int, np.ndarray, np.ndarray, bytes]]:
        """(first record index, records, crc ok mask, raw bytes) over the file, chunk by chunk."""
        size = os.fstat(f.fileno()).st_size
        total = self._records_in(size)
        rsize = self.layout.size
        for start in range(0, total, self.CHUNK):
            count = min(self.CHUNK, total - start)
            f.seek(len(HEADER) + start * rsize)
            buf = f.read(count * rsize)
            count = len(buf) // rsize
            recs = np.frombuffer(buf, self.layout.dtype, count=count)
            if verify:
                mv = memoryview(buf)[:count * rsize]
                crc = zlib.crc32
                ok = np.fromiter(
                    (crc(mv[i:i + rsize - 4]) for i in range(0, count * rsize, rsize)),
                    np.uint32, count) == recs["crc"]
            else:
                ok = np.ones(count, bool)
            yield start, recs, ok, buf

    def _vectors(self, recs: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The float32 templates of records ``idx`` and which of them opened (all, in the clear format)."""
        raw = recs.view(np.uint8).reshape(len(recs), self.layout.size)
        if self.layout is CLEAR:
            return np.ascontiguousarray(raw[idx, 17:17 + VEC_BYTES]).view("<f4"), np.ones(len(idx), bool)
        if self.key is None:
            raise StorageError(f"{self.path}: the templates are sealed and no data key was given")
        size = self.layout.size
        out = np.empty((len(idx), TEMPLATE_DIM), np.float32)
        opened = self.key.open_many(recs.tobytes(), (idx * size + 1).tolist(), aad_len=16,
                                    sealed_len=size - 21, out=out)
        return out, opened

    def check(self, *, repair: bool, collect: bool = False) -> TemplateCheck:
        """Verify every record; with ``repair`` cut a torn tail and rewrite a file damaged in the middle.

        ``collect`` also returns the live templates as a matrix (opened with the key), so start-up reads the
        file once; a sealed record that does not open is left out and counted in ``unopened``.
        """
        known = read_checksum(self.path)
        if known is not None:
            intact = self._check(repair=False, collect=collect, whole_crc=known)
            if intact is not None:
                return intact
        size = self.path.stat().st_size if self.path.exists() else 0
        loss = None
        if repair and known is not None and size < known["size"]:
            records = -(-(known["size"] - max(size, len(HEADER))) // self.layout.size)  # a cut record counts
            loss = proven_loss(self.path, known, size, f"{records} template record(s)")
        result = self._check(repair=repair, collect=collect)
        assert result is not None  # only a whole-file checksum check answers None
        if loss:
            result.problems.insert(0, loss)
            result.lost = records
        if repair and self.path.exists():
            write_checksum(self.path)
        elif loss:   # the file is gone: its sidecar (kept as proof) must not report the same loss again
            self.path.with_suffix(".sum").unlink()
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
        unopened = 0
        rsize = self.layout.size
        with f:
            header = f.read(len(HEADER))
            header_ok = header == self.layout.header
            size = os.fstat(f.fileno()).st_size
            if whole_crc is not None and (whole_crc["size"] != size or not header_ok):
                return None
            running = zlib.crc32(header)
            total = self._records_in(size)
            parts: list[np.ndarray] | None = [] if collect else None
            for start, recs, ok, buf in self._chunks(f, verify=whole_crc is None):
                if whole_crc is not None:
                    running = zlib.crc32(buf, running)
                live = ok & (recs["kind"] == LIVE)
                idx = np.flatnonzero(live)
                if parts is not None:
                    vecs, opened = self._vectors(recs, idx)
                    if not opened.all():
                        unopened += int((~opened).sum())
                        idx, vecs = idx[opened], vecs[opened]
                    parts.append(vecs)
                rows.append(idx + start)
                ids.append(recs["id"][idx].copy())
                bad_rows.extend((np.flatnonzero(~ok) + start).tolist())
            if whole_crc is not None:
                f.seek(len(HEADER) + total * rsize)
                if zlib.crc32(f.read(), running) != whole_crc["crc"]:
                    return None  # changed behind our back (or damaged): check record by record
        self.unopened = unopened
        if unopened:
            result.problems.append(f"{self.path.name}: {unopened} face template(s) do not open with the data key "
                                   f"(bytes changed): not used")
        result.rows = np.concatenate(rows) if rows else result.rows
        result.ids = np.concatenate(ids) if ids else result.ids
        result.bad = len(bad_rows)
        result.parts = parts
        end_good = len(HEADER) + total * rsize
        torn_only = header_ok and (
            (not bad_rows and size > end_good) or (bad_rows == [total - 1] and size == end_good))
        if not header_ok and size == 0:
            return result
        if (bad_rows or size != end_good or not header_ok) and repair:
            if torn_only:
                cut = end_good if not bad_rows else end_good - rsize
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

    def _bytes_of(self, rows: np.ndarray) -> bytes:
        """A fresh template file's bytes holding only the given records."""
        rsize = self.layout.size
        with open(self.path, "rb") as f:
            parts = [self.layout.header]
            for r in rows.tolist():
                f.seek(len(HEADER) + r * rsize)
                parts.append(f.read(rsize))
        return b"".join(parts)

    def _copy(self, rows: np.ndarray, target: Path) -> None:
        """Write a fresh template file at ``target`` holding only the given records."""
        atomic_write(target, self._bytes_of(rows))

    def _rewrite(self, rows: np.ndarray) -> None:
        """Replace the file by one holding only the given records (used by repair and compaction); the checksum
        file first, so that a crash in between never looks like a loss (:func:`replace_with_checksum`)."""
        replace_with_checksum(self.path, self._bytes_of(rows))
        self._out.reopen()

    def migrate(self, rows: np.ndarray) -> np.ndarray:
        """Seal a clear file: one atomic rewrite holding the given live records, sealed; their new indexes.

        A power cut leaves either the clear file (sealed again at the next start) or the sealed one.
        """
        assert self.key is not None and self.layout is CLEAR
        ids, matrix = self.load(np.sort(np.asarray(rows, np.int64)))
        data = b"".join(_sealed_record_bytes(self.key, bytes.fromhex(cid), v) for cid, v in zip(ids, matrix))
        replace_with_checksum(self.path, SEALED_HEADER + data)
        self.layout = SEALED
        self._out.reopen()
        return np.arange(len(ids), dtype=np.int64)

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
                vecs, opened = self._vectors(recs, local)
                local, vecs = local[opened], vecs[opened]
                n = len(local)
                matrix[filled:filled + n] = vecs
                ids[filled:filled + n] = recs["id"][local]
                filled += n
        return hex_ids(ids[:filled]), matrix[:filled]

    def append(self, cid: bytes, vectors: np.ndarray) -> np.ndarray:
        """Append one citizen's templates durably; return their record indexes."""
        vectors = np.asarray(vectors, np.float32).reshape(-1, TEMPLATE_DIM)
        if self.needs_sealing:
            raise StorageError(f"{self.path}: clear templates must be sealed (migrate) before adding any")
        size = self.path.stat().st_size if self.path.exists() else 0
        if size == 0:
            self.layout = SEALED if self.key is not None else CLEAR
            atomic_write(self.path, self.layout.header)
            self._out.reopen()
            size = len(HEADER)
        first = self._records_in(size)
        known = read_checksum(self.path)
        if self.layout is SEALED:
            if self.key is None:
                raise StorageError(f"{self.path}: the templates are sealed and no data key was given")
            data = b"".join(_sealed_record_bytes(self.key, cid, v) for v in vectors)
        else:
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
            fd = os.open(self.path, os.O_RDWR)
        except OSError as exc:
            raise StorageError(f"cannot open {self.path} for writing: {exc}") from exc
        wiped, known = _WIPED[self.layout.version], read_checksum(self.path)
        changes = []
        try:
            size = os.fstat(fd).st_size
            for r in rows:
                at = len(HEADER) + int(r) * self.layout.size
                changes.append((at, os.pread(fd, len(wiped), at), wiped))
                os.pwrite(fd, wiped, at)
            os.fsync(fd)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}") from exc
        finally:
            os.close(fd)
        if known and known["size"] == size and all(len(old) == len(wiped) for _, old, _ in changes):
            # the whole-file crc32 from the old one and the rows changed: a purge step costs what it changes
            write_checksum(self.path, size, crc32_overwritten(known["crc"], size, changes))
        else:
            write_checksum(self.path)

    def rows_of(self, cids: bytes | set[bytes]) -> np.ndarray:
        """Every record carrying one of these owner ids, whatever its crc or seal says (deletion takes them all)."""
        wanted = np.array(sorted({cids} if isinstance(cids, bytes) else cids), "S16")
        found = []
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return np.zeros(0, np.int64)
        with f:
            for start, recs, _, _ in self._chunks(f, verify=False):
                found.append(np.flatnonzero(np.isin(recs["id"], wanted)) + start)
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def compact(self, rows: np.ndarray) -> np.ndarray:
        """Drop wiped records by rewriting the file atomically; return the new indexes of ``rows``."""
        self._rewrite(rows)
        return np.arange(len(rows), dtype=np.int64)

    def close(self) -> None:
        self._out.close()


# ------------------------------------------------------------------------------- copies set aside after damage
SET_ASIDE_LABELS = ("corrupt", "torn", "orphans")


def set_aside_copies(path: Path) -> list[Path]:
    """The copies of ``path`` that repairs kept beside it (``name.corrupt-*``, ``.torn-*``, ``.orphans-*``)."""
    path = Path(path)
    return sorted(p for label in SET_ASIDE_LABELS for p in path.parent.glob(f"{path.name}.{label}-*"))


def _split_copy(data: bytes) -> tuple[bytes, Layout | None, list[bytes]]:
    """(header, layout, records) of a set-aside copy; a torn tail has no header and is cut at a record edge."""
    layout = _layout_of(data[:len(HEADER)])
    if layout is not None:
        body, header = data[len(HEADER):], data[:len(HEADER)]
    else:
        body, header = data, b""
    step = (layout or CLEAR).size
    return header, layout, [body[i:i + step] for i in range(0, len(body), step)]


def scrub_copies(path: Path, cids: set[bytes]) -> int:
    """Remove some citizens' records from every set-aside copy of ``path`` (rewritten atomically, or deleted
    when nothing else is left); the number of records removed.

    A torn tail has no header: its pieces are matched on the owner id at both record sizes.
    """
    removed = 0
    for copy in set_aside_copies(path):
        data = copy.read_bytes()
        header, layout, recs = _split_copy(data)
        if layout is None and not header:
            hits = any(data[i + 1:i + 17] in cids for step in (CLEAR.size, SEALED.size)
                       for i in range(0, len(data), step))
            if hits:
                copy.unlink()
                removed += 1
            continue
        keep = [r for r in recs if r[1:17] not in cids]
        if len(keep) == len(recs):
            continue
        removed += len(recs) - len(keep)
        if any(r[:1] == bytes([LIVE]) for r in keep):
            atomic_write(copy, header + b"".join(keep))
        else:
            copy.unlink()
    return removed


def seal_copies(path: Path, key: Sealer) -> int:
    """Seal the clear templates of every set-aside copy of ``path`` (at the migration); copies rewritten.

    Whole records are sealed whatever their crc said (the copy is kept for a technician, never loaded); the
    partial template of a torn tail is dropped, because it cannot be sealed whole and must not stay in clear.
    """
    done = 0
    for copy in set_aside_copies(path):
        with open(copy, "rb") as f:
            if f.read(len(HEADER)) == SEALED_HEADER:
                continue
        header, layout, recs = _split_copy(copy.read_bytes())
        sealed = [_sealed_record_bytes(key, r[1:17], np.frombuffer(r[17:17 + VEC_BYTES], "<f4"))
                  for r in recs if len(r) == CLEAR.size]
        if sealed:
            atomic_write(copy, (SEALED_HEADER if header else b"") + b"".join(sealed))
        else:
            copy.unlink()
        done += 1
    return done
