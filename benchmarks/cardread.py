"""CCCD QR codes read from camera-like frames: zxing-cpp (the kiosk's decode_qr) against ZBar and OpenCV, same frames.

    .venv/bin/python benchmarks/cardread.py [--frames N] [--faces ../shared/data/faces/dev] [--seed S]

Each frame is a 1280 x 720 scene made here from a FICTIONAL payload (kiosk.cardgen: invented names, addresses and
numbers that pass kiosk.cccd's rules; never a real person's): a light card with text-like clutter and its QR
(one byte-mode segment, error correction M: version 7-8, 45-49 modules, for these ~110-140 byte payloads),
rotated up to +-15 degrees and tilted (a perspective of up to ~20 degrees), over a face photo from --faces as
background, with a second face photo in the foreground beside the card, then lit unevenly, blurred (Gaussian
sigma 0-0.8 px), given sensor noise and JPEG compressed (quality 60-90). The QR's size is set in pixels per
module (px/module) at its centre: 1.5, 2, 2.5, 3, 4. As many frames again show no card (the cost of looking
while nobody holds one up). The same frames go to:

* zxing-cpp through ``kiosk.cardread.decode_qr`` (what the kiosk runs), the same with OpenCV's grey and bicubic
  enlargement in place of Pillow's (what it ran before Pillow replaced OpenCV there), and zxing-cpp with its
  defaults on the RGB frame (the baseline the tuning is measured against);
* ZBar through pyzbar (needs Debian's libzbar0; skipped with a note when missing);
* OpenCV's ``cv2.QRCodeDetector().detectAndDecode``.

For each: the share of frames whose QR text came back exactly, per px/module; the mean and the 95th
percentile CPU time per frame (``time.thread_time``: robust on a busy machine; OpenCV held to one thread), and
the mean on as many frames without a card (what decoding costs while the kiosk waits for one); and the wrong
payloads accepted: a decoded text
that ``parse_card`` accepts but that differs from the truth (target 0). The kiosk's targets: >= 98 % at >= 2.5
px/module for zxing-cpp, 0 wrong payloads accepted.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.cardgen import card_image, invent_payload  # noqa: E402
from kiosk.cardread import UPSCALE, UPSCALE_WINDOW, decode_qr  # noqa: E402
from kiosk.cccd import InvalidCard, NotACard, parse_card  # noqa: E402

TODAY = date(2026, 12, 1)
FRAME_W, FRAME_H = 1280, 720
PX_PER_MODULE = (1.5, 2.0, 2.5, 3.0, 4.0)
RENDER_PPM = 6            # the card is drawn at 6 px/module, then area-averaged down like a sensor would
MAX_ROTATION = 15.0       # degrees
MAX_TILT = 0.12           # corner shift as a share of the card's size (a perspective of ~20 degrees)
DEFAULT_FRAMES = 100      # per px/module: 500 frames, about a minute and a half on one core

Decoder = Callable[[np.ndarray, np.ndarray], list[str]]


# -- scenes ---------------------------------------------------------------------------------------------------
def face_photos(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def background(rng: random.Random, photos: list[Path]) -> np.ndarray:
    """A face photo scaled to cover the frame, or (no photos) smooth random blotches."""
    if photos:
        picture = cv2.cvtColor(cv2.imread(str(rng.choice(photos))), cv2.COLOR_BGR2RGB)
        return cv2.resize(picture, (FRAME_W, FRAME_W))[(FRAME_W - FRAME_H) // 2:][:FRAME_H]
    noise = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, (9, 16, 3), dtype=np.uint8)
    return cv2.resize(noise, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC)


def scene(rng: random.Random, text: str | None, ppm: float, photos: list[Path]) -> np.ndarray:
    """One RGB frame with the card of ``text`` whose QR has ``ppm`` pixels per module at its centre
    (``text=None``: the same kind of frame with no card, what the camera sees while nobody shows one)."""
    card = card_image(text or "-", px_per_module=RENDER_PPM, rng=rng)
    scale = ppm / RENDER_PPM
    card = cv2.resize(card, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = card.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    tilt = np.float32([[rng.uniform(-1, 1) * MAX_TILT * w, rng.uniform(-1, 1) * MAX_TILT * h] for _ in range(4)])
    dst = src + tilt
    angle = np.radians(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
    rotation = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = (dst - dst.mean(axis=0)) @ rotation.T
    homography = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    # Where the QR (top right of the card, see card_image) lands; place the card so that all of it is in view.
    qr = _qr_corners(card.shape, ppm)
    qr_dst = cv2.perspectiveTransform(qr[None], homography)[0]
    margin = 8
    low = -qr_dst.min(axis=0) + margin
    high = np.float32([FRAME_W, FRAME_H]) - qr_dst.max(axis=0) - margin
    shift = np.float32([rng.uniform(low[0], max(low[0], high[0])), rng.uniform(low[1], max(low[1], high[1]))])
    homography = np.float64([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]]) @ homography
    qr_dst = qr_dst + shift
    frame = background(rng, photos).astype(np.float32)
    warped = cv2.warpPerspective(card, homography, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), homography, (FRAME_W, FRAME_H))[..., None]
    if text is not None:
        frame = frame * (1 - mask) + warped.astype(np.float32) * mask
    if photos:                                         # a face in front, beside the QR (never over it)
        face = cv2.cvtColor(cv2.imread(str(rng.choice(photos))), cv2.COLOR_BGR2RGB)
        size = rng.randrange(160, 300)
        face = cv2.resize(face, (size, size)).astype(np.float32)
        x0, y0 = qr_dst.min(axis=0) - 12
        x1, y1 = qr_dst.max(axis=0) + 12
        for _ in range(20):
            x, y = rng.randrange(0, FRAME_W - size), rng.randrange(0, FRAME_H - size)
            if x + size < x0 or x > x1 or y + size < y0 or y > y1:
                frame[y:y + size, x:x + size] = face
                break
    # Uneven light: a gain gradient across the frame and an offset; then sensor noise.
    gx = np.linspace(rng.uniform(0.65, 1.0), rng.uniform(0.65, 1.0), FRAME_W, dtype=np.float32)
    gy = np.linspace(rng.uniform(0.85, 1.05), rng.uniform(0.85, 1.05), FRAME_H, dtype=np.float32)
    frame = frame * (gy[:, None] * gx[None, :])[..., None] + rng.uniform(-10, 20)
    sigma = rng.uniform(0.0, 0.8)
    if sigma > 0.05:
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(1, 4), frame.shape)
    frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, rng.randrange(60, 91)])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1])


def clean_frame(text: str) -> np.ndarray:
    """The card of ``text`` at 4 px/module, upright and sharp, on a mid-grey 1280 x 720 frame."""
    card = card_image(text, px_per_module=4)
    frame = np.full((FRAME_H, FRAME_W, 3), 128, np.uint8)
    h, w = min(card.shape[0], FRAME_H), min(card.shape[1], FRAME_W)
    frame[:h, FRAME_W - w:] = card[:h, card.shape[1] - w:]      # the QR is at the card's top right
    return frame


def _qr_corners(shape: tuple[int, ...], ppm: float) -> np.ndarray:
    """The QR symbol's corners (with its quiet zone) on the scaled card, from card_image's layout."""
    height, width = shape[:2]
    side = height / 3.4
    top, left = max(1, height // 12), width - side - max(1, width // 20)
    return np.float32([[left, top], [left + side, top], [left + side, top + side], [left, top + side]])


# -- decoders -------------------------------------------------------------------------------------------------
def zxing_default(rgb: np.ndarray, grey: np.ndarray) -> list[str]:
    """zxing-cpp as it comes: every format, its own colour conversion, inverted/rotated/downscaled tries."""
    import zxingcpp

    return [c.text for c in zxingcpp.read_barcodes(rgb) if c.valid]


def kiosk_decoder(rgb: np.ndarray, grey: np.ndarray) -> list[str]:
    return decode_qr(rgb)


def kiosk_one_pass(rgb: np.ndarray, grey: np.ndarray) -> list[str]:
    return decode_qr(rgb, upscale=False)


def kiosk_with_opencv(rgb: np.ndarray, grey: np.ndarray) -> list[str]:
    """decode_qr as it was before the merge: OpenCV's grey and INTER_CUBIC enlargement instead of Pillow's."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    texts = decode_qr(grey, upscale=False)
    if not texts:
        height, width = grey.shape
        w, h = min(width, UPSCALE_WINDOW[0]), min(height, UPSCALE_WINDOW[1])
        top, left = (height - h) // 2, (width - w) // 2
        window = grey[top:top + h, left:left + w]
        texts = decode_qr(cv2.resize(window, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC),
                          upscale=False)
    return texts


