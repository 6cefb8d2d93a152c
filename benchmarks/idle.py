"""CPU of an idle kiosk: the real loop (build_kiosk, simulated printer, the real screen on SDL's dummy driver)
left alone for a while, against the loop as it was before (a turn at least every 0.05 s, and none at all
without a camera: it spun), measured in the same run.

    .venv/bin/python benchmarks/idle.py [--seconds 10]

Scenarios: no camera; no camera with pygame's event queue polled (a window, or keys under KMS/DRM); a file
camera showing an empty hall at the idle rate (2 frames a second through the real face detector). For the
camera, the frames' own cost (read + recognizer, timed alone in the same run) is printed beside the loop's.
Target (issue 14): an idle kiosk with no camera under 2 % of one core; with the camera, no more than the frames.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from hardware.camera import FileCamera  # noqa: E402
from hardware.printer import SimulatedPrinter  # noqa: E402
from kiosk.app import build_kiosk  # noqa: E402
from kiosk.config import SIMULATION_CONFIG, load_config  # noqa: E402
from kiosk.loop import Clock, EventLoop, Wake  # noqa: E402
from kiosk.notify import SystemdNotifier  # noqa: E402
from kiosk.screen import Screen  # noqa: E402


class BaselineLoop(EventLoop):
    """The loop before issue 14: every turn builds the view three times and waits at most 0.05 s (0 s with
    no camera: the next frame time stays 0, so it never waited at all)."""

    def step(self) -> None:
        self.turns += 1
        self._drain_events()
        self._feed_camera()
        self._collect_results()
        self._show(self.machine.view)
        self.machine.tick()
        self._show(self.machine.view)
        if self._notifier is not None:
            self._notifier.heartbeat()
            self._notifier.status(self._status_line(self.machine.view))

    def run(self, *, until=lambda: False, stop_at=None) -> None:
        while self.running and not until() and (stop_at is None or self._clock() < stop_at):
            self.step()
            timeout = max(0.0, min(self._next_frame - self._clock(), 0.05))
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                continue
            if not isinstance(event, Wake):
                self.machine.handle(event)


class PolledScreen(Screen):
    """The real screen, polled as a window or a keyboard under KMS/DRM would need (dummy needs none)."""

    @property
    def needs_polling(self) -> bool:
        return self._display is not None


def empty_hall(folder: Path) -> Path:
    """A 640x480 picture with no face in it: what the camera sees while nobody is there."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:480, 0:640]
    picture = (np.stack([x / 5 + 40, y / 4 + 60, (x + y) / 8 + 30], axis=-1) + rng.normal(0, 6, (480, 640, 3)))
    path = folder / "hall.png"
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(path)
    return path


def measure(config, *, seconds: float, baseline: bool, camera_picture: Path | None, polled: bool) -> dict:
    clock = Clock()
    screen = (PolledScreen if polled else Screen)((config.screen.width, config.screen.height))
    camera = FileCamera([camera_picture]) if camera_picture else None
    printer = SimulatedPrinter(Path(config.printer.out_dir), width_dots=config.printer.width_dots)
    kiosk = build_kiosk(config, clock=clock, camera=camera, printer=printer, screen=screen, use_gpio=False,
                        notifier=SystemdNotifier(clock, {}))
    if baseline:
        kiosk.loop.__class__ = BaselineLoop
    try:
        kiosk.loop.step()                       # the display opens, the first frame is drawn: not idle cost
        cpu, wall = time.process_time(), time.monotonic()
        kiosk.loop.run(stop_at=clock() + seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        return {"cpu": cpu, "wall": wall, "turns": kiosk.loop.turns, "frames": kiosk.loop.frames_processed,
                "engine": kiosk.worker._recognizer if kiosk.worker else None}
    finally:
        kiosk.close()


def frame_cost(recognizer, picture: Path, n: int = 20) -> float:
    """CPU seconds of one idle frame on its own: read it, detect on it (what the camera costs, whatever the loop)."""
    camera = FileCamera([picture])
    recognizer.process(camera.read())
    start = time.process_time()
    for _ in range(n):
        recognizer.process(camera.read())
    return (time.process_time() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="idle time measured per run (default 10)")
    parser.add_argument("--no-camera-only", action="store_true", help="skip the camera scenario (no face models)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        config = load_config(SIMULATION_CONFIG)
        config = dataclasses.replace(config, data_dir=tmp_path / "data", printer=dataclasses.replace(
            config.printer, out_dir=str(tmp_path / "printed")))
        hall = empty_hall(tmp_path)
        scenarios = [("no camera", None, False), ("no camera, screen polled 10x/s (window / KMS keys)", None, True)]
        if not args.no_camera_only:
            scenarios.append((f"file camera, empty hall at {config.camera.idle_fps:g} fps", hall, False))
        print(f"{args.seconds:g} s idle per run; CPU = process time (all threads), % of one core")
        for name, picture, polled in scenarios:
            old = measure(config, seconds=args.seconds, baseline=True, camera_picture=picture, polled=polled)
            new = measure(config, seconds=args.seconds, baseline=False, camera_picture=picture, polled=polled)
            print(f"\n{name}:")
            for label, r in (("baseline loop (0.05 s max wait)", old), ("kiosk loop", new)):
                print(f"  {label:<32} {r['cpu']:7.3f} s CPU in {r['wall']:.1f} s = {100 * r['cpu'] / r['wall']:6.2f} % "
                      f"of one core, {r['turns'] / r['wall']:8.1f} turns/s, {r['frames']} frames")
            ratio = new["cpu"] / old["cpu"] if old["cpu"] > 0 else float("nan")
            print(f"  kiosk / baseline: {ratio:.4f}x the CPU")
            if picture is not None and new["engine"] is not None:
                per_frame = frame_cost(new["engine"], picture)
                frames_cpu = per_frame * new["frames"]
                print(f"  the frames alone: {1000 * per_frame:.1f} ms CPU each x {new['frames']} = {frames_cpu:.3f} s; "
                      f"the kiosk loop's CPU is {new['cpu'] / frames_cpu:.2f}x its frames' "
                      f"(overhead {new['cpu'] - frames_cpu:+.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
