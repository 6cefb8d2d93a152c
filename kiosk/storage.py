"""Crash-safe files for the kiosk's data: a tinydb ``Storage`` that never leaves a half-written file.

tinydb's default ``JSONStorage`` rewrites its whole file in place on every change, so a power cut mid-write
corrupts it and every insert costs a rewrite of all history. Everything here writes in one of two safe ways:

* append one self-checking record (``<crc32 hex> <json>\\n``) and ``fsync`` it — a torn last record is detected
  by its checksum and dropped, never mistaken for data;
* replace a whole file atomically: write a temporary file, ``fsync`` it, ``rename`` it over the old one,
  ``fsync`` the folder (:func:`atomic_write`).

:class:`JournalStorage` combines both for tinydb: each ``write`` appends only the documents that changed, and
the journal is compacted into a single snapshot record (atomically) once it outgrows the snapshot.
:class:`RecordLog` is the plain append-only variant (audit log, visit archives); :class:`TemplateFile` keeps
face templates as fixed-size binary records that numpy loads in one pass.

Damaged files are never deleted: a torn tail is saved beside the file (``name.torn-<time>``), a file damaged in
the middle is kept as ``name.corrupt-<time>`` and replaced by its last good state. What was done is reported in
``problems`` (one human-readable line each) so the store can tell the technician.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import secrets
import shutil
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from tinydb.storages import Storage

log = logging.getLogger("kiosk.store")

TEMP_MARK = ".tmp-"


class StorageError(Exception):
    """A file of the data folder cannot be read or written; the message names the file."""


# --------------------------------------------------------------------------------------------------------------
# Low-level durable writes


def fsync_dir(directory: Path) -> None:
    """Make a rename or a file creation in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that a power cut leaves either the old or the new file, never a mix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StorageError(f"cannot write {path}: {exc}") from exc
    fsync_dir(path.parent)


def remove_stale_temps(directory: Path) -> list[Path]:
    """Remove temporary files of atomic writes that a crash interrupted (the original is still intact)."""
    removed = []
    for tmp in Path(directory).glob(f".*{TEMP_MARK}*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%dT%H%M%S")


def _free_name(path: Path, suffix: str) -> Path:
    target = path.with_name(f"{path.name}.{suffix}-{_stamp()}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{suffix}-{_stamp()}-{n}")
    return target


def set_aside(path: Path) -> Path:
    """Keep the current content of ``path`` as ``name.corrupt-<time>`` before ``path`` gets replaced.

    A hard link costs nothing and keeps every byte; where links are impossible the file is copied.
    The caller then replaces ``path`` with :func:`atomic_write`, which leaves the kept inode untouched.
    """
    target = _free_name(path, "corrupt")
    try:
        os.link(path, target)
    except OSError:
        shutil.copy2(path, target)
    fsync_dir(path.parent)
    return target


def keep_torn_tail(path: Path, good_end: int) -> Path:
    """Save the bytes after ``good_end`` as ``name.torn-<time>``, then cut them off ``path``."""
    target = _free_name(path, "torn")
    with open(path, "rb") as src:
        src.seek(good_end)
        tail = src.read()
    atomic_write(target, tail)
    with open(path, "r+b") as f:
        f.truncate(good_end)
        f.flush()
        os.fsync(f.fileno())
    return target


# --------------------------------------------------------------------------------------------------------------
# Self-checking records: b"<crc32 of json, 8 hex> <json>\n"


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


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


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


