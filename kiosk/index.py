"""The encoding cache: every stored face template in memory, matched in milliseconds by a bound-and-refine scan.

A district kiosk holds about 100,000 citizens with three templates each: 300,000 rows of 128 float32, 154 MB,
more than one core can read in the 5 ms a match may cost. So each template is stored *rotated* onto the
principal axes of the faces enrolled (an orthonormal change of basis: distances are unchanged) and split in two
contiguous blocks: a **head** of the first 32 coordinates, where most of the variance of real face encodings
lies, and the **tail** of the other 96, of which only each row's norm is used by the scan. One match:

1. *Bound*: one matrix-vector product over the head (39 MB at 300,000 rows) gives, for every row, a lower bound
   of its true squared distance: ``|head(q) - head(t)|^2 + (|tail(q)| - |tail(t)|)^2`` (the two parts of a
   squared distance in an orthonormal basis; the second by the triangle inequality).
2. *Refine*: the few rows with the smallest bounds get their exact float32 distance (all 128 coordinates,
   computed as a plain difference); that gives the nearest citizen and the nearest *other* citizen among them.
   Every row whose bound is under that runner-up distance (plus a slack for float rounding) is then measured
   exactly too. A row outside that set is provably further than both, so the answer is the exact one: the same
   nearest citizen, distance and runner-up as a full float32 scan, at any threshold and margin.

A match is accepted only when the nearest citizen is under the threshold *and* every other citizen is further
away by at least the margin, so two look-alikes never get each other's records.

The rotation is fitted on the templates when the index is built and again whenever it has doubled since (a
fresh kiosk starts empty); adding or removing a citizen never needs it refitted, it only keeps the bounds tight.
The loop adds and removes citizens while the recognition worker matches, hence the lock.

    >>> index = FaceIndex()
    >>> index.add("c1", np.zeros((2, 128), np.float32))
    >>> index.match(np.zeros(128, np.float32), threshold=0.5, margin=0.05).citizen_id
    'c1'
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

DIMENSIONS = 128
HEAD = 32                 # coordinates scanned for every row; the rest only through each row's tail norm
_MIN_CAPACITY = 64
_GROWTH = 1.5
_FIRST_CANDIDATES = 32    # rows measured exactly before the refine pass (several templates per citizen)
_FIT_MIN_ROWS = 256       # fewer rows: keep the current rotation (identity at first)
_FIT_SAMPLE = 20_000      # rows used to fit the rotation (a random sample of bigger indexes)
_CHUNK = 2048           # rows converted at a time: small temporaries, reused (no heap left fragmented)
# Float32 rounding of the bound's expansion is ~1e-7 of |q|^2 + |t|^2 (about 0.5 for face encodings); the slack,
# relative to those norms, keeps every row whose true distance could be the runner-up in the refine set, with a
# safety factor of about 1,000.
_SLACK = 1e-4


@dataclass(frozen=True)
class Match:
    """The verdict of one match: who (or nobody), how close, and how close the nearest *other* citizen is."""

    citizen_id: str | None  # accepted identity, None when nobody passed threshold and margin
    distance: float         # distance to the nearest template of anyone (inf when the index is empty)
    runner_up: float        # distance to the nearest template of a different citizen (inf when none)
    nearest: str | None = None  # the nearest citizen, accepted or not (for calibration and logs)

    @property
    def accepted(self) -> bool:
        return self.citizen_id is not None


def _as_encodings(encodings: np.ndarray, what: str) -> np.ndarray:
    """Validate and convert to a k x 128 float32 array (a single 128-vector is one row)."""
    array = np.asarray(encodings, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != DIMENSIONS:
        raise ValueError(f"{what}: expected k x {DIMENSIONS} face encodings, got shape {np.shape(encodings)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what}: face encodings contain NaN or infinity")
    return array


class FaceIndex:
    """Citizen ids and their face templates; ``match`` is exact, and costs one scan of a quarter of the data."""

    def __init__(self, ids: Sequence[str] = (), matrix: np.ndarray | None = None):
        """Build from the store's ``templates()``: one id per matrix row (a citizen may repeat)."""
        if matrix is None and len(ids):
            raise ValueError("FaceIndex: ids given without a matrix")
        self._build(list(ids), [] if matrix is None or not np.size(matrix) else [matrix])

    @classmethod
    def from_parts(cls, ids: Sequence[str], parts: list[np.ndarray]) -> "FaceIndex":
        """Build from the store's ``template_parts()``, taking the pieces out of ``parts`` as they are copied
        (the list is left empty): only one piece at a time exists twice, not the whole 154 MB matrix."""
        index = cls.__new__(cls)
        index._build(list(ids), parts)
        return index

    def _build(self, ids: list[str], parts: list[np.ndarray]) -> None:
        self._lock = threading.Lock()
        self._code_of: dict[str, int] = {}   # citizen id -> small integer code
        self._id_of: list[str | None] = []   # code -> citizen id (None once removed)
        for i, part in enumerate(parts):
            parts[i] = _as_encodings(part, "FaceIndex matrix") if np.size(part) else np.empty((0, DIMENSIONS), np.float32)
        total = sum(len(part) for part in parts)
        if len(ids) != total:
            raise ValueError(f"FaceIndex: {len(ids)} ids for {total} matrix rows")
        self._mean = np.zeros(DIMENSIONS, np.float32)
        self._basis = np.eye(DIMENSIONS, dtype=np.float32)  # columns: the axes, most variance first
        self._fitted_at = 0
        if total >= _FIT_MIN_ROWS:
            mean, basis = _fit(_sample(parts, total))
            self._mean, self._basis = mean.astype(np.float32), basis.astype(np.float32)
            self._fitted_at = total
        capacity = total + max(_MIN_CAPACITY, total // 64)   # room for weeks of enrolments, not 25% more
        self._head = np.empty((capacity, HEAD), np.float32)
        self._tail = np.empty((capacity, DIMENSIONS - HEAD), np.float32)
        self._head_sq = np.empty(capacity, np.float32)     # |head(t)|^2
        self._tail_norm = np.empty(capacity, np.float32)   # |tail(t)|
        self._owner = np.empty(capacity, np.int32)         # citizen code of each row
        self._max_sq = 0.0                                 # largest |t|^2 ever stored (scales the slack)
        self._n = 0
        if total:
            code_of, id_of = self._code_of, self._id_of
            codes = np.array([code_of.setdefault(citizen, len(code_of)) for citizen in ids], np.int32)
            id_of.extend(code_of)            # insertion order: code -> id
            done = 0
            while parts:
                part = parts.pop(0)          # the caller's last reference: freed once copied
                self._append(codes[done:done + len(part)], part)
                done += len(part)
                del part

    # -- reading -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of templates (rows)."""
        return self._n

    def __contains__(self, citizen_id: object) -> bool:
        return citizen_id in self._code_of

    @property
    def citizen_count(self) -> int:
        return len(self._code_of)

    @property
    def nbytes(self) -> int:
        """Memory held by the rows (capacity included): for benchmarks and the technician's report."""
        return sum(a.nbytes for a in (self._head, self._tail, self._head_sq, self._tail_norm, self._owner))

    def templates_of(self, citizen_id: str) -> np.ndarray:
        """A copy of one citizen's templates (k x 128; empty when unknown), equal to the added ones within float32 rounding."""
        with self._lock:
            code = self._code_of.get(citizen_id)
            if code is None:
                return np.empty((0, DIMENSIONS), np.float32)
            rows = np.flatnonzero(self._owner[: self._n] == code)
            rotated = np.hstack([self._head[rows], self._tail[rows]]).astype(np.float64)
            return (rotated @ self._basis.T.astype(np.float64) + self._mean).astype(np.float32)

    # -- writing -------------------------------------------------------------------------------------------
    def add(self, citizen_id: str, encodings: np.ndarray) -> None:
        """Add templates for a citizen (new, or more templates for an existing one)."""
        if not isinstance(citizen_id, str) or not citizen_id:
            raise ValueError(f"FaceIndex.add: citizen id must be a non-empty string, got {citizen_id!r}")
        rows = _as_encodings(encodings, f"FaceIndex.add({citizen_id!r})")
        if not len(rows):
            return
        with self._lock:
            code = self._code(citizen_id)
            self._append(np.full(len(rows), code, np.int32), rows)
            if self._n >= max(_FIT_MIN_ROWS, 2 * self._fitted_at):
                self._refit()

    def remove(self, citizen_id: str) -> None:
        """Forget every template of a citizen (no error when unknown: deletion is idempotent). The last rows move
        into the holes (row order means nothing), so a removal costs what it removes, not a copy of every row."""
        with self._lock:
            code = self._code_of.pop(citizen_id, None)
            if code is None:
                return
            self._id_of[code] = None
            n = self._n
            gone = np.flatnonzero(self._owner[:n] == code)
            kept = n - len(gone)
            holes = gone[gone < kept]
            movers = np.setdiff1d(np.arange(kept, n), gone, assume_unique=True)   # as many as the holes
            for array in (self._head, self._tail, self._head_sq, self._tail_norm, self._owner):
                array[holes] = array[movers]
            self._head[kept:n] = 0.0  # leave no trace of the deleted face in memory
            self._tail[kept:n] = 0.0
            self._n = kept

    # -- matching ------------------------------------------------------------------------------------------
    def distances(self, encoding: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Distance from one encoding to every template, with the owner of each row (for calibration)."""
        query = _as_encodings(encoding, "FaceIndex.distances")[0]
        with self._lock:
            n = self._n
            head_q, tail_q = self._rotate_query(query)
            d2 = _exact_sq(self._head[:n], self._tail[:n], head_q, tail_q)
            owners = [self._id_of[c] for c in self._owner[:n]]
        return owners, np.sqrt(d2)

    def match(self, encoding: np.ndarray, *, threshold: float, margin: float) -> Match:
        """Nearest citizen, accepted only if under ``threshold`` and ahead of every other citizen by ``margin``."""
        query = np.asarray(encoding, dtype=np.float32).reshape(-1)
        if query.shape != (DIMENSIONS,):
            raise ValueError(f"FaceIndex.match: expected one {DIMENSIONS}-d encoding, got shape {np.shape(encoding)}")
        if not np.all(np.isfinite(query)):
            raise ValueError("FaceIndex.match: the encoding contains NaN or infinity")
        with self._lock:
            n = self._n
            if n == 0:
                return Match(None, math.inf, math.inf)
            head_q, tail_q = self._rotate_query(query)
            bound = self._bounds(head_q, tail_q)
            k = min(n, _FIRST_CANDIDATES)
            first = np.argpartition(bound, k - 1)[:k] if k < n else np.arange(n)
            _, second, _ = self._nearest_two(first, head_q, tail_q)
            # Every row that could be nearer than that runner-up: exact distances for all of them.
            slack = _SLACK * max(1.0, float(head_q @ head_q) + float(tail_q @ tail_q) + self._max_sq)
            rows = np.flatnonzero(bound <= second + slack) if math.isfinite(second) else np.arange(n)
            best, second, best_code = self._nearest_two(rows, head_q, tail_q)
            nearest = self._id_of[best_code]
        distance = math.sqrt(best)
        runner_up = math.sqrt(second) if math.isfinite(second) else math.inf
        accepted = distance < threshold and runner_up - distance >= margin
        return Match(nearest if accepted else None, distance, runner_up, nearest)

    # -- internals (call with the lock held, or from __init__) ----------------------------------------------
    def _rotate_query(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rotated = (query - self._mean) @ self._basis
        return rotated[:HEAD].copy(), rotated[HEAD:].copy()

    def _bounds(self, head_q: np.ndarray, tail_q: np.ndarray) -> np.ndarray:
        """A lower bound of every row's squared distance: the head exactly, the tail by its norm.

        The product is numpy's einsum, single-threaded on purpose: OpenBLAS's worker threads stall for whole
        scheduler slices when the other cores are busy (the kiosk's loop and screen are), making ``@`` slower
        and erratic exactly when it matters.
        """
        n = self._n
        bound = np.einsum("ij,j->i", self._head[:n], head_q)
        bound *= -2.0
        bound += self._head_sq[:n]
        bound += np.float32(head_q @ head_q)
        np.maximum(bound, 0.0, out=bound)
        gap = self._tail_norm[:n] - np.float32(math.sqrt(float(tail_q @ tail_q)))
        gap *= gap
        bound += gap
        return bound

    def _nearest_two(self, rows: np.ndarray, head_q: np.ndarray, tail_q: np.ndarray) -> tuple[float, float, int]:
        """Exact squared distances over ``rows``: the nearest, the nearest of another citizen, the nearest's code."""
        if len(rows) == self._n:
            d2 = _exact_sq(self._head[: self._n], self._tail[: self._n], head_q, tail_q)
            owners = self._owner[: self._n]
        else:
            d2 = _exact_sq(self._head[rows], self._tail[rows], head_q, tail_q)
            owners = self._owner[rows]
        i = int(np.argmin(d2))
        code = int(owners[i])
        others = d2[owners != code]
        return float(d2[i]), float(others.min()) if len(others) else math.inf, code

    def _code(self, citizen_id: str) -> int:
        code = self._code_of.get(citizen_id)
        if code is None:
            code = len(self._id_of)
            self._code_of[citizen_id] = code
            self._id_of.append(citizen_id)
        return code

    def _append(self, codes: np.ndarray, rows: np.ndarray) -> None:
        needed = self._n + len(rows)
        if needed > len(self._head):
            self._grow(max(needed, int(len(self._head) * _GROWTH)))
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            at = self._n + start
            self._store(at, (chunk - self._mean) @ self._basis)
            self._owner[at:at + len(chunk)] = codes[start:start + _CHUNK]
        self._n = needed

    def _store(self, at: int, rotated: np.ndarray) -> None:
        end = at + len(rotated)
        self._head[at:end] = rotated[:, :HEAD]
        self._tail[at:end] = rotated[:, HEAD:]
        self._head_sq[at:end] = np.einsum("ij,ij->i", self._head[at:end], self._head[at:end])
        self._tail_norm[at:end] = np.sqrt(np.einsum("ij,ij->i", self._tail[at:end], self._tail[at:end]))
        if end > at:
            self._max_sq = max(self._max_sq, float((self._head_sq[at:end] + self._tail_norm[at:end] ** 2).max()))

    def _refit(self) -> None:
        """Rotate the stored rows onto the principal axes of the templates as they are now."""
        n = self._n
        sample = np.linspace(0, n - 1, min(n, _FIT_SAMPLE)).astype(np.int64)
        rotated = np.hstack([self._head[sample], self._tail[sample]])
        old_mean, old_basis = self._mean, self._basis
        mean_r, basis_r = _fit(rotated)            # in the current coordinates
        self._mean = (old_mean.astype(np.float64) + old_basis.astype(np.float64) @ mean_r).astype(np.float32)
        self._basis = (old_basis.astype(np.float64) @ basis_r).astype(np.float32)
        for start in range(0, n, _CHUNK):
            end = min(n, start + _CHUNK)
            chunk = np.hstack([self._head[start:end], self._tail[start:end]])
            self._store(start, (chunk - mean_r.astype(np.float32)) @ basis_r.astype(np.float32))
        self._fitted_at = n

    def _grow(self, capacity: int) -> None:
        n = self._n
        for name in ("_head", "_tail", "_head_sq", "_tail_norm", "_owner"):
            old = getattr(self, name)
            new = np.empty((capacity,) + old.shape[1:], old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)


def _sample(parts: list[np.ndarray], total: int) -> np.ndarray:
    """The rows ``_fit`` would pick from the whole matrix (evenly spaced), gathered from its pieces."""
    if len(parts) == 1 or total <= _FIT_SAMPLE:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    pick = np.linspace(0, total - 1, _FIT_SAMPLE).astype(np.int64)
    start, out = 0, []
    for part in parts:
        mine = pick[(pick >= start) & (pick < start + len(part))] - start
        out.append(part[mine])
        start += len(part)
    return np.concatenate(out)


def _fit(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and principal axes (columns, most variance first) of up to ``_FIT_SAMPLE`` rows."""
    if len(rows) > _FIT_SAMPLE:
        rows = rows[np.linspace(0, len(rows) - 1, _FIT_SAMPLE).astype(np.int64)]
    sample = rows.astype(np.float64)
    mean = sample.mean(axis=0)
    sample -= mean
    _, vectors = np.linalg.eigh(sample.T @ sample)
    return mean, np.ascontiguousarray(vectors[:, ::-1])


def _exact_sq(head: np.ndarray, tail: np.ndarray, head_q: np.ndarray, tail_q: np.ndarray) -> np.ndarray:
    """Squared distances computed as differences (no cancellation), in float32."""
    out = np.empty(len(head), np.float32)
    for start in range(0, len(head), _CHUNK):
        end = start + _CHUNK
        dh = head[start:end] - head_q
        dt = tail[start:end] - tail_q
        out[start:end] = np.einsum("ij,ij->i", dh, dh) + np.einsum("ij,ij->i", dt, dt)
    return out
