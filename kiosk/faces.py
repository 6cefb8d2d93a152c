"""From camera frames to "who is standing at the kiosk": detection, quality gate, tracking, recognition.

The :class:`Recognizer` turns each frame into an :class:`Observation` for the state machine. It is built to be
right first and cheap second:

* only the *dominant* face counts (the largest, reasonably central, at least ``dominance`` times the area of
  the next): with two similar faces in view nobody is identified, so a visit never goes to a bystander;
* a face is encoded only if it passes the quality gate (big enough, sharp, roughly frontal); one that fails
  gets a hint for the screen instead;
* an identity is accepted only when the same citizen matches on ``confirm_frames`` frames of the same track,
  each match under the threshold and ahead of every other citizen by the margin (``FaceIndex.match``);
* detection runs on a small picture: the Pi camera's low-resolution stream when the loop has it (the ISP
  scaled it for free), else a copy downscaled to ``detect_width``; once a person's verdict is in, nothing is
  encoded again while they stay in view. A frame whose coarse picture (8 x 8 block means) has not changed
  since the last detection costs no detection at all; when the person moves they are found again by a cheap
  detection in a small window around the last box, and while anything changes, every ``recheck_every``
  frames a full-frame detection looks for bystanders.

dlib is imported only by :class:`FaceRecognitionEngine` (kiosk/dlib_engine.py); tests inject their own engine.

    >>> recognizer = Recognizer(FaceRecognitionEngine(), FaceIndex(), threshold=0.5, margin=0.05)  # doctest: +SKIP
    >>> recognizer.process(frame).citizen_id                                                      # doctest: +SKIP
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

import numpy as np

from kiosk.index import FaceIndex

Box = tuple[int, int, int, int]          # (top, right, bottom, left), face_recognition's order, pixels
Landmarks = Mapping[str, Sequence[tuple[float, float]]]

LOOK_AT_CAMERA = "look_at_camera"
COME_CLOSER = "come_closer"
ONE_AT_A_TIME = "one_at_a_time"

REFERENCE_WIDTH = 640    # min_face_px is a face width in a picture of the field of view this wide
ENCODE_MARGIN = 1.0      # the mirrored encoding reads the face box plus this much of its size on each side
CENTRE_BAND = 0.3        # the dominant face's centre must lie within 0.5 +/- this fraction of the frame width
SHARPNESS_SIZE = 80      # face crops are resized to this square before measuring sharpness (scale-free)
TRACK_IOU = 0.3          # box overlap that makes a detection the same person as the current track
TRACK_FACE_PX = 90       # in the tracking window the face is scaled to about this width (HOG needs >= 80)
TRACK_WINDOW = 0.35      # the tracking window extends the last box by this fraction of its size on each side
MOTION_BLOCKS = 8        # the scene signature: MOTION_BLOCKS x MOTION_BLOCKS block means of the green channel
MOTION_LEVEL = 8.0       # a block mean moving by more than this (of 255) means something moved
_STRANGER = "<stranger>"   # frame verdicts that are not a citizen id (ids are random hex, never these)
_AMBIGUOUS = "<ambiguous>"


# -- engine ------------------------------------------------------------------------------------------------
class Engine(Protocol):
    """What the recognizer needs from a face library (numpy in, numpy out)."""

    def detect(self, image: np.ndarray, upsample: int) -> list[Box]: ...
    def landmarks(self, image: np.ndarray, box: Box) -> Landmarks: ...
    def encode(self, image: np.ndarray, box: Box) -> np.ndarray: ...


# -- geometry and the quality gate (pure functions) ----------------------------------------------------------
def box_area(box: Box) -> int:
    top, right, bottom, left = box
    return max(0, right - left) * max(0, bottom - top)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when apart, 1 when identical)."""
    top, bottom = max(a[0], b[0]), min(a[2], b[2])
    left, right = max(a[3], b[3]), min(a[1], b[1])
    inter = max(0, right - left) * max(0, bottom - top)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union else 0.0


