"""sd_notify: the real kiosk process tells systemd it is ready, pings the watchdog, and says what it does."""
import os
import socket
import subprocess
import sys

from fakes import Clock
from kiosk.notify import SystemdNotifier


def _listen(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    return sock, path


def _drain(sock):
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except (TimeoutError, socket.timeout):
            return messages


def test_watchdog_pings_at_twice_the_asked_rate(tmp_path):
    sock, path = _listen(tmp_path)
    clock = Clock()
    notifier = SystemdNotifier(clock, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"})
    for _ in range(100):            # 10 s of loop turns, one every 0.1 s
        notifier.heartbeat()
        clock.t += 0.1
    notifier.status("12 tickets")
    notifier.status("12 tickets")   # unchanged: not sent again
    assert _drain(sock) == ["WATCHDOG=1"] * 2 + ["STATUS=12 tickets"]


def test_outside_systemd_nothing_is_sent():
    notifier = SystemdNotifier(Clock(), {})
    notifier.ready("x")
    notifier.heartbeat()
    assert not notifier.enabled


def test_watchdog_meant_for_another_process_is_ignored(tmp_path):
    sock, path = _listen(tmp_path)
    notifier = SystemdNotifier(Clock(), {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    notifier.heartbeat()
    assert _drain(sock) == []


def test_the_running_kiosk_notifies_systemd(tmp_path):
    sock, path = _listen(tmp_path)
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    run = subprocess.run([sys.executable, "-m", "kiosk", "run", "--simulate", "--data", str(tmp_path / "data"),
                          "--exit-after", "1.5"], env=env, capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    messages = _drain(sock)
    assert messages[0].startswith("READY=1\nSTATUS=kiosk sim-01 ready: 6 categories")
    assert messages.count("WATCHDOG=1") >= 3
    assert "STATUS=0 tickets since start, no ticket yet" in messages
    assert messages[-1] == "STOPPING=1"
