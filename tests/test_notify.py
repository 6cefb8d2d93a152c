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


def _run_kiosk(tmp_path, *args, env=()):
    return subprocess.run([sys.executable, "-m", "kiosk", "run", "--data", str(tmp_path / "data"), *args],
                          env={**os.environ, "SDL_VIDEODRIVER": "dummy", **dict(env)}, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)


def test_a_display_driver_this_pygame_lacks_is_one_line_and_exit_78(tmp_path):
    """The unit's RestartPreventExitStatus=78: no restart loop for a driver another try cannot grow."""
    run = _run_kiosk(tmp_path, "--simulate", "--exit-after", "5", env={"SDL_VIDEODRIVER": "nosuchdriver"})
    assert run.returncode == 78
    [line] = run.stderr.splitlines()
    assert line.startswith("kiosk: display: this pygame's SDL has no 'nosuchdriver' video driver (it has ")
    assert "dummy" in line and not (tmp_path / "data").exists()          # stopped before touching the data


def test_a_config_error_of_the_service_exits_78(tmp_path):
    bad = tmp_path / "kiosk.toml"
    bad.write_text("[kiosk\n", encoding="utf-8")
    run = _run_kiosk(tmp_path, "--config", str(bad), "--exit-after", "0")
    assert run.returncode == 78 and run.stderr.startswith("kiosk: config error: ") and "Traceback" not in run.stderr


def test_a_camera_library_that_fails_to_import_costs_the_faces_not_the_tickets(tmp_path):
    """Raspberry Pi OS's picamera2 under a pip numpy: ValueError at import, not ImportError."""
    from kiosk.config import SIMULATION_CONFIG

    standin = tmp_path / "standin" / "picamera2"
    standin.mkdir(parents=True)
    (standin / "__init__.py").write_text("raise ValueError('numpy.dtype size changed, may indicate binary "
                                         "incompatibility. Expected 96 from C header, got 88 from PyObject')\n")
    config = tmp_path / "kiosk.toml"
    config.write_text(SIMULATION_CONFIG.read_text(encoding="utf-8").replace('kind = "opencv"', 'kind = "picamera2"'),
                      encoding="utf-8")
    sock, path = _listen(tmp_path)
    run = _run_kiosk(tmp_path, "--config", str(config), "--exit-after", "0.5",
                     env={"PYTHONPATH": os.pathsep.join([str(standin.parent), os.environ.get("PYTHONPATH", "")]),
                          "NOTIFY_SOCKET": path})
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "camera: Pi camera 0 (picamera2): the picamera2 library fails to load: " \
        "ValueError: numpy.dtype size changed" in run.stderr
    messages = _drain(sock)
    assert "camera none" in messages[0]                                  # READY=1: tickets can be issued
    assert any(m.startswith("STATUS=0 tickets since start, no ticket yet; Camera lỗi; kiosk vẫn cấp số / "
                            "Camera: Pi camera 0")
               for m in messages)
