"""The composition root: builds hardware and services from the config, and runs the one event loop.

Only this module names concrete device classes and reads the whole ``Config``. The loop owns the
state machine, the screen and the store; gpiozero callbacks and keys only queue events, and face
detection/encoding runs on one worker thread whose results the loop polls.
"""
from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Sequence

from kiosk.config import Config
from kiosk.notify import SystemdNotifier
from kiosk.states import CONSENT, ButtonPressed, FaceUpdate, Issued, KioskMachine, Timing
from kiosk.views import CategoryChoice

log = logging.getLogger("kiosk.app")

CONSENT_TEXT = "consent-v1"   # version of the consent wording shown on screen and printed on the receipt
CONSENT_KEY = "y"


class Clock:
    """Monotonic seconds for timers plus local wall time for tickets; replaced by a fake in replay/tests."""

    def __init__(self) -> None:
        self._start_wall = datetime.now()
        self._start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now()


class FakeClock(Clock):
    """A clock that only moves when told to: replay and tests run in no time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._t = 0.0
        self._start_wall = start or datetime.now().replace(microsecond=0)

    def __call__(self) -> float:
        return self._t

    def wall(self) -> datetime:
        return self._start_wall + timedelta(seconds=self._t)

    def advance(self, seconds: float) -> None:
        self._t += seconds


class KioskServices:
    """What the state machine may do to the world: store a ticket and print it, enrol a consenting face."""

    def __init__(self, *, store: Any, index: Any, ticket_printer: Any, office: str, kiosk_id: str,
                 categories: Sequence[Any], wall: Callable[[], datetime], faults: Sequence[str] = ()) -> None:
        self._store = store
        self._index = index
        self._printer = ticket_printer
        self._office = office
        self._kiosk_id = kiosk_id
        self._categories = {c.key: c for c in categories}
        self._wall = wall
        self._faults = list(faults)       # devices that failed at start (camera, buttons): for staff, on screen

    def issue(self, category: str, citizen_id: str | None) -> Issued:
        from kiosk.tickets import TicketContent

        spec = self._categories[category]
        visit = self._store.issue_ticket(category, spec.prefix, citizen_id=citizen_id, now=self._wall())
        if citizen_id is not None:
            self._store.touch(citizen_id, visit.issued_at)
        content = TicketContent(office=self._office, ticket=visit.ticket, category_vi=spec.name_vi,
                                category_en=spec.name_en, issued_at=visit.issued_at, kiosk_id=self._kiosk_id,
                                visit_id=visit.id)
        printed = self._printer.print_ticket(content)
        self._store.mark_printed(visit.id, printed)
        return Issued(visit.ticket, visit.id, printed)

    def enrol(self, encodings: Any) -> str:
        now = self._wall()
        citizen = self._store.enrol(encodings, now=now, consent_text=CONSENT_TEXT)
        self._index.add(citizen.id, encodings)
        log.info("citizen %s enrolled with %d face templates (consent %s)", citizen.id, len(encodings), CONSENT_TEXT)
        self._printer.print_slip("Xác nhận đồng ý / Consent receipt", consent_receipt_lines(citizen.id, now),
                                 f"consent-{citizen.id}")
        return citizen.id

    def greeting_name(self, citizen_id: str) -> str | None:
        from kiosk.tickets import mask_name

        citizen = self._store.citizen(citizen_id)
        if citizen is None or not citizen.display_name:
            return None
        return mask_name(citizen.display_name)

    def notice(self) -> str | None:
        faults = list(self._faults)
        if self._printer.fault:
            faults.insert(0, f"Máy in lỗi / printer fault: {self._printer.fault}")
        return " · ".join(faults) or None


def deletion_receipt_lines(citizen_id: str, when: datetime) -> list[str]:
    return [
        f"Mã công dân / Citizen id: {citizen_id}",
        f"Đã xoá lúc / Deleted at: {when:%d/%m/%Y %H:%M}",
        "Mẫu khuôn mặt và hồ sơ của công dân này đã bị xoá khỏi kiosk.",
        "This citizen's face templates and record were deleted from the kiosk.",
    ]


def consent_receipt_lines(citizen_id: str, when: datetime) -> list[str]:
    return [
        f"Mã công dân / Citizen id: {citizen_id}",
        f"Thời điểm / Time: {when:%d/%m/%Y %H:%M}",
        "Kiosk lưu mẫu khuôn mặt (dãy số, không lưu ảnh) để nhận ra bạn lần sau.",
        "The kiosk keeps a face template (numbers, not a photo) to recognise you next time.",
        "Yêu cầu xoá: báo nhân viên với mã trên / To delete: tell the staff this id.",
    ]


class RecognitionWorker:
    """One thread that runs the recognizer; the loop hands it the newest frame and polls for results.

    It holds at most one pending frame: when the worker is busy, newer frames are dropped, so the loop
    never queues up work the Pi cannot keep up with.
    """

    def __init__(self, recognizer: Any) -> None:
        self._recognizer = recognizer
        self._frames: queue.Queue = queue.Queue(maxsize=1)
        self._results: queue.Queue = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._reset = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recognition", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def submit(self, frame: Any) -> bool:
        if self.busy:
            return False
        self._idle.clear()
        self._frames.put(frame)
        return True

    def poll(self) -> Any:
        try:
            return self._results.get_nowait()
        except queue.Empty:
            return None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current frame is done (replay only; the live loop never waits)."""
        return self._idle.wait(timeout)

    def reset(self) -> None:
        """Forget the person being tracked before the next frame (a visit has ended)."""
        self._reset.set()

    def close(self) -> None:
        self._frames.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            frame = self._frames.get()
            if frame is None:
                return
            try:
                if self._reset.is_set():
                    self._reset.clear()
                    self._recognizer.reset()
                self._results.put(self._recognizer.process(frame))
            except Exception:  # a failing model must never cost a ticket: log, report nobody
                log.exception("recognition failed on a frame")
            finally:
                self._idle.set()


