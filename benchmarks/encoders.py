"""Which way of running dlib's encoder separates people best? The evidence behind the recognition target.

    .venv/bin/python benchmarks/encoders.py --faces ../shared/data/faces/dev [--jitters 10]

Every recipe encodes the same photos through the kiosk's own path (``Recognizer.encode_still``: downscaled
detection, dominant face, quality gate), then ``kiosk.calibrate``'s protocol is played on the encodings:

* pairs: every two photos of DIR (plus the siblings ``singletons/`` and ``noface/`` as people of their own);
  the share of same-person pairs accepted (TAR) at the threshold that lets through 1 in 1,000 and 1 in
  10,000 different-person pairs (FAR);
* kiosk protocol: first photo enrolled, the others return, each person in turn a stranger to the others;
  the threshold and margin ``kiosk calibrate`` would pick (zero false accepts, still zero 0.01 higher) and
  the share of returning photos it recognises; then the two-fold check (picked on half of the people,
  counted on the other half): what to expect from people the pick never saw;
* cost: encoder milliseconds per face, against face_recognition's default recipe measured in the same run.

Recipes: face_recognition's default (5-point alignment, one pass: the baseline); the kiosk's (the face and
its mirror image, averaged); 68-point alignment, mirrored; the 5- and 68-point encodings averaged, mirrored;
and dlib's jittering (``num_jitters``: random crops, averaged) on top of the kiosk's, unless ``--jitters 0``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.calibrate import (IMAGE_SUFFIXES, EncodingCache, choose, cross_validate, pair_distances,  # noqa: E402
                             photo_folders, play_protocol)
from kiosk.faces import FaceRecognitionEngine, Recognizer  # noqa: E402
from kiosk.index import FaceIndex  # noqa: E402


class LandmarkModelEngine(FaceRecognitionEngine):
    """The kiosk's engine, aligning faces on the 68-point landmarks ("large") or on both models, averaged."""

    def __init__(self, models: tuple[str, ...], **options):
        import face_recognition     # the kiosk's engine has no 68-point model: face_recognition's API does

        super().__init__(**options)
        self._fr = face_recognition
        self._models = models

    def _encode(self, image: np.ndarray, box) -> np.ndarray:
        encodings = [self._fr.face_encodings(image, [box], num_jitters=self._num_jitters, model=model)[0]
                     for model in self._models]
        return np.mean(np.asarray(encodings, dtype=np.float64), axis=0)


class TimedEngine:
    """Wraps an engine and adds up the time spent in ``encode`` (detection and landmarks are the same for all)."""

    def __init__(self, engine):
        self._engine = engine
        self.seconds = 0.0
        self.calls = 0

    def detect(self, image, upsample=1):
        return self._engine.detect(image, upsample)

    def landmarks(self, image, box):
        return self._engine.landmarks(image, box)

    def encode(self, image, box):
        started = time.perf_counter()
        try:
            return self._engine.encode(image, box)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def recipes(jitters: int) -> list[tuple[str, object]]:
    found = [("face_recognition default (baseline)", FaceRecognitionEngine(mirror=False)),
             ("kiosk: mirror-averaged (shipped)", FaceRecognitionEngine()),
             ("68-point alignment, mirrored", LandmarkModelEngine(("large",))),
             ("5- and 68-point averaged, mirrored", LandmarkModelEngine(("small", "large")))]
    if jitters > 1:
        found.append((f"{jitters} jitters, mirrored", FaceRecognitionEngine(num_jitters=jitters)))
    return found


def tar_at_far(same: np.ndarray, different: np.ndarray, far: float) -> tuple[float, float]:
    """(threshold, share of same-person pairs under it) where ``far`` of different-person pairs fall under it."""
    ordered = np.sort(different)
    threshold = float(ordered[min(len(ordered) - 1, int(far * len(ordered)))])
    return threshold, float(np.mean(same < threshold))


def measure(engine, folders: dict[str, list[Path]], extra: list[Path]) -> dict:
    timed = TimedEngine(engine)
    recognizer = Recognizer(timed, FaceIndex(), threshold=0.5, margin=0.0)
    cache = EncodingCache(recognizer)
    people = {name: [e for e in (cache.get(p) for p in photos) if e is not None] for name, photos in folders.items()}
    loners = [e for e in (cache.get(p) for p in extra) if e is not None]
    everyone = {**{n: e for n, e in people.items() if e}, **{f"<extra {i}>": [e] for i, e in enumerate(loners)}}
    same, different = pair_distances(everyone)
    returning, strangers = play_protocol(people, loners)
    return {"tar3": tar_at_far(same, different, 1e-3), "tar4": tar_at_far(same, different, 1e-4),
            "pairs": (len(same), len(different)), "choice": choose(returning, strangers),
            "returning": len(returning), "strangers": len(strangers), "check": cross_validate(people),
            "ms": 1000 * timed.seconds / max(timed.calls, 1), "encoded": timed.calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True, help="folder of person/N.jpg (e.g. ../shared/data/faces/dev)")
    parser.add_argument("--jitters", type=int, default=10, help="also try dlib's jittering with this many passes "
                                                                "(0: skip; about ten times slower to run)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="face_recognition_models")
    if not args.faces.is_dir():
        print(f"encoders benchmark: {args.faces}: not a folder of person/N.jpg photos", file=sys.stderr)
        return 2
    folders = photo_folders(args.faces)
    extra = sorted(p for folder in ("singletons", "noface") if (args.faces.parent / folder).is_dir()
                   for p in (args.faces.parent / folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    print(f"encoder recipes on {args.faces}: {sum(map(len, folders.values()))} photos of {len(folders)} people, "
          f"{len(extra)} more photos from singletons/ and noface/ as strangers")
    baseline_ms = None
    for name, engine in recipes(args.jitters):
        r = measure(engine, folders, extra)
        baseline_ms = baseline_ms or r["ms"]
        (t3, tar3), (t4, tar4) = r["tar3"], r["tar4"]
        choice, check = r["choice"], r["check"]
        print(f"\n{name}: {r['encoded']} faces encoded, {r['ms']:.0f} ms per encoding "
              f"({r['ms'] / baseline_ms:.1f}x the baseline)")
        print(f"  pairs ({r['pairs'][0]} same-person, {r['pairs'][1]} different-person): TAR {tar3:.1%} at FAR 1e-3 "
              f"(threshold {t3:.3f}), TAR {tar4:.1%} at FAR 1e-4 (threshold {t4:.3f})")
        if choice is None:
            print(f"  kiosk protocol: no threshold gives zero false accepts over {r['strangers']} stranger probes")
        else:
            print(f"  kiosk protocol ({r['returning']} returning photos, {r['strangers']} stranger probes): "
                  f"calibrate picks threshold {choice.threshold:.3f}, margin {choice.margin:.3f}: "
                  f"{choice.recall:.1%} of returning photos recognised, 0 false accepts")
        if check is not None:
            right, total, false = check
            print(f"  two-fold check (people the pick never saw): {right}/{total} = {right / max(total, 1):.1%} "
                  f"recognised, {false} false accept{'' if false == 1 else 's'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