def dominant_face(boxes: Sequence[Box], frame_width: int, *, dominance: float) -> tuple[int | None, str | None]:
    """Index of the face to identify, or None with a hint.

    The largest face counts only if it is at least ``dominance`` times the area of the next one and its
    centre is within the central band of the frame; otherwise nobody is identified (a bystander must never
    get the visit).
    """
    if not boxes:
        return None, None
    order = sorted(range(len(boxes)), key=lambda i: box_area(boxes[i]), reverse=True)
    first = boxes[order[0]]
    if len(order) > 1 and box_area(first) < dominance * box_area(boxes[order[1]]):
        return None, ONE_AT_A_TIME
    centre = (first[1] + first[3]) / 2.0
    if abs(centre / frame_width - 0.5) > CENTRE_BAND:
        return None, LOOK_AT_CAMERA
    return order[0], None


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    return image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def sharpness(frame: np.ndarray, box: Box) -> float:
    """Variance of the Laplacian of the grey face crop, resized to a fixed size so it does not depend on scale."""
    from PIL import Image

    top, right, bottom, left = _clip(box, frame.shape)
    crop = frame[top:bottom, left:right]
    if crop.shape[0] < 3 or crop.shape[1] < 3:
        return 0.0
    grey = _grey(crop)
    grey = np.asarray(Image.fromarray(grey, mode="F").resize((SHARPNESS_SIZE, SHARPNESS_SIZE), Image.Resampling.BILINEAR))
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    return float(laplacian.var())


def yaw_ratio(landmarks: Landmarks) -> float:
    """How far the nose sits sideways from the eyes' midpoint, in inter-eye distances (0 = frontal).

    Works with the 5-point model (``left_eye``, ``right_eye``, ``nose_tip``) and the 68-point one.
    """
    try:
        left = np.mean(np.asarray(landmarks["left_eye"], np.float32), axis=0)
        right = np.mean(np.asarray(landmarks["right_eye"], np.float32), axis=0)
        nose = np.mean(np.asarray(landmarks["nose_tip"], np.float32), axis=0)
    except (KeyError, ValueError):
        return math.inf
    eyes = right - left
    distance = float(np.hypot(*eyes))
    if distance < 1e-6:
        return math.inf
    # Component of (nose - eye midpoint) along the eye line: sideways offset even when the head is tilted.
    offset = float(np.dot(nose - (left + right) / 2.0, eyes / distance))
    return abs(offset) / distance


@dataclass(frozen=True)
class Quality:
    """The quality gate's measurements for one face and its verdict (``hint`` None = good enough)."""
    size_px: int
    sharpness: float
    yaw: float
    hint: str | None

    @property
    def ok(self) -> bool:
        return self.hint is None


def min_face_size(min_face_px: float, frame_width: int) -> float:
    """The smallest face width the gate passes in a ``frame_width``-wide frame: ``min_face_px`` is a width in a
    :data:`REFERENCE_WIDTH`-px view of the field, so "come closer" means the same distance whatever the main
    stream's size (2304 px: 173); a narrower frame still needs ``min_face_px`` real pixels for dlib."""
    return float(min_face_px) * max(1.0, frame_width / REFERENCE_WIDTH)


def assess(frame: np.ndarray, box: Box, landmarks: Landmarks, *, min_face_px: int, min_sharpness: float,
           max_yaw_ratio: float) -> Quality:
    """The quality gate: big enough (:func:`min_face_size`), sharp enough, roughly frontal (sharpness is
    measured on a fixed-size copy and the yaw is a ratio: neither depends on the frame's size either)."""
    top, right, bottom, left = box
    size = min(right - left, bottom - top)
    if size < min_face_size(min_face_px, frame.shape[1]):
        return Quality(size, math.nan, math.nan, COME_CLOSER)
    sharp = sharpness(frame, box)
    yaw = yaw_ratio(landmarks)
    hint = None if sharp >= min_sharpness and yaw <= max_yaw_ratio else LOOK_AT_CAMERA
    return Quality(size, sharp, yaw, hint)