class EventLoop:
    """One turn: events -> machine, camera -> worker, worker -> machine, timers, screen."""

    def __init__(self, *, machine: KioskMachine, events: queue.Queue, clock: Callable[[], float],
                 screen: Any = None, camera: Any = None, worker: RecognitionWorker | None = None,
                 keymap: dict[str, str] | None = None, idle_fps: float = 2.0, active_fps: float = 8.0,
                 sync: bool = False, notifier: Any = None) -> None:
        self.machine = machine
        self.events = events
        self._clock = clock
        self._screen = screen
        self._camera = camera
        self._worker = worker
        self._keymap = keymap or {}
        self._idle_period = 1.0 / idle_fps
        self._active_period = 1.0 / active_fps
        self._next_frame = 0.0
        self._visits_ended = 0
        self._sync = sync
        self._notifier = notifier
        self.frames_processed = 0
        self.running = True

    def step(self) -> None:
        self._drain_events()
        self._feed_camera()
        self._collect_results()
        self._show()            # e.g. "printing…" is on screen before tick() blocks on the printer
        self.machine.tick()
        self._show()
        if self._notifier is not None:
            self._notifier.heartbeat()
            self._notifier.status(self._status_line())

    def _show(self) -> None:
        if self._screen is not None:
            self._screen.show(self.machine.view)

    def _status_line(self) -> str:
        outcome = self.machine.last_outcome
        last = f"last ticket {outcome.ticket}" if outcome else "no ticket yet"
        notice = getattr(self.machine.view, "notice", None)
        return f"{self.machine.outcomes} tickets since start, {last}" + (f"; {notice}" if notice else "")

    def run(self, *, until: Callable[[], bool] = lambda: False) -> None:
        """Run until quit or ``until()``; waits on the event queue between turns, never sleeps."""
        while self.running and not until():
            self.step()
            timeout = max(0.0, min(self._next_frame - self._clock(), 0.05))
            try:
                self.machine.handle(self.events.get(timeout=timeout))
            except queue.Empty:
                pass

    def _drain_events(self) -> None:
        if self._screen is not None:
            for key in self._screen.poll():
                if key in ("quit", "escape"):
                    self.running = False
                elif key in self._keymap:
                    self.events.put(ButtonPressed(self._keymap[key]))
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            self.machine.handle(event)

    def _feed_camera(self) -> None:
        if self._camera is None or self._worker is None:
            return
        if self.machine.visits_ended != self._visits_ended:
            self._visits_ended = self.machine.visits_ended
            self._worker.reset()       # the next person is somebody new: do not carry the track over
        now = self._clock()
        if now < self._next_frame or self._worker.busy:
            return
        try:
            frame = self._camera.read()
        except Exception as exc:  # camera trouble costs the face, never the ticket
            log.error("camera: %s", exc)
            frame = None
        present = self.machine.person is not None or self.machine.phase != "idle"
        period = self._active_period if present else self._idle_period
        on_time = now - self._next_frame < period          # keep the rate steady, never catch up in bursts
        self._next_frame = (self._next_frame if on_time else now) + period
        if frame is None:
            return
        self._worker.submit(frame)
        if self._sync:
            self._worker.wait()

    def _collect_results(self) -> None:
        if self._worker is None:
            return
        while (observation := self._worker.poll()) is not None:
            self.frames_processed += 1
            self.machine.handle(FaceUpdate(observation))


