"""QR codes in a camera frame, decoded with zxing-cpp: how the kiosk reads a CCCD card held up to the camera.

Runs on the recognition worker, never on the loop thread, and only when asked (while someone is in front of
the kiosk). ``zxingcpp`` is imported on first use, so importing this module costs nothing. Only QR
codes are looked for; what they say is judged by :func:`kiosk.cccd.parse_card`.

Tuned on benchmarks/cardread.py (1280 x 720 card scenes; see the README's "Card reading"):

* one greyscale pass, QR only, no inverted or rotated-1D search and no downscaled pyramid: the same decode rate
  as zxing-cpp's defaults at a fraction of the time (a card's QR is dark on light, and 2D codes are found at
  any angle anyway);
* when that pass finds nothing, a second pass on the frame enlarged twice: it turns most QR codes at
  1.5-2 px/module, too coarse for the detector, into readable ones. The enlarged window is at most
  :data:`UPSCALE_WINDOW` (the frame's centre, where the screen asks the card to be held), so this pass costs the
  same on a big camera frame as on a 1280 x 720 one. The enlargement is :func:`enlarge2x`, OpenCV's bicubic
  kernel in numpy: OpenCV itself is not used (its pip wheels would shadow the Pi's apt numpy), and Pillow's
  bicubic was 1.7x slower and read fewer codes at 1.5 px/module (its kernel is softer).

Payload bytes are read as UTF-8 (the card's encoding) rather than left to zxing's character-set guess; a code
whose bytes are not UTF-8 is returned as zxing's text, and parse_card then rejects what is no card.

Example::

    texts = decode_qr(frame_rgb)        # ["001203001234||Nguyễn Văn An|...", ...]
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import zxingcpp

UPSCALE = 2
UPSCALE_WINDOW = (1280, 720)    # width, height of the centre window the second pass enlarges


def decode_qr(image: np.ndarray, *, upscale: bool = True) -> list[str]:
    """The texts of the valid QR codes in ``image`` (RGB H x W x 3 or greyscale H x W, uint8).

    ``upscale=False`` skips the second, enlarged pass (half the worst-case time, fewer small codes read).
    """
    grey = _grey(image)
    texts = _read(grey)
    if not texts and upscale:
        texts = _read(_enlarged_centre(grey))
    return texts


def _grey(image: np.ndarray) -> np.ndarray:
    """Luma of an RGB frame (ITU-R 601, as zxing's own conversion), or the greyscale frame as it is."""
    if image.ndim == 2:
        return np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"expected an H x W x 3 or H x W picture, got shape {image.shape}")
    return np.asarray(Image.fromarray(np.ascontiguousarray(image[..., :3], dtype=np.uint8)).convert("L"))


def _enlarged_centre(grey: np.ndarray) -> np.ndarray:
    height, width = grey.shape
    w, h = min(width, UPSCALE_WINDOW[0]), min(height, UPSCALE_WINDOW[1])
    top, left = (height - h) // 2, (width - w) // 2
    return enlarge2x(grey[top:top + h, left:left + w])


# OpenCV's INTER_CUBIC (a = -0.75) for a 2x enlargement, in 64ths so that int16 arithmetic suffices: an even
# output pixel lies a quarter pixel before input pixel i (taps i-2, i-1, i, i+1: -2, 17, 56, -7), an odd one a
# quarter pixel after it (taps i-1 .. i+2: the same weights mirrored).
_NEAR, _NEXT, _FAR, _OPPOSITE = 56, 17, -2, -7


def enlarge2x(grey: np.ndarray) -> np.ndarray:
    """``grey`` (H x W uint8) enlarged to 2H x 2W with a bicubic filter, edges replicated.

    Within 4 grey levels of ``cv2.resize(grey, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)`` (whose sharper
    kernel reads more small QR codes than Pillow's) in 0.6 of the time of Pillow's bicubic resize: int16
    throughout, the weights rounded to 64ths, the first pass kept unclipped."""
    padded = np.pad(np.asarray(grey, dtype=np.uint8), 2, mode="edge").astype(np.int16)
    rows = _cubic_pass(padded, axis=1)       # (H + 4) x 2W
    rows += 32
    rows >>= 6
    both = _cubic_pass(rows, axis=0)         # 2H x 2W
    both += 32
    both >>= 6
    np.clip(both, 0, 255, out=both)
    return both.astype(np.uint8)


def _cubic_pass(padded: np.ndarray, *, axis: int) -> np.ndarray:
    """One axis of :func:`enlarge2x`: ``padded`` has 2 extra pixels at each end of ``axis``; the result is twice
    as long there (minus the padding) and 64 times the pixel values."""
    n = padded.shape[axis] - 4
    a, b, c, d, e = (padded[k:k + n] if axis == 0 else padded[:, k:k + n] for k in range(5))
    shape = list(padded.shape)
    shape[axis] = 2 * n
    out = np.empty(shape, np.int16)
    even, odd = (out[0::2], out[1::2]) if axis == 0 else (out[:, 0::2], out[:, 1::2])
    centre = c * np.int16(_NEAR)
    np.multiply(b, np.int16(_NEXT), out=even)
    even += centre
    even += a * np.int16(_FAR)
    even += d * np.int16(_OPPOSITE)
    np.multiply(d, np.int16(_NEXT), out=odd)
    odd += centre
    odd += b * np.int16(_OPPOSITE)
    odd += e * np.int16(_FAR)
    return out


def _read(grey: np.ndarray) -> list[str]:
    import zxingcpp

    found = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
                                   try_rotate=False,
                                   try_downscale=False, try_invert=False)
    return [text for text in (_text(code) for code in found if code.valid) if text]


def _text(code: zxingcpp.Barcode) -> str:
    try:
        return bytes(code.bytes).decode("utf-8")
    except UnicodeDecodeError:
        return code.text
