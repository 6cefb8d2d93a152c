"""Recognition end to end: accuracy through the kiosk's replay path, and CPU per minute of a person in view.

    .venv/bin/python benchmarks/recognition.py --faces ../shared/data/faces/dev [--set threshold=0.54 ...]

Accuracy (``kiosk.replay.run_replay``: the real loop, state machine, store and recognizer, fake clock):
every person in DIR enrols with their first photo (consent yes) and returns with each other photo
(consent no, so a missed return never creates a second record); every sixth person is held back as a
stranger and visits with all photos without ever enrolling, as do ``singletons/`` and ``noface/`` (siblings
of DIR); each ``multi/`` photo visits twice with consent yes (the first visit may enrol its dominant face).

CPU (same run): a citizen stands in front of a file camera for one simulated minute (900 frames at 15 fps,
one photo scaled to a 640 x 480 frame); the kiosk's Recognizer processes every frame, against
face_recognition's "faster webcam" recipe (every other frame at quarter size: face_locations,
face_encodings, compare_faces) on the same frames. A still replayed frame is the kiosk's best case (nothing
moves, so nothing is re-detected); the second minute moves the picture by a few pixels on every frame, the
worst case for its tracking; the third run is that minute as the Pi camera delivers it, with the lores
stream's greyscale copy beside each frame (made before timing starts: the camera's ISP scales for free), so
detection needs no resize. CPU is ``time.process_time()`` of this process. The live loop gives the
recognizer at most ``camera.active_fps`` frames a second (8 in the shipped configs), fewer than here.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.calibrate import IMAGE_SUFFIXES, photo_folders  # noqa: E402

FPS = 15
SECONDS = 60
FRAME_SIZE = (640, 480)
SWAY_PX = 6              # the "swaying" minute moves the person by this much on every frame
FACE_SCALE = 3.0          # a 150 px LFW crop becomes 450 px: the face ~185 px wide, a citizen at arm's length


def parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not value:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        overrides[key.strip()] = float(value) if "." in value else int(value)
    return overrides


# -- accuracy through the replay path -------------------------------------------------------------------------
def plan_visits(faces_dir: Path, category: str, stranger_every: int):
    people = photo_folders(faces_dir)
    names = sorted(people)
    strangers = set(names[stranger_every // 2::stranger_every]) if stranger_every else set()
    enrolled = [n for n in names if n not in strangers]
    visits, roles = [], []

    def visit(path, consent, role):
        # "confirm": the citizen answers yes when shown a proposed name (the kiosk links a face only then)
        visits.append({"image": str(path) if path else None, "category": category, "consent": consent,
                       "confirm": True})
        roles.append(role)

    for name in enrolled:
        visit(people[name][0], True, ("enrol", name))
    for round_ in range(1, max(len(p) for p in people.values())):
        for name in enrolled:
            if round_ < len(people[name]):
                visit(people[name][round_], False, ("return", name))
    for name in sorted(strangers):
        for path in people[name]:
            visit(path, False, ("stranger", name))
    for folder in ("singletons", "noface"):
        extra = faces_dir.parent / folder
        if extra.is_dir():
            for path in sorted(p for p in extra.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                visit(path, False, ("stranger", f"{folder}/{path.name}"))
    multi = faces_dir.parent / "multi"
    if multi.is_dir():
        for path in sorted(p for p in multi.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            visit(path, True, ("group-first", path.name))
            visit(path, True, ("group-again", path.name))
    return people, enrolled, sorted(strangers), visits, roles


def accuracy(faces_dir: Path, overrides: dict, config_path: Path | None, stranger_every: int) -> dict:
    from kiosk.config import SIMULATION_CONFIG, load_config
    from kiosk.replay import run_replay

    category = load_config(config_path or SIMULATION_CONFIG).categories[0].key
    people, enrolled, strangers, visits, roles = plan_visits(faces_dir, category, stranger_every)
    print(f"replay: {len(visits)} visits: {len(enrolled)} people enrol and return, {len(strangers)} held back "
          f"as strangers ({', '.join(strangers)}), plus singletons/, noface/ and multi/ (twice each)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = run_replay(visits, data_dir=Path(tmp) / "data", out_dir=Path(tmp) / "tickets",
                             config_path=config_path, overrides=overrides or None)
    elapsed = time.perf_counter() - started

    citizen_of: dict[str, str] = {}
    group_citizen: dict[str, str] = {}
    counts = Counter()
    misses = []
    for (role, who), result in zip(roles, results):
        citizen = result["citizen"]
        if role == "enrol":
            if result["recognized"]:
                counts["wrong"] += 1                  # a first visit given to somebody already enrolled
            elif result["enrolled"]:
                citizen_of[who] = citizen
            else:
                counts["not enrolled"] += 1
        elif role == "return":
            counts["returning"] += 1
            if citizen is not None and citizen == citizen_of.get(who):
                counts["right"] += 1
            elif citizen is not None:
                counts["wrong"] += 1
            else:
                misses.append(who)
        elif role == "stranger":
            counts["strangers"] += 1
            counts["strangers accepted"] += citizen is not None
        elif role == "group-first":
            counts["group visits"] += 1
            if result["recognized"]:
                counts["group attached"] += 1         # nobody from this photo was enrolled yet
            elif result["enrolled"]:
                group_citizen[who] = citizen
        elif role == "group-again":
            counts["group visits"] += 1
            if citizen is not None and citizen != group_citizen.get(who):
                counts["group attached"] += 1
            counts["group recognised"] += citizen is not None and citizen == group_citizen.get(who)
    return {"counts": counts, "misses": misses, "seconds": elapsed, "visits": len(visits),
            "group enrolled": sorted(group_citizen), "enrolled": len(citizen_of), "people": len(enrolled)}


# -- CPU per simulated minute ---------------------------------------------------------------------------------
def standing_frame(photo: Path, shift: int = 0) -> np.ndarray:
    """The photo scaled up and centred in a grey 640 x 480 frame (moved ``shift`` px right), as a camera sees it."""
    from PIL import Image

    with Image.open(photo) as image:
        image = image.convert("RGB")
        scale = min(FACE_SCALE, FRAME_SIZE[1] / image.height, FRAME_SIZE[0] / image.width)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
        frame = Image.new("RGB", FRAME_SIZE, (110, 110, 110))
        frame.paste(image, ((FRAME_SIZE[0] - image.width) // 2 + shift, (FRAME_SIZE[1] - image.height) // 2))
        return np.asarray(frame)


def recognizer_settings(config_path: Path | None, overrides: dict) -> dict:
    import dataclasses

    from kiosk.config import SIMULATION_CONFIG, load_config

    rec = load_config(config_path or SIMULATION_CONFIG).recognition
    if overrides:
        rec = dataclasses.replace(rec, **overrides)
    return dict(threshold=rec.threshold, margin=rec.margin, confirm_frames=rec.confirm_frames,
                enrol_frames=rec.enrol_frames, min_face_px=rec.min_face_px, min_sharpness=rec.min_sharpness,
                max_yaw_ratio=rec.max_yaw_ratio, dominance=rec.dominance, detect_width=rec.detect_width)


def cpu_minute(people: dict, enrolled: list[str], person: str, settings: dict) -> dict:
    import face_recognition

    from kiosk.faces import FaceRecognitionEngine, Recognizer
    from kiosk.index import FaceIndex

    engine = FaceRecognitionEngine()
    index = FaceIndex()
    recognizer = Recognizer(engine, index, **settings)
    known_names, known_list = [], []         # the recipe's own enrolment: one encoding per person, a list
    for name in enrolled:
        frame = standing_frame(people[name][0])
        encoding, _ = recognizer.encode_still(frame)
        if encoding is not None:
            index.add(name, np.stack([encoding] * settings["enrol_frames"]))
        found = face_recognition.face_encodings(frame)
        if found:
            known_names.append(name)
            known_list.append(found[0])
    photo = people[person][1]
    still = [standing_frame(photo)] * (FPS * SECONDS)            # the same still, as a file camera replays it
    sway = [standing_frame(photo, 0), standing_frame(photo, SWAY_PX)]
    swaying = [sway[i % 2] for i in range(FPS * SECONDS)]        # moving SWAY_PX px on every frame
    lores = [lores_copy(frame, settings["detect_width"]) for frame in sway]
    runs = {}
    for name, frames, small in (("still", still, None), ("swaying", swaying, None),
                                ("swaying, lores", swaying, [lores[i % 2] for i in range(FPS * SECONDS)])):
        runs[name] = {"kiosk": kiosk_minute(recognizer, frames, small),
                      "recipe": recipe_minute(known_names, known_list, frames)}
    return {"runs": runs, "person": person, "photo": photo}


def lores_copy(frame: np.ndarray, width: int) -> np.ndarray:
    """What picamera2's YUV420 lores stream hands the kiosk for ``frame``: its luma, ``width`` pixels wide."""
    from PIL import Image

    height = round(width * frame.shape[0] / frame.shape[1])
    return np.asarray(Image.fromarray(frame).convert("L").resize((width, height), Image.BILINEAR))