def zbar_decoder() -> Decoder | str:
    try:
        from pyzbar import pyzbar
    except (ImportError, OSError) as exc:  # pyzbar raises ImportError when libzbar0 is missing
        return f"pyzbar skipped ({exc}): apt install libzbar0 and pip install pyzbar"

    def decode(rgb: np.ndarray, grey: np.ndarray) -> list[str]:
        return [s.data.decode("utf-8", "replace") for s in pyzbar.decode(grey, symbols=[pyzbar.ZBarSymbol.QRCODE])]
    return decode


def opencv_decoder() -> Decoder:
    detector = cv2.QRCodeDetector()

    def decode(rgb: np.ndarray, grey: np.ndarray) -> list[str]:
        try:
            text, _points, _straight = detector.detectAndDecode(grey)
        except cv2.error:          # OpenCV 5 raises on some misread symbols ("mode 14 ... not implemented")
            return []
        return [text] if text else []
    return decode


@dataclass
class Tally:
    decoded: dict[float, int] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)        # CPU time of this thread, frames with a card
    idle_seconds: list[float] = field(default_factory=list)   # ... frames without one
    wrong_text: int = 0          # some text that is not the truth
    wrong_accepted: int = 0      # ... that parse_card accepts as a card


def run(frames: int, photos: list[Path], seed: int, decoders: dict[str, Decoder]) -> dict[str, Tally]:
    rng = random.Random(seed)
    tallies = {name: Tally() for name in decoders}
    for ppm in (*PX_PER_MODULE, None):
        for _ in range(frames):
            truth = invent_payload(rng, today=TODAY) if ppm else None
            rgb = scene(rng, truth, ppm or 3.0, photos)
            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            for name, decode in decoders.items():
                tally = tallies[name]
                start = time.thread_time()
                texts = decode(rgb, grey)
                (tally.seconds if ppm else tally.idle_seconds).append(time.thread_time() - start)
                if ppm:
                    tally.decoded[ppm] = tally.decoded.get(ppm, 0) + (truth in texts)
                for text in texts:
                    if text != truth:
                        tally.wrong_text += 1
                        tally.wrong_accepted += accepted(text)
    return tallies


