"""The composition root: builds hardware and services from the config and runs the loop.

Only this module names concrete device classes and reads the whole ``Config``; every other module
gets plain values. Also ``run``, the command that needs the whole kiosk (``forget`` is in `kiosk.cli_store`).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kiosk.config import Config
from kiosk.identity import CardPolicy
from kiosk.loop import Clock, EventLoop, RecognitionWorker, camera_fault_watch
from kiosk.memory import big_blocks_go_back_at_once, release_freed_memory
from kiosk.notices import data_notice, join, staff
from kiosk.notify import SystemdNotifier
from kiosk.seams import Camera, Closable, Display, Printer, PrintJobs, StaffDesk, StickSource, TicketStore
from kiosk.services import KioskServices
from kiosk.states import KioskMachine
from kiosk.synckeys import ticket_sealer
from kiosk.states_rating import CALL_STAFF, RATING_BUTTONS, STAFF_RESET
from kiosk.visit import CONSENT, PRIORITY, ButtonPressed, Timing
from kiosk.views import CategoryChoice, RatingChoice
from kiosk.voice import CONSENT_SECONDS, Voice

if TYPE_CHECKING:
    import numpy as np

    from kiosk.disk import DiskWatch
    from kiosk.datakey import DataKey
    from kiosk.identity import CardBook
    from kiosk.faces import Engine
    from kiosk.printing import TicketPrinter
    from kiosk.stickwatch import StickWatch
    from kiosk.store import Store
    from kiosk.deletions import DeletionQueue

log = logging.getLogger("kiosk.app")

CONSENT_KEY = "y"             # the consent button's key in simulation
PRIORITY_KEY = "u"            # the priority ("Ưu tiên") button's key in simulation
RATING_KEYS = {"rate-good": "g", "rate-ok": "n", "rate-bad": "b"}   # simulation keys, also the on-screen labels
STAFF_KEYS = {CALL_STAFF: "h", STAFF_RESET: "r"}                     # h: help; r: staff's reset (simulation)


def category_choices(config: Config) -> tuple[CategoryChoice, ...]:
    return tuple(CategoryChoice(c.key, c.name_vi, c.name_en, str(i + 1)) for i, c in enumerate(config.categories))


def keymap(config: Config) -> dict[str, str]:
    keys = {str(i + 1): c.key for i, c in enumerate(config.categories)}
    keys[CONSENT_KEY] = CONSENT
    keys[PRIORITY_KEY] = PRIORITY
    if config.rating.enabled:
        keys.update({key: name for name, key in RATING_KEYS.items()})
    if config.staff.enabled:
        keys.update({key: name for name, key in STAFF_KEYS.items()})
    return keys


def rating_choices(config: Config) -> tuple[RatingChoice, ...]:
    """The rating buttons drawn on the idle and greeting screens; none when ratings are off."""
    if not config.rating.enabled:
        return ()
    return tuple(RatingChoice(RATING_BUTTONS[name], key.upper()) for name, key in RATING_KEYS.items())


def machine_timing(config: Config, *, spoken: bool = False) -> Timing:
    """``spoken``: a voice reads the consent prompt, so its screen stays up until it was heard and answered."""
    t = config.timing
    consent = max(t.consent_seconds, CONSENT_SECONDS) if spoken else t.consent_seconds
    return Timing(greeting=t.greeting_seconds, settle=t.settle_seconds, consent=consent,
                  done=t.done_seconds, failsafe=t.failsafe_seconds, unprinted=t.unprinted_seconds)


@dataclass
class Kiosk:
    """Everything one running kiosk is made of, so it can be closed in one place."""
    loop: EventLoop
    store: TicketStore
    printer: Printer
    ticket_printer: TicketPrinter
    print_queue: PrintJobs
    camera: Camera | None = None
    worker: RecognitionWorker | None = None
    buttons: Closable | None = None
    screen: Display | None = None
    disk: DiskWatch | None = None
    book: CardBook | None = None
    stick_source: StickSource | None = None  # udev (or the simulation's folder) -> sticks
    sticks: StickWatch | None = None
    archives: ArchiveCheck | None = None
    staff: StaffDesk | None = None   # the desk's call-staff light or buzzer
    voice: Voice | None = None

    def close(self) -> None:
        if self.archives is not None:
            self.archives.close()       # before the store: the scan holds the store's month files
        # The print queue first: tickets already stored get their paper before the printer closes.
        parts: tuple[Closable | None, ...] = (self.stick_source, self.sticks, self.buttons, self.staff, self.worker,
                                              self.camera, self.print_queue, self.printer, self.screen, self.voice,
                                              self.book, self.store)
        for part in parts:
            if part is None:
                continue
            try:
                part.close()
            except Exception:
                log.exception("closing %s", type(part).__name__)


def build_kiosk(config: Config, *, clock: Clock, camera: Camera | None = None, printer: Printer | None = None,
                screen: Display | None = None, engine: Engine | None = None, sync: bool = False,
                use_gpio: bool = True, notifier: SystemdNotifier | None = None, faults: Sequence[str] = (),
                sticks: StickWatch | None = None, defer_archive_check: bool = False, voice: Voice | None = None) -> Kiosk:
    """Build the kiosk from the config; parts given as arguments replace what the config names.

    ``defer_archive_check`` (``kiosk run``): the full scan of the month files is not done while opening the
    store (nor the audit log's chain) but by ``Kiosk.archives.start()`` once the kiosk is ready; what it finds
    joins the staff notice.

    ``sync`` (replay, tests): recognition and printing finish before the loop goes on, so a scripted
    run gives the same result every time; the live kiosk never waits on either.

    A camera or button that fails is a fault shown to staff, never a reason not to issue tickets.
    """
    from hardware.buttons import ButtonError
    from kiosk.disk import DiskWatch
    from kiosk.faces import Recognizer
    from kiosk.index import FaceIndex
    from kiosk.paths import FONT_REGULAR
    from kiosk.printing import PrintQueue, TicketPrinter
    from kiosk.consent import consent_wording
    from kiosk.retention import Retention, RetentionPolicy
    from kiosk.store import Store
    from kiosk.deletions import DeletionQueue
    from kiosk.auditspool import SpoolChore, config_digest, note_config
    from kiosk.closures import office_rules

    rec = config.recognition
    faults = list(faults)
    key = open_data_key(config, faults)     # None: plain tickets only, no face or card file is touched
    opened = Store.open(config.data_dir, kiosk_id=config.kiosk_id, day_start_hour=config.day_start_hour,
                        check_archives=not defer_archive_check, key=key, personal=key is not None)
    archives = ArchiveCheck(opened) if defer_archive_check else None
    note_config(config.data_dir, config_digest(config), opened, now=clock.wall())   # a changed config: audited
    store: TicketStore = opened
    for problem in store.problems:          # files set aside, clock jumps: the journal and the screen say so
        log.warning("store: %s", problem)
        faults.append(data_notice(problem))
    printer = printer if printer is not None else make_printer(config)
    ticket_printer = TicketPrinter(printer, width_dots=config.printer.width_dots, font_path=FONT_REGULAR)
    print_queue = PrintQueue(ticket_printer, inline=sync)
    book = open_card_book(config, faults, key)
    p = config.privacy
    index = FaceIndex.from_parts(*store.template_parts())    # the store keeps no copy
    # The day's purge, in small steps between turns while nobody is at the kiosk (at start too): never a wait.
    retention = Retention(opened, book if key is not None else None,
                          RetentionPolicy(p.templates_months, p.card_months, p.visit_link_months,
                                          p.records_extra_months), index=index, clock=clock, wall=clock.wall)
    events: queue.Queue[ButtonPressed] = queue.Queue()
    buttons = None
    desk: StaffDesk | None = None
    if use_gpio and not config.simulate:
        try:
            buttons = make_buttons(config, events)
        except ButtonError as exc:
            log.error("buttons: %s", exc)
            faults.append(staff("Nút bấm lỗi; vui lòng báo kỹ thuật viên", f"Buttons: {exc}"))
        desk = make_staff(config, faults)
    elif config.staff.enabled and config.simulate:
        from hardware.staffcall import LoggedStaffCall

        desk = LoggedStaffCall()          # H calls, R resets: the journal shows the desk light
    worker = None
    # The face models load after the index is built, once the store's copy of the templates is gone: loading them
    # beside it (tried) saves no CPU on two cores and raises the peak by the models' 150 MB.
    if rec.enabled and camera is not None and engine is None:
        try:
            engine = _load_engine()
        except Exception as exc:  # missing or broken model files: tickets without faces
            log.error("face models: %s; tickets without face recognition", exc)
            faults.append(staff("Không nhận diện khuôn mặt được; kiosk vẫn cấp số", f"Face models: {exc}"))
    if rec.enabled and camera is not None and engine is not None:
        recognizer = Recognizer(engine, index, threshold=rec.threshold, margin=rec.margin,
                                confirm_frames=rec.confirm_frames, enrol_frames=rec.enrol_frames,
                                min_face_px=rec.min_face_px, min_sharpness=rec.min_sharpness,
                                max_yaw_ratio=rec.max_yaw_ratio, dominance=rec.dominance,
                                detect_width=rec.detect_width, unsure_below=rec.unsure_below)
        worker = RecognitionWorker(recognizer, card_reader=card_reader if book.enabled else None)
    camera_watch = camera_fault_watch(clock)        # unreadable frames: the loop's, the notice the services'
    watches = [camera_watch] + ([worker.watch, worker.card_watch] if worker is not None else [])
    disk = DiskWatch(config.data_dir, min_free_mb=config.min_free_mb, clock=clock)
    disk.poll()                             # at start: a low disk is in the notice before the first citizen
    ident = config.identity
    wording = consent_wording(config.office, p.templates_months, p.card_months)   # one text: screen, store, receipt
    services = KioskServices(store=store, index=index, printer=print_queue, office=config.office,
                             kiosk_id=config.kiosk_id, categories=config.categories, wall=clock.wall,
                             faults=faults, notices=[lambda: disk.notice, *(w.notice_text for w in watches)]
                             + ([archives.notice] if archives else []),
                             book=book, consent=wording, rules=config.rules,
                             policy=CardPolicy(keep=ident.keep, max_templates=ident.max_templates,
                                               min_age_for_face=ident.min_age_for_face, threshold=rec.threshold,
                                               ticket=ident.ticket_fields),
                             sealer=ticket_sealer(Path(config.sync.key_file), Path(config.sync.office_key_file),
                                                  config.data_dir, ident.ticket_fields))
    rules, service_requests = office_rules(config, opened, clock, PRIORITY_KEY.upper())   # kiosk/closures.py
    service_requests.apply_all()            # `kiosk service close|open` queued while the kiosk was stopping
    machine = KioskMachine(office=config.office, categories=category_choices(config), services=services,
                           clock=clock, timing=machine_timing(config, spoken=voice is not None),
                           enrolment=rec.enabled and rec.enrolment, consent_button=config.buttons.consent_label,
                           autolink_below=rec.autolink_below, consent=wording, ratings=rating_choices(config), **rules)
    loop = EventLoop(machine=machine, events=events, clock=clock, screen=screen, camera=camera, worker=worker,
                     keymap=keymap(config), idle_fps=config.camera.idle_fps, active_fps=config.camera.active_fps,
                     sync=sync, notifier=notifier, disk=disk, sticks=sticks, staff=desk, voice=voice,
                     camera_watch=camera_watch)
    # `kiosk forget` beside the kiosk and the office's deletions: one queue, applied when nobody is at the screen
    # (a request left while the kiosk was stopped: at the first idle turn)
    loop_chores(loop, config, DeletionQueue(config.data_dir, store=store, book=book, index=index, wall=clock.wall,
                                            clock=clock, receipt=services.deletion_receipt), clock, sticks)
    # + the audit entries commands left beside the kiosk (kiosk/auditspool.py)
    loop.add_chores(retention, service_requests, SpoolChore(opened.drain_audit_spool, clock=clock))
    return Kiosk(loop=loop, store=store, printer=printer, ticket_printer=ticket_printer, print_queue=print_queue,
                 camera=camera, worker=worker, buttons=buttons, screen=screen, disk=disk, book=book, sticks=sticks,
                 archives=archives, staff=desk, voice=voice)


class ArchiveCheck:
    """The month files' full integrity scan and the audit log's chain, on a thread after READY: tickets never wait.

    It reads all history (a year of visits is tens of MB; the audit log 23 MB at 100,000 enrolments), which is
    what made start-up grow with the years.
    Damage it finds is set aside by the store as at start-up, logged, and shown in the staff notice.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._found: list[str] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="archive-check", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._found = self._store.check_audit() + self._store.check_archives()
        except Exception:  # a bug here must not stop the kiosk; the next start checks again
            log.exception("checking the month files")
        release_freed_memory()    # what the scan read (its thread's own heap) goes back

    def notice(self) -> str | None:
        return join(data_notice(problem) for problem in self._found)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=30)


