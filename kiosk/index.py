"""The encoding cache: every stored face template in one contiguous float32 matrix.

Matching a face against 100,000 templates must take milliseconds on a Pi, so the templates live in memory
as an N x 128 float32 matrix with precomputed squared norms, and one match is one matrix-vector product:
``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b``. A citizen may own several rows (several enrolment frames); a match
is accepted only when the nearest citizen is under the threshold *and* every other citizen is further away
by at least the margin, so two look-alikes never get each other's records.

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
_MIN_CAPACITY = 64
_GROWTH = 1.5


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
    """Citizen ids and their face templates; ``match`` is one vectorised distance computation."""

    def __init__(self, ids: Sequence[str] = (), matrix: np.ndarray | None = None):
        """Build from the store's ``templates()``: one id per matrix row (a citizen may repeat)."""
        self._lock = threading.Lock()
        self._code_of: dict[str, int] = {}   # citizen id -> small integer code
        self._id_of: list[str | None] = []   # code -> citizen id (None once removed)
        ids = list(ids)
        if matrix is None:
            if ids:
                raise ValueError("FaceIndex: ids given without a matrix")
            rows = np.empty((0, DIMENSIONS), np.float32)
        else:
            rows = _as_encodings(matrix, "FaceIndex matrix") if np.size(matrix) else np.empty((0, DIMENSIONS), np.float32)
        if len(ids) != len(rows):
            raise ValueError(f"FaceIndex: {len(ids)} ids for {len(rows)} matrix rows")
        capacity = max(_MIN_CAPACITY, int(len(rows) * 1.25))
        self._matrix = np.empty((capacity, DIMENSIONS), np.float32)
        self._sqnorm = np.empty(capacity, np.float32)
        self._owner = np.empty(capacity, np.int32)     # citizen code of each row
        self._n = 0
        if len(rows):
            codes = np.fromiter((self._code(citizen) for citizen in ids), np.int32, len(ids))
            self._append(codes, rows)

    # -- reading -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of templates (rows)."""
        return self._n

    def __contains__(self, citizen_id: object) -> bool:
        return citizen_id in self._code_of

    @property
    def citizen_count(self) -> int:
        return len(self._code_of)

    def templates_of(self, citizen_id: str) -> np.ndarray:
        """A copy of one citizen's templates (k x 128; empty when unknown)."""
        with self._lock:
            code = self._code_of.get(citizen_id)
            if code is None:
                return np.empty((0, DIMENSIONS), np.float32)
            return self._matrix[: self._n][self._owner[: self._n] == code].copy()

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

    def remove(self, citizen_id: str) -> None:
        """Forget every template of a citizen (no error when unknown: deletion is idempotent)."""
        with self._lock:
            code = self._code_of.pop(citizen_id, None)
            if code is None:
                return
            self._id_of[code] = None
            n = self._n
            keep = self._owner[:n] != code
            kept = int(keep.sum())
            self._matrix[:kept] = self._matrix[:n][keep]
            self._sqnorm[:kept] = self._sqnorm[:n][keep]
            self._owner[:kept] = self._owner[:n][keep]
            self._matrix[kept:n] = 0.0  # leave no trace of the deleted face in memory
            self._n = kept

    # -- matching ------------------------------------------------------------------------------------------
    def distances(self, encoding: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Distance from one encoding to every template, with the owner of each row (for calibration)."""
        query = _as_encodings(encoding, "FaceIndex.distances")[0]
        with self._lock:
            d2 = self._squared_distances(query, float(query @ query))
            owners = [self._id_of[c] for c in self._owner[: self._n]]
        return owners, np.sqrt(d2)

    def match(self, encoding: np.ndarray, *, threshold: float, margin: float) -> Match:
        """Nearest citizen, accepted only if under ``threshold`` and ahead of every other citizen by ``margin``."""
        query = np.asarray(encoding, dtype=np.float32).reshape(-1)
        if query.shape != (DIMENSIONS,):
            raise ValueError(f"FaceIndex.match: expected one {DIMENSIONS}-d encoding, got shape {np.shape(encoding)}")
        query_sq = float(query @ query)
        if not math.isfinite(query_sq):
            raise ValueError("FaceIndex.match: the encoding contains NaN or infinity")
        with self._lock:
            n = self._n
            if n == 0:
                return Match(None, math.inf, math.inf)
            d2 = self._squared_distances(query, query_sq)
            best_row = int(np.argmin(d2))
            best_code = self._owner[best_row]
            best = float(d2[best_row])
            # The runner-up is the nearest row of any *other* citizen (one masked pass, no loop over citizens).
            d2[self._owner[:n] == best_code] = np.inf
            second = float(d2.min())
            nearest = self._id_of[best_code]
        distance = math.sqrt(best)
        runner_up = math.sqrt(second) if math.isfinite(second) else math.inf
        accepted = distance < threshold and runner_up - distance >= margin
        return Match(nearest if accepted else None, distance, runner_up, nearest)

    # -- internals (call with the lock held, or from __init__) ----------------------------------------------
    def _squared_distances(self, query: np.ndarray, query_sq: float) -> np.ndarray:
        """|t|^2 + |q|^2 - 2 t.q for every template t: one matrix-vector product over the contiguous block.

        The product is numpy's einsum, single-threaded on purpose: it is memory-bound (100,000 templates are
        51 MB), and OpenBLAS's worker threads stall for whole scheduler slices when the other cores are busy
        (the kiosk's loop and screen are), making ``@`` slower and erratic exactly when it matters.
        """
        n = self._n
        d2 = np.einsum("ij,j->i", self._matrix[:n], query)
        d2 *= -2.0
        d2 += self._sqnorm[:n]
        d2 += np.float32(query_sq)
        np.maximum(d2, 0.0, out=d2)            # rounding can make an exact match slightly negative
        return d2

    def _code(self, citizen_id: str) -> int:
        code = self._code_of.get(citizen_id)
        if code is None:
            code = len(self._id_of)
            self._code_of[citizen_id] = code
            self._id_of.append(citizen_id)
        return code

    def _append(self, codes: np.ndarray, rows: np.ndarray) -> None:
        needed = self._n + len(rows)
        if needed > len(self._matrix):
            self._grow(max(needed, int(len(self._matrix) * _GROWTH)))
        start, end = self._n, needed
        self._matrix[start:end] = rows
        self._sqnorm[start:end] = np.einsum("ij,ij->i", rows, rows)
        self._owner[start:end] = codes
        self._n = end

    def _grow(self, capacity: int) -> None:
        n = self._n
        matrix = np.empty((capacity, DIMENSIONS), np.float32)
        matrix[:n] = self._matrix[:n]
        sqnorm = np.empty(capacity, np.float32)
        sqnorm[:n] = self._sqnorm[:n]
        owner = np.empty(capacity, np.int32)
        owner[:n] = self._owner[:n]
        self._matrix, self._sqnorm, self._owner = matrix, sqnorm, owner
