"""The Recognizer: confirmation, enrolment, margin, tracking and bystanders (drawn scenes with a fake engine),
then the quality gate and the bystander rule on real photos (face_recognition)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk.faces import (COME_CLOSER, LOOK_AT_CAMERA, ONE_AT_A_TIME, REFERENCE_WIDTH, Observation, Recognizer,
                         assess, min_face_size,
                         dominant_face, iou, yaw_ratio)
from kiosk.index import FaceIndex

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"

# -- a drawn world: faces are textured rectangles, the fake engine finds them by their marker colour ----------
RNG = np.random.default_rng(3)
AXES = np.linalg.qr(RNG.normal(size=(128, 128)))[0].T.astype(np.float32)
ORIGIN = np.full(128, 0.1, np.float32)


def point(*offsets: tuple[int, float]) -> np.ndarray:
    """A 128-d vector at a known position: ORIGIN + sum of d * axis[k] (so distances are known exactly)."""
    vector = ORIGIN.copy()
    for axis, distance in offsets:
        vector += distance * AXES[axis]
    return vector


class DrawnEngine:
    """Finds faces drawn by :func:`scene`: green channel 255 marks face pixels, red = 20 x face number.

    Works on crops and resized copies as the real detector would (it only looks at pixels), and counts
    the work it is asked to do.
    """

    def __init__(self, encodings: dict[int, np.ndarray], turned: set[int] = frozenset()):
        self.encodings = encodings
        self.turned = set(turned)
        self.detections = 0
        self.detected_on = []           # the shape of every picture given to detect()
        self.encoded = 0

    def _faces(self, image):
        if image.ndim == 2:                 # a greyscale picture (the Pi's lores stream): 200 + 10 x number
            mask = image >= 205
            ids = np.rint((image.astype(int) - 200) / 10.0).astype(int)
        else:
            mask = image[..., 1] > 200
            ids = np.rint(image[..., 0] / 20.0).astype(int)
        found = {}
        for face in np.unique(ids[mask]):
            ys, xs = np.nonzero(mask & (ids == face))
            if len(ys) > 50:
                found[int(face)] = (int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1, int(xs.min()))
        return found

    def detect(self, image, upsample):
        self.detections += 1
        self.detected_on.append(image.shape)
        return list(self._faces(image).values())

    def _face_at(self, image, box):
        top, right, bottom, left = box
        crop = image[max(top, 0):bottom, max(left, 0):right]
        ids = np.rint(crop[..., 0][crop[..., 1] > 200] / 20.0).astype(int)
        return int(np.bincount(ids).argmax())

    def landmarks(self, image, box):
        top, right, bottom, left = box
        cx, cy, w = (left + right) / 2, (top + bottom) / 2, right - left
        nose_x = cx + (0.6 * w * 0.4 if self._face_at(image, box) in self.turned else 0)
        return {"left_eye": [(cx - 0.2 * w, cy - 0.1 * w)], "right_eye": [(cx + 0.2 * w, cy - 0.1 * w)],
                "nose_tip": [(nose_x, cy + 0.1 * w)]}

    def encode(self, image, box):
        self.encoded += 1
        return self.encodings[self._face_at(image, box)].copy()


def scene(*faces: tuple[int, int, int, int], width: int = 320, height: int = 240) -> np.ndarray:
    """A frame with faces given as (face number, left, top, size); face pixels are textured (sharp)."""
    frame = np.full((height, width, 3), 40, np.uint8)
    for number, left, top, size in faces:
        frame[top:top + size, left:left + size, 0] = 20 * number
        frame[top:top + size, left:left + size, 1] = 255
        frame[top:top + size, left:left + size, 2] = RNG.integers(0, 255, (size, size))
    return frame


def recognizer(engine, index, **options) -> Recognizer:
    settings = dict(threshold=0.5, margin=0.1, confirm_frames=2, enrol_frames=3, min_face_px=48,
                    min_sharpness=20.0, max_yaw_ratio=0.4, dominance=2.0, detect_width=320, recheck_every=8)
    settings.update(options)
    return Recognizer(engine, index, **settings)


ALICE, BOB, CAROL = 1, 2, 3


def world(**extra):
    encodings = {ALICE: point((0, 0.2)), BOB: point((1, 0.9), (4, 0.1)), CAROL: point((2, 0.9))}
    encodings.update(extra)
    engine = DrawnEngine(encodings)
    index = FaceIndex()
    index.add("alice", point())            # ALICE's face is 0.2 from her template, 0.9+ from everyone else
    index.add("bob", point((1, 0.9)))
    return engine, index


def test_known_face_is_confirmed_on_the_second_frame_then_never_encoded_again():
    engine, index = world()
    rec = recognizer(engine, index)
    first = rec.process(scene((ALICE, 110, 60, 100)))
    assert first.track_id is not None and first.faces == 1
    assert first.citizen_id is None and not first.settled       # one frame is not enough
    second = rec.process(scene((ALICE, 110, 60, 100)))
    assert second.citizen_id == "alice" and second.settled and second.track_id == first.track_id
    assert second.enrol_encodings is None
    for shift in range(12):                                     # she stays, moving a little
        obs = rec.process(scene((ALICE, 110 + shift, 60, 100)))
        assert (obs.citizen_id, obs.track_id) == ("alice", first.track_id)
    assert engine.encoded == 2


def test_unknown_face_settles_with_its_enrolment_encodings():
    engine, index = world()
    rec = recognizer(engine, index)
    observations = [rec.process(scene((CAROL, 110, 60, 100))) for _ in range(5)]
    assert [o.settled for o in observations] == [False, False, True, True, True]
    enrol = observations[2].enrol_encodings
    assert enrol.shape == (3, 128) and enrol.dtype == np.float32
    np.testing.assert_allclose(enrol[0], point((2, 0.9)))
    assert all(o.citizen_id is None for o in observations)
    assert engine.encoded == 3


def test_a_face_between_two_citizens_is_neither_identified_nor_enrolled():
    # 0.30 from alice and 0.35 from bob: under the threshold for both, inside the margin.
    between = point((0, 0.30 / np.sqrt(2)), (1, 0.30 / np.sqrt(2)))
    engine, index = world()
    index.remove("bob")
    index.add("bob", point((0, 0.30 / np.sqrt(2) - 0.05), (1, 0.30 / np.sqrt(2)), (3, 0.2)))
    engine.encodings[CAROL] = between
    rec = recognizer(engine, index, margin=0.2)
    observations = [rec.process(scene((CAROL, 110, 60, 100))) for _ in range(6)]
    assert all(o.citizen_id is None and o.enrol_encodings is None for o in observations)
    assert observations[-1].settled                # verdict: nobody, and no duplicate enrolment either


def test_a_single_frame_match_is_not_a_greeting():
    # The face matches alice on one frame only (the next frame's encoding is far off): no identity.
    engine, index = world()
    rec = recognizer(engine, index)
    assert rec.process(scene((ALICE, 110, 60, 100))).citizen_id is None
    engine.encodings[ALICE] = point((5, 0.9))
    later = [rec.process(scene((ALICE, 110, 60, 100))) for _ in range(6)]
    assert all(o.citizen_id is None for o in later)
    assert all(o.enrol_encodings is None for o in later)   # it looked like alice once: do not enrol again


def test_deleted_citizen_is_no_longer_recognised():
    engine, index = world()
    rec = recognizer(engine, index)
    assert [rec.process(scene((ALICE, 110, 60, 100))).citizen_id for _ in range(2)][-1] == "alice"
    index.remove("alice")
    rec.reset()
    observations = [rec.process(scene((ALICE, 110, 60, 100))) for _ in range(3)]
    assert all(o.citizen_id is None for o in observations)
    assert observations[-1].enrol_encodings is not None     # a stranger again, who may enrol anew


def test_reset_starts_a_new_track_and_a_new_person_gets_a_new_track():
    engine, index = world()
    rec = recognizer(engine, index)
    first = rec.process(scene((ALICE, 110, 60, 100)))
    rec.reset()
    again = rec.process(scene((ALICE, 110, 60, 100)))
    assert again.track_id != first.track_id
    other = rec.process(scene((BOB, 10, 10, 100)))           # somebody else, elsewhere in the picture
    assert other.track_id not in (first.track_id, again.track_id)


def test_a_face_lost_for_even_one_frame_comes_back_as_a_new_track_without_identity():
    # Whoever steps into the place of a recognised citizen who walked off must earn an identity anew.
    engine, index = world()
    rec = recognizer(engine, index)
    confirmed = [rec.process(scene((ALICE, 110, 60, 100))) for _ in range(2)][-1]
    assert confirmed.citizen_id == "alice"
    empty = rec.process(scene())
    assert (empty.faces, empty.track_id, empty.citizen_id) == (0, None, None)
    back = rec.process(scene((BOB, 112, 60, 100)))
    assert back.track_id != confirmed.track_id and back.citizen_id is None
    assert engine.encoded == 3


def test_two_similar_faces_identify_nobody():
    engine, index = world()
    rec = recognizer(engine, index)
    for _ in range(4):
        obs = rec.process(scene((ALICE, 20, 60, 100), (BOB, 190, 60, 90)))
        assert obs == Observation(2, None, None, False, None, ONE_AT_A_TIME)
    assert engine.encoded == 0


def test_a_small_bystander_does_not_stop_the_dominant_face():
    engine, index = world()
    rec = recognizer(engine, index)
    frames = [rec.process(scene((ALICE, 110, 60, 110), (BOB, 10, 10, 60))) for _ in range(2)]
    assert frames[-1].citizen_id == "alice" and frames[-1].faces == 2


def test_a_bystander_who_steps_up_and_stands_still_ends_the_identity_within_the_recheck():
    engine, index = world()
    rec = recognizer(engine, index, recheck_every=4)
    for _ in range(2):
        rec.process(scene((ALICE, 110, 60, 100)))
    crowded = [rec.process(scene((ALICE, 110, 60, 100), (BOB, 5, 5, 95))) for _ in range(5)]
    assert crowded[-1].track_id is None and crowded[-1].citizen_id is None
    assert crowded[-1].hint == ONE_AT_A_TIME and crowded[-1].faces == 2
    assert engine.encoded == 2


def test_a_face_off_to_the_side_is_not_identified():
    engine, index = world()
    rec = recognizer(engine, index)
    obs = rec.process(scene((ALICE, 0, 60, 60), width=320))
    assert obs.track_id is None and obs.faces == 1


def test_quality_gate_hints_and_never_encodes_a_bad_face():
    engine, index = world()
    engine.turned.add(ALICE)
    rec = recognizer(engine, index)
    turned = [rec.process(scene((ALICE, 110, 60, 100))) for _ in range(4)]
    assert all(o.hint == LOOK_AT_CAMERA and not o.settled for o in turned)
    rec.reset()
    small = rec.process(scene((BOB, 140, 90, 40)))
    assert small.hint == COME_CLOSER and small.track_id is not None and not small.settled
    flat = scene((CAROL, 110, 60, 100))
    flat[..., 2] = 0                                          # no texture at all: a blurred face
    assert rec.process(flat).hint == LOOK_AT_CAMERA
    assert engine.encoded == 0


def test_a_still_person_costs_no_detection_at_all_once_settled():
    engine, index = world()
    rec = recognizer(engine, index)
    for _ in range(2):
        rec.process(scene((ALICE, 110, 60, 100)))
    detections = engine.detections
    for _ in range(30):
        assert rec.process(scene((ALICE, 110, 60, 100))).citizen_id == "alice"
    assert engine.detections == detections and rec.stats.unchanged == 30


def test_a_swaying_person_is_followed_in_a_small_window_with_a_full_check_every_few_frames():
    engine, index = world()
    rec = recognizer(engine, index, recheck_every=5)
    for _ in range(2):
        rec.process(scene((ALICE, 110, 60, 100)))
    before = rec.stats.full_detections
    for frame in range(30):
        obs = rec.process(scene((ALICE, 116 - 6 * (frame % 2), 60, 100)))
        assert obs.citizen_id == "alice" and obs.faces == 1
    assert rec.stats.full_detections - before == 30 // 6       # one full check after every 5 window ones
    assert rec.stats.window_detections == 30 - 30 // 6
    assert engine.encoded == 2


def test_large_frames_are_detected_downscaled_and_encoded_at_full_resolution():
    engine, index = world()
    rec = recognizer(engine, index, detect_width=320)
    frame = scene((ALICE, 260, 120, 240), width=640, height=480)
    obs = [rec.process(frame) for _ in range(2)][-1]
    assert obs.citizen_id == "alice"
    assert rec._track.box == pytest.approx((120, 500, 360, 260), abs=4)


def test_with_the_cameras_small_grey_picture_detection_runs_on_it_and_boxes_land_on_the_frame():
    engine, index = world()
    rec = recognizer(engine, index, detect_width=320)
    frame = scene((ALICE, 260, 120, 240), width=640, height=480)
    small = np.full((160, 320), 40, np.uint8)     # another shape than the frame: each axis scales on its own
    small[40:120, 130:250] = 200 + 10 * ALICE      # ALICE as DrawnEngine sees her in greyscale
    obs = [rec.process(frame, small) for _ in range(2)][-1]
    assert obs.citizen_id == "alice"
    assert engine.detected_on == [(160, 320), (160, 320)]     # never the RGB frame, never a resized copy
    assert rec._track.box == pytest.approx((120, 500, 360, 260), abs=4)
    assert engine.encoded == 2                                 # encodings still on the full-size frame


def _enlarged(frame: np.ndarray, width: int) -> np.ndarray:
    """The same view of the scene as a bigger main stream gives it (nearest neighbour: colours stay exact)."""
    from PIL import Image

    height = round(frame.shape[0] * width / frame.shape[1])
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.NEAREST))


@pytest.mark.parametrize("face_px, verdict", [(40, COME_CLOSER), (56, None)])
def test_come_closer_means_the_same_distance_whatever_the_main_streams_size(face_px, verdict):
    """A face 40 px wide in 640 is 144 px in the Pi's 2304-px main stream: still too far (48 real px would pass)."""
    small = scene((ALICE, 300, 150, face_px), width=640, height=480)
    for frame in (small, _enlarged(small, 2304), _enlarged(small, 1280)):
        engine, index = world()
        rec = recognizer(engine, index)
        obs = rec.process(frame)
        assert obs.track_id is not None, frame.shape
        assert obs.hint == verdict, (frame.shape, obs)
        assert (engine.encoded == 0) == (verdict == COME_CLOSER), frame.shape


