"""CPU per simulated minute of a citizen in view: the kiosk's Recognizer on every frame of a file camera,
against face_recognition's "faster webcam" recipe on the same frames (used by ``benchmarks/recognition.py``).

Both report CPU (``time.process_time()`` of this process) and wall time (``time.perf_counter()``).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

FPS = 15
SECONDS = 60
FRAME_SIZE = (640, 480)
SWAY_PX = 6              # the "swaying" minute moves the person by this much on every frame
FACE_SCALE = 3.0          # a 150 px LFW crop becomes 450 px: the face ~185 px wide, a citizen at arm's length


def standing_frame(photo: Path, shift: int = 0) -> np.ndarray:
    """The photo scaled up and centred in a grey 640 x 480 frame (moved ``shift`` px right), as a camera sees it."""
    from PIL import Image

    with Image.open(photo) as opened:
        image = opened.convert("RGB")
        scale = min(FACE_SCALE, FRAME_SIZE[1] / image.height, FRAME_SIZE[0] / image.width)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
        frame = Image.new("RGB", FRAME_SIZE, (110, 110, 110))
        frame.paste(image, ((FRAME_SIZE[0] - image.width) // 2 + shift, (FRAME_SIZE[1] - image.height) // 2))
        return np.asarray(frame)


def recognizer_settings(config_path: Path | None, overrides: dict) -> dict:
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
    return np.asarray(Image.fromarray(frame).convert("L").resize((width, height), Image.Resampling.BILINEAR))


def kiosk_minute(recognizer, frames, small=None) -> dict:
    """The kiosk's Recognizer on every frame: CPU, work done, processed frames until the identity."""
    recognizer.reset()
    recognizer.stats.__init__()
    identity_at = None
    small = small or [None] * len(frames)
    started, wall = time.process_time(), time.perf_counter()
    for number, (frame, small_grey) in enumerate(zip(frames, small), start=1):
        observation = recognizer.process(frame, small_grey)
        if identity_at is None and observation.citizen_id is not None:
            identity_at = (number, observation.citizen_id)
    return {"cpu": time.process_time() - started, "wall": time.perf_counter() - wall,
            "stats": dataclasses.replace(recognizer.stats), "identity_at": identity_at}


def recipe_minute(known_names, known_list, frames) -> dict:
    """face_recognition's facerec_from_webcam_faster.py loop, minus the drawing, on the same frames."""
    import face_recognition
    from PIL import Image

    found = named = 0
    first = None
    started, wall = time.process_time(), time.perf_counter()
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
    return {"cpu": time.process_time() - started, "wall": time.perf_counter() - wall, "found": found, "named": named,
            "first": first}
