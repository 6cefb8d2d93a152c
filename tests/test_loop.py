"""The event loop and the recognition worker: frame pacing, dropped frames, failures that cost no ticket."""
import queue
import threading

import numpy as np

from fakes import Clock, Obs, Services
from kiosk.loop import EventLoop, RecognitionWorker
from kiosk.machine_events import VisitEnded
from kiosk.states import KioskMachine
from kiosk.visit import CONSENT, ButtonPressed
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
    """Turn the loop for ``seconds`` of fake time; what the machine said meanwhile."""
    said = []
    for _ in range(int(seconds / step)):
        clock.t += step
        said += loop.step()
    return said


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
        said = _run_for(loop, clock, 8.0)          # ticket screen times out
        assert said.count(VisitEnded()) == 1 and services.issued == [("ho-tich", "c1")]
        assert recognizer.resets == 1
        assert loop.tickets == 1 and loop.last_ticket == "HT-001"    # (the systemd status line's)
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
    from kiosk.visit import CONSENT

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


# --- idle cost: the loop blocks on its queue until something is due --------------------------------------

class IdleQueue(queue.Queue):
    """An event queue on which nothing arrives by itself: a blocking get moves the fake clock by its timeout."""

    def __init__(self, clock, arrivals=()):
        super().__init__()
        self.clock = clock
        self.timeouts = []
        self.arrivals = list(arrivals)       # (time, event): put by "another thread" at that time

    def get(self, block=True, timeout=None):
        try:
            return super().get(block=False)
        except queue.Empty:
            if not block:
                raise
            self.timeouts.append(timeout)
            if self.arrivals and self.arrivals[0][0] <= self.clock.t + timeout:
                self.clock.t, event = self.arrivals.pop(0)
                return event
            self.clock.t += timeout
            raise


class CountingServices(Services):
    def __init__(self):
        super().__init__()
        self.notices = 0

    def notice(self):
        self.notices += 1
        return super().notice()


def _idle_loop(clock, arrivals=(), **parts):
    services = CountingServices()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock)
    loop = EventLoop(machine=machine, events=IdleQueue(clock, arrivals), clock=clock, keymap={"1": "ho-tich"},
                     **parts)
    return loop, services


def test_an_idle_loop_without_camera_blocks_instead_of_turning_20_times_a_second():
    from kiosk.loop import MAX_WAIT

    clock = Clock()
    loop, services = _idle_loop(clock)
    loop.run(stop_at=60.0, until=lambda: loop.turns > 10_000)     # (the old loop spun here: timeout 0)
    assert clock.t == 60.0
    assert loop.turns <= 60 / MAX_WAIT + 1                         # a dozen turns a minute, not 1200
    assert all(t > 0.05 for t in loop.events.timeouts[:-1])
    assert services.notices == loop.turns                          # the view (and the notice) once a turn


def test_a_button_pressed_during_a_long_wait_is_served_at_once():
    clock = Clock()
    issued_at = []
    loop, services = _idle_loop(clock, arrivals=[(1.25, ButtonPressed("ho-tich"))])
    services.issue = lambda visit: issued_at.append(clock.t) or Services.issue(services, visit)
    loop.run(stop_at=5.0, until=lambda: loop.turns > 10_000)
    assert services.issued == [("ho-tich", None)] and issued_at == [1.25]
    assert isinstance(loop.machine.view, DoneView)


def test_the_watchdog_is_pinged_on_time_by_a_blocking_loop():
    from kiosk.notify import SystemdNotifier

    class Recording(SystemdNotifier):
        def __init__(self, clock):
            super().__init__(clock, {"WATCHDOG_USEC": "6000000"})     # WatchdogSec=6: a ping every 3 s
            self.pings = []

        def _send(self, message):
            if message == "WATCHDOG=1":
                self.pings.append(self._clock())

    clock = Clock()
    notifier = Recording(clock)
    loop, _ = _idle_loop(clock, notifier=notifier)
    loop.run(stop_at=30.0, until=lambda: loop.turns > 10_000)
    assert notifier.pings == [3.0 * i for i in range(10)]
    assert max(loop.events.timeouts) <= 3.0


