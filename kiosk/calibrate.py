"""``kiosk calibrate --faces DIR``: the threshold and margin that keep strangers out, from labelled photos.

DIR holds one folder per person with numbered photos (``person/1.jpg``, ``person/2.jpg``, ...). Each photo
is encoded once, the way the kiosk encodes a frame (downscaled detection, dominant face, quality gate,
mirror-averaged encoding). Then the kiosk's protocol is played out:

* every person enrols with their first photo and *returns* with each other photo;
* every person in turn plays a *stranger* against everybody else's enrolment (plus optional extra
  strangers: photos of people not in DIR);
* for each threshold and margin, a returning photo counts as recognised when the nearest citizen is the
  right one, closer than the threshold and ahead of every other citizen by the margin; a stranger (or a
  returning photo matched to somebody else) accepted under the same rule is a false accept.

It prints both distance distributions and picks the pair with zero false accepts, even with the threshold
raised by a safety gap of 0.01, that recognises the most returning people (ties: the lower threshold, then
the larger margin: a wrong citizen is worse than a miss).
Because that pick is tuned to these very photos, a two-fold check then picks the pair on half of the people
and counts on the other half (and the other way round): what to expect from people the calibration never saw.
It also suggests ``unsure_below`` (``suggest_unsure_below``), the end of the zone above the threshold where
a face is asked for the card instead of being offered face-only enrolment. ``--scale DIR`` hands over to
``kiosk.calibrate_scale`` for ``autolink_below``. Nothing is written: the TOML lines are printed to paste.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

import numpy as np

from kiosk.encoding_cache import SHIPPED_RECIPE, DiskEncodings, cache_file, photo_key

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
THRESHOLDS = np.round(np.arange(0.30, 0.7001, 0.005), 3)
MARGINS = np.round(np.arange(0.0, 0.1501, 0.005), 3)
PERCENTILES = (0, 1, 5, 25, 50, 75, 95, 99, 100)
SAFETY_GAP = 0.01    # the recommended threshold stays this far below any stranger it would accept


class CalibrationError(Exception):
    """The photo folder cannot be used; the message names it."""


@dataclass(frozen=True)
class Trial:
    """One probe photo against a gallery: nearest citizen, its distance, the nearest *other* citizen's."""
    person: str         # who is really in the photo
    nearest: str        # nearest enrolled person
    distance: float
    runner_up: float

    def accepted(self, threshold: float, margin: float) -> bool:
        return self.distance < threshold and self.runner_up - self.distance >= margin


@dataclass(frozen=True)
class Choice:
    threshold: float
    margin: float
    recall: float            # share of returning photos recognised as the right person
    false_accepts: int       # strangers accepted + returning photos given to someone else


def photo_folders(faces_dir: Path) -> dict[str, list[Path]]:
    """Person name -> photos in order (numeric names sort as numbers)."""
    if not faces_dir.is_dir():
        raise CalibrationError(f"{faces_dir}: not a folder of person/N.jpg photos")
    people = {}
    for folder in sorted(p for p in faces_dir.iterdir() if p.is_dir()):
        photos = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        photos.sort(key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem))
        if photos:
            people[folder.name] = photos
    if not people:
        raise CalibrationError(f"{faces_dir}: no person folders with photos (expected person/1.jpg, ...)")
    return people


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise CalibrationError(f"{path}: cannot read the image: {exc}") from None


class EncodingCache:
    """Each photo is encoded once (the slow part: ~0.25 s a photo on a laptop, seconds on a Pi).

    With ``disk`` (a :class:`kiosk.encoding_cache.DiskEncodings` for this recognizer's recipe) encodings
    also survive between runs; new ones are written to it every ``save_every`` photos and on ``save()``.
    """

    def __init__(self, recognizer, disk: DiskEncodings | None = None, *, save_every: int = 100):
        self._recognizer = recognizer
        self._disk = disk
        self._save_every = save_every
        self._encodings: dict[Path, np.ndarray | None] = {}
        self.refused: dict[Path, str] = {}

    def get(self, path: Path) -> np.ndarray | None:
        if path not in self._encodings:
            disk = self._disk
            key = photo_key(path) if disk is not None else ""
            found, encoding, reason = disk.lookup(key) if disk is not None else (False, None, None)
            if not found:
                encoding, reason = self._recognizer.encode_still(load_rgb(path))
                if disk is not None:
                    disk.put(key, encoding, reason)
                    if disk.unsaved >= self._save_every:
                        disk.save()
            self._encodings[path] = encoding
            if encoding is None:
                self.refused[path] = reason or "no_face"
        return self._encodings[path]

    def save(self) -> None:
        if self._disk is not None:
            self._disk.save()

    @property
    def disk_path(self) -> Path | None:
        """The on-disk cache file, or None when encodings live only for this run."""
        return self._disk.path if self._disk is not None else None


