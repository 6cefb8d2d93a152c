"""QR codes in a camera frame, decoded with zxing-cpp: how the kiosk reads a CCCD card held up to the camera.

Runs on the recognition worker, never on the loop thread. ``zxingcpp`` is imported on first use, so
importing this module costs nothing. Only QR codes are looked for; what they say is judged by
:func:`kiosk.cccd.parse_card`.

Example::

    texts = decode_qr(frame_rgb)        # ["001203001234||Nguyễn Văn An|...", ...]
"""
from __future__ import annotations

import numpy as np


def decode_qr(image: np.ndarray) -> list[str]:
    """The texts of the valid QR codes in ``image`` (RGB H x W x 3 or greyscale H x W, uint8)."""
    import zxingcpp

    if image.ndim == 3:
        # zxing takes 3 channels as BGR; luminance is all it uses, so an RGB frame is fine as it is.
        image = np.ascontiguousarray(image[..., :3])
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [code.text for code in found if code.valid and code.text]