def accepted(text: str) -> bool:
    try:
        parse_card(text, today=TODAY)
    except (NotACard, InvalidCard):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames per px/module")
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "data" / "faces" / "dev")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--save", type=Path, help="write the first frame of each px/module here (PNG)")
    args = parser.parse_args(argv)
    if args.frames < 1:
        raise SystemExit("--frames must be at least 1")
    photos = face_photos(args.faces)
    cv2.setNumThreads(1)      # one worker thread on the kiosk; CPU time per frame is what the Pi will pay
    decoders: dict[str, Decoder] = {"zxing-cpp, kiosk decode_qr": kiosk_decoder,
                                    "zxing-cpp, one pass": kiosk_one_pass,
                                    "decode_qr with OpenCV (before)": kiosk_with_opencv,
                                    "zxing-cpp defaults (baseline)": zxing_default}
    zbar = zbar_decoder()
    if isinstance(zbar, str):
        print(zbar)
    else:
        decoders["ZBar (pyzbar)"] = zbar
    decoders["OpenCV QRCodeDetector"] = opencv_decoder()
    print(f"{args.frames} frames per px/module, {FRAME_W}x{FRAME_H}, seed {args.seed}, "
          + (f"{len(photos)} face photos from {args.faces}" if photos else
             f"no face photos at {args.faces}: synthetic backgrounds"))
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        rng = random.Random(args.seed)
        for ppm in PX_PER_MODULE:
            cv2.imwrite(str(args.save / f"scene-{ppm}.png"),
                        scene(rng, invent_payload(rng, today=TODAY), ppm, photos)[..., ::-1])
    clean = invent_payload(random.Random(args.seed), today=TODAY)
    print("clean card at 4 px/module (no rotation, blur or JPEG), kiosk decode_qr: "
          + ("read" if decode_qr(clean_frame(clean)) == [clean] else "NOT READ"))
    tallies = run(args.frames, photos, args.seed, decoders)
    print("decoded exactly, per px/module; CPU ms per frame with a card (mean, 95th percentile) and without one;")
    print("wrong = texts that are not the card's (also on frames without a card), accepted = of those, parse_card took")
    print("decoder".ljust(30) + "".join(f"{p:>7} px" for p in PX_PER_MODULE)
          + "   card ms    p95  no-card ms  wrong  accepted")
    baseline = statistics.mean(tallies["zxing-cpp defaults (baseline)"].seconds)
    for name, tally in tallies.items():
        rates = "".join(f"{100 * tally.decoded.get(p, 0) / args.frames:9.1f}%" for p in PX_PER_MODULE)
        mean = statistics.mean(tally.seconds)
        p95 = sorted(tally.seconds)[int(0.95 * (len(tally.seconds) - 1))]
        idle = statistics.mean(tally.idle_seconds)
        print(f"{name:<30}{rates}  {1000 * mean:8.1f} {1000 * p95:6.1f}  {1000 * idle:10.1f}  {tally.wrong_text:5d}  "
              f"{tally.wrong_accepted:8d}   ({mean / baseline:.2f}x the baseline's time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
