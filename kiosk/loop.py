"""The one event loop and its helpers: the recognition worker thread and the clocks.

The loop owns the state machine and the screen. gpiozero callbacks and keys only queue events;
face detection/encoding runs on one worker thread, which wakes the loop when a result is ready. The
machine's own events (a ticket issued, a visit ended, ...) are drained every turn and reacted to here.
Every timer reads the injected clock, so replay and tests run on a fake one.

An idle kiosk must not cost CPU (a Pi whose camera failed would run hot all day): between turns the
loop blocks on its event queue until the next thing that is really due (a camera frame, the systemd
watchdog, the free-space check, pygame's own event queue when there is a window or a keyboard), and a
turn with nothing new draws nothing.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from kiosk.faultwatch import FaultWatch
from kiosk.machine_events import MachineEvent, Phase, StaffCalled, StaffReset, TicketIssued, VisitEnded, VisitFailed
from kiosk.states import KioskMachine
from kiosk.visit import ButtonPressed, FaceUpdate

if TYPE_CHECKING:
    from kiosk.seams import StaffDesk
    from kiosk.disk import DiskWatch
    from kiosk.stickwatch import StickWatch
    from kiosk.voice import Voice

log = logging.getLogger("kiosk.loop")


class IdleChore(Protocol):
    """Work the loop thread does when nobody is at the screen, when due (kiosk.deletions.DeletionQueue,
    kiosk.retention.Retention): one short piece per call, since a citizen who walks up waits for it."""

    next_due: float

    def poll(self) -> object: ...


class RequestFolderChore:
    """An idle chore over a tiny folder of requests left by a command (`kiosk service`, kiosk/closures.py): a
    look every EVERY seconds while the screen is free, so the command can wait for it and say it is done."""

    EVERY = 1.0           # seconds between looks at the request folder

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.next_due = 0.0

    def poll(self) -> list[str]:
        now = self._clock()
        if now < self.next_due:
            return []
        self.next_due = now + self.EVERY
        return self.work()

    def work(self) -> list[str]:
        raise NotImplementedError


MAX_WAIT = 5.0        # never block longer than this, whatever is due (the watchdog allows 30 s)
BUSY_WAIT = 0.05      # a visit in progress: timers, the consent countdown and the print outcome, 20 times a second
SCREEN_POLL = 0.1     # a window or keys under KMS/DRM: pygame's event queue is read 10 times a second


class Wake:
    """Put on the event queue to make the loop take a turn now (a recognition result is ready)."""


WAKE = Wake()


class Clock:
    """Monotonic seconds for timers plus local wall time for tickets; replaced by a fake in replay/tests."""

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

    def set_wall(self, wall: datetime) -> None:
        """Read ``wall`` from now on (replay's ``"at"``); never back: a time before the current one is ignored."""
        if wall > self.wall():
            self._start_wall = wall - timedelta(seconds=self._t)


def camera_fault_watch(clock: Callable[[], float]) -> FaultWatch:
    """The loop's watch over unreadable frames (made by the app first when its notice must be known earlier)."""
    return FaultWatch("camera", "Camera lỗi; kiosk vẫn cấp số", log=log, clock=clock)


class RecognitionWorker:
    """One thread that runs the recognizer; the loop hands it the newest frame and polls for results.

    It holds at most one pending frame: when the worker is busy, newer frames are dropped, so the loop
    never queues up work the Pi cannot keep up with. With a ``card_reader`` (kiosk.cardread.decode_qr) it also
    looks for QR codes in the frames the loop asks it to (every one: cards, consent receipts' codes), and reports
    their texts with the observation (``Observation.cards``): the loop thread never decodes.
    """

    def __init__(self, recognizer: Any, card_reader: Callable[[Any], list[str]] | None = None, *,
                 on_result: Callable[[], None] | None = None, watch: FaultWatch | None = None) -> None:
        self._recognizer = recognizer
        # A model failing on every frame: one journal line (with the traceback) when it starts, one when it ends.
        self.watch = watch or FaultWatch("face recognition", "Nhận diện khuôn mặt lỗi; kiosk vẫn cấp số", log=log)
        self.card_watch = FaultWatch("card reading", "Đọc thẻ lỗi; kiosk vẫn cấp số", log=log)   # the QR decoder
        self._card_reader = card_reader
        self.on_result = on_result       # called on the worker thread after each frame (the loop's wake-up)
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

    def submit(self, frame: Any, small_grey: Any = None, *, cards: bool = False) -> bool:
        """Hand over a frame (and the camera's small greyscale copy of it, if it has one) unless busy.

        ``cards``: somebody is at the kiosk, so look for a card's QR code even in a frame without a face.
        """
        if self.busy:
            return False
        self._idle.clear()
        self._frames.put((frame, small_grey, cards))
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
            item = self._frames.get()
            if item is None:
                return
            frame, small_grey, cards = item
            try:
                if self._reset.is_set():
                    self._reset.clear()
                    self._recognizer.reset()
                observation = self._recognizer.process(frame, small_grey)
                if self._card_reader is not None and (cards or observation.faces):
                    observation = replace(observation, cards=tuple(self._read_cards(frame)))
                self._results.put(observation)
                self.watch.ok()
            except Exception as exc:  # a failing model must never cost a ticket: say so once, report nobody
                self.watch.failed(exc, trace=True)
            finally:
                self._idle.set()
                if self.on_result is not None:
                    self.on_result()

    def _read_cards(self, frame: Any) -> list[str]:
        if self._card_reader is None:
            return []
        try:
            texts = self._card_reader(frame)
        except Exception as exc:  # a failing decoder costs the card, never the face or the ticket
            self.card_watch.failed(exc, trace=True)
            return []
        self.card_watch.ok()
        return texts


class EventLoop:
    """One turn: events -> machine, camera -> worker, worker -> machine, timers, screen; then wait."""

    def __init__(self, *, machine: KioskMachine, events: queue.Queue, clock: Callable[[], float],
                 screen: Any = None, camera: Any = None, worker: RecognitionWorker | None = None,
                 keymap: dict[str, str] | None = None, idle_fps: float = 2.0, active_fps: float = 8.0,
                 sync: bool = False, notifier: Any = None, disk: DiskWatch | None = None,
                 sticks: StickWatch | None = None, chores: Sequence[IdleChore] = (),
                 staff: StaffDesk | None = None, voice: Voice | None = None,
                 camera_watch: FaultWatch | None = None) -> None:
        self.machine = machine
        # Unreadable frames: one journal line when they start, one when they stop, a staff notice meanwhile.
        self.camera_watch = camera_watch or camera_fault_watch(clock)
        self.events = events
        self._clock = clock
        self._screen = screen
        self._camera = camera
        self._worker = worker
        if worker is not None and worker.on_result is None:
            worker.on_result = lambda: events.put(WAKE)
        self._keymap = keymap or {}
        self._idle_period = 1.0 / idle_fps
        self._active_period = 1.0 / active_fps
        self._next_frame = 0.0
        self._sync = sync
        self._notifier = notifier
        self._disk = disk                    # free space, looked at when due
        self._sticks = sticks                # USB sync: its banner is drawn over the view, never a phase
        if sticks is not None and sticks.on_change is None:
            sticks.on_change = lambda: events.put(WAKE)
        self._staff = staff                  # the desk's call-staff light or buzzer (hardware.staffcall)
        self._voice = voice                  # says each screen's sentence when it changes (kiosk.voice)
        self.chores = tuple(chores)         # the office's deletions and config (kiosk/deletions, officeconfig)
        self.exit_status = 0                 # what `kiosk run` exits with (a chore may ask for a restart)
        self.tickets = 0                     # issued since start, and the last one: for the status line
        self.last_ticket: str | None = None
        self.frames_processed = 0
        self.turns = 0
        self.running = True

    def add_chores(self, *chores: IdleChore) -> None:
        self.chores += chores

    def step(self) -> list[MachineEvent]:
        """One turn; returns what the machine said during it (replay waits on these)."""
        self.turns += 1
        self._drain_events()
        said = self._react()                 # (a visit ended: the tracker is reset before the next frame)
        self._feed_camera()
        self._collect_results()
        self.machine.tick()                  # stores a ticket in a few ms: its print goes on another thread
        said += self._react()
        if self._disk is not None:
            # A failed ticket (a full disk?) looks at the free space at once, so the notice says why.
            self._disk.poll(force=any(isinstance(event, VisitFailed) for event in said))
            for event in said:
                if isinstance(event, VisitFailed) and event.disk_full:
                    self._disk.write_failed(event.reason)
                elif isinstance(event, TicketIssued):
                    self._disk.write_ok()
        if self.chores and self.machine.phase is Phase.IDLE:
            for chore in self.chores:       # this thread owns the store, the card records and the index
                chore.poll()
        view = self.machine.view             # built once a turn: the notice is read once
        self._show(view)
        if self._notifier is not None:
            self._notifier.heartbeat()
            self._notifier.status(self._status_line(view))
        return said

    def _react(self) -> list[MachineEvent]:
        """Take what the machine said since the last look, and do the loop's part of it."""
        said = self.machine.drain()
        for event in said:
            if isinstance(event, VisitEnded) and self._worker is not None:
                self._worker.reset()         # the next person is somebody new: do not carry the track over
            elif isinstance(event, StaffCalled) and self._staff is not None:
                self._staff.call()           # on until staff reset it (their button, or StaffReset)
            elif isinstance(event, StaffReset) and self._staff is not None:
                self._staff.reset()
            elif isinstance(event, TicketIssued):
                self.tickets += 1
                self.last_ticket = event.outcome.ticket
        return said

    def _show(self, view: Any) -> None:
        if self._voice is not None:
            self._voice.say(view)
        if self._screen is None:
            return
        if self._sticks is None:
            self._screen.show(view)
        else:
            self._screen.show(view, overlay=self._sticks.poll())

    def _status_line(self, view: Any) -> str:
        last = f"last ticket {self.last_ticket}" if self.last_ticket else "no ticket yet"
        notice = getattr(view, "notice", None)
        line = f"{self.tickets} tickets since start, {last}" + (f"; {notice}".replace("\n", " / ") if notice else "")
        banner = self._sticks.poll() if self._sticks is not None else None
        if banner is not None:      # `systemctl status kiosk` tells what became of the stick
            line += f"; USB stick: {banner.step or banner.stage}" + (f" ({banner.detail})" if banner.detail else "")
        return line

    def run(self, *, until: Callable[[], bool] = lambda: False, stop_at: float | None = None) -> None:
        """Run until quit, ``until()`` or the clock reaches ``stop_at``; blocks on the event queue between turns."""
        while self.running and not until() and (stop_at is None or self._clock() < stop_at):
            self.step()
            try:
                event = self.events.get(timeout=self.wait_time(stop_at))
            except queue.Empty:
                continue
            if not isinstance(event, Wake):
                self.machine.handle(event)

    def wait_time(self, stop_at: float | None = None) -> float:
        """Seconds until the next thing that is due; an event on the queue ends the wait sooner."""
        now = self._clock()
        due = [now + (MAX_WAIT if self.machine.phase is Phase.IDLE else BUSY_WAIT)]
        if self._camera is not None and self._worker is not None and not self._worker.busy:
            due.append(self._next_frame)     # (a busy worker wakes the loop itself when it is done)
        if self._screen is not None and getattr(self._screen, "needs_polling", True):
            due.append(now + SCREEN_POLL)
        if self._notifier is not None and (ping := self._notifier.next_due()) is not None:
            due.append(ping)
        if self._disk is not None:
            due.append(self._disk.next_due)
        if self.machine.phase is Phase.IDLE:     # chores wait for the visit to end: no spinning on a due one
            due += [chore.next_due for chore in self.chores]
        if stop_at is not None:
            due.append(stop_at)
        return max(0.0, min(due) - now)

    def _drain_events(self) -> None:
        """Hand every queued event (and key) to the machine."""
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
            if not isinstance(event, Wake):
                self.machine.handle(event)

    def _feed_camera(self) -> None:
        if self._camera is None or self._worker is None:
            return
        now = self._clock()
        if now < self._next_frame or self._worker.busy:
            return
        try:
            frame, small_grey = self._read_camera()
        except Exception as exc:  # camera trouble costs the face, never the ticket
            self.camera_watch.failed(exc)
            frame = small_grey = None
        else:
            self.camera_watch.ok()
        present = self.machine.phase is not Phase.IDLE     # somebody in view, or a visit under way
        period = self._active_period if present else self._idle_period
        on_time = now - self._next_frame < period          # keep the rate steady, never catch up in bursts
        self._next_frame = (self._next_frame if on_time else now) + period
        if frame is None:
            return
        # QR codes are looked for on every frame, idle too (2 a second there): a consent receipt's code is
        # often held up with no face in view.
        self._worker.submit(frame, small_grey, cards=True)
        if self._sync:
            self._worker.wait()

    def _read_camera(self) -> tuple[Any, Any]:
        """The frame, plus the Pi camera's low-resolution copy of the same instant when it offers one."""
        read_with_lores = getattr(self._camera, "read_with_lores", None)
        if read_with_lores is not None:
            return read_with_lores()
        return self._camera.read(), None

    def _collect_results(self) -> None:
        """Hand the worker's verdicts to the machine."""
        if self._worker is None:
            return
        while (observation := self._worker.poll()) is not None:
            self.frames_processed += 1
            self.machine.handle(FaceUpdate(observation))