class _Appender:
    """An append-only file descriptor whose every append is durable on return."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def append(self, data: bytes) -> None:
        if self._fd is None:
            existed = self.path.exists()
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StorageError(f"cannot open {self.path} for writing: {exc}") from exc
            if not existed:
                fsync_dir(self.path.parent)
        size = os.fstat(self._fd).st_size
        try:
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError as exc:
            # Take back a partial append so the next one does not land behind garbage.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise StorageError(f"cannot write {self.path}: {exc}") from exc

    def reopen(self) -> None:
        """Forget the descriptor (after the file was replaced, the old one points to the old inode)."""
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# --------------------------------------------------------------------------------------------------------------
# Append-only record log


def read_checksum(path: Path) -> dict | None:
    """The size and crc32 last recorded for the whole of ``path`` (``name.sum``), or None."""
    data = _read_bytes(Path(path).with_suffix(".sum"))
    if not data:
        return None
    try:
        rec = _decode_line(data.rstrip(b"\n"))
    except (ValueError, UnicodeDecodeError):
        return None
    return rec if isinstance(rec, dict) and {"size", "crc"} <= rec.keys() else None


def write_checksum(path: Path, size: int | None = None, crc: int | None = None) -> None:
    """Record size and crc32 of the whole of ``path`` (computed from the file when not given)."""
    if size is None or crc is None:
        data = Path(path).read_bytes()
        size, crc = len(data), zlib.crc32(data)
    atomic_write(Path(path).with_suffix(".sum"), encode_record({"size": size, "crc": crc}))


def _append_checksum(path: Path, known: dict | None, appended: bytes) -> None:
    """Update ``name.sum`` after an append: incrementally when it matched the file before the append."""
    size = Path(path).stat().st_size
    if known and known["size"] == size - len(appended):
        write_checksum(path, size, zlib.crc32(appended, known["crc"]))
    else:
        write_checksum(path)


class RecordLog:
    """An append-only file of self-checking JSON records (audit log, visit archives).

    ``RecordLog.load(path, repair=True)`` checks every record; with ``repair`` a torn tail is cut off and a file
    damaged in the middle is set aside and rewritten with its good records. ``repair=False`` (readers that must
    not touch the files of a running kiosk) just skips damaged records.

    With ``checksum=True`` (big files that are rarely appended to: the visit archives) a sidecar ``name.sum``
    holds the size and crc32 of the whole file, so checking it at start is one crc32 pass instead of a
    per-line check; a missing or stale sidecar just means the per-line check, after which it is rewritten.
    """

    def __init__(self, path: Path, *, checksum: bool = False):
        self.path = Path(path)
        self.checksum = checksum
        self._out = _Appender(self.path)

    @classmethod
    def load(cls, path: Path, *, repair: bool, decode: bool = True,
             checksum: bool = False) -> tuple[list[Any], list[str]]:
        """The good records of ``path`` and notes on what was repaired (``decode=False``: check only)."""
        path = Path(path)
        data = _read_bytes(path)
        if data is None:
            return [], []
        if checksum and not decode:
            known = read_checksum(path)
            if known and known["size"] == len(data) and known["crc"] == zlib.crc32(data):
                return [], []  # intact: the whole-file checksum matches
        records, problems = cls._scan_and_repair(path, data, repair=repair, decode=decode)
        if checksum and repair:
            write_checksum(path)
        return records, problems

    @classmethod
    def _scan_and_repair(cls, path: Path, data: bytes, *, repair: bool, decode: bool):
        scan = scan_records(data, decode=decode)
        problems: list[str] = []
        if repair and (scan.damaged or scan.torn):
            rewrite = b""
            if scan.damaged:
                if not decode:
                    scan = scan_records(data)
                rewrite = b"".join(encode_record(r) for r in scan.records)
            note = _repair(path, scan, rewrite)
            if note:
                problems.append(note)
        elif scan.bad_lines:
            problems.append(f"{path.name}: {scan.bad_lines} damaged record(s) skipped")
        return scan.records, problems

    def append(self, records: Iterable[Any]) -> None:
        data = b"".join(encode_record(r) for r in records)
        if not data:
            return
        known = read_checksum(self.path) if self.checksum else None
        self._out.append(data)
        if self.checksum:
            _append_checksum(self.path, known, data)

    def close(self) -> None:
        self._out.close()


# --------------------------------------------------------------------------------------------------------------
# tinydb Storage: journal + atomic snapshots

_CONTAINERS = (list, dict)


def _has_containers(doc: dict) -> bool:
    return any(isinstance(v, _CONTAINERS) for v in doc.values())


class JournalStorage(Storage):
    """A tinydb ``Storage`` that appends what changed and compacts atomically; crash-safe at every instant.

    Usage::

        storage = JournalStorage(path)
        db = TinyDB(storage=lambda: storage)  # or TinyDB(path, storage=JournalStorage)
        with storage.batch():                 # several tinydb operations, one durable record
            db.table("visits").insert({...})
            db.table("counters").update({...}, doc_ids=[1])

    Each tinydb ``write`` (or each ``batch``) is one record appended and ``fsync``-ed before it returns, so its
    cost follows the size of the change, not of the database. When the journal grows bigger than the last
    snapshot (and ``compact_min_bytes``), the whole state is written as one snapshot with :func:`atomic_write`.

    ``read`` hands tinydb a private copy (documents copied one level deep, nested lists/dicts deep) so tinydb's
    in-place updates can be compared with the last durable state; the copy is reused until the next write.
    """

    def __init__(self, path: str | Path, *, repair: bool = True, readonly: bool = False,
                 compact_min_bytes: int = 256 * 1024, **_ignored: Any):
        self.path = Path(path)
        self.readonly = readonly
        self.compact_min_bytes = compact_min_bytes
        self.problems: list[str] = []
        self.damaged = False  # the file needed more than cutting a torn tail: data may be missing
        self._state: dict[str, dict[str, dict]] = {}
        self._nested: dict[str, set[str]] = {}  # per table (computed on first copy): docs with lists/dicts
        self._scratch: dict | None = None
        self._handed: dict[str, Any] = {}
        self._pending: dict | None = None
        self._batch_depth = 0
        self._out = _Appender(self.path)
        self._load(repair=repair and not readonly)

    # -- loading ---------------------------------------------------------------------------------------------
    def _load(self, *, repair: bool) -> None:
        data = _read_bytes(self.path)
        if data is None:  # created by the first write (appending to a new file is as safe)
            self._snapshot_bytes = 0
            self._journal_bytes = 0
            return
        scan = scan_records(data)
        state: dict[str, dict[str, dict]] = {}
        snapshot_bytes = 0
        for i, rec in enumerate(scan.records):
            if not isinstance(rec, dict):
                continue
            if "snap" in rec:
                state = rec["snap"]
                snapshot_bytes = scan.first_len if i == 0 else 0
            else:
                _apply(state, rec)
        self._state = state
        self.damaged = scan.damaged or (scan.size > 0 and not scan.records)
        self._snapshot_bytes = snapshot_bytes
        self._journal_bytes = scan.good_end - snapshot_bytes
        if scan.damaged or scan.torn:
            msg = _repair(self.path, scan, encode_record({"snap": state})) if repair else (
                f"{self.path.name}: {scan.bad_lines} damaged record(s) skipped")
            if msg:
                self.problems.append(msg)
            if scan.damaged and repair:
                self._snapshot_bytes, self._journal_bytes = self.path.stat().st_size, 0

    # -- tinydb Storage interface ----------------------------------------------------------------------------
    def peek(self) -> dict[str, dict[str, Any]]:
        """The durable state itself, without a copy: for callers that only look (never mutate it)."""
        return self._pending if self._pending is not None else self._state

    def read(self) -> dict[str, dict[str, Any]]:
        if self._pending is not None:
            return self._pending
        if self._scratch is None:
            self._scratch = self._copy_state()
            self._handed = dict(self._scratch)
        return self._scratch

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if self.readonly:
            raise StorageError(f"{self.path} is open read-only")
        if self._batch_depth:
            self._pending = data
            return
        self._commit(data)

    def close(self) -> None:
        self._out.close()

    # -- batches ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group several tinydb operations into one durable record: all of them or none after a crash."""
        self._batch_depth += 1
        try:
            yield
        except BaseException:
            self._batch_depth -= 1
            if not self._batch_depth:
                self._pending = None
                self._scratch = None  # drop the half-changed copy: roll back to the durable state
            raise
        self._batch_depth -= 1
        if not self._batch_depth and self._pending is not None:
            pending, self._pending = self._pending, None
            self._commit(pending)

    # -- internals -------------------------------------------------------------------------------------------
    def _copy_state(self) -> dict:
        out = {}
        for t, docs in self._state.items():
            table = {k: dict(d) for k, d in docs.items()}
            if t not in self._nested:
                self._nested[t] = {k for k, d in docs.items() if _has_containers(d)}
            for k in self._nested[t]:
                if k in docs:
                    table[k] = copy.deepcopy(docs[k])
            out[t] = table
        return out

    def _diff(self, new: dict) -> dict | None:
        old = self._state
        sets: dict[str, dict] = {}
        dels: dict[str, list] = {}
        for t, docs in new.items():
            if self._handed.get(t) is docs:
                continue  # tinydb did not touch this table
            before = old.get(t)
            if before is None:
                sets[t] = docs
                continue
            changed = {k: d for k, d in docs.items() if before.get(k) != d}
            added = sum(1 for k in changed if k not in before)
            if len(before) + added != len(docs):
                gone = [k for k in before if k not in docs]
                if gone:
                    dels[t] = gone
            if changed:
                sets[t] = changed
        drop = [t for t in old if t not in new]
        rec: dict[str, Any] = {}
        if sets:
            rec["set"] = sets
        if dels:
            rec["del"] = dels
        if drop:
            rec["drop"] = drop
        return rec or None

    def _commit(self, data: dict) -> None:
        try:
            rec = self._diff(data)
            if rec is not None:
                line = encode_record(rec)
                self._out.append(line)
                self._journal_bytes += len(line)
                for t, docs in rec.get("set", {}).items():
                    nested = self._nested.get(t)
                    if nested is not None:
                        for k, d in docs.items():
                            (nested.add if _has_containers(d) else nested.discard)(k)
                for t, ids in rec.get("del", {}).items():
                    if t in self._nested:
                        self._nested[t].difference_update(ids)
                for t in rec.get("drop", ()):
                    self._nested.pop(t, None)
        except BaseException:
            self._scratch = None  # the copy holds changes that did not reach the disk
            raise
        self._state = {t: docs for t, docs in data.items()}
        self._scratch = None
        if self._journal_bytes > max(self.compact_min_bytes, self._snapshot_bytes):
            try:
                self.compact()
            except StorageError as exc:
                # The write itself is durable: a failed compaction must not make it look failed.
                log.warning("%s: compaction postponed: %s", self.path.name, exc)
                self._snapshot_bytes = self._journal_bytes  # try again when the journal has doubled

    def _write_snapshot(self) -> None:
        data = encode_record({"snap": self._state})
        atomic_write(self.path, data)
        self._out.reopen()
        self._snapshot_bytes = len(data)
        self._journal_bytes = 0

    def compact(self) -> None:
        """Rewrite the journal as one snapshot record, atomically."""
        self._write_snapshot()


