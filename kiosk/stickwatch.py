"""The hot-plug path: a stick appears -> mount (udisks2) -> ``kiosk export`` and ``kiosk import`` in child
processes -> unmount and power off; meanwhile a :class:`~kiosk.views.SyncBanner` the loop polls.

Why child processes (``subprocess`` running the very ``kiosk export --to`` / ``kiosk import --from`` commands a
technician types), not a thread and not ``multiprocessing``: benchmarks/export.py measured an export in a thread
of the kiosk tripling the tickets' p99 (the GIL), in a child process 1.5x. A subprocess of the CLI is the same
code path and exit statuses as the shell, needs nothing pickled, lowers its own priority, can be stopped when
the stick is pulled out, and a crash in it cannot touch the kiosk. Export only reads the store, so it runs
beside the loop.

This module's thread only waits: on the udisks2 calls (seconds) and on the child's output lines. The state
machine never sees a stick; a citizen pressing a button during an export gets their ticket as usual, and the
screen draws the banner over whatever it shows.
"""
from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol, Sequence

from hardware.usb import StickError
from kiosk.bundle import SYNC_DIR
from kiosk.views import SyncBanner

log = logging.getLogger("kiosk.usb")

LINGER = 120.0       # seconds a finished banner stays when the stick is not pulled out
WRITING = re.compile(r"writing bundle (\d+) .*?, (\d+) of (\d+)")
MADE = re.compile(r"bundle \d+ made: (.*)")
WRITTEN = re.compile(r"bundle \d+ written, read back and verified")


class Mounter(Protocol):
    """hardware.usb.UDisks2 (or the simulation's FolderSticks): raises StickError with one line."""

    def mount(self, device: str) -> Path: ...

    def unmount(self, device: str) -> None: ...

    def power_off(self, device: str) -> None: ...


class StickInfo(Protocol):
    """hardware.usb.Stick."""

    @property
    def device(self) -> str: ...


class StickEventLike(Protocol):
    """hardware.usb.StickEvent: "added" | "removed" and its stick."""

    @property
    def action(self) -> str: ...

    @property
    def stick(self) -> StickInfo: ...


@dataclass(frozen=True)
class ChildCommand:
    """How to start ``kiosk export`` / ``kiosk import`` with this kiosk's config and data folder."""
    program: tuple[str, ...]          # (sys.executable, "-m", "kiosk")
    options: tuple[str, ...] = ()     # ("--config", PATH, "--data", DIR)

    @classmethod
    def kiosk(cls, *options: str) -> "ChildCommand":
        """This Python's ``kiosk`` command at a lower CPU priority from its first import on (``nice -n 10``:
        ``kiosk import`` does not lower its own, and the interpreter's start-up is CPU work too)."""
        nice = shutil.which("nice")
        prefix = (nice, "-n", "10") if nice else ()
        return cls((*prefix, sys.executable, "-m", "kiosk"), options)

    def argv(self, verb: str, mountpoint: Path) -> list[str]:
        flag = "--to" if verb == "export" else "--from"
        return [*self.program, verb, flag, str(mountpoint), *self.options]


