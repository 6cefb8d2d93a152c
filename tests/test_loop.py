"""The event loop and the recognition worker: frame pacing, dropped frames, failures that cost no ticket."""
import queue
import threading

import numpy as np

from fakes import Clock, Obs, Services
from kiosk.loop import EventLoop, RecognitionWorker
from kiosk.states import CONSENT, ButtonPressed, KioskMachine
from kiosk.views import CategoryChoice, DoneView, GreetingView

CATEGORIES = (CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),)
FRAME = np.zeros((48, 64, 3), np.uint8)


class CountingCamera:
    def __init__(self, frame=FRAME):
        self.reads = 0
        self.frame = frame

    def read(self):
        self.reads += 1
        return self.frame


class ScriptedRecognizer:
    """Returns the observations it is given, one per frame; counts resets."""

    def __init__(self, observations=(), fail=False):
        self.observations = list(observations)
        self.resets = 0
        self.fail = fail
        self.small = []                 # the small greyscale picture handed over with each frame

    def process(self, frame, small_grey=None):
        self.small.append(small_grey)
        if self.fail:
            raise RuntimeError("model file unreadable")
        return self.observations.pop(0) if self.observations else Obs(track_id=None, faces=0)

    def reset(self):
        self.resets += 1


def _loop(recognizer, camera, clock, services=None, sync=True, card_reader=None):
    services = services or Services()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock)
    worker = RecognitionWorker(recognizer, card_reader=card_reader)
    loop = EventLoop(machine=machine, events=queue.Queue(), clock=clock, camera=camera, worker=worker,
                     idle_fps=2, active_fps=8, sync=sync)
    return loop, worker, services


def _run_for(loop, clock, seconds, step=0.01):
    for _ in range(int(seconds / step)):
        clock.t += step
        loop.step()


def test_camera_idles_at_low_rate_and_speeds_up_for_a_person():
    clock, camera = Clock(), CountingCamera()
    loop, worker, _ = _loop(ScriptedRecognizer(), camera, clock)
    try:
        _run_for(loop, clock, 10.0)
        idle_reads = camera.reads
        assert 19 <= idle_reads <= 21                  # 2 fps while nobody is there
        worker._recognizer.observations = [Obs(track_id=1, settled=False)] * 200
        _run_for(loop, clock, 10.0)
        assert isinstance(loop.machine.view, GreetingView)
        assert 75 <= camera.reads - idle_reads <= 82   # 8 fps with somebody in view
    finally:
        worker.close()


def test_the_pi_cameras_low_resolution_copy_goes_to_the_recognizer_with_its_frame():
    small = np.zeros((24, 32), np.uint8)

    class PiCamera(CountingCamera):
        def read_with_lores(self):
            self.reads += 1
            return self.frame, small

    clock, camera, recognizer = Clock(), PiCamera(), ScriptedRecognizer()
    loop, worker, _ = _loop(recognizer, camera, clock)
    try:
        _run_for(loop, clock, 1.0)
        assert camera.reads >= 1 and len(recognizer.small) == camera.reads
        assert all(s is small for s in recognizer.small)
    finally:
        worker.close()


def test_a_camera_without_low_resolution_stream_hands_over_the_frame_alone():
    clock, camera, recognizer = Clock(), CountingCamera(), ScriptedRecognizer()
    loop, worker, _ = _loop(recognizer, camera, clock)
    try:
        _run_for(loop, clock, 1.0)
        assert recognizer.small and all(s is None for s in recognizer.small)
    finally:
        worker.close()


def test_busy_worker_drops_frames_instead_of_queueing():
    release = threading.Event()

    class Slow(ScriptedRecognizer):
        def process(self, frame, small_grey=None):
            release.wait(5)
            return super().process(frame, small_grey)

    clock, camera = Clock(), CountingCamera()
    loop, worker, _ = _loop(Slow(), camera, clock, sync=False)
    try:
        _run_for(loop, clock, 5.0)
        assert camera.reads == 1 and worker.busy      # nothing read while the worker is busy
        release.set()
        assert worker.wait(5)
        loop.step()
        assert loop.frames_processed == 1
    finally:
        release.set()
        worker.close()