def _load_engine() -> Engine:
    from kiosk.faces import FaceRecognitionEngine

    return FaceRecognitionEngine()


def loop_chores(loop: EventLoop, config: Config, deletions: DeletionQueue, clock: Clock,
                sticks: StickWatch | None) -> None:
    """The office's deletions, applied by the loop thread, and its config: a new one restarts the kiosk once the
    stick that brought it is done with."""
    from kiosk.officeconfig import EX_RESTART, OfficeConfigWatch

    def restart() -> None:
        loop.running, loop.exit_status = False, EX_RESTART

    loop.add_chores(deletions, OfficeConfigWatch(config.data_dir, clock=clock, on_change=restart,
                                                 busy=lambda: sticks is not None and sticks.poll() is not None))


def card_reader(frame: np.ndarray) -> list[str]:
    """QR texts in a camera frame (on the recognition worker; zxing-cpp is loaded on first use)."""
    from kiosk.cardread import decode_qr

    return decode_qr(frame)


def open_data_key(config: Config, faults: list[str]) -> DataKey | None:
    """The key of the face and card data; without it the kiosk issues plain tickets and staff are told."""
    from kiosk.datakey import KeySource, KeyUnavailable, load_key

    source = KeySource(config.privacy.key_source, Path(config.privacy.key_file), create=config.simulate)
    try:
        return load_key(source, config.data_dir)
    except KeyUnavailable as exc:
        log.error("privacy: no data key: %s; face and card data are not used, tickets go on", exc)
        faults.append(staff("Không dùng khuôn mặt và thẻ: khoá dữ liệu không dùng được", f"Face and card data off: {exc}"))
        return None