def _apply(state: dict, rec: dict) -> None:
    for t, docs in rec.get("set", {}).items():
        state.setdefault(t, {}).update(docs)
    for t, ids in rec.get("del", {}).items():
        table = state.get(t, {})
        for k in ids:
            table.pop(k, None)
    for t in rec.get("drop", ()):
        state.pop(t, None)


# --------------------------------------------------------------------------------------------------------------
# Face templates: fixed-size binary records

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


# --------------------------------------------------------------------------------------------------------------
# A small record rewritten in place, safely: two alternating slots


class SlotFile:
    """A small JSON record (< 4 KiB) rewritten often: two fixed slots written alternately in place.

    Each write goes to the slot not holding the newest record and is fsync-ed; a write torn by a power cut
    damages only that slot, so the previous record survives. Reading takes the valid slot with the highest
    sequence number. One fsync and one 4 KiB block per write, whatever the age of the data.
    """

    SLOT = 4096

    def __init__(self, path: Path):
        self.path = Path(path)
        self.seq = 0
        self._fd: int | None = None

    def read(self) -> tuple[dict | None, bool]:
        """(newest valid record or None, whether some non-empty slot was damaged)."""
        data = _read_bytes(self.path)
        if data is None:
            return None, False
        best, damaged = None, False
        for start in (0, self.SLOT):
            chunk = data[start:start + self.SLOT].rstrip(b" \n\0")
            if not chunk:
                continue
            try:
                rec = _decode_line(chunk)
                if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int):
                    raise ValueError("not a slot record")
            except (ValueError, UnicodeDecodeError):
                damaged = True
                continue
            if best is None or rec["seq"] > best["seq"]:
                best = rec
        if best is not None:
            self.seq = best["seq"]
        return best, damaged or (best is None and bool(data.strip(b"\0")))

    def write(self, record: dict) -> None:
        self.seq += 1
        line = encode_record({**record, "seq": self.seq})
        if len(line) > self.SLOT:
            raise StorageError(f"{self.path}: record of {len(line)} bytes does not fit a {self.SLOT}-byte slot")
        if self._fd is None:
            existed = self.path.exists()
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StorageError(f"cannot open {self.path} for writing: {exc}") from exc
            if not existed:
                fsync_dir(self.path.parent)
        try:
            os.pwrite(self._fd, line.ljust(self.SLOT, b" "), (self.seq % 2) * self.SLOT)
            os.fsync(self._fd)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}") from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