def test_min_face_size_scales_with_wide_frames_and_never_drops_below_the_setting():
    assert min_face_size(48, REFERENCE_WIDTH) == 48
    assert min_face_size(48, 2304) == pytest.approx(48 * 3.6)
    assert min_face_size(48, 250) == 48               # a 250-px photo: the face still needs 48 real pixels
    assert min_face_size(48, 320) == 48


def test_bad_frames_are_refused_with_a_clear_message():
    engine, index = world()
    with pytest.raises(ValueError, match="RGB uint8"):
        recognizer(engine, index).process(np.zeros((10, 10), np.uint8))
    frame = scene((ALICE, 100, 60, 120))
    with pytest.raises(ValueError, match="greyscale uint8"):
        recognizer(engine, index).process(frame, frame)


def test_geometry_helpers():
    assert iou((0, 10, 10, 0), (0, 10, 10, 0)) == 1.0
    assert iou((0, 10, 10, 0), (20, 30, 30, 20)) == 0.0
    assert dominant_face([(0, 100, 100, 0)], 100, dominance=2.0) == (0, None)
    assert dominant_face([(0, 60, 60, 0), (0, 100, 50, 60)], 100, dominance=2.0) == (None, ONE_AT_A_TIME)
    frontal = {"left_eye": [(10, 10)], "right_eye": [(30, 10)], "nose_tip": [(20, 25)]}
    assert yaw_ratio(frontal) == pytest.approx(0.0)
    assert yaw_ratio({**frontal, "nose_tip": [(28, 25)]}) == pytest.approx(0.4)
    assert yaw_ratio({}) == float("inf")