def open_card_book(config: Config, faults: list[str], key: DataKey | None = None) -> CardBook:
    """The card records; without the office secret the kiosk issues tickets but uses no card (staff are told)."""
    from kiosk.identity import CardBook, load_secret, make_secret

    if key is None:          # no data key: the card records are neither read nor written
        return CardBook.open(config.data_dir, secret=None, personal=False)
    path = Path(config.identity.secret_file)
    if config.simulate and make_secret(path):
        log.info("simulation: made the office secret %s", path)
    secret, why = load_secret(path)
    if secret is None:
        log.error("identity: office secret: %s; CCCD cards are not used", why)
        faults.append(staff("Không dùng thẻ CCCD", f"Cards not used: {why}"))
    book = CardBook.open(config.data_dir, secret=secret, key=key)
    for problem in book.problems:
        log.warning("identity: %s", problem)
        faults.append(data_notice(problem))
    return book


def use_escpos_cache() -> None:
    """Keep python-escpos's parsed printer database between starts (by default it goes to a new temporary
    folder every start: 0.5 s of YAML parsing each time, and one more folder left in /tmp)."""
    from kiosk.encoding_cache import cache_folder

    folder = cache_folder() / "escpos"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.info("escpos capabilities cache not kept (%s): parsed again at each start", exc)
        return
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(folder))


