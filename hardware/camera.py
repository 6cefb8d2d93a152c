"""Cameras that hand the kiosk RGB frames: the Pi camera, a USB webcam, or a list of image files.

Every camera answers ``read()`` with an RGB ``uint8`` array of shape ``(H, W, 3)``, or ``None`` when it has no
frame to give (nobody shown by a :class:`FileCamera`). Failures to open or read a device raise
:class:`CameraError` with a message naming the device or file, so the journal says *which* camera failed.

The device libraries (``picamera2``, ``cv2``) are imported inside the constructors, never at import time: a
laptop without them can still import this module and use :class:`FileCamera`.

Example::

    cam = Picamera2Camera(size=(640, 480), lores_size=(320, 240))
    try:
        frame = cam.read()                  # RGB, 480 x 640 x 3
        frame, small = cam.read_with_lores()  # ... and the same instant as greyscale 240 x 320
    finally:
        cam.close()
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from os import PathLike
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_CAP_PROP_FRAME_WIDTH, _CAP_PROP_FRAME_HEIGHT = 3, 4  # cv2's constants, fixed in OpenCV's C API
AF_CONTINUOUS, AF_RANGE_FULL = 2, 2  # libcamera's AfModeEnum.Continuous and AfRangeEnum.Full


# Horizontal fields of view (degrees) of the Raspberry Pi camera modules, from their datasheets.
HFOV_CAMERA_MODULE_3 = 66.0
HFOV_CAMERA_MODULE_3_WIDE = 102.0
HFOV_CAMERA_V2 = 62.2


def px_per_module(width_px: int, *, hfov_deg: float, distance_mm: float, qr_mm: float, modules: int) -> float:
    """Pixels per QR module for a code ``qr_mm`` wide of ``modules`` modules held ``distance_mm`` from the lens.

    Why the Pi camera's main stream is large (kiosk/configs/pi.toml): a CCCD's QR is 11-15 mm and its ~100-140
    byte payload needs version 5-8 (37-49 modules), so a module is 0.22-0.41 mm. At distance d the frame spans
    ``2 d tan(hfov / 2)``: 325 mm at 25 cm for Camera Module 3 (66 degrees). zxing-cpp reads 97 % of tilted,
    blurred, JPEG'd codes at 2 px/module and all from 2.5 on (benchmarks/cardread.py), so the floor is 2. For
    a 13 mm version-6 code (41 modules, 0.32 mm each), Camera Module 3 gives (px/module):

    ====== ======= ======= ======= =======
    width  10 cm   15 cm   20 cm   25 cm
    ====== ======= ======= ======= =======
    640    1.6     1.0     0.8     0.6
    1280   3.1     2.1     1.6     1.2
    1920   4.7     3.1     2.3     1.9
    2304   5.6     3.7     2.8     2.2
    ====== ======= ======= ======= =======

    so only 2304 x 1296 (the sensor's full-field 2x2-binned mode: no crop, nothing for the ISP to scale) keeps
    2 px/module out to 25 cm; a small 11 mm version-7 code gets there up to ~21 cm. The v2 camera's widest
    binned mode, 1640 x 1232, reaches 2 px/module up to ~22 cm. Face detection runs on the lores stream
    whatever the main size, and landmarks and encodings use the face's pixels only (face boxes are scaled per
    axis), so the bigger main stream costs a larger frame copy, not slower recognition. The lens must focus at
    10-25 cm: :class:`Picamera2Camera` turns on continuous autofocus where the module has it (Camera Module 3);
    a v2 module's fixed focus (set for ~1 m and beyond) blurs a card this close unless its lens is turned.
    """
    span_mm = 2 * distance_mm * math.tan(math.radians(hfov_deg) / 2)
    return width_px * (qr_mm / modules) / span_mm


class CameraError(Exception):
    """A camera could not be opened or read; the message names the camera or file."""


@runtime_checkable
class Camera(Protocol):
    """What the application needs from a camera."""

    def read(self) -> np.ndarray | None:
        """The latest frame as RGB uint8 (H, W, 3), or None when there is no frame."""

    def close(self) -> None:
        """Release the device; calling it twice is harmless."""


def checked_frame(name: str, frame: Any) -> np.ndarray:
    """``frame`` as an (H, W, >=3) uint8 array, or a CameraError naming the camera and what came instead
    (None, another shape or type, no pixels): a driver's bad frame is one clear error, never an IndexError later."""
    if frame is None:
        raise CameraError(f"{name}: the camera returned no frame")
    try:
        array = np.asarray(frame)
    except Exception as exc:  # an object numpy cannot take: whatever the driver handed back
        raise CameraError(f"{name}: unreadable frame ({type(frame).__name__}: {exc})") from exc
    if array.ndim != 3 or array.shape[2] < 3 or not array.shape[0] or not array.shape[1]:
        raise CameraError(f"{name}: unreadable frame of shape {array.shape} (expected H x W x 3)")
    if array.dtype != np.uint8:
        raise CameraError(f"{name}: unreadable frame of type {array.dtype} (expected 8-bit pixels)")
    return array


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """Swap the channel order of an (H, W, 3) BGR frame into a new contiguous RGB array."""
    if frame.ndim != 3 or frame.shape[2] < 3:
        raise ValueError(f"expected an H x W x 3 frame, got shape {frame.shape}")
    # Channel by channel: three forward strided copies take a third of the time of one reversed-stride copy
    # (2.2 vs 7.4 ms for the 2304 x 1296 main stream on the development machine).
    rgb = np.empty(frame.shape[:2] + (3,), dtype=np.uint8)
    for channel in range(3):
        rgb[..., channel] = frame[..., 2 - channel]
    return rgb


