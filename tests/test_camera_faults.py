"""Unreadable frames (issue 15, item 3): a capture that raises or hands back None or a garbage shape is one
CameraError naming the camera; in the loop it is one journal line when it starts, one when it recovers, and a
staff notice meanwhile; never a crash, never a line a frame."""
import logging

import numpy as np
import pytest

from fakes import Clock, Services
from hardware.camera import CameraError, OpenCvCamera, Picamera2Camera
from kiosk.loop import RecognitionWorker
from kiosk.visit import ButtonPressed
from test_camera import FakePicamera2, FakeVideoCapture
from test_loop import FRAME, ScriptedRecognizer, _loop, _run_for

GARBAGE = [None, np.zeros((480, 640), np.uint8), np.zeros((0, 0, 3), np.uint8), np.zeros((4, 4, 3), np.float32),
           np.zeros((4, 4, 2), np.uint8), "not a frame", np.zeros(7, np.uint8)]


class BadPicamera2(FakePicamera2):
    """A Pi camera whose driver hands back ``frame`` (or raises it) instead of a picture."""

    def __init__(self, frame):
        super().__init__()
        self.frame = frame

    def _array(self, name):
        if isinstance(self.frame, Exception):
            raise self.frame
        return self.frame if name == "main" else super()._array(name)


@pytest.mark.parametrize("frame", GARBAGE + [RuntimeError("Failed to dequeue buffer")], ids=repr)
@pytest.mark.parametrize("lores", [None, (320, 240)])
def test_a_bad_pi_camera_frame_is_one_clear_camera_error(frame, lores):
    cam = Picamera2Camera(lores_size=lores, picamera2_factory=lambda: BadPicamera2(frame))
    read = cam.read if lores is None else cam.read_with_lores
    with pytest.raises(CameraError, match=r"^Pi camera 0 \(picamera2\): (capture failed|unreadable frame|the camera "
                                          r"returned no frame)"):
        read()


@pytest.mark.parametrize("frame", GARBAGE[1:], ids=repr)
def test_a_bad_webcam_frame_is_one_clear_camera_error(frame):
    cam = OpenCvCamera(0, capture_factory=lambda i: FakeVideoCapture(i, frames=[frame]))
    with pytest.raises(CameraError, match=r"^webcam at /dev/video0: unreadable frame"):
        cam.read()


class Flaky:
    """A camera that fails while ``broken`` is set (raising, or handing back garbage through the Pi adapter)."""

    def __init__(self):
        self.broken = False
        self.pi = Picamera2Camera(lores_size=None, picamera2_factory=lambda: BadPicamera2(None))

    def read(self):
        return self.pi.read() if self.broken else FRAME


def test_unreadable_frames_are_one_line_when_they_start_one_when_they_stop_and_a_staff_notice(caplog):
    caplog.set_level(logging.INFO, "kiosk.loop")

    class NoticeServices(Services):
        def notice(self):
            return loop.camera_watch.notice

    clock, camera = Clock(), Flaky()
    loop, worker, services = _loop(ScriptedRecognizer(), camera, clock, services=NoticeServices())
    try:
        _run_for(loop, clock, 2.0)
        assert loop.machine.view.notice is None
        camera.broken = True
        _run_for(loop, clock, 60.0, step=0.05)                     # 120 unreadable frames at 2 a second
        assert loop.camera_watch.failures >= 100
        notice = loop.machine.view.notice
        assert notice.startswith("Camera lỗi; kiosk vẫn cấp số\nCamera: Pi camera 0 (picamera2): the camera returned "
                                 "no frame")
        loop.events.put(ButtonPressed("ho-tich"))                  # tickets go on
        loop.step()
        assert services.issued == [("ho-tich", None)]
        camera.broken = False
        _run_for(loop, clock, 10.0, step=0.05)
        assert loop.camera_watch.notice is None
    finally:
        worker.close()
    lines = [r for r in caplog.records if r.name == "kiosk.loop"]
    assert [r.levelname for r in lines] == ["ERROR", "INFO"], [r.getMessage() for r in lines]
    assert "said once" in lines[0].getMessage() and "works again after" in lines[1].getMessage()


def test_a_model_failing_on_every_frame_is_logged_once_with_its_traceback(caplog):
    caplog.set_level(logging.INFO, "kiosk.loop")
    clock, recognizer = Clock(), ScriptedRecognizer(fail=True)
    loop, worker, _ = _loop(recognizer, object.__new__(type("Cam", (), {"read": lambda self: FRAME})), clock)
    try:
        _run_for(loop, clock, 20.0, step=0.05)
        assert worker.watch.failures >= 30 and worker.watch.notice.startswith("Nhận diện khuôn mặt lỗi; kiosk vẫn cấp số\nFace recognition:")
        recognizer.fail = False
        _run_for(loop, clock, 2.0, step=0.05)
    finally:
        worker.close()
    lines = [r for r in caplog.records if r.name == "kiosk.loop"]
    assert [r.levelname for r in lines] == ["ERROR", "INFO"] and lines[0].exc_info is not None
    assert isinstance(worker, RecognitionWorker) and worker.watch.notice is None


def test_a_card_decoder_failing_on_every_frame_is_logged_once(caplog):
    caplog.set_level(logging.INFO, "kiosk.loop")
    calls = []

    def reader(frame):
        calls.append(1)
        if len(calls) < 30:
            raise ValueError("zxing: bad image")
        return []

    clock = Clock()
    loop, worker, _ = _loop(ScriptedRecognizer(), object.__new__(type("Cam", (), {"read": lambda self: FRAME})),
                            clock, card_reader=reader)
    try:
        _run_for(loop, clock, 20.0, step=0.05)
    finally:
        worker.close()
    assert len(calls) >= 30 and worker.card_watch.notice is None
    lines = [r for r in caplog.records if r.name == "kiosk.loop"]
    assert [r.levelname for r in lines] == ["ERROR", "INFO"] and "card reading: zxing: bad image" in lines[0].getMessage()