def make_printer(config: Config) -> Printer:
    from hardware.printer import EscposPrinter, SimulatedPrinter

    p = config.printer
    if p.connection == "simulated":
        return SimulatedPrinter(Path(p.out_dir), width_dots=p.width_dots)
    return EscposPrinter(p.connection, width_dots=p.width_dots, usb_vendor=p.usb_vendor, usb_product=p.usb_product,
                         serial_port=p.serial_port, baudrate=p.baudrate, host=p.host, port=p.port, device=p.device)


def make_camera(config: Config, folder: Path | None = None) -> Camera | None:
    """The configured camera; in simulation a webcam if there is one, else ``folder``, else none."""
    from hardware.camera import CameraError, FileCamera, OpenCvCamera, Picamera2Camera

    c = config.camera
    size = (c.width, c.height)
    if folder is not None:
        return FileCamera(folder, max_pixels=c.max_image_pixels)
    if c.kind == "picamera2":
        return Picamera2Camera(size=size, lores_size=lores_size(config))
    if c.kind == "files":
        return FileCamera(Path(c.folder), max_pixels=c.max_image_pixels)
    if c.kind == "opencv":
        try:
            return OpenCvCamera(c.device, size=size)
        except CameraError as exc:
            if not config.simulate:
                raise
            log.warning("simulation without a camera: %s", exc)
    return None


