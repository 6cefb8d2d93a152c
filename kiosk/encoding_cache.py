"""Face encodings of labelled photos kept on disk, so calibration and benchmarks encode each photo once.

Encoding a photo through the kiosk's path costs about 0.25 s here (seconds on a Pi); the district-scale
gallery has 3,600 photos. One ``.npz`` file per *recipe* (the engine, its options, the library versions and
the gate settings that decide whether and how a face is encoded) lives outside the repository, in
``$XDG_CACHE_HOME/queue-kiosk`` (default ``~/.cache/queue-kiosk``). An entry is keyed by the photo's resolved
path, size and modification time: a changed or replaced photo is simply encoded again. A photo the kiosk
refuses (no face, quality gate) is remembered too, with the reason.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np

DIMENSIONS = 128
SHIPPED_RECIPE = "face_recognition-hog-5pt-mirror-j1"   # FaceRecognitionEngine() as the kiosk builds it


def cache_folder() -> Path:
    """Where the cache files live: the XDG cache folder, never the repository."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "queue-kiosk"


def library_versions() -> str:
    """dlib and face_recognition_models versions: a new model release must not reuse old encodings."""
    parts = []
    for module in ("dlib", "face_recognition_models"):
        try:
            parts.append(f"{module}={__import__(module).__version__}")
        except (ImportError, AttributeError):
            parts.append(f"{module}=?")
    return ",".join(parts)


def cache_file(recipe: str, settings: Mapping[str, object], folder: Path | None = None) -> Path:
    """``encodings-<recipe>-<hash of settings and versions>.npz`` in ``folder`` (default: :func:`cache_folder`)."""
    described = ";".join(f"{k}={settings[k]!r}" for k in sorted(settings)) + ";" + library_versions()
    digest = hashlib.sha256(described.encode()).hexdigest()[:12]
    return (folder or cache_folder()) / f"encodings-{recipe}-{digest}.npz"


def photo_key(path: Path) -> str:
    """Resolved path, size and mtime (ns): the identity of one version of one photo file."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return f"{resolved}\t{stat.st_size}\t{stat.st_mtime_ns}"


class DiskEncodings:
    """One recipe's cached encodings: ``lookup`` and ``put`` in memory, ``save`` merges into the file atomically.

    Two processes may fill the same file (a background encoding job and a test): ``save`` re-reads the file
    and keeps the union, then writes a temporary file and renames it over the old one, so a reader never
    sees half a file and nobody's entries are lost.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._entries: dict[str, tuple[np.ndarray | None, str | None]] = self._read()
        self._unsaved = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def unsaved(self) -> int:
        return self._unsaved

    def lookup(self, key: str) -> tuple[bool, np.ndarray | None, str | None]:
        """(found, encoding or None, refusal reason or None) for one photo key."""
        if key not in self._entries:
            return False, None, None
        encoding, reason = self._entries[key]
        return True, encoding, reason

    def put(self, key: str, encoding: np.ndarray | None, reason: str | None) -> None:
        if encoding is not None:
            encoding = np.asarray(encoding, np.float32).reshape(DIMENSIONS)
        self._entries[key] = (encoding, reason)
        self._unsaved += 1

    def save(self) -> None:
        if not self._unsaved:
            return
        merged = {**self._read(), **self._entries}
        self._entries = merged
        keys = sorted(merged)
        matrix = np.full((len(keys), DIMENSIONS), np.nan, np.float32)
        reasons = []
        for row, key in enumerate(keys):
            encoding, reason = merged[key]
            if encoding is not None:
                matrix[row] = encoding
            reasons.append(reason or "")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, keys=np.array(keys, dtype=str), encodings=matrix, reasons=np.array(reasons, dtype=str))
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._unsaved = 0

    def _read(self) -> dict[str, tuple[np.ndarray | None, str | None]]:
        """The file's entries; a missing or unreadable file is an empty cache (it is only a cache)."""
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, matrix, reasons = data["keys"], data["encodings"], data["reasons"]
        except (OSError, KeyError, ValueError):
            return {}
        entries: dict[str, tuple[np.ndarray | None, str | None]] = {}
        for key, row, reason in zip(keys.tolist(), matrix, reasons.tolist()):
            if np.all(np.isfinite(row)):
                entries[key] = (row.astype(np.float32), None)
            else:
                entries[key] = (None, reason or "no_face")
        return entries