def category_choices(config: Config) -> tuple[CategoryChoice, ...]:
    return tuple(CategoryChoice(c.key, c.name_vi, c.name_en, str(i + 1)) for i, c in enumerate(config.categories))


def keymap(config: Config) -> dict[str, str]:
    keys = {str(i + 1): c.key for i, c in enumerate(config.categories)}
    keys[CONSENT_KEY] = CONSENT
    return keys


def machine_timing(config: Config) -> Timing:
    t = config.timing
    return Timing(greeting=t.greeting_seconds, settle=t.settle_seconds, consent=t.consent_seconds,
                  done=t.done_seconds, failsafe=t.failsafe_seconds)


@dataclass
class Kiosk:
    """Everything one running kiosk is made of, so it can be closed in one place."""
    loop: EventLoop
    store: Any
    printer: Any
    ticket_printer: Any
    camera: Any = None
    worker: RecognitionWorker | None = None
    buttons: Any = None
    screen: Any = None

    def close(self) -> None:
        for part in (self.buttons, self.worker, self.camera, self.printer, self.screen, self.store):
            if part is None:
                continue
            try:
                part.close()
            except Exception:
                log.exception("closing %s", type(part).__name__)


def build_kiosk(config: Config, *, clock: Clock, camera: Any = None, printer: Any = None, screen: Any = None,
                engine: Any = None, sync: bool = False, use_gpio: bool = True, notifier: Any = None,
                faults: Sequence[str] = ()) -> Kiosk:
    """Build the kiosk from the config; parts given as arguments replace what the config names.

    A camera or button that fails is a fault shown to staff, never a reason not to issue tickets.
    """
    from hardware.buttons import ButtonError
    from kiosk.faces import Recognizer
    from kiosk.index import FaceIndex
    from kiosk.paths import FONT_REGULAR
    from kiosk.printing import TicketPrinter
    from kiosk.store import Store

    store = Store.open(config.data_dir, kiosk_id=config.kiosk_id, day_start_hour=config.day_start_hour)
    for problem in store.problems:
        log.warning("store: %s", problem)
    printer = printer if printer is not None else make_printer(config)
    ticket_printer = TicketPrinter(printer, width_dots=config.printer.width_dots, font_path=FONT_REGULAR)
    index = FaceIndex(*store.templates())
    faults = list(faults)
    events: queue.Queue = queue.Queue()
    buttons = None
    if use_gpio and not config.simulate:
        try:
            buttons = make_buttons(config, events)
        except ButtonError as exc:
            log.error("buttons: %s", exc)
            faults.append(f"Nút bấm lỗi / buttons: {exc}")
    worker = None
    rec = config.recognition
    if rec.enabled and camera is not None:
        if engine is None:
            from kiosk.faces import FaceRecognitionEngine
            engine = FaceRecognitionEngine()
        recognizer = Recognizer(engine, index, threshold=rec.threshold, margin=rec.margin,
                                confirm_frames=rec.confirm_frames, enrol_frames=rec.enrol_frames,
                                min_face_px=rec.min_face_px, min_sharpness=rec.min_sharpness,
                                max_yaw_ratio=rec.max_yaw_ratio, dominance=rec.dominance,
                                detect_width=rec.detect_width)
        worker = RecognitionWorker(recognizer)
    services = KioskServices(store=store, index=index, ticket_printer=ticket_printer, office=config.office,
                             kiosk_id=config.kiosk_id, categories=config.categories, wall=clock.wall,
                             faults=faults)
    machine = KioskMachine(office=config.office, categories=category_choices(config), services=services,
                           clock=clock, timing=machine_timing(config),
                           enrolment=rec.enabled and rec.enrolment, consent_button=CONSENT_KEY.upper())
    loop = EventLoop(machine=machine, events=events, clock=clock, screen=screen, camera=camera, worker=worker,
                     keymap=keymap(config), idle_fps=config.camera.idle_fps, active_fps=config.camera.active_fps,
                     sync=sync, notifier=notifier)
    return Kiosk(loop=loop, store=store, printer=printer, ticket_printer=ticket_printer, camera=camera, worker=worker, buttons=buttons,
                 screen=screen)