def kiosk_minute(recognizer, frames, small=None) -> dict:
    """The kiosk's Recognizer on every frame: CPU, work done, processed frames until the identity."""
    recognizer.reset()
    recognizer.stats.__init__()
    identity_at = None
    small = small or [None] * len(frames)
    started = time.process_time()
    for number, (frame, small_grey) in enumerate(zip(frames, small), start=1):
        observation = recognizer.process(frame, small_grey)
        if identity_at is None and observation.citizen_id is not None:
            identity_at = (number, observation.citizen_id)
    return {"cpu": time.process_time() - started, "stats": dataclasses.replace(recognizer.stats),
            "identity_at": identity_at}


def recipe_minute(known_names, known_list, frames) -> dict:
    """face_recognition's facerec_from_webcam_faster.py loop, minus the drawing, on the same frames."""
    import face_recognition
    from PIL import Image

    found = named = 0
    first = None
    started = time.process_time()
    process_this_frame = True
    for number, frame in enumerate(frames, start=1):
        if process_this_frame:
            small = np.asarray(Image.fromarray(frame).resize((frame.shape[1] // 4, frame.shape[0] // 4)))
            locations = face_recognition.face_locations(small)
            encodings = face_recognition.face_encodings(small, locations)
            for encoding in encodings:
                found += 1
                matches = face_recognition.compare_faces(known_list, encoding)
                distances = face_recognition.face_distance(known_list, encoding)
                best = int(np.argmin(distances))
                if matches[best]:
                    named += 1
                    if first is None:
                        first = (number, known_names[best])
        process_this_frame = not process_this_frame
    return {"cpu": time.process_time() - started, "found": found, "named": named, "first": first}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True, help="folder of person/N.jpg (e.g. ../shared/data/faces/dev)")
    parser.add_argument("--config", type=Path, help="kiosk config (default: the shipped simulation config)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a [recognition] setting, e.g. --set threshold=0.54")
    parser.add_argument("--stranger-every", type=int, default=6, help="hold back every Nth person as a stranger")
    parser.add_argument("--person", help="who stands in view for the CPU minute (default: first enrolled)")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="face_recognition_models")
    if not args.faces.is_dir():
        print(f"recognition benchmark: {args.faces}: not a folder of person/N.jpg photos", file=sys.stderr)
        return 2
    overrides = parse_overrides(args.set)
    settings = recognizer_settings(args.config, overrides)
    print(f"recognition benchmark on {args.faces}")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items())
          + (f"  (overridden: {', '.join(sorted(overrides))})" if overrides else "  (from the config)"))

    if not args.skip_accuracy:
        result = accuracy(args.faces, overrides, args.config, args.stranger_every)
        c = result["counts"]
        print(f"  {result['visits']} visits replayed in {result['seconds']:.0f} s; "
              f"{result['enrolled']} of {result['people']} people enrolled on their first visit")
        print(f"  returning visits recognised as the right citizen: {c['right']}/{c['returning']} = "
              f"{c['right'] / max(c['returning'], 1):.1%}   (target >= 99 %)")
        print(f"  visits attached to a wrong citizen: {c['wrong']}   (target 0)")
        print(f"  strangers accepted: {c['strangers accepted']} of {c['strangers']} stranger visits   (target 0)")
        print(f"  group photos attached to anyone not enrolled as that group's dominant face: "
              f"{c['group attached']} of {c['group visits']} group visits "
              f"(dominant face enrolled from: {', '.join(result['group enrolled']) or 'none'}; "
              f"recognised again: {c['group recognised']})")
        if result["misses"]:
            print(f"  missed returns: {', '.join(f'{k} x{v}' for k, v in sorted(Counter(result['misses']).items()))}")

    if not args.skip_cpu:
        people, enrolled, _, _, _ = plan_visits(args.faces, "x", args.stranger_every)
        candidates = [n for n in enrolled if len(people[n]) >= 2]
        person = args.person or candidates[0]
        cpu = cpu_minute(people, enrolled, person, settings)
        print(f"CPU per simulated minute of {person} ({cpu['photo'].name}) standing in view "
              f"({FPS} fps x {SECONDS} s = {FPS * SECONDS} frames of 640x480, every frame given to the recognizer):")
        for name, run in cpu["runs"].items():
            kiosk, recipe, s = run["kiosk"], run["recipe"], run["kiosk"]["stats"]
            label = {"still": "a still (file camera)", "swaying": f"swaying {SWAY_PX} px every frame",
                     "swaying, lores": f"swaying {SWAY_PX} px every frame, with the Pi camera's lores stream"}[name]
            print(f"  {label}:")
            print(f"    kiosk Recognizer:                {kiosk['cpu']:6.2f} s  ({s.full_detections} full-frame "
                  f"detections at {settings['detect_width']} px, {s.window_detections} tracking-window "
                  f"detections, {s.unchanged} frames unchanged, {s.encodings} encodings)")
            print(f"    face_recognition 'faster webcam': {recipe['cpu']:6.2f} s  (face found {recipe['found']} "
                  f"times, named {recipe['named']} times)")
            print(f"    ratio kiosk / recipe: {kiosk['cpu'] / recipe['cpu']:.3f}   (target <= 0.2)")
            at = kiosk["identity_at"]
            print(f"    processed frames from the face appearing to its identity: "
                  f"{at[0] if at else 'never'}{f' ({at[1]})' if at else ''}   (target <= 2; the recipe names "
                  f"someone on frame {recipe['first'][0] if recipe['first'] else 'never'}, unconfirmed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
