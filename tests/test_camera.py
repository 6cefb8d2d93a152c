"""Cameras: BGR -> RGB conversion, lifecycle, and errors that name the device or file."""
from __future__ import annotations

import builtins
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hardware.camera import Camera, CameraError, FileCamera, OpenCvCamera, Picamera2Camera

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


class FakePicamera2:
    """Mirrors the part of picamera2.Picamera2 the adapter uses, recording what was asked of it.

    Frames come back the way picamera2 hands them out: "RGB888" in B, G, R byte order; the "lores"
    YUV420 stream as (h * 3 // 2, stride) with a stride wider than the image.
    """

    def __init__(self, *, fail_start: bool = False, stride_pad: int = 64):
        self.calls: list[str] = []
        self.fail_start = fail_start
        self.stride_pad = stride_pad
        self.config: dict | None = None

    def create_preview_configuration(self, main=None, lores=None, **kwargs):
        self.calls.append("create_preview_configuration")
        return {"main": main, "lores": lores, **kwargs}

    def configure(self, config):
        self.calls.append("configure")
        self.config = config

    def start(self):
        self.calls.append("start")
        if self.fail_start:
            raise RuntimeError("Camera __init__ sequence did not complete.")

    def capture_array(self, name="main"):
        self.calls.append(f"capture_array:{name}")
        return self._array(name)

    def capture_arrays(self, names=("main",)):
        """One request, several streams: (arrays, metadata), as picamera2 returns them."""
        self.calls.append("capture_arrays:" + ",".join(names))
        return [self._array(name) for name in names], {"SensorTimestamp": 1}

    def _array(self, name):
        if name == "main":
            w, h = self.config["main"]["size"]
            frame = np.zeros((h, w, 3), dtype=np.uint8)
            frame[0, 0] = (10, 20, 200)        # B, G, R: a red pixel as picamera2 delivers it
            return frame
        w, h = self.config["lores"]["size"]
        yuv = np.full((h * 3 // 2, w + self.stride_pad), 128, dtype=np.uint8)  # padding + chroma rows = 128
        yuv[:h, :w] = np.arange(w, dtype=np.uint8)[None, :]                    # luma: a horizontal ramp
        return yuv

    def stop(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


def test_picamera2_configures_rgb888_main_and_yuv420_lores():
    fake = FakePicamera2()
    cam = Picamera2Camera(size=(64, 48), lores_size=(32, 24), picamera2_factory=lambda: fake)
    assert fake.config["main"] == {"size": (64, 48), "format": "RGB888"}
    assert fake.config["lores"] == {"size": (32, 24), "format": "YUV420"}
    assert fake.calls[:3] == ["create_preview_configuration", "configure", "start"]
    assert isinstance(cam, Camera)


def test_picamera2_read_swaps_bgr_to_contiguous_rgb():
    fake = FakePicamera2()
    with Picamera2Camera(size=(64, 48), lores_size=None, picamera2_factory=lambda: fake) as cam:
        frame = cam.read()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert tuple(frame[0, 0]) == (200, 20, 10)
    assert frame.flags.c_contiguous
    assert fake.config["lores"] is None


def test_picamera2_lores_is_the_luma_plane_of_the_same_request():
    fake = FakePicamera2(stride_pad=64)
    cam = Picamera2Camera(size=(64, 48), lores_size=(32, 24), picamera2_factory=lambda: fake)
    frame, grey = cam.read_with_lores()
    assert fake.calls[-1] == "capture_arrays:main,lores"            # one request for both pictures
    assert not any(c.startswith("capture_array:") for c in fake.calls)
    assert frame.shape == (48, 64, 3) and tuple(frame[0, 0]) == (200, 20, 10)
    assert grey.shape == (24, 32) and grey.dtype == np.uint8 and grey.flags.c_contiguous
    assert grey[5].tolist() == list(range(32))   # the ramp, none of the 128-valued padding or chroma
    cam.close()


def test_picamera2_without_lores_reads_the_main_frame_alone():
    fake = FakePicamera2()
    cam = Picamera2Camera(size=(64, 48), lores_size=None, picamera2_factory=lambda: fake)
    frame, grey = cam.read_with_lores()
    assert grey is None and frame.shape == (48, 64, 3)
    assert fake.calls[-1] == "capture_array:main"


def test_picamera2_short_lores_buffer_is_a_camera_error():
    fake = FakePicamera2()
    cam = Picamera2Camera(size=(64, 48), lores_size=(32, 24), picamera2_factory=lambda: fake)
    fake.config["lores"]["size"] = (32, 10)          # the buffer handed back is smaller than configured
    with pytest.raises(CameraError, match="unexpected lores frame shape"):
        cam.read_with_lores()


def test_picamera2_close_stops_then_closes_once():
    fake = FakePicamera2()
    cam = Picamera2Camera(size=(64, 48), picamera2_factory=lambda: fake)
    cam.close()
    cam.close()
    assert fake.calls[-2:] == ["stop", "close"]
    assert fake.calls.count("close") == 1
    with pytest.raises(CameraError, match="closed"):
        cam.read()


def test_picamera2_failing_start_names_the_camera_and_releases_it():
    fake = FakePicamera2(fail_start=True)
    with pytest.raises(CameraError, match=r"Pi camera 0.*cannot start.*did not complete"):
        Picamera2Camera(picamera2_factory=lambda: fake)
    assert fake.calls[-2:] == ["stop", "close"]


def test_picamera2_no_camera_attached_is_a_camera_error():
    def no_camera():
        raise IndexError("list index out of range")   # what Picamera2() raises with no camera attached
    with pytest.raises(CameraError, match="Pi camera 0.*cannot open"):
        Picamera2Camera(picamera2_factory=no_camera)


def test_picamera2_missing_library_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_picamera2(name, *args, **kwargs):
        if name == "picamera2":
            raise ImportError("No module named 'picamera2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_picamera2)
    with pytest.raises(CameraError, match="picamera2 library is not installed"):
        Picamera2Camera()


class FakeVideoCapture:
    """Mirrors cv2.VideoCapture: isOpened/set/read/release, frames in BGR."""

    def __init__(self, index: int, *, opens: bool = True, frames=None):
        self.index = index
        self.opens = opens
        self.frames = list(frames or [])
        self.props: dict[int, float] = {}
        self.released = 0

    def isOpened(self):
        return self.opens

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def read(self):
        if not self.frames:
            return False, None
        return True, self.frames.pop(0)

    def release(self):
        self.released += 1


def test_opencv_missing_cv2_names_the_webcam(monkeypatch):
    real_import = builtins.__import__

    def no_cv2(name, *args, **kwargs):
        if name == "cv2":
            raise ImportError("No module named 'cv2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    with pytest.raises(CameraError, match=r"webcam at /dev/video0.*cv2"):
        OpenCvCamera(0)


def test_opencv_device_that_does_not_open():
    captures = []

    def factory(index):
        captures.append(FakeVideoCapture(index, opens=False))
        return captures[-1]

    with pytest.raises(CameraError, match="no webcam at /dev/video2"):
        OpenCvCamera(2, capture_factory=factory)
    assert captures[0].released == 1


def test_opencv_read_converts_bgr_and_requests_the_size():
    bgr = np.zeros((4, 6, 3), dtype=np.uint8)
    bgr[1, 2] = (255, 0, 7)   # blue-ish in BGR
    capture = FakeVideoCapture(0, frames=[bgr])
    cam = OpenCvCamera(0, size=(320, 240), capture_factory=lambda i: capture)
    assert capture.props == {3: 320, 4: 240}   # CAP_PROP_FRAME_WIDTH, CAP_PROP_FRAME_HEIGHT
    frame = cam.read()
    assert tuple(frame[1, 2]) == (7, 0, 255)
    with pytest.raises(CameraError, match="webcam at /dev/video0: the webcam returned no frame"):
        cam.read()                             # unplugged or busy: an error the loop reports once
    cam.close()
    cam.close()
    assert capture.released == 1


def _write_png(path: Path, colour: tuple[int, int, int], size=(8, 6)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def test_file_camera_plays_a_folder_in_sorted_order_and_loops(tmp_path):
    _write_png(tmp_path / "b.png", (0, 255, 0))
    _write_png(tmp_path / "a.png", (255, 0, 0))
    (tmp_path / "notes.txt").write_text("not an image")
    cam = FileCamera(tmp_path)
    colours = [tuple(cam.read()[0, 0]) for _ in range(3)]
    assert colours == [(255, 0, 0), (0, 255, 0), (255, 0, 0)]


def test_file_camera_without_loop_ends_with_none(tmp_path):
    cam = FileCamera([_write_png(tmp_path / "x.png", (1, 2, 3))], loop=False)
    assert cam.read().shape == (6, 8, 3)
    assert cam.read() is None


def test_file_camera_show_one_still_or_nobody(tmp_path):
    still = _write_png(tmp_path / "still.png", (9, 9, 9))
    cam = FileCamera()
    assert cam.read() is None
    cam.show(still)
    assert tuple(cam.read()[0, 0]) == (9, 9, 9)
    assert tuple(cam.read()[0, 0]) == (9, 9, 9)
    cam.show(None)
    assert cam.read() is None


def test_file_camera_caches_decoded_frames(tmp_path):
    path = _write_png(tmp_path / "c.png", (5, 6, 7))
    cam = FileCamera([path])
    first = cam.read()
    path.unlink()                     # a second decode would now fail
    assert cam.read() is first
    assert not first.flags.writeable  # shared between reads, so nobody may scribble on it


def test_file_camera_unreadable_file_names_it(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    cam = FileCamera([bad])
    with pytest.raises(CameraError, match="broken.jpg"):
        cam.read()
    with pytest.raises(CameraError, match="missing.png"):
        cam.show(tmp_path / "missing.png")


def test_file_camera_empty_folder_names_it(tmp_path):
    with pytest.raises(CameraError, match=str(tmp_path)):
        FileCamera(tmp_path)


def test_file_camera_reads_real_face_photos():
    if not FACES.is_dir():
        pytest.skip("../shared/data/faces not present: the real face photos live beside the checkout")
    person = next(p for p in sorted((FACES / "dev").iterdir()) if p.is_dir())
    cam = FileCamera(person)
    frame = cam.read()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    assert frame.std() > 5           # a photo, not a blank frame


def test_the_pi_cameras_lores_stream_is_detect_width_wide_with_the_main_streams_shape():
    import dataclasses

    from kiosk.app import lores_size
    from kiosk.config import PACKAGED_CONFIGS, load_config

    config = load_config(PACKAGED_CONFIGS / "pi.toml")
    assert config.camera.kind == "picamera2"

    def sized(width, height, detect_width):
        return dataclasses.replace(config, camera=dataclasses.replace(config.camera, width=width, height=height),
                                   recognition=dataclasses.replace(config.recognition, detect_width=detect_width))
    assert lores_size(sized(640, 480, 320)) == (320, 240)
    assert lores_size(sized(1280, 720, 320)) == (320, 180)
    assert lores_size(sized(1296, 972, 330)) == (330, 248)      # even sides, as YUV420 needs
    assert lores_size(sized(320, 240, 640)) == (320, 240)       # never larger than the main stream


def _stand_in_picamera2(tmp_path, monkeypatch, source: str) -> None:
    """A ``picamera2`` package on sys.path in place of apt's, with ``source`` as its ``__init__.py``."""
    package = tmp_path / "standin" / "picamera2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)


# What apt's simplejpeg raises on Raspberry Pi OS when pip's numpy 2.x shadows the system's numpy 1.24.
NUMPY_ABI_ERROR = ("raise ValueError('numpy.dtype size changed, may indicate binary incompatibility. "
                   "Expected 96 from C header, got 88 from PyObject')\n")


def test_picamera2_import_raising_value_error_is_a_camera_error(tmp_path, monkeypatch):
    _stand_in_picamera2(tmp_path, monkeypatch, NUMPY_ABI_ERROR)
    with pytest.raises(CameraError, match=r"picamera2 library fails to load: ValueError: numpy.dtype size changed"
                                          r".*the system's numpy"):
        Picamera2Camera()


def test_picamera2_start_raising_runtime_error_is_a_camera_error_and_releases_it(tmp_path, monkeypatch):
    _stand_in_picamera2(tmp_path, monkeypatch, (
        "calls = []\n"
        "class Picamera2:\n"
        "    def __init__(self, num=0): calls.append(('open', num))\n"
        "    def create_preview_configuration(self, **streams): return streams\n"
        "    def configure(self, config): calls.append('configure')\n"
        "    def start(self): raise RuntimeError('Failed to start camera: Device or resource busy')\n"
        "    def stop(self): calls.append('stop')\n"
        "    def close(self): calls.append('close')\n"))
    with pytest.raises(CameraError, match="Pi camera 0.*cannot start.*Device or resource busy"):
        Picamera2Camera()
    assert sys.modules["picamera2"].calls == [("open", 0), "configure", "stop", "close"]


def test_opencv_import_raising_value_error_is_a_camera_error(monkeypatch):
    real_import = builtins.__import__

    def broken_cv2(name, *args, **kwargs):
        if name == "cv2":
            raise ValueError("numpy.core.multiarray failed to import")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken_cv2)
    with pytest.raises(CameraError, match=r"/dev/video0: OpenCV \(cv2\) fails to load: ValueError"):
        OpenCvCamera(0)


class FakeAutofocusPicamera2(FakePicamera2):
    """Camera Module 3: libcamera lists autofocus controls."""

    camera_controls = {"AfMode": (0, 2, 0), "AfRange": (0, 2, 0), "LensPosition": (0.0, 15.0, 1.0)}

    def set_controls(self, controls):
        self.controls = dict(controls)


def test_picamera2_turns_on_continuous_full_range_autofocus_where_the_module_has_it():
    fake = FakeAutofocusPicamera2()
    Picamera2Camera(size=(2304, 1296), picamera2_factory=lambda: fake)
    assert fake.controls == {"AfMode": 2, "AfRange": 2}
    plain = FakePicamera2()
    Picamera2Camera(picamera2_factory=lambda: plain)          # a v2 module: no autofocus, nothing set
    assert not hasattr(plain, "controls")