def make_printer(config: Config) -> Any:
    from hardware.printer import EscposPrinter, SimulatedPrinter

    p = config.printer
    if p.connection == "simulated":
        return SimulatedPrinter(Path(p.out_dir), width_dots=p.width_dots)
    return EscposPrinter(p.connection, width_dots=p.width_dots, usb_vendor=p.usb_vendor, usb_product=p.usb_product,
                         serial_port=p.serial_port, baudrate=p.baudrate, host=p.host, port=p.port, device=p.device)


def make_camera(config: Config, folder: Path | None = None) -> Any:
    """The configured camera; in simulation a webcam if there is one, else ``folder``, else none."""
    from hardware.camera import CameraError, FileCamera, OpenCvCamera, Picamera2Camera

    c = config.camera
    size = (c.width, c.height)
    if folder is not None:
        return FileCamera(folder)
    if c.kind == "picamera2":
        return Picamera2Camera(size=size)
    if c.kind == "files":
        return FileCamera(Path(c.folder))
    if c.kind == "opencv":
        try:
            return OpenCvCamera(c.device, size=size)
        except CameraError as exc:
            if not config.simulate:
                raise
            log.warning("simulation without a camera: %s", exc)
    return None


def make_buttons(config: Config, events: queue.Queue) -> Any:
    from hardware.buttons import GpioButtons

    pins = {c.key: c.pin for c in config.categories}
    if config.buttons.consent_pin is not None:
        pins[CONSENT] = config.buttons.consent_pin
    return GpioButtons(pins, lambda name: events.put(ButtonPressed(name)),
                       bounce_time=config.buttons.bounce_time, pull_up=config.buttons.pull_up)


def run(config: Config, *, camera_folder: Path | None = None, exit_after: float | None = None) -> int:
    """``kiosk run``: the real thing (or the simulation, with ``simulate = true`` / ``--simulate``)."""
    from kiosk.screen import Screen

    from hardware.camera import CameraError

    clock = Clock()
    faults = []
    try:
        camera = make_camera(config, camera_folder)
    except CameraError as exc:
        log.error("camera: %s; tickets without face recognition", exc)
        camera = None
        faults.append(f"Camera lỗi / camera: {exc}")
    screen = Screen((config.screen.width, config.screen.height), fullscreen=config.screen.fullscreen)
    notifier = SystemdNotifier(clock)
    kiosk = build_kiosk(config, clock=clock, camera=camera, screen=screen, notifier=notifier, faults=faults)
    kiosk.ticket_printer.warm_up()     # load fonts and python-escpos now, not on the first citizen's ticket
    summary = (f"kiosk {config.kiosk_id} ready: {len(config.categories)} categories, "
               f"camera {type(camera).__name__ if camera else 'none'}, printer {config.printer.connection}")
    log.info(summary)
    notifier.ready(summary)
    started = clock()
    try:
        kiosk.loop.run(until=lambda: exit_after is not None and clock() - started >= exit_after)
    finally:
        notifier.stopping()
        kiosk.close()
    return 0


def forget(config: Config, citizen_id: str, *, print_receipt: bool = True) -> int:
    """``kiosk forget``: delete a citizen's templates and record, keep and print a deletion receipt."""
    from kiosk.paths import FONT_REGULAR
    from kiosk.printing import TicketPrinter
    from kiosk.store import Store, StoreError

    now = datetime.now()
    try:
        store = Store.open(config.data_dir, kiosk_id=config.kiosk_id, day_start_hour=config.day_start_hour)
    except StoreError as exc:
        print(f"kiosk forget: {exc} (stop the service first: systemctl stop kiosk)", file=sys.stderr)
        return 3
    try:
        store.forget(citizen_id, now=now)
    except StoreError as exc:
        print(f"kiosk forget: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"citizen {citizen_id}: face templates and record deleted; receipt kept in {config.data_dir}")
    if print_receipt:
        printer = TicketPrinter(make_printer(config), width_dots=config.printer.width_dots, font_path=FONT_REGULAR)
        if not printer.print_slip("Biên nhận xoá dữ liệu / Deletion receipt",
                                  deletion_receipt_lines(citizen_id, now), f"deleted-{citizen_id}"):
            print("the receipt could not be printed; the deletion is done", file=sys.stderr)
    return 0