def scene_signature(frame: np.ndarray) -> np.ndarray:
    """A coarse picture of the frame: block means of a subsampled green channel (microseconds to compute)."""
    step = max(1, frame.shape[1] // 160)
    green = frame[::step, ::step, 1]
    rows = green.shape[0] // MOTION_BLOCKS * MOTION_BLOCKS
    cols = green.shape[1] // MOTION_BLOCKS * MOTION_BLOCKS
    if rows == 0 or cols == 0:
        return green.astype(np.float32)
    blocks = green[:rows, :cols].reshape(MOTION_BLOCKS, rows // MOTION_BLOCKS, MOTION_BLOCKS, cols // MOTION_BLOCKS)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def moved_blocks(scene: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """Which blocks changed? Block means average the sensor noise away; a person moving shifts them a lot."""
    if reference is None or scene.shape != reference.shape:
        return np.ones(scene.shape, bool)
    return np.abs(scene - reference) > MOTION_LEVEL


def _blocks_near(box: Box, shape: tuple[int, ...], grid: tuple[int, int]) -> np.ndarray:
    """The blocks covered by the tracking window around ``box`` (motion there is the tracked person's)."""
    top, right, bottom, left = box
    pad_x, pad_y = (right - left) * TRACK_WINDOW, (bottom - top) * TRACK_WINDOW
    height, width = shape[0], shape[1]
    rows, cols = grid
    r0 = max(0, int((top - pad_y) * rows // height))
    r1 = min(rows, int(math.ceil((bottom + pad_y) * rows / height)))
    c0 = max(0, int((left - pad_x) * cols // width))
    c1 = min(cols, int(math.ceil((right + pad_x) * cols / width)))
    near = np.zeros(grid, bool)
    near[r0:r1, c0:c1] = True
    return near


def _face_crop(image: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """The face with :data:`ENCODE_MARGIN` of its size on each side (a view, no copy), and the box in it."""
    top, right, bottom, left = box
    pad = int(math.ceil(ENCODE_MARGIN * max(right - left, bottom - top)))
    c_top, c_right, c_bottom, c_left = _clip((top - pad, right + pad, bottom + pad, left - pad), image.shape)
    return image[c_top:c_bottom, c_left:c_right], (top - c_top, right - c_left, bottom - c_top, left - c_left)


def _clip(box: Box, shape: tuple[int, ...]) -> Box:
    top, right, bottom, left = box
    height, width = shape[0], shape[1]
    return max(0, top), min(width, right), min(height, bottom), max(0, left)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0))


# -- the recognizer -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Observation:
    """What the recognizer tells the state machine about one processed frame."""
    faces: int                          # faces detected in the frame
    track_id: int | None                # same value while the same person stays in view; None = nobody usable
    citizen_id: str | None              # identity confirmed over >= confirm_frames frames, else None
    settled: bool                       # the recognizer has its verdict for this person (known, or unknown for sure)
    enrol_encodings: np.ndarray | None  # k x 128 of this person when unknown and k frames passed the quality gate
    hint: str | None                    # "look_at_camera" | "come_closer" | "one_at_a_time" | None
    encodings: np.ndarray | None = None  # once settled: k x 128 of the good frames the verdict came from
    distance: float | None = None       # nearest template over those frames (the citizen's, when identified)
    nearest: str | None = None          # whose template that was
    unsure: bool = False                # identified nobody, yet nearer than ``unsure_below`` to somebody
    cards: tuple[str, ...] = ()         # QR texts the worker read in the same frame (kiosk.cardread)


@dataclass
class _Track:
    id: int
    box: Box
    faces: int = 1                      # faces in view at the last full-frame detection
    since_full: int = 0                 # detections in the tracking window since the last full-frame one
    scene: np.ndarray | None = None     # scene signature at the last detection of the face
    scene_full: np.ndarray | None = None  # ... and at the last full-frame detection
    matched: list[str] = field(default_factory=list)   # per encoded frame: citizen id, _STRANGER or _AMBIGUOUS
    encodings: list[np.ndarray] = field(default_factory=list)
    citizen_id: str | None = None
    enrol: np.ndarray | None = None
    settled: bool = False
    hint: str | None = None
    seen: np.ndarray | None = None      # once settled: the good frames' encodings
    distance: float = math.inf          # best distance over the encoded frames, and to whom
    nearest: str | None = None


@dataclass
class RecognizerStats:
    """Work done so far (benchmarks read it; cheap to keep)."""
    frames: int = 0
    full_detections: int = 0
    window_detections: int = 0
    unchanged: int = 0                  # frames that needed no detection (nothing moved)
    encodings: int = 0


class Recognizer:
    """Frames in, :class:`Observation` out; one instance lives on the recognition worker thread."""

    def __init__(self, engine: Engine, index: FaceIndex, *, threshold: float, margin: float,
                 confirm_frames: int = 2, enrol_frames: int = 3, min_face_px: int = 48,
                 min_sharpness: float = 20.0, max_yaw_ratio: float = 0.4, dominance: float = 2.0,
                 detect_width: int = 320, detect_upsample: int = 1, recheck_every: int = 10,
                 unsure_below: float | None = None):
        if confirm_frames < 1 or enrol_frames < 1:
            raise ValueError("confirm_frames and enrol_frames must be at least 1")
        if detect_width < 32:
            raise ValueError(f"detect_width must be at least 32 pixels, got {detect_width}")
        self._engine = engine
        self._index = index
        self.threshold, self.margin = float(threshold), float(margin)
        self.confirm_frames, self.enrol_frames = int(confirm_frames), int(enrol_frames)
        self.min_face_px, self.min_sharpness = int(min_face_px), float(min_sharpness)
        self.max_yaw_ratio, self.dominance = float(max_yaw_ratio), float(dominance)
        self.detect_width, self.detect_upsample = int(detect_width), int(detect_upsample)
        self.recheck_every = max(1, int(recheck_every))
        self.unsure_below = None if unsure_below is None else float(unsure_below)
        self._ids = itertools.count(1)
        self._track: _Track | None = None
        self.stats = RecognizerStats()

    def reset(self) -> None:
        """Forget the current person (a visit ended): the next frame starts a new track and a new verdict."""
        self._track = None

    def process(self, frame_rgb: np.ndarray, small_grey: np.ndarray | None = None) -> Observation:
        """Detect, gate, track and (when still needed) encode and match the dominant face of one frame.

        ``small_grey`` is the same instant as a small greyscale picture (picamera2's lores stream): full-frame
        detection then runs on it; landmarks and encodings always use the full-size RGB frame.
        """
        frame = np.asarray(frame_rgb)
        if frame.ndim != 3 or frame.shape[2] < 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 H x W x 3 frame, got {frame.dtype} {frame.shape}")
        if small_grey is not None:
            small_grey = np.asarray(small_grey)
            if small_grey.ndim != 2 or small_grey.dtype != np.uint8 or min(small_grey.shape) < 1:
                raise ValueError(f"expected a greyscale uint8 h x w picture, got {small_grey.dtype} {small_grey.shape}")
        self.stats.frames += 1
        track = self._track
        if track is not None and track.settled:
            scene = scene_signature(frame)
            near = _blocks_near(track.box, frame.shape, scene.shape)
            inside = (moved_blocks(scene, track.scene) & near).any()         # the person moved
            outside = (moved_blocks(scene, track.scene_full) & ~near).any()  # something else changed
            if not inside and not outside:
                self.stats.unchanged += 1         # nothing moved since the last detection: same face, same place
                return self._observe(track.faces, track)
            if track.since_full < self.recheck_every:
                # Changes elsewhere only bring the next full-frame check closer; the person is followed
                # in a small window around the last box, and only when they moved.
                track.since_full += 1
                box = self._follow(frame, track.box) if inside else track.box
                if box is not None:
                    track.box = box
                    if inside:
                        track.scene = scene
                    return self._observe(track.faces, track)
        return self._full(frame, small_grey)

    def encode_still(self, image_rgb: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """Encode the dominant face of one still image the way a frame would be (calibration, benchmarks).

        Returns ``(encoding, None)``, or ``(None, reason)`` with reason ``"no_face"`` or a quality hint.
        No tracking and no matching: the recognizer's state is left alone.
        """
        frame = np.asarray(image_rgb)
        boxes = self._detect(frame)
        chosen, hint = dominant_face(boxes, frame.shape[1], dominance=self.dominance)
        if chosen is None:
            return None, hint or "no_face"
        box = boxes[chosen]
        quality = assess(frame, box, self._engine.landmarks(frame, box), min_face_px=self.min_face_px,
                         min_sharpness=self.min_sharpness, max_yaw_ratio=self.max_yaw_ratio)
        if not quality.ok:
            return None, quality.hint
        self.stats.encodings += 1
        return np.asarray(self._engine.encode(frame, box), np.float32), None

    # -- steps ------------------------------------------------------------------------------------------------
    def _full(self, frame: np.ndarray, small_grey: np.ndarray | None = None) -> Observation:
        """Full-frame detection on the small picture, dominance rule, track association, gate, encode."""
        boxes = self._detect(frame, small_grey)
        self.stats.full_detections += 1
        chosen, hint = dominant_face(boxes, frame.shape[1], dominance=self.dominance)
        if chosen is None:
            # Nobody usable (no face, several and no clear one, off to the side): the track ends here, so
            # whoever is seen next starts a new one and must earn an identity of their own; a person who
            # walks off is never inherited by the next one stepping into the same place.
            self._track = None
            return Observation(len(boxes), None, None, False, None, hint)
        box = boxes[chosen]
        track = self._track
        if track is None or iou(track.box, box) < TRACK_IOU:
            track = self._track = _Track(next(self._ids), box)
        track.box, track.since_full, track.faces = box, 0, len(boxes)
        if not track.settled:
            self._judge(frame, track)
        if track.settled:
            track.scene = track.scene_full = scene_signature(frame)
        return self._observe(len(boxes), track)

    def _judge(self, frame: np.ndarray, track: _Track) -> None:
        """Quality gate, then one encoding and one match; settle once the frames agree."""
        quality = assess(frame, track.box, self._engine.landmarks(frame, track.box), min_face_px=self.min_face_px,
                         min_sharpness=self.min_sharpness, max_yaw_ratio=self.max_yaw_ratio)
        track.hint = quality.hint
        if not quality.ok:
            return
        encoding = self._engine.encode(frame, track.box)
        self.stats.encodings += 1
        match = self._index.match(encoding, threshold=self.threshold, margin=self.margin)
        # Per frame: the accepted citizen, STRANGER (nobody under the threshold) or AMBIGUOUS (somebody
        # under the threshold but too close to another citizen, or a frame that disagrees).
        verdict = match.citizen_id or (_STRANGER if match.distance >= self.threshold else _AMBIGUOUS)
        track.matched.append(verdict)
        track.encodings.append(encoding)
        if match.distance < track.distance:
            track.distance, track.nearest = float(match.distance), match.nearest or match.citizen_id
        recent = track.matched[-self.confirm_frames:]
        if (len(recent) == self.confirm_frames and recent[0] not in (_STRANGER, _AMBIGUOUS)
                and recent.count(recent[0]) == len(recent)):
            track.citizen_id, track.settled = recent[0], True
        elif len(track.matched) == self.enrol_frames and all(v is _STRANGER for v in track.matched):
            # Unknown for sure: every good frame of this person was far from everybody enrolled.
            track.enrol, track.settled = np.stack(track.encodings).astype(np.float32), True
        elif len(track.matched) >= self.enrol_frames + self.confirm_frames:
            track.settled = True          # the frames never agreed: nobody, and no second enrolment either
        if track.settled:
            track.seen = np.stack(track.encodings).astype(np.float32)
            track.encodings.clear()

    def _follow(self, frame: np.ndarray, last: Box) -> Box | None:
        """Find the tracked face again in a small window around its last box (cheap), or None."""
        top, right, bottom, left = last
        width, height = right - left, bottom - top
        if width <= 0 or height <= 0:
            return None
        pad_x, pad_y = int(width * TRACK_WINDOW), int(height * TRACK_WINDOW)
        w_top, w_right, w_bottom, w_left = _clip((top - pad_y, right + pad_x, bottom + pad_y, left - pad_x),
                                                 frame.shape)
        window = frame[w_top:w_bottom, w_left:w_right]
        scale = min(1.0, TRACK_FACE_PX / width)
        if scale < 1.0:
            window = _resize(window, max(1, round(window.shape[1] * scale)), max(1, round(window.shape[0] * scale)))
        upsample = 0 if width * scale >= 80 else 1
        self.stats.window_detections += 1
        found = [_scale_box(b, 1.0 / scale, 1.0 / scale, (w_top, w_left))
                 for b in self._engine.detect(window, upsample)]
        best = max(found, key=lambda b: iou(b, last), default=None)
        if best is None or iou(best, last) < TRACK_IOU:
            return None
        return best

    def _detect(self, frame: np.ndarray, small_grey: np.ndarray | None = None) -> list[Box]:
        """Faces of the frame in full-size pixels, found on ``small_grey`` or on a copy ``detect_width`` wide."""
        height, width = frame.shape[:2]
        if small_grey is not None:
            # Each axis on its own: the ISP scales the whole field of view into whatever size lores has.
            sy, sx = height / small_grey.shape[0], width / small_grey.shape[1]
            return [_clip(_scale_box(b, sy, sx), frame.shape)
                    for b in self._engine.detect(small_grey, self.detect_upsample)]
        if width <= self.detect_width:
            return self._engine.detect(frame, self.detect_upsample)
        scale = self.detect_width / width
        small = _resize(frame, self.detect_width, max(1, round(height * scale)))
        return [_scale_box(b, 1.0 / scale, 1.0 / scale) for b in self._engine.detect(small, self.detect_upsample)]

    def _observe(self, faces: int, track: _Track) -> Observation:
        known = math.isfinite(track.distance)
        unsure = (track.settled and track.citizen_id is None and known and self.unsure_below is not None
                  and track.distance < self.unsure_below)
        return Observation(faces=faces, track_id=track.id, citizen_id=track.citizen_id, settled=track.settled,
                           enrol_encodings=track.enrol, hint=None if track.settled else track.hint,
                           encodings=track.seen if track.settled else None,
                           distance=track.distance if known else None, nearest=track.nearest, unsure=unsure)


def _scale_box(box: Box, sy: float, sx: float, offset: tuple[int, int] = (0, 0)) -> Box:
    """``box`` from a scaled picture back to the frame: rows times ``sy``, columns times ``sx``, then shifted."""
    top, right, bottom, left = box
    dy, dx = offset
    return (int(round(top * sy)) + dy, int(round(right * sx)) + dx,
            int(round(bottom * sy)) + dy, int(round(left * sx)) + dx)


from kiosk.dlib_engine import FaceRecognitionEngine  # noqa: E402  (last: it uses this module's helpers)