def _import_picamera2(name: str) -> Any:
    """``picamera2.Picamera2``, or a CameraError saying why not.

    Any exception counts, not only ImportError: on Raspberry Pi OS a pip-installed numpy that shadows the
    system's makes apt's simplejpeg (imported by picamera2) raise ``ValueError: numpy.dtype size changed``.
    """
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise CameraError(f"{name}: the picamera2 library is not installed "
                          f"(apt install python3-picamera2; the venv needs --system-site-packages)") from exc
    except Exception as exc:
        hint = (" (a numpy built for another ABI: the venv must use the system's numpy, not one from pip; "
                "re-run install.sh)" if "numpy" in str(exc) or "dtype size" in str(exc) else "")
        raise CameraError(f"{name}: the picamera2 library fails to load: {type(exc).__name__}: {exc}{hint}") from exc
    return Picamera2


class Picamera2Camera:
    """The Raspberry Pi camera through picamera2 (libcamera).

    picamera2's ``"RGB888"`` format delivers pixels in **B, G, R** byte order (libcamera names formats after
    the DRM fourcc, little-endian); :meth:`read` swaps them so callers get true RGB.

    ``lores_size`` adds picamera2's low-resolution stream: the ISP scales the picture down for free, so face
    detection runs on it instead of on a copy the CPU shrinks. On most Pis (4 and earlier) that stream can
    only be YUV420, which picamera2 returns as an array of ``h * 3 // 2`` rows by the buffer *stride* (which
    may be wider than ``w``); :meth:`read_with_lores` keeps only the luma (Y) plane, cropped to ``(h, w)``:
    an exact greyscale image with no colour conversion (dlib's HOG detector takes greyscale as it is).
    Pass ``lores_size=None`` to skip the stream.

    ``size`` is the main stream: large enough for a CCCD's QR code to be read at arm's length (see
    :func:`px_per_module`; 2304 x 1296 on Camera Module 3). Where the module has autofocus it runs continuously
    over its full range, so a card held 10 cm from the lens is as sharp as a face at 60 cm.

    ``picamera2_factory`` (a callable returning a ``Picamera2``-like object) lets tests inject a stand-in;
    without it ``picamera2`` is imported here (on the Pi it comes from the apt package python3-picamera2,
    so the venv needs ``--system-site-packages``).
    """

    def __init__(self, *, size: tuple[int, int] = (640, 480), lores_size: tuple[int, int] | None = (320, 240),
                 picamera2_factory: Callable[[], Any] | None = None, camera_num: int = 0):
        self.name = f"Pi camera {camera_num} (picamera2)"
        self.size = (int(size[0]), int(size[1]))
        self.lores_size = None if lores_size is None else (int(lores_size[0]), int(lores_size[1]))
        if picamera2_factory is None:
            Picamera2 = _import_picamera2(self.name)
            picamera2_factory = lambda: Picamera2(camera_num)  # noqa: E731
        try:
            self._picam2 = picamera2_factory()
        except Exception as exc:  # libcamera raises IndexError/RuntimeError when no camera is attached
            raise CameraError(f"{self.name}: cannot open the camera: {exc}") from exc
        self._closed = False
        try:
            streams: dict[str, Any] = {"main": {"size": self.size, "format": "RGB888"}}
            if self.lores_size is not None:
                streams["lores"] = {"size": self.lores_size, "format": "YUV420"}
            config = self._picam2.create_preview_configuration(**streams)
            self._picam2.configure(config)
            self._picam2.start()
            if "AfMode" in (getattr(self._picam2, "camera_controls", None) or {}):
                self._picam2.set_controls({"AfMode": AF_CONTINUOUS, "AfRange": AF_RANGE_FULL})
        except Exception as exc:
            self._release()
            raise CameraError(f"{self.name}: cannot start the camera at {self.size[0]}x{self.size[1]}: {exc}") from exc

    def read(self) -> np.ndarray:
        """Capture one frame of the main stream as RGB uint8 (H, W, 3)."""
        self._check_open()
        try:
            frame = self._picam2.capture_array("main")
        except Exception as exc:
            raise CameraError(f"{self.name}: capture failed: {exc}") from exc
        return _bgr_to_rgb(checked_frame(self.name, frame)[..., :3])

    def read_with_lores(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The main frame as RGB and the low-resolution stream's luma, both from the same camera request.

        One ``capture_arrays`` call, so the small greyscale picture shows exactly the moment of the big one
        (two ``capture_array`` calls could straddle two frames, and a face box found on one would land
        beside the face on the other). Without a lores stream the second item is None.
        """
        if self.lores_size is None:
            return self.read(), None
        self._check_open()
        try:
            (main, yuv), _metadata = self._picam2.capture_arrays(["main", "lores"])
            yuv = np.asarray(yuv)
        except Exception as exc:  # raised, or handed back something that is not two arrays and metadata
            raise CameraError(f"{self.name}: capture failed: {exc}") from exc
        w, h = self.lores_size
        if yuv.ndim != 2 or yuv.shape[0] < h * 3 // 2 or yuv.shape[1] < w:
            raise CameraError(f"{self.name}: unexpected lores frame shape {yuv.shape} for YUV420 {w}x{h}")
        return (_bgr_to_rgb(checked_frame(self.name, main)[..., :3]),
                np.ascontiguousarray(yuv[:h, :w], dtype=np.uint8))

    def close(self) -> None:
        """Stop the stream and release the camera (safe to call twice)."""
        if not self._closed:
            self._release()

    def _release(self) -> None:
        self._closed = True
        for step in ("stop", "close"):
            try:
                getattr(self._picam2, step)()
            except Exception:  # closing must not raise: the camera may already be gone
                pass

    def _check_open(self) -> None:
        if self._closed:
            raise CameraError(f"{self.name}: the camera is closed")

    def __enter__(self) -> "Picamera2Camera":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class OpenCvCamera:
    """A USB webcam through OpenCV's ``VideoCapture`` (for laptops and non-Pi boards).

    OpenCV delivers BGR; :meth:`read` returns RGB. ``capture_factory`` (``index -> VideoCapture-like``) lets
    tests inject a stand-in without OpenCV installed.
    """

    def __init__(self, index: int = 0, *, size: tuple[int, int] = (640, 480),
                 capture_factory: Callable[[int], Any] | None = None):
        self.name = f"webcam at /dev/video{index}"
        self.size = (int(size[0]), int(size[1]))
        if capture_factory is None:
            # OpenCV prints its own warnings for a missing device; CameraError says it once, clearly.
            os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
            try:
                import cv2
            except ImportError as exc:
                raise CameraError(f"{self.name}: OpenCV (cv2) is not installed; "
                                  f"pip install opencv-python-headless") from exc
            except Exception as exc:   # e.g. a numpy ABI mismatch: a camera fault, never a traceback
                raise CameraError(f"{self.name}: OpenCV (cv2) fails to load: {type(exc).__name__}: {exc}") from exc
            capture_factory = cv2.VideoCapture
        try:
            self._capture = capture_factory(index)
            opened = bool(self._capture.isOpened())
        except Exception as exc:
            raise CameraError(f"no {self.name}: {exc}") from exc
        if not opened:
            self._capture.release()
            raise CameraError(f"no {self.name} (the device does not open)")
        self._capture.set(_CAP_PROP_FRAME_WIDTH, self.size[0])   # a request: the webcam may pick another size
        self._capture.set(_CAP_PROP_FRAME_HEIGHT, self.size[1])
        self._closed = False

    def read(self) -> np.ndarray:
        """The next frame as RGB uint8 (H, W, 3); a CameraError when the webcam gives none (unplugged, busy)."""
        if self._closed:
            raise CameraError(f"{self.name}: the camera is closed")
        try:
            ok, frame = self._capture.read()
        except Exception as exc:
            raise CameraError(f"{self.name}: capture failed: {exc}") from exc
        if not ok:
            raise CameraError(f"{self.name}: the webcam returned no frame")
        return _bgr_to_rgb(checked_frame(self.name, frame))

    def close(self) -> None:
        """Release the webcam (safe to call twice)."""
        if not self._closed:
            self._closed = True
            self._capture.release()

    def __enter__(self) -> "OpenCvCamera":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


PathArg = str | PathLike[str]


class FileCamera:
    """Frames from image files, for demos, replays and tests (no camera needed).

    ``paths`` is a list of image files, or one folder whose ``.jpg``/``.jpeg``/``.png`` files are played in
    sorted order. Each :meth:`read` returns the next frame (looping back to the first when ``loop`` is true,
    else ``None`` once all were played). :meth:`show` replaces the playlist with one still image, or with
    nothing (``show(None)``: nobody in front of the camera, :meth:`read` returns ``None``). Decoded frames are
    cached, so a replay does not decode the same JPEG every loop turn. An image whose header claims more than
    ``max_pixels`` pixels is refused before it is decoded (a 12000x12000 JPEG would take gigabytes).
    """

    def __init__(self, paths: PathArg | Iterable[PathArg] = (), *, loop: bool = True,
                 max_pixels: int | None = None):
        self.loop = loop
        self.max_pixels = max_pixels
        self._cache: dict[Path, np.ndarray] = {}
        self._playlist: list[Path] = self._expand(paths)
        self._position = 0
        self._closed = False

    @staticmethod
    def _expand(paths: PathArg | Iterable[PathArg]) -> list[Path]:
        if isinstance(paths, (str, PathLike)):
            folder = Path(paths)
            if not folder.is_dir():
                return [folder]
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not files:
                raise CameraError(f"file camera: no .jpg/.jpeg/.png images in folder {folder}")
            return files
        return [Path(p) for p in paths]

    def show(self, path: PathArg | None) -> None:
        """Show one still image from now on (``None``: show nothing, so :meth:`read` returns None)."""
        self._playlist = [] if path is None else [Path(path)]
        self._position = 0
        if path is not None:
            self._load(Path(path))  # fail now, naming the file, rather than on the next read

    def read(self) -> np.ndarray | None:
        """The next frame as RGB uint8 (H, W, 3), or None when nothing is shown or the playlist ended."""
        if self._closed:
            raise CameraError("file camera: the camera is closed")
        if not self._playlist:
            return None
        if self._position >= len(self._playlist):
            if not self.loop:
                return None
            self._position = 0
        path = self._playlist[self._position]
        self._position += 1
        return self._load(path)

    def _load(self, path: Path) -> np.ndarray:
        frame = self._cache.get(path)
        if frame is None:
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(path) as image:
                    width, height = image.size      # the header only: nothing decoded yet
                    if self.max_pixels is not None and width * height > self.max_pixels:
                        raise CameraError(f"file camera: image {path} is {width}x{height} pixels, over the limit "
                                          f"of {self.max_pixels:,}")
                    frame = np.asarray(image.convert("RGB"), dtype=np.uint8)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise CameraError(f"file camera: cannot read image {path}: {exc}") from exc
            frame.setflags(write=False)  # cached and shared between reads: nobody may draw on it
            self._cache[path] = frame
        return frame

    def close(self) -> None:
        """Forget the cached frames."""
        self._closed = True
        self._cache.clear()

    def __enter__(self) -> "FileCamera":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