def lores_size(config: Config) -> tuple[int, int]:
    """The Pi camera's low-resolution stream: ``detect_width`` wide, the main stream's shape, even sides (YUV420)."""
    width = min(config.recognition.detect_width, config.camera.width)
    height = width * config.camera.height / config.camera.width
    return 2 * max(1, round(width / 2)), 2 * max(1, round(height / 2))


def make_buttons(config: Config, events: queue.Queue[ButtonPressed]) -> Closable:
    from hardware.buttons import GpioButtons

    pins = {c.key: c.pin for c in config.categories if c.pin is not None}   # all set: kiosk.config checks
    if config.buttons.consent_pin is not None:
        pins[CONSENT] = config.buttons.consent_pin
    pins.update({PRIORITY: pin for _, pin in config.rules.pins() if pin is not None})
    r, s = config.rating, config.staff
    if r.enabled:
        rated = {"rate-good": r.good_pin, "rate-ok": r.ok_pin, "rate-bad": r.bad_pin}
        pins.update({name: pin for name, pin in rated.items() if pin is not None})
    if s.enabled and s.call_pin is not None:
        pins[CALL_STAFF] = s.call_pin       # the reset button is the desk output's own (make_staff)
    return GpioButtons(pins, lambda name: events.put(ButtonPressed(name)),
                       bounce_time=config.buttons.bounce_time, pull_up=config.buttons.pull_up)


def make_staff(config: Config, faults: list[str]) -> StaffDesk | None:
    """The call-staff light or buzzer and the staff's reset button; a pin that fails is a fault for staff."""
    from hardware.staffcall import StaffCall, StaffCallError

    s = config.staff
    if not s.enabled or s.output_pin is None:
        return None
    try:
        return StaffCall(s.output_pin, reset_pin=s.reset_pin, kind=s.output, pull_up=config.buttons.pull_up,
                         on_reset=lambda: log.info("staff call reset at the desk"))
    except StaffCallError as exc:
        log.error("staff call: %s", exc)
        faults.append(staff("Gọi nhân viên lỗi; vui lòng báo kỹ thuật viên", f"Staff call: {exc}"))
        return None