def gate_settings(recognizer) -> dict[str, object]:
    """The recognizer settings that decide whether and how a still is encoded (part of the cache key)."""
    return {name: getattr(recognizer, name) for name in
            ("min_face_px", "min_sharpness", "max_yaw_ratio", "dominance", "detect_width", "detect_upsample")}


def shipped_disk_cache(recognizer) -> DiskEncodings:
    """The on-disk cache for the shipped engine (``FaceRecognitionEngine()``) with this recognizer's gate."""
    return DiskEncodings(cache_file(SHIPPED_RECIPE, gate_settings(recognizer)))


def _probe(gallery_names: Sequence[str], gallery: np.ndarray, person: str, query: np.ndarray) -> Trial:
    distances = np.linalg.norm(gallery - query, axis=1)
    order = np.argsort(distances)
    best = int(order[0])
    runner_up = float(distances[order[1]]) if len(order) > 1 else math.inf
    return Trial(person, gallery_names[best], float(distances[best]), runner_up)


def play_protocol(people: dict[str, list[np.ndarray]], strangers: Sequence[np.ndarray] = ()
                  ) -> tuple[list[Trial], list[Trial]]:
    """(returning trials, stranger trials): first photo enrolled, the rest return; leave-one-out strangers."""
    enrolled = [name for name, encodings in people.items() if encodings]
    gallery = np.stack([people[name][0] for name in enrolled]) if enrolled else np.empty((0, 128))
    returning, stranger = [], []
    for i, name in enumerate(enrolled):
        for query in people[name][1:]:
            returning.append(_probe(enrolled, gallery, name, query))
        others = [n for j, n in enumerate(enrolled) if j != i]
        if len(others) < 2:
            continue
        rest = np.delete(gallery, i, axis=0)
        for query in people[name]:
            stranger.append(_probe(others, rest, name, query))
    for query in strangers:
        if len(enrolled) >= 2:
            stranger.append(_probe(enrolled, gallery, "<stranger>", query))
    return returning, stranger


def score(returning: Sequence[Trial], strangers: Sequence[Trial], threshold: float, margin: float) -> Choice:
    right = sum(t.accepted(threshold, margin) and t.nearest == t.person for t in returning)
    wrong = sum(t.accepted(threshold, margin) and t.nearest != t.person for t in returning)
    false = sum(t.accepted(threshold, margin) for t in strangers)
    return Choice(threshold, margin, right / len(returning) if returning else 0.0, wrong + false)


def choose(returning: Sequence[Trial], strangers: Sequence[Trial], *, safety_gap: float = SAFETY_GAP
           ) -> Choice | None:
    """Zero false accepts even with the threshold ``safety_gap`` higher, most returning recognised;
    ties: lower threshold, then larger margin.

    The gap keeps the threshold off the nearest stranger seen: a pick that only just excludes the
    photos it was tuned on lets in strangers it never saw (the two-fold check shows it).
    """
    best = None
    for threshold in THRESHOLDS:
        for margin in MARGINS[::-1]:
            choice = score(returning, strangers, float(threshold), float(margin))
            safe = score(returning, strangers, float(threshold) + safety_gap, float(margin)).false_accepts == 0
            if choice.false_accepts == 0 and safe and (best is None or choice.recall > best.recall + 1e-12):
                best = choice
    return best