def test_a_window_or_keyboard_is_polled_ten_times_a_second_a_headless_screen_not_at_all():
    from kiosk.loop import MAX_WAIT, SCREEN_POLL

    class Screen:
        def __init__(self, needs_polling):
            self.needs_polling = needs_polling
            self.polls = 0

        def poll(self):
            self.polls += 1
            return []

        def show(self, view):
            pass

    for needs_polling, wait in ((True, SCREEN_POLL), (False, MAX_WAIT)):
        clock, screen = Clock(), Screen(needs_polling)
        loop, _ = _idle_loop(clock, screen=screen)
        loop.run(stop_at=10.0, until=lambda: loop.turns > 10_000)
        assert {round(t, 6) for t in loop.events.timeouts[:-1]} == {wait}
        assert screen.polls == loop.turns and abs(loop.turns - 10.0 / wait) <= 1


def test_with_a_camera_the_loop_wakes_for_frames_and_results_only():
    clock, camera = Clock(), CountingCamera()
    recognizer = ScriptedRecognizer()
    services = CountingServices()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock)
    events = IdleQueue(clock)
    worker = RecognitionWorker(recognizer)
    loop = EventLoop(machine=machine, events=events, clock=clock, camera=camera, worker=worker, idle_fps=2,
                     sync=True)
    try:
        loop.run(stop_at=10.0, until=lambda: loop.turns > 10_000)
    finally:
        worker.close()
    assert camera.reads == 20 and loop.frames_processed == 20       # 2 fps
    assert loop.turns <= 2 * camera.reads + 1                        # a turn for the frame, one for its result
    assert all(t in (0.0, 0.5) for t in events.timeouts[:-1])


def test_the_worker_wakes_the_loop_when_a_result_is_ready():
    from kiosk.loop import WAKE

    events = queue.Queue()
    clock = Clock()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=Services(), clock=clock)
    worker = RecognitionWorker(ScriptedRecognizer([Obs(track_id=1, settled=False)]))
    loop = EventLoop(machine=machine, events=events, clock=clock, camera=CountingCamera(), worker=worker)
    try:
        loop.step()                                    # the frame goes to the worker
        assert events.get(timeout=5) is WAKE           # (a real wait: the worker thread answers)
        loop.step()
        assert loop.frames_processed == 1 and isinstance(machine.view, GreetingView)
    finally:
        worker.close()


def test_qr_codes_are_read_on_the_worker_idle_too():
    """Idle frames are decoded as well (at the idle rate): a consent receipt's code may come with no face."""
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
        assert calls and set(calls) == {"recognition"}     # nobody in view, idle: decoded, on the worker
        assert loop.machine.view.card == "ok"              # a card alone: somebody is here (greeting)
        recognizer.observations = [Obs(track_id=1, settled=False)] * 3
        _run_for(loop, clock, 1.0)
        assert calls and set(calls) == {"recognition"}     # never on the loop thread
        assert loop.machine.view.card == "ok"              # the card read reached the visit
        loop.events.put(ButtonPressed("ho-tich"))
        _run_for(loop, clock, 0.5)
        assert services.issued == [("ho-tich", "c5")]
    finally:
        worker.close()


def test_a_turn_with_a_ticket_in_it_also_builds_the_view_once():
    clock = Clock()
    loop, services = _idle_loop(clock, arrivals=[(1.0, ButtonPressed("ho-tich"))])
    loop.run(stop_at=3.0, until=lambda: loop.turns > 10_000)
    assert services.issued == [("ho-tich", None)] and isinstance(loop.machine.view, DoneView)
    assert services.notices == loop.turns + 1                     # (+1: the view read just above)