def make_sticks(config: Config, config_path: Path | None, *, clock: Clock, faults: list[str]
                ) -> tuple[StickWatch | None, StickSource | None]:
    """The hot-plug path (kiosk.stickwatch) and what feeds it: udev + udisks2, the simulation's folder, or none.

    ``kiosk export`` / ``kiosk import`` run as children with this config file and data folder. No udev here (a
    container) is a fault for staff, never a reason not to issue tickets.
    """
    from hardware.usb import FolderSticks, StickError, UDisks2, UdevSticks
    from kiosk.stickwatch import ChildCommand, StickWatch

    if config.sync.hotplug == "off" or config_path is None:
        return None, None
    command = ChildCommand.kiosk("--config", str(config_path), "--data", str(config.data_dir))
    if config.sync.hotplug == "folder":
        watch: StickWatch | None = None
        folder = FolderSticks(Path(config.sync.sticks_folder), lambda event: watch.event(event) if watch else None)
        watch = StickWatch(folder, command, clock=clock)
        return watch, folder
    watch = StickWatch(UDisks2(), command, clock=clock)
    try:
        return watch, UdevSticks(watch.event)
    except StickError as exc:
        watch.close()
        log.error("usb: %s; sticks are used only from a shell (kiosk export / import)", exc)
        faults.append(staff("Lỗi USB", f"USB: {exc}"))
        return None, None


def make_voice(config: Config) -> Voice | None:
    """The loudspeaker (pygame's mixer) when ``[voice] enabled``; a kiosk without sound runs silent."""
    from hardware.speaker import MixerSpeaker

    return Voice(MixerSpeaker(config.voice.volume)) if config.voice.enabled else None


def run(config: Config, *, camera_folder: Path | None = None, exit_after: float | None = None,
        config_path: Path | None = None) -> int:
    """``kiosk run``: the real thing (or the simulation, with ``simulate = true`` / ``--simulate``).

    The display opens first: a ``kiosk.display.DisplayError`` reaches the command line, which makes it one
    line and exits with EX_CONFIG (78) for a missing driver (the unit does not restart: another try cannot
    grow the driver).
    """
    from hardware.camera import CameraError
    from kiosk.display import apply_driver
    from kiosk.screen import Screen

    clock = Clock()
    faults = []
    big_blocks_go_back_at_once()
    apply_driver(config.screen.driver, simulate=config.simulate)
    screen = Screen((config.screen.width, config.screen.height), fullscreen=config.screen.fullscreen,
                    min_text_px=config.screen.min_text_px)
    screen.open()
    try:
        camera = make_camera(config, camera_folder)
    except CameraError as exc:
        log.error("camera: %s; tickets without face recognition", exc)
        camera = None
        faults.append(staff("Camera lỗi; kiosk vẫn cấp số", f"Camera: {exc}"))
    notifier = SystemdNotifier(clock)
    use_escpos_cache()
    sticks, stick_source = make_sticks(config, config_path, clock=clock, faults=faults)
    kiosk = build_kiosk(config, clock=clock, camera=camera, screen=screen, notifier=notifier, faults=faults,
                        sticks=sticks, defer_archive_check=True, voice=make_voice(config))
    kiosk.stick_source = stick_source
    if stick_source is not None:
        stick_source.start()     # after the loop exists: a stick already plugged in wakes it
    kiosk.ticket_printer.warm_up()     # load fonts and python-escpos now, not on the first citizen's ticket
    if kiosk.voice is not None:
        kiosk.voice.warm_up()          # and decode the voice's clips
    release_freed_memory()
    summary = (f"kiosk {config.kiosk_id} ready: {len(config.categories)} categories, "
               f"camera {type(camera).__name__ if camera else 'none'}, printer {config.printer.connection}")
    log.info(summary)
    notifier.ready(summary)
    if kiosk.archives is not None:
        kiosk.archives.start()
    started = clock()
    try:
        kiosk.loop.run(stop_at=None if exit_after is None else started + exit_after)
    finally:
        notifier.stopping()
        kiosk.close()
    return kiosk.loop.exit_status