def test_a_failing_recognizer_costs_no_ticket():
    clock, camera = Clock(), CountingCamera()
    loop, worker, services = _loop(ScriptedRecognizer(fail=True), camera, clock)
    try:
        _run_for(loop, clock, 2.0)
        loop.events.put(ButtonPressed("ho-tich"))
        loop.step()
        assert isinstance(loop.machine.view, DoneView) and services.issued == [("ho-tich", None)]
    finally:
        worker.close()


def test_finished_visit_resets_the_tracker_before_the_next_frame():
    clock, camera = Clock(), CountingCamera()
    recognizer = ScriptedRecognizer([Obs(citizen_id="c1")] * 12)
    loop, worker, services = _loop(recognizer, camera, clock)
    try:
        _run_for(loop, clock, 1.0)
        loop.events.put(ButtonPressed(CONSENT))    # "yes, that is me" to the face's proposal
        loop.events.put(ButtonPressed("ho-tich"))
        _run_for(loop, clock, 8.0)                 # ticket screen times out
        assert loop.machine.visits_ended == 1 and services.issued == [("ho-tich", "c1")]
        assert recognizer.resets == 1
    finally:
        worker.close()


def test_camera_error_is_logged_and_the_loop_goes_on(caplog):
    class Broken:
        def read(self):
            raise OSError("camera unplugged")

    clock = Clock()
    loop, worker, services = _loop(ScriptedRecognizer(), Broken(), clock)
    try:
        _run_for(loop, clock, 1.0)
        loop.events.put(ButtonPressed("ho-tich"))
        loop.step()
        assert services.issued == [("ho-tich", None)]
        assert "camera unplugged" in caplog.text
    finally:
        worker.close()


def test_keys_of_the_simulation_window_press_the_buttons():
    from kiosk.states import CONSENT

    class KeyScreen:
        def __init__(self, keys):
            self.keys = list(keys)
            self.shown = []

        def poll(self):
            keys, self.keys = self.keys, []
            return keys

        def show(self, view):
            self.shown.append(view)

    clock = Clock()
    services = Services()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock)
    screen = KeyScreen(["1"])
    loop = EventLoop(machine=machine, events=queue.Queue(), clock=clock, screen=screen,
                     keymap={"1": "ho-tich", "y": CONSENT})
    loop.step()
    loop.step()
    assert services.issued == [("ho-tich", None)] and isinstance(screen.shown[-1], DoneView)
    screen.keys = ["x", "escape"]          # unknown keys are ignored; Esc ends the loop
    loop.step()
    assert not loop.running and len(services.issued) == 1


def test_cards_are_read_on_the_worker_only_while_somebody_is_at_the_kiosk():
    from fakes import card

    calls = []

    def reader(frame):
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            raise RuntimeError("decoder crashed")          # costs that frame's card, nothing else
        return ["CARD-A"]

    clock, camera = Clock(), CountingCamera()
    recognizer = ScriptedRecognizer()
    services = Services()
    services.cards["CARD-A"] = card("c5")
    loop, worker, _ = _loop(recognizer, camera, clock, services=services, card_reader=reader)
    try:
        _run_for(loop, clock, 3.0)
        assert calls == []                                 # nobody in view, idle: no decoding
        recognizer.observations = [Obs(track_id=1, settled=False)] * 3
        _run_for(loop, clock, 1.0)
        assert calls and set(calls) == {"recognition"}     # never on the loop thread
        assert loop.machine.view.card == "ok"              # the card read reached the visit
        loop.events.put(ButtonPressed("ho-tich"))
        _run_for(loop, clock, 0.5)
        assert services.issued == [("ho-tich", "c5")]
    finally:
        worker.close()