class StickWatch:
    """Runs one stick at a time on its own thread; :meth:`poll` (the loop's thread) gives the banner to draw.

    ``event`` may be called from any thread (udev's): an added stick is queued; a removed one that is in use
    stops its child at once (the export is crash-safe: the next one resends) and the banner says so.
    ``on_change`` (the loop's wake-up) is called on this thread whenever the banner changes.
    """

    def __init__(self, mounter: Mounter, command: ChildCommand, *, clock: Callable[[], float],
                 linger: float = LINGER, on_change: Callable[[], None] | None = None) -> None:
        self._mounter = mounter
        self._command = command
        self._clock = clock
        self._linger = linger
        self.on_change = on_change
        self._lock = threading.Lock()
        self._banner: SyncBanner | None = None
        self._ended_at: float | None = None
        self._current: str | None = None            # device in use
        self._shown_for: str | None = None          # device the banner is about
        self._pulled = False
        self._child: subprocess.Popen[str] | None = None
        self._sticks: queue.Queue[str | None] = queue.Queue()
        self.finished = 0                            # sticks handled to the end (tests wait on it)
        self._done = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name="usb-sticks", daemon=True)
        self._thread.start()

    # -- any thread -----------------------------------------------------------------------------------
    def event(self, event: StickEventLike) -> None:
        device = event.stick.device
        if event.action == "added":
            self._sticks.put(device)
            return
        with self._lock:
            if device == self._current:
                self._pulled = True
                if self._child is not None and self._child.poll() is None:
                    self._child.terminate()
            elif device == self._shown_for:          # pulled out after the end: the banner has done its job
                self._banner, self._shown_for = None, None
        self._changed()

    # -- the loop's thread ----------------------------------------------------------------------------
    def poll(self) -> SyncBanner | None:
        """The banner to draw now; a finished one goes away after ``linger`` seconds."""
        with self._lock:
            if self._banner is not None and self._ended_at is not None \
                    and self._clock() - self._ended_at >= self._linger:
                self._banner, self._shown_for, self._ended_at = None, None, None
            return self._banner

    def wait_finished(self, count: int, timeout: float) -> bool:
        """Block until ``count`` sticks were handled (tests; the loop never waits)."""
        with self._done:
            return self._done.wait_for(lambda: self.finished >= count, timeout)

    def close(self) -> None:
        with self._lock:
            if self._child is not None and self._child.poll() is None:
                self._child.terminate()
        self._sticks.put(None)
        self._thread.join(timeout=10)

    # -- the stick thread -----------------------------------------------------------------------------
    def _set(self, banner: SyncBanner, *, end: bool = False) -> None:
        with self._lock:
            self._banner = banner
            self._ended_at = self._clock() if end else None
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _run(self) -> None:
        while True:
            device = self._sticks.get()
            if device is None:
                return
            with self._lock:
                self._current, self._shown_for, self._pulled = device, device, False
            try:
                self._handle(device)
            except Exception as exc:   # a bug here must never reach the loop: said once, the kiosk goes on
                log.exception("usb: %s", device)
                self._set(SyncBanner("error", detail=f"{type(exc).__name__}: {exc}"), end=True)
            with self._done:
                self._current, self._child = None, None
                self.finished += 1
                self._done.notify_all()

    def _handle(self, device: str) -> None:
        self._set(SyncBanner("working", step="mount", progress=0.02))
        try:
            mountpoint = self._mounter.mount(device)
        except StickError as exc:
            log.error("usb: %s", exc)
            self._set(SyncBanner("error", detail=str(exc)), end=True)
            return
        log.info("usb: %s mounted at %s", device, mountpoint)
        if not has_sync_folder(mountpoint):
            log.info("usb: %s has no %s/ folder: not a kiosk stick, left alone", device, SYNC_DIR)
            problem = self._release(device, power_off=False)
            self._set(SyncBanner("not_kiosk", detail=problem), end=True)
            return
        banner = SyncBanner("working", step="export", progress=0.1)
        self._set(banner)
        banner, export_error = self._run_child("export", mountpoint, banner)
        import_note = None
        if not self._pulled:
            banner = replace(banner, step="import", progress=max(banner.progress, 0.85))
            self._set(banner)
            banner, import_note = self._run_child("import", mountpoint, banner)
        if self._pulled:
            log.error("usb: %s pulled out while in use; nothing on the kiosk is lost, the next export resends", device)
            self._set(SyncBanner("error", pulled=True), end=True)
            return
        self._set(replace(banner, step="unmount", progress=0.95))
        problem = self._release(device, power_off=True)
        if export_error or problem:
            log.error("usb: %s: %s", device, export_error or problem)
            self._set(replace(banner, stage="error", detail=export_error or problem), end=True)
        else:
            if import_note:
                log.warning("usb: %s: %s", device, import_note)
            self._set(replace(banner, stage="done", step="", progress=1.0, detail=import_note), end=True)

    def _release(self, device: str, *, power_off: bool) -> str | None:
        """Unmount (and power off); the one line of what failed, or None."""
        try:
            self._mounter.unmount(device)
            if power_off:
                self._mounter.power_off(device)
        except StickError as exc:
            log.error("usb: %s", exc)
            return str(exc)
        log.info("usb: %s unmounted%s", device, " and powered off" if power_off else "")
        return None

    def _run_child(self, verb: str, mountpoint: Path, banner: SyncBanner) -> tuple[SyncBanner, str | None]:
        """Run ``kiosk <verb>`` on the stick, following its lines; the banner after it and its error line."""
        argv = self._command.argv(verb, mountpoint)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            child = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     encoding="utf-8", errors="replace", env=env)
        except OSError as exc:
            log.error("usb: cannot start kiosk %s: %s", verb, exc)
            return banner, f"kiosk {verb} not started: {exc}"
        with self._lock:
            self._child = child
            if self._pulled:
                child.terminate()
        lines: list[str] = []
        assert child.stdout is not None
        for raw in child.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            log.info("usb: %s: %s", verb, line)
            banner = follow(banner, line)
            self._set(banner)
        status = child.wait()
        with self._lock:
            self._child = None
        return banner, outcome(verb, status, lines)


def follow(banner: SyncBanner, line: str) -> SyncBanner:
    """The banner after one progress line of ``kiosk export`` (kiosk.sync.export_command's ``... `` lines)."""
    if (m := WRITING.search(line)) is not None:
        k, n = int(m.group(2)), int(m.group(3))
        return replace(banner, written=k - 1, to_write=n, progress=0.3 + 0.5 * (k - 1) / n)
    if WRITTEN.search(line) and banner.to_write:
        k = banner.written + 1
        return replace(banner, written=k, progress=0.3 + 0.5 * k / banner.to_write)
    if (m := MADE.search(line)) is not None:
        return replace(banner, counts=m.group(1), progress=0.3)
    if "nothing new since the last bundle" in line and line.startswith("..."):
        return replace(banner, counts="nothing new", progress=0.3)
    return banner


def outcome(verb: str, status: int, lines: Sequence[str]) -> str | None:
    """One line for the screen from a child's exit: None when all is well."""
    if verb == "export":
        if status == 0:
            return None
        said = [line.removeprefix("kiosk export: ") for line in lines if line.startswith("kiosk export: ")]
        return said[-1] if said else f"kiosk export stopped (exit status {status}); see the journal"
    if status == 0:
        restart = any("office config written" in line for line in lines if line.startswith("applied:"))
        return "new config from the office: the kiosk restarts with it when idle" if restart else None
    said = [line.removeprefix("kiosk import: ") for line in lines if line.startswith("kiosk import: ")]
    if said:
        return f"import: {said[-1]}"
    return "import: some office files were refused or must wait; see the journal"


def has_sync_folder(mountpoint: Path) -> bool:
    """Whether the stick holds a real ``kiosk-sync/`` folder (a link by that name is not one)."""
    try:
        return stat.S_ISDIR(os.lstat(Path(mountpoint) / SYNC_DIR).st_mode)
    except OSError:
        return False