def cross_validate(people: dict[str, list[np.ndarray]]) -> tuple[int, int, int] | None:
    """Two-fold check: threshold and margin chosen on half the people, counted on the other half, both ways.

    Returns (returning recognised, returning photos, false accepts) over both held-out halves, or None when
    a half would have fewer than three people with two or more photos (too few to choose anything).
    """
    names = sorted(n for n, encodings in people.items() if len(encodings) >= 2)
    halves = (names[0::2], names[1::2])
    if min(len(h) for h in halves) < 3:
        return None
    right = total = false = 0
    for fit, held_out in (halves, halves[::-1]):
        choice = choose(*play_protocol({n: people[n] for n in fit}))
        returning, strangers = play_protocol({n: people[n] for n in held_out})
        total += len(returning)
        if choice is None:
            continue                   # nothing is safe on the fitting half: the held-out half gets nobody
        counted = score(returning, strangers, choice.threshold, choice.margin)
        right += round(counted.recall * len(returning))
        false += counted.false_accepts
    return right, total, false


def suggest_unsure_below(returning_distances: Sequence[float], threshold: float) -> float:
    """The next 0.01 step strictly above the farthest returning photo's distance to its nearest citizen.

    The unsure zone [threshold, unsure_below) asks for the card instead of offering face-only enrolment. A
    miss there costs a duplicate record, a stranger there only a card request, so the zone reaches past
    *every* returning photo seen (the maximum, not a percentile: on 138 photos the 99th percentile is the
    second-farthest). Never below ``threshold`` (an empty zone).
    """
    farthest = max(returning_distances, default=threshold)
    return max(threshold, round(math.floor(farthest * 100 + 1e-9) / 100 + 0.01, 2))


def unsure_below_from(faces_dir: Path, cache: EncodingCache, threshold: float) -> float:
    """``suggest_unsure_below`` on a labelled folder's protocol (what ``kiosk calibrate --faces`` prints)."""
    people = {name: [e for e in (cache.get(p) for p in photos) if e is not None]
              for name, photos in photo_folders(Path(faces_dir)).items()}
    cache.save()
    returning, _ = play_protocol(people)
    return suggest_unsure_below([t.distance for t in returning], threshold)


def histogram(same: np.ndarray, different: np.ndarray, out: IO[str], *, width: int = 40) -> None:
    """Both distributions side by side, each scaled to its own largest bin (shapes, not counts, compare)."""
    edges = np.round(np.arange(0.0, 1.2001, 0.05), 2)
    same_counts = np.histogram(same, edges)[0]
    diff_counts = np.histogram(different, edges)[0]
    half = width // 2
    out.write(f"  {'distance':>11}  {'same person':<{half + 6}}  different people\n")
    for k in range(len(edges) - 1):
        if not same_counts[k] and not diff_counts[k]:
            continue
        s_bar = "#" * int(round(half * same_counts[k] / max(same_counts.max(), 1)))
        d_bar = "*" * int(round(half * diff_counts[k] / max(diff_counts.max(), 1)))
        out.write(f"  {edges[k]:.2f}-{edges[k + 1]:.2f}  {same_counts[k]:>5} {s_bar:<{half}}  "
                  f"{diff_counts[k]:>5} {d_bar}\n")


def _percentiles(values: np.ndarray) -> str:
    if not len(values):
        return "(none)"
    return "  ".join(f"p{p}={np.percentile(values, p):.3f}" for p in PERCENTILES)


