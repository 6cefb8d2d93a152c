"""The whole kiosk, end to end: the replay command, the run command, printer faults through the real loop."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.app import build_kiosk
from kiosk.loop import FakeClock
from kiosk.config import SIMULATION_CONFIG, load_config
from kiosk.visit import ButtonPressed
from kiosk.store import Store
from kiosk.views import DoneView, IdleView

KIOSK = [sys.executable, "-m", "kiosk"]
ESC_INIT = b"\x1b@"
PARTIAL_CUT = b"\x1dV\x01"


def sim_config(tmp_path):
    """The shipped simulation config with its data and printed tickets in ``tmp_path``, never in the checkout."""
    import dataclasses

    config = load_config(SIMULATION_CONFIG)
    return dataclasses.replace(config, data_dir=tmp_path / "data", printer=dataclasses.replace(
        config.printer, out_dir=str(tmp_path / "printed")), privacy=dataclasses.replace(
        config.privacy, key_file=str(tmp_path / "data.key")))   # where replay keeps the key of tmp_path/data


def _kiosk(*args, cwd, env=None, timeout=120):
    """The real command in a child process, in ``cwd`` so that relative paths of the config stay out of the repo."""
    return subprocess.run(KIOSK + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "SDL_VIDEODRIVER": "dummy", **(env or {})})


def test_replay_issues_stores_and_prints_every_visit(tmp_path):
    script = tmp_path / "visits.jsonl"
    script.write_text('{"image": null, "category": "ho-tich"}\n'
                      '{"image": null, "category": "kinh-doanh", "consent": true}\n'
                      '{"image": null, "category": "ho-tich"}\n', encoding="utf-8")
    data, out = tmp_path / "data", tmp_path / "out"
    run = _kiosk("replay", script, "--data", data, "--out", out, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["ticket"] for r in lines] == ["HT-001", "KD-001", "HT-002"]
    assert all(r["printed"] and r["citizen"] is None and not r["enrolled"] for r in lines)
    for r in lines:
        [bin_file] = out.glob(f"*_{r['ticket']}.bin")
        stream = bin_file.read_bytes()
        assert stream.startswith(ESC_INIT) and stream.endswith(PARTIAL_CUT)
        assert bin_file.with_suffix(".png").is_file()
    # A second replay on the same data goes on numbering; nothing repeats within the day.
    again = _kiosk("replay", script, "--data", data, "--out", out, cwd=tmp_path)
    assert [json.loads(line)["ticket"] for line in again.stdout.splitlines()] == ["HT-003", "KD-002", "HT-004"]
    listed = _kiosk("visits", "--data", data, "--json", cwd=tmp_path)
    visits = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(v["ticket"] for v in visits) == ["HT-001", "HT-002", "HT-003", "HT-004", "KD-001", "KD-002"]
    assert all(v["printed"] is True for v in visits)


def test_run_command_starts_headless_and_stops(tmp_path):
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (320, 240), (90, 120, 150)).save(frames / "empty-hall.png")
    run = _kiosk("run", "--simulate", "--data", tmp_path / "data", "--camera-folder", frames, "--exit-after", "2",
                 cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "ready" in run.stderr and "FileCamera" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_second_kiosk_on_the_same_data_refuses_to_start(tmp_path):
    data = tmp_path / "data"
    store = Store.open(data, kiosk_id="sim-01")
    try:
        run = _kiosk("run", "--simulate", "--data", data, "--exit-after", "1", cwd=tmp_path)
    finally:
        store.close()
    assert run.returncode == 3
    assert str(data) in run.stderr


# -- printer faults through the real loop, store and printer adapter -------------------------------------

def _faulty_printer(fault):
    from test_printer import NO_PAPER, BusyOnOpen, Factory, FailsMidWrite, answering

    from hardware.printer import EscposPrinter

    first = {"raises on open": BusyOnOpen, "no paper": answering(paper=[NO_PAPER]),
             "fails mid-write": FailsMidWrite}[fault]
    factory = Factory(first, answering())
    return EscposPrinter("file", width_dots=576, device="/dev/usb/lp0", factory=factory), factory


@pytest.mark.parametrize("fault", ["raises on open", "no paper", "fails mid-write"])
def test_printer_fault_keeps_the_ticket_and_the_next_one_prints(tmp_path, fault):
    printer, factory = _faulty_printer(fault)
    config = sim_config(tmp_path)
    clock = FakeClock()
    kiosk = build_kiosk(config, clock=clock, printer=printer, use_gpio=False, sync=True)
    loop = kiosk.loop
    try:
        loop.events.put(ButtonPressed("dat-dai"))
        loop.step()
        loop.step()
        view = loop.machine.view
        assert isinstance(view, DoneView) and view.ticket == "DD-001" and not view.printed
        [visit] = list(kiosk.store.visits())
        assert visit.ticket == "DD-001" and visit.printed is False        # stored, marked not printed
        clock.advance(config.timing.done_seconds)
        loop.step()
        assert isinstance(loop.machine.view, DoneView)      # the unprinted number stays (issue 15): 60 s by default
        clock.advance(config.timing.unprinted_seconds - config.timing.done_seconds)
        loop.step()
        assert isinstance(loop.machine.view, IdleView) and "/dev/usb/lp0" in loop.machine.view.notice
        # The printer is back: the next ticket prints on a reopened connection, and the notice goes away.
        loop.events.put(ButtonPressed("dat-dai"))
        loop.step()
        loop.step()
        assert loop.machine.view.ticket == "DD-002" and loop.machine.view.printed
        assert PARTIAL_CUT in factory.made[-1].output
        assert [v.printed for v in kiosk.store.visits()] == [False, True]
        clock.advance(config.timing.done_seconds)
        loop.step()
        assert loop.machine.view.notice is None
    finally:
        kiosk.close()


# -- real faces ------------------------------------------------------------------------------------------

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


def test_returning_citizens_are_recognised_and_strangers_never(tmp_path):
    if not (FACES / "dev").is_dir():
        pytest.skip(f"{FACES} not present: the real-face replay needs the project's shared photos")
    from kiosk.replay import run_replay

    people = sorted(p for p in (FACES / "dev").iterdir() if len(list(p.glob("*.jpg"))) >= 3)
    enrolled, strangers = people[:8], people[8:12]

    def photos(person):
        return sorted(person.glob("*.jpg"))

    first = [{"image": str(photos(p)[0]), "category": "ho-tich", "consent": True} for p in enrolled]
    first += [{"image": str(photos(p)[0]), "category": "dat-dai", "consent": False} for p in strangers]
    data, out = tmp_path / "data", tmp_path / "out"
    results = run_replay(first, data_dir=data, out_dir=out)
    ids = {}
    for person, r in zip(enrolled, results):
        assert r["enrolled"] and r["citizen"], (person.name, r)
        ids[person.name] = r["citizen"]
    assert len(set(ids.values())) == len(enrolled)
    assert all(r["citizen"] is None and not r["enrolled"] for r in results[len(enrolled):])

    # Later visits, in a second replay on the same data (the cache is rebuilt from the store).
    later = [{"image": str(photos(p)[1]), "category": "chung-thuc", "consent": True, "confirm": True}
             for p in enrolled]
    later += [{"image": str(photos(p)[1]), "category": "chung-thuc", "consent": False} for p in strangers]
    results = run_replay(later, data_dir=data, out_dir=out)
    recognised = [r["citizen"] == ids[p.name] and r["recognized"] for p, r in zip(enrolled, results)]
    assert sum(recognised) >= len(enrolled) - 1, results          # at most one miss; a miss is never wrong
    for person, r in zip(enrolled, results):
        assert r["citizen"] in (ids[person.name], None) or r["enrolled"], (person.name, r)
        assert not (r["recognized"] and r["citizen"] != ids[person.name])
    for r in results[len(enrolled):]:
        assert not r["recognized"] and r["citizen"] not in ids.values()


def test_missing_camera_and_buttons_on_a_real_kiosk_still_issue_tickets(tmp_path):
    """Off a Pi: picamera2 cannot import and gpiozero finds no pins; both become staff notices, not a crash."""
    raw = (SIMULATION_CONFIG.read_text(encoding="utf-8")
           .replace("simulate = true", "simulate = false")
           .replace('kind = "opencv"', 'kind = "picamera2"')
           .replace('data_dir = "kiosk-data"', f'data_dir = "{tmp_path / "data"}"'))
    config_path = tmp_path / "kiosk.toml"
    config_path.write_text(raw, encoding="utf-8")
    run = _kiosk("run", "--config", config_path, "--exit-after", "1.5", cwd=tmp_path,
                 env={"GPIOZERO_PIN_FACTORY": "native"})
    assert run.returncode == 0, run.stderr
    assert "ERROR kiosk.app: camera: Pi camera 0 (picamera2): the picamera2 library is not installed" in run.stderr
    assert "ERROR kiosk.app: buttons: button 'ho-tich': cannot use GPIO pin 5" in run.stderr


def test_start_up_faults_are_on_the_idle_screen_for_staff(tmp_path):
    config = sim_config(tmp_path)
    kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True,
                        faults=["Camera lỗi / camera: unplugged"])
    try:
        kiosk.loop.step()
        view = kiosk.loop.machine.view
        assert isinstance(view, IdleView) and view.notice == "Camera lỗi / camera: unplugged"
    finally:
        kiosk.close()


def test_forget_deletes_the_face_and_the_kiosk_no_longer_recognises(tmp_path):
    """Enrol through the real loop (a face engine that 'sees' one fixed face), forget, replay: not recognised."""
    import dataclasses

    import numpy as np

    from kiosk.cli_store import forget
    from kiosk.replay import run_replay

    class OneFaceEngine:
        """Every frame shows the same frontal, sharp face: a stand-in for dlib with a fixed encoding."""
        def detect(self, image, upsample=1):
            h, w = image.shape[:2]
            return [(h // 4, 3 * w // 4, 3 * h // 4, w // 4)]

        def landmarks(self, image, box):
            top, right, bottom, left = box
            mid = (left + right) // 2
            return {"left_eye": [(left + 10, top + 20)], "right_eye": [(right - 10, top + 20)],
                    "nose_tip": [(mid, top + 40)]}

        def encode(self, image, box):
            return np.full(128, 0.05, np.float32)

    frame = tmp_path / "face.png"
    from PIL import Image
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(frame)
    data, out = tmp_path / "data", tmp_path / "out"
    visit = {"image": str(frame), "category": "ho-tich", "consent": True}
    [first] = run_replay([visit], data_dir=data, out_dir=out, engine=OneFaceEngine())
    [second] = run_replay([dict(visit, consent=False, confirm=True)], data_dir=data, out_dir=out,
                          engine=OneFaceEngine())
    assert first["enrolled"] and second["recognized"] and second["citizen"] == first["citizen"]
    assert second["proposed"] == first["citizen"] and second["identified_by"] == "face"

    config = dataclasses.replace(sim_config(tmp_path), printer=dataclasses.replace(
        sim_config(tmp_path).printer, out_dir=str(out)))
    assert forget(config, first["citizen"]) == 0
    assert list(out.glob(f"deleted-{first['citizen']}.png"))
    [third] = run_replay([dict(visit, consent=False, confirm=True)], data_dir=data, out_dir=out,
                         engine=OneFaceEngine())
    assert not third["recognized"] and third["citizen"] is None
    assert forget(config, "0" * 32, print_receipt=False) == 1                 # unknown: said, non-zero
    assert forget(config, first["citizen"], print_receipt=False) == 1         # already forgotten: said, non-zero


def test_a_damaged_file_set_aside_at_start_is_on_the_screen(tmp_path):
    config = sim_config(tmp_path)
    kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True)
    kiosk.loop.events.put(ButtonPressed("ho-tich"))
    kiosk.loop.step()
    kiosk.close()
    hot = config.data_dir / "hot.jsonl"
    hot.write_bytes(hot.read_bytes()[:-7] + b"\x00garbage")      # a power cut mid-write
    kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True)
    try:
        kiosk.loop.step()
        notice = kiosk.loop.machine.view.notice
        assert notice.startswith("Có tệp dữ liệu bị hỏng") and "\nData: hot.jsonl" in notice   # Vietnamese first
        kiosk.loop.events.put(ButtonPressed("ho-tich"))
        kiosk.loop.step()
        kiosk.loop.step()
        assert kiosk.loop.machine.view.ticket == "HT-002"          # the number taken before the cut is not reused
    finally:
        kiosk.close()


def test_print_test_command_prints_on_the_configured_printer(tmp_path):
    raw = SIMULATION_CONFIG.read_text(encoding="utf-8").replace(
        'out_dir = "kiosk-data/printed"', f'out_dir = "{tmp_path / "printed"}"')
    config_path = tmp_path / "kiosk.toml"
    config_path.write_text(raw, encoding="utf-8")
    run = _kiosk("print-test", "--config", config_path, cwd=tmp_path)
    assert run.returncode == 0 and "printed" in run.stdout, run.stderr
    [stream] = (tmp_path / "printed").glob("*TEST*.bin")
    assert stream.read_bytes().startswith(ESC_INIT) and stream.read_bytes().endswith(PARTIAL_CUT)


def test_face_models_that_fail_to_load_cost_no_ticket(tmp_path, monkeypatch):
    import kiosk.faces
    from hardware.camera import FileCamera

    class Broken:
        def __init__(self):
            raise RuntimeError("shape_predictor_68_face_landmarks.dat: unable to open")

    monkeypatch.setattr(kiosk.faces, "FaceRecognitionEngine", Broken)
    config = sim_config(tmp_path)
    clock = FakeClock()
    kiosk = build_kiosk(config, clock=clock, camera=FileCamera([]), use_gpio=False, sync=True)
    try:
        assert kiosk.worker is None
        kiosk.loop.events.put(ButtonPressed("ho-tich"))
        kiosk.loop.step()
        kiosk.loop.step()
        view = kiosk.loop.machine.view
        assert isinstance(view, DoneView) and view.ticket == "HT-001"
        clock.advance(config.timing.done_seconds)
        kiosk.loop.step()
        assert "unable to open" in kiosk.loop.machine.view.notice      # staff see why faces are off
    finally:
        kiosk.close()


def test_a_slow_printer_never_blocks_the_loop(tmp_path):
    """Paper goes out on the printer thread: the loop keeps turning (screen, watchdog) while it prints."""
    import threading

    from hardware.printer import SimulatedPrinter

    release = threading.Event()

    class SlowPrinter(SimulatedPrinter):
        def print_image(self, image, *, name):
            release.wait(10)
            super().print_image(image, name=name)

    config = sim_config(tmp_path)
    clock = FakeClock()
    kiosk = build_kiosk(config, clock=clock, printer=SlowPrinter(tmp_path / "out", width_dots=576), use_gpio=False)
    loop = kiosk.loop
    try:
        loop.events.put(ButtonPressed("xay-dung"))
        loop.step()
        loop.step()
        view = loop.machine.view
        assert isinstance(view, DoneView) and view.ticket == "XD-001" and view.printed is None
        clock.advance(config.timing.done_seconds)
        loop.step()
        assert loop.machine.view.printed is None            # the citizen waits to see whether paper came out
        assert [v.printed for v in kiosk.store.visits()] == [None]
        release.set()
        kiosk.print_queue.close()                           # waits for the job, like a stop of the service
        loop.step()
        assert [v.printed for v in kiosk.store.visits()] == [True]
        assert isinstance(loop.machine.view, IdleView)      # outcome seen, ticket time over: next citizen
        assert list((tmp_path / "out").glob("*_XD-001.bin"))
    finally:
        release.set()
        kiosk.close()


def test_a_damaged_month_file_found_after_ready_joins_the_staff_notice(tmp_path):
    """kiosk run defers the month files' scan to a thread: tickets first, then the damage is on the screen."""
    config = sim_config(tmp_path)
    month = config.data_dir / "visits" / "2026-10.jsonl"
    month.parent.mkdir(parents=True)
    month.write_bytes(b"0badc0de {not a record}\n" * 3)
    kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True, defer_archive_check=True)
    try:
        kiosk.loop.step()
        assert kiosk.loop.machine.view.notice is None                   # not scanned yet: nothing waited for it
        assert kiosk.archives is not None
        kiosk.archives.start()
        kiosk.archives.close()                                          # waits for the thread
        kiosk.loop.step()
        assert "2026-10.jsonl" in kiosk.loop.machine.view.notice
    finally:
        kiosk.close()
    assert list(month.parent.glob("2026-10.jsonl.corrupt-*"))            # set aside, not deleted