# -- real photos --------------------------------------------------------------------------------------------
def _need_faces():
    if not (FACES / "dev").is_dir():
        pytest.skip(f"../shared/data/faces not present: real-photo tests need the labelled photos at {FACES}")


@pytest.fixture(scope="module")
def engine():
    _need_faces()
    from kiosk.faces import FaceRecognitionEngine
    return FaceRecognitionEngine()


_IMAGES: dict = {}


def photo(relative: str, transform=None) -> np.ndarray:
    from PIL import Image

    key = (relative, transform)
    if key not in _IMAGES:
        image = Image.open(FACES / relative).convert("RGB")
        if transform == "blur":
            from PIL import ImageFilter
            image = image.filter(ImageFilter.GaussianBlur(4))
        elif transform == "tiny":
            image = image.resize((40, 40 * image.height // image.width), Image.BILINEAR)
        _IMAGES[key] = np.asarray(image)
    return _IMAGES[key]


GATE = dict(min_face_px=48, min_sharpness=20.0, max_yaw_ratio=0.4)


def real_recognizer(engine, index):
    return Recognizer(engine, index, threshold=0.5, margin=0.05, confirm_frames=2, enrol_frames=3,
                      dominance=2.0, detect_width=320, **GATE)


def test_a_good_photo_passes_the_gate_and_its_blurred_and_tiny_copies_do_not(engine):
    good = photo("dev/Bill_Gates/1.jpg")
    box = engine.detect(good, 1)[0]
    quality = assess(good, box, engine.landmarks(good, box), **GATE)
    assert quality.ok, quality
    blurred = photo("dev/Bill_Gates/1.jpg", "blur")
    blurred_quality = assess(blurred, box, engine.landmarks(blurred, box), **GATE)
    assert blurred_quality.hint == LOOK_AT_CAMERA and blurred_quality.sharpness < GATE["min_sharpness"]
    for copy in ("blur", "tiny"):
        rec = real_recognizer(engine, FaceIndex())
        observations = [rec.process(photo("dev/Bill_Gates/1.jpg", copy)) for _ in range(3)]
        assert all(o.enrol_encodings is None and not o.settled for o in observations), copy
        assert rec.stats.encodings == 0, copy


def test_one_photo_per_person_in_dev_passes_the_gate_as_a_whole_frame(engine):
    people = sorted(p for p in (FACES / "dev").iterdir() if p.is_dir())
    refused = []
    for person in people:
        frame = photo(f"dev/{person.name}/1.jpg")
        rec = real_recognizer(engine, FaceIndex())
        boxes = rec._detect(frame)
        chosen, hint = dominant_face(boxes, frame.shape[1], dominance=2.0)
        if chosen is None:
            refused.append((person.name, hint, len(boxes)))
            continue
        quality = assess(frame, boxes[chosen], engine.landmarks(frame, boxes[chosen]), **GATE)
        if not quality.ok:
            refused.append((person.name, quality))
    assert refused == []


def test_enrolled_photo_is_recognised_from_another_photo_and_a_stranger_is_not(engine):
    index = FaceIndex()
    rec = real_recognizer(engine, index)
    enrol = [rec.process(photo("dev/Barack_Obama/1.jpg")) for _ in range(3)][-1]
    assert enrol.settled and enrol.enrol_encodings.shape == (3, 128)
    index.add("obama", enrol.enrol_encodings)
    rec.reset()
    returning = [rec.process(photo("dev/Barack_Obama/2.jpg")) for _ in range(2)]
    assert [o.citizen_id for o in returning] == [None, "obama"]
    rec.reset()
    stranger = [rec.process(photo("dev/John_McCain/1.jpg")) for _ in range(3)]
    assert all(o.citizen_id is None for o in stranger) and stranger[-1].enrol_encodings is not None


def test_detection_on_a_small_luma_picture_finds_the_same_face_as_on_the_frame(engine):
    from PIL import Image

    image = Image.open(FACES / "dev/Barack_Obama/2.jpg").convert("RGB")
    frame = np.asarray(image)
    width, height = 320, round(320 * image.height / image.width)
    small = np.asarray(image.convert("L").resize((width, height), Image.BILINEAR))   # the lores stream: luma
    index = FaceIndex()
    rec = real_recognizer(engine, index)
    enrol = [rec.process(photo("dev/Barack_Obama/1.jpg")) for _ in range(3)][-1]
    index.add("obama", enrol.enrol_encodings)
    rec.reset()
    returning = [rec.process(frame, small) for _ in range(2)]
    assert [o.citizen_id for o in returning] == [None, "obama"]
    from_frame = rec._detect(frame)
    assert len(from_frame) == 1 and rec._track.box == pytest.approx(from_frame[0], abs=6)


def test_group_photo_without_a_dominant_face_identifies_nobody_even_when_both_are_enrolled(engine):
    index = FaceIndex()
    rec = real_recognizer(engine, index)
    for name in ("Barack_Obama", "Joseph_Biden"):
        rec.reset()
        enrol = [rec.process(photo(f"dev/{name}/1.jpg")) for _ in range(3)][-1]
        index.add(name, enrol.enrol_encodings)
    rec.reset()
    encoded_before = rec.stats.encodings
    group = [rec.process(photo("multi/fr_obama_and_biden.jpg")) for _ in range(3)]
    assert all(o.faces >= 2 and o.track_id is None and o.citizen_id is None for o in group)
    assert group[-1].hint == ONE_AT_A_TIME
    assert rec.stats.encodings == encoded_before


def test_group_photo_with_a_clearly_dominant_face_follows_only_that_face(engine):
    frame = photo("multi/dlib_2009_004587.jpg")
    rec = real_recognizer(engine, FaceIndex())
    observation = rec.process(frame)
    assert observation.faces == 2 and observation.track_id is not None
    boxes = rec._detect(frame)
    largest = max(boxes, key=lambda b: (b[1] - b[3]) * (b[2] - b[0]))
    assert rec._track.box == largest


def test_the_mirrored_encoding_reads_a_crop_and_equals_the_whole_frame_mirrored(engine):
    """Only the face and a margin are mirrored (cheap on a 2304-px frame); the encoding does not change."""
    from PIL import Image

    frame = np.full((1296, 2304, 3), 90, np.uint8)
    frame[200:950, 1000:1750] = np.asarray(Image.fromarray(photo("dev/Barack_Obama/2.jpg")).resize((750, 750)))
    for image in (frame, photo("dev/Bill_Gates/1.jpg")):
        box = Recognizer(engine, FaceIndex(), threshold=0.5, margin=0.05)._detect(image)[0]
        top, right, bottom, left = box
        width = image.shape[1]
        whole = (engine._encode(image, box)
                 + engine._encode(np.ascontiguousarray(image[:, ::-1]), (top, width - left, bottom, width - right))) / 2
        assert np.allclose(engine.encode(image, box), whole.astype(np.float32), atol=1e-6)


def test_the_engine_gives_face_recognitions_own_boxes_landmarks_and_encodings(engine):
    """The engine loads only the models it uses, straight from dlib; what it returns is face_recognition's."""
    import face_recognition

    people = sorted(p for p in (FACES / "dev").iterdir() if p.is_dir())[:12]
    compared = 0
    for person in people:
        image = photo(f"dev/{person.name}/{sorted(f.name for f in person.iterdir() if f.suffix == '.jpg')[0]}")
        boxes = face_recognition.face_locations(image, number_of_times_to_upsample=1, model="hog")
        assert engine.detect(image, 1) == [tuple(int(v) for v in box) for box in boxes]
        for box in boxes:
            assert engine.landmarks(image, box) == face_recognition.face_landmarks(image, [box], model="small")[0]
            theirs = face_recognition.face_encodings(image, [box], num_jitters=1, model="small")[0]
            assert np.abs(engine._encode(image, box) - theirs).max() < 1e-6
            compared += 1
    assert compared >= 10