def pair_distances(people: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    names = [n for n, encs in people.items() for _ in encs]
    matrix = np.stack([e for encs in people.values() for e in encs])
    distances = np.linalg.norm(matrix[:, None, :] - matrix[None, :, :], axis=2)
    upper = np.triu_indices(len(names), k=1)
    same_mask = np.array(names)[upper[0]] == np.array(names)[upper[1]]
    values = distances[upper]
    return values[same_mask], values[~same_mask]


def run(faces_dir: Path, out: IO[str] | None = None, *, strangers_dir: Path | None = None, engine=None,
        min_face_px: int = 48, min_sharpness: float = 20.0, max_yaw_ratio: float = 0.4,
        dominance: float = 2.0, detect_width: int = 320) -> int:
    """Calibrate on ``faces_dir`` and print the report; 0 on success, 2 when the photos cannot be used."""
    out = out or sys.stdout          # looked up per call: a redirected stdout must be the one written to
    from kiosk.faces import Recognizer
    from kiosk.index import FaceIndex

    try:
        folders = photo_folders(Path(faces_dir))
        extra = []
        if strangers_dir is not None:
            strangers_dir = Path(strangers_dir)
            if not strangers_dir.is_dir():
                raise CalibrationError(f"{strangers_dir}: not a folder of stranger photos")
            extra = sorted(p for p in strangers_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        shipped = engine is None
        if shipped:
            from kiosk.faces import FaceRecognitionEngine
            engine = FaceRecognitionEngine()
        recognizer = Recognizer(engine, FaceIndex(), threshold=0.5, margin=0.0, min_face_px=min_face_px,
                                min_sharpness=min_sharpness, max_yaw_ratio=max_yaw_ratio, dominance=dominance,
                                detect_width=detect_width)
        # The shipped engine's encodings are kept on disk between runs (outside the repository).
        cache = EncodingCache(recognizer, shipped_disk_cache(recognizer) if shipped else None)
        try:
            people = {name: [e for e in (cache.get(p) for p in photos) if e is not None]
                      for name, photos in folders.items()}
            stranger_encodings = [e for e in (cache.get(p) for p in extra) if e is not None]
        finally:
            cache.save()
    except CalibrationError as exc:
        print(f"kiosk calibrate: {exc}", file=sys.stderr)
        return 2

    total = sum(len(p) for p in folders.values())
    used = sum(len(e) for e in people.values())
    out.write(f"kiosk calibrate: {faces_dir}\n")
    out.write(f"photos: {used} of {total} encoded, {len(folders)} people"
              f"{f', {len(stranger_encodings)} extra strangers from {strangers_dir}' if strangers_dir else ''}\n")
    for path, reason in sorted(cache.refused.items()):
        out.write(f"  refused {path}: {reason}\n")

    same, different = pair_distances({n: e for n, e in people.items() if e})
    out.write(f"\nsame-person distances ({len(same)} pairs):      {_percentiles(same)}\n")
    out.write(f"different-person distances ({len(different)} pairs): {_percentiles(different)}\n")
    histogram(same, different, out)

    returning, stranger = play_protocol(people, stranger_encodings)
    out.write(f"\nprotocol: first photo enrolled per person; {len(returning)} returning photos; "
              f"{len(stranger)} stranger probes (each person in turn against the others' enrolments"
              f"{' + extra strangers' if stranger_encodings else ''})\n")
    if not returning or not stranger:
        out.write("not enough people with two or more usable photos to calibrate\n")
        return 2
    nearest_strangers = np.array(sorted(t.distance for t in stranger))
    returning_nearest = np.array([t.distance for t in returning if t.nearest == t.person])
    out.write(f"  returning, distance to own enrolment: {_percentiles(returning_nearest)}\n")
    out.write(f"  strangers, distance to nearest citizen: {_percentiles(nearest_strangers)}\n")
    out.write(f"  returning photos whose nearest citizen is someone else: "
              f"{sum(t.nearest != t.person for t in returning)}\n")

    out.write(f"\n  {'threshold':>9} {'margin':>6}  {'returning recognised':>20}  {'false accepts':>13}\n")
    for threshold, margin in ((0.6, 0.0), (0.55, 0.0), (0.5, 0.0)):
        c = score(returning, stranger, threshold, margin)
        out.write(f"  {threshold:>9.3f} {margin:>6.3f}  {c.recall:>19.1%}  {c.false_accepts:>13}"
                  f"{'   (face_recognition default)' if threshold == 0.6 else ''}\n")
    for margin in (0.0, 0.02, 0.05, 0.08):
        feasible = [score(returning, stranger, float(t), margin) for t in THRESHOLDS]
        feasible = [c for c in feasible if c.false_accepts == 0]
        if feasible:
            c = max(feasible, key=lambda c: (c.recall, -c.threshold))
            out.write(f"  {c.threshold:>9.3f} {c.margin:>6.3f}  {c.recall:>19.1%}  {c.false_accepts:>13}"
                      f"   (best threshold at this margin)\n")
    best = choose(returning, stranger)
    if best is None:
        out.write("\nno threshold gives zero false accepts on these photos\n")
        return 1
    missed = len(returning) - round(best.recall * len(returning))
    out.write(f"\nrecommended: threshold = {best.threshold:.3f}, margin = {best.margin:.3f}  "
              f"({best.recall:.1%} of returning photos recognised, {missed} missed, 0 false accepts, "
              f"still 0 at threshold + {SAFETY_GAP}; nearest stranger at {nearest_strangers[0]:.3f})\n")
    unsure = suggest_unsure_below([t.distance for t in returning], best.threshold)
    zone = sum(best.threshold <= t.distance < unsure for t in stranger)
    out.write(f"suggested unsure_below = {unsure:.2f}: just above the farthest returning photo from its nearest "
              f"citizen ({max(t.distance for t in returning):.3f}; p99 "
              f"{np.percentile([t.distance for t in returning], 99):.3f}), so every returning photo the threshold "
              f"misses is asked for the card instead of offered a second enrolment; {zone} of {len(stranger)} "
              f"stranger probes fall in [{best.threshold:.3f}, {unsure:.2f}) and would be asked for a card too\n")
    check = cross_validate(people)
    if check is None:
        out.write("two-fold check: needs at least six people with two or more photos\n")
    else:
        right, total, false = check
        out.write(f"two-fold check (chosen on half of the people, counted on the other half, both ways): "
                  f"{right}/{total} = {right / max(total, 1):.1%} of returning photos recognised, "
                  f"{false} false accept{'' if false == 1 else 's'}\n")
    out.write(f"[recognition]\nthreshold = {best.threshold:.3f}\nmargin = {best.margin:.3f}\n"
              f"unsure_below = {unsure:.2f}\n")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``kiosk calibrate`` (shared by ``python -m kiosk.calibrate`` and ``kiosk calibrate``)."""
    parser.add_argument("--faces", type=Path, help="folder of person/N.jpg: threshold, margin, unsure_below")
    parser.add_argument("--strangers", type=Path, help="optional folder of photos of people not in --faces")
    parser.add_argument("--scale", type=Path, help="a large gallery (person/1.jpg, 2.jpg; see kiosk/scale.py): "
                                                   "autolink_below, or why none is safe")
    parser.add_argument("--config", type=Path, help="threshold, margin and quality gate for --scale "
                                                    "(default: the shipped Pi config)")
    parser.add_argument("--limit", type=int, help="--scale: only this many people (a quick run)")


def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run what the parsed options ask for; usage errors go through ``parser.error`` (exit 2, one line)."""
    if args.faces is None and args.scale is None:
        parser.error("give --faces DIR (threshold, margin, unsure_below), --scale DIR (autolink_below), or both")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    import warnings
    warnings.filterwarnings("ignore", module="face_recognition_models")
    status = run(args.faces, strangers_dir=args.strangers) if args.faces is not None else 0
    if args.scale is None or status == 2:
        return status
    from kiosk.calibrate_scale import run_scale
    from kiosk.config import PACKAGED_CONFIGS, ConfigError, load_config
    from kiosk.faces import FaceRecognitionEngine, Recognizer
    from kiosk.index import FaceIndex

    try:
        rec = load_config(args.config or PACKAGED_CONFIGS / "pi.toml").recognition
    except (ConfigError, OSError) as exc:
        print(f"kiosk calibrate: {exc}", file=sys.stderr)
        return 2
    recognizer = Recognizer(FaceRecognitionEngine(), FaceIndex(), threshold=rec.threshold, margin=rec.margin,
                            min_face_px=rec.min_face_px, min_sharpness=rec.min_sharpness,
                            max_yaw_ratio=rec.max_yaw_ratio, dominance=rec.dominance, detect_width=rec.detect_width)
    cache = EncodingCache(recognizer, shipped_disk_cache(recognizer))
    try:
        return max(status, run_scale(args.scale, sys.stdout, threshold=rec.threshold, margin=rec.margin,
                                     cache=cache, limit=args.limit))
    except CalibrationError as exc:
        print(f"kiosk calibrate: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk calibrate", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return execute(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
