"""The systemd unit: systemd's own checker accepts it without a single warning, and it says what we mean.

``systemd-analyze verify`` exits 0 even for unknown keys and typos (it only warns on stderr), so any stderr
output fails the test. verify also insists that ExecStart's binary exists, and /opt/queue-kiosk is not
installed here: the test verifies a copy whose ExecStart binary is swapped for the kiosk entry point of the
venv running the tests (every other line, User=/Group=/groups/hardening included, is checked as written).
The tool comes with the ``systemd`` package (``apt-get install -y systemd``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "kiosk.service"
SYSUSERS = REPO / "systemd" / "kiosk.sysusers.conf"
INSTALLED_BINARY = "/opt/queue-kiosk/.venv/bin/kiosk"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (a key may repeat, e.g. Environment=); comments and blanks skipped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"key outside a section: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


UNIT_KEYS = parse_unit(UNIT.read_text(encoding="utf-8"))
SERVICE = UNIT_KEYS["Service"]


def one(key: str, section: str = "Service") -> str:
    values = UNIT_KEYS[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}= appears {len(values)} times"
    return values[0]


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze not installed: apt-get install -y systemd (CI must install it)")
    return path


def verifiable_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with only ExecStart's binary pointed at an executable that exists on this machine."""
    local = Path(sys.executable).parent / "kiosk"
    binary = local if local.exists() else Path(sys.executable)
    text = UNIT.read_text(encoding="utf-8") if text is None else text
    assert text.count(f"ExecStart={INSTALLED_BINARY} ") == 1
    copy = tmp_path / "kiosk.service"
    copy.write_text(text.replace(f"ExecStart={INSTALLED_BINARY} ", f"ExecStart={binary} "), encoding="utf-8")
    return copy


def verify(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([systemd_analyze(), "verify", "--man=no", str(path)], capture_output=True, text=True,
                          cwd=path.parent, timeout=60)


def test_systemd_analyze_verify_is_silent(tmp_path):
    copy = verifiable_copy(tmp_path)
    changed = [(a, b) for a, b in zip(UNIT.read_text().splitlines(), copy.read_text().splitlines()) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith("ExecStart=")   # everything else as written
    result = verify(copy)
    assert result.stderr == "" and result.stdout == "", result.stderr + result.stdout
    assert result.returncode == 0


def test_verify_would_catch_a_typo(tmp_path):
    """The silence above means something: a misspelt key is reported on stderr (with exit status 0)."""
    broken = UNIT.read_text(encoding="utf-8").replace("PrivateTmp=yes", "PrivateTemp=yes")
    result = verify(verifiable_copy(tmp_path, broken))
    assert "PrivateTemp" in result.stderr


def test_runs_the_kiosk_as_its_own_user_with_device_groups():
    assert one("ExecStart") == f"{INSTALLED_BINARY} run --config /etc/kiosk/kiosk.toml"
    assert one("User") == "kiosk" and one("Group") == "kiosk"
    groups = set(" ".join(SERVICE["SupplementaryGroups"]).split())
    assert {"gpio", "video", "render", "dialout", "lp", "plugdev", "input", "audio"} <= groups
    assert one("Type") == "notify" and one("NotifyAccess") == "main" and one("WatchdogSec") == "30"
    assert one("Restart") == "on-failure" and one("RestartSec") == "3"
    assert int(one("StartLimitBurst", "Unit")) >= 3 and int(one("StartLimitIntervalSec", "Unit")) >= 60
    assert "local-fs.target" in one("After", "Unit").split()
    assert one("WantedBy", "Install") == "multi-user.target"


def test_display_state_and_logs():
    assert "SDL_VIDEODRIVER=kmsdrm" in SERVICE["Environment"]
    assert one("StateDirectory") == "kiosk"
    assert one("WorkingDirectory") == "/var/lib/kiosk"
    assert one("StandardOutput") == "journal"


# The device classes the kiosk opens (names from /proc/devices), and nothing else.
DEVICE_CLASSES = {"char-gpiochip", "char-video4linux", "char-media", "char-dma_heap", "char-drm", "char-input",
                  "char-usb_device", "char-usb", "char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-alsa"}
SECURITY_TARGET = 2.5


def test_hardening_that_keeps_the_devices_reachable():
    assert one("ProtectSystem") == "strict"
    for key in ("PrivateTmp", "NoNewPrivileges", "ProtectHome", "ProtectKernelTunables", "ProtectClock",
                "PrivateMounts", "RemoveIPC"):
        assert one(key) == "yes", key
    assert one("ProtectProc") == "invisible"
    assert one("SystemCallArchitectures") == "native"
    assert SERVICE["SystemCallFilter"] == ["@system-service", "~@privileged @resources", "setpriority"]
    assert one("ReadWritePaths") == "-/media"                          # USB sticks mounted by udisks2
    assert one("SystemCallErrorNumber") == "EPERM"
    assert one("DevicePolicy") == "closed"
    allowed = dict(value.split() for value in SERVICE["DeviceAllow"])
    assert allowed.pop("/dev/vcio") == "rw"     # the firmware mailbox: the data key from the board's OTP key
    assert set(allowed) == DEVICE_CLASSES
    assert allowed["char-input"] == "r" and {allowed[c] for c in DEVICE_CLASSES - {"char-input"}} == {"rw"}
    # Off the network: a network printer's address comes back through install.sh's drop-in.
    assert one("IPAddressDeny") == "any"
    assert set(one("RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_NETLINK"}
    # An empty /dev, a network namespace without udev events, a /proc without the board's identity.
    for key in ("PrivateDevices", "PrivateNetwork", "ProcSubset", "PrivateUsers", "DynamicUser"):
        assert key not in SERVICE, f"{key}= would break device access"


def test_the_kiosk_owns_the_console_and_waits_for_its_drivers():
    assert "getty@tty1.service" in one("Conflicts", "Unit").split()
    after = set(" ".join(UNIT_KEYS["Unit"]["After"]).split())
    assert {"getty@tty1.service", "systemd-udev-settle.service", "local-fs.target"} <= after


def test_a_config_error_is_never_restarted():
    """`kiosk run` exits 78 (EX_CONFIG) on a config error or a missing display driver."""
    assert one("RestartPreventExitStatus") == "78"


def security_score(path: Path) -> tuple[float, str]:
    result = subprocess.run([systemd_analyze(), "security", "--offline=yes", "--no-pager", str(path)],
                            capture_output=True, text=True, cwd=path.parent, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    return float(match.group(1)), result.stdout


def test_security_score_at_most_the_target():
    score, report = security_score(UNIT)
    print(f"systemd-analyze security --offline=yes systemd/kiosk.service: {score} (target <= {SECURITY_TARGET})")
    print("\n".join(line for line in report.splitlines() if line.startswith("\u2717")))
    assert score <= SECURITY_TARGET


def test_security_score_would_catch_lost_hardening(tmp_path):
    """The same tool on the unit without its filters rates it above the target: the score above means something."""
    kept = [line for line in UNIT.read_text(encoding="utf-8").splitlines()
            if not line.startswith(("SystemCall", "DevicePolicy", "DeviceAllow", "IPAddressDeny",
                                    "RestrictAddressFamilies", "ProtectProc", "ProtectKernelTunables"))]
    copy = tmp_path / "kiosk.service"
    copy.write_text("\n".join(kept) + "\n", encoding="utf-8")
    score, _ = security_score(copy)
    assert score > SECURITY_TARGET


def test_pi_config_matches_the_unit():
    """The shipped Pi config keeps its data where systemd creates the state directory."""
    pi = REPO / "kiosk" / "configs" / "pi.toml"
    if not pi.is_file():
        pytest.skip("kiosk/configs/pi.toml not present")
    config = tomllib.loads(pi.read_text(encoding="utf-8"))
    assert config["kiosk"]["data_dir"] == f"/var/lib/{one('StateDirectory')}"


def test_sysusers_entry_creates_the_user(tmp_path):
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        pytest.skip("systemd-sysusers not installed: apt-get install -y systemd")
    (tmp_path / "etc").mkdir()
    result = subprocess.run([tool, f"--root={tmp_path}", "--dry-run", str(SYSUSERS)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Creating user 'kiosk'" in result.stdout + result.stderr
    fields = next(line.split() for line in SYSUSERS.read_text().splitlines() if line.startswith("u "))
    assert fields[1] == one("User")
    assert "/var/lib/kiosk" in fields


def test_sysusers_entry_creates_every_device_group_the_unit_asks_for(tmp_path):
    """A group named by SupplementaryGroups= that does not exist stops the unit (status 216/GROUP)."""
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        pytest.skip("systemd-sysusers not installed: apt-get install -y systemd")
    groups = set(" ".join(SERVICE["SupplementaryGroups"]).split())
    declared = {line.split()[1] for line in SYSUSERS.read_text().splitlines() if line.startswith("g ")}
    assert groups <= declared, f"no sysusers line for {sorted(groups - declared)}"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "group").write_text("video:x:44:\n")     # an OS that has some of them already
    result = subprocess.run([tool, f"--root={tmp_path}", str(SYSUSERS)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    created = {line.split(":")[0]: line for line in (tmp_path / "etc" / "group").read_text().splitlines()}
    assert groups <= set(created) and created["video"].startswith("video:x:44:")


def test_the_kiosk_user_is_a_member_of_its_device_groups(tmp_path):
    """SupplementaryGroups= applies only inside the unit: `sudo -u kiosk kiosk doctor` needs real membership,
    also on an OS whose groups exist already with other members and where the user existed before."""
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        pytest.skip("systemd-sysusers not installed: apt-get install -y systemd")
    groups = set(" ".join(SERVICE["SupplementaryGroups"]).split())
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "group").write_text("video:x:44:pi\nkiosk:x:990:\n")
    (tmp_path / "etc" / "passwd").write_text("kiosk:x:990:990::/var/lib/kiosk:/usr/sbin/nologin\n")
    for _ in range(2):                                   # idempotent: a second run changes nothing
        result = subprocess.run([tool, f"--root={tmp_path}", str(SYSUSERS)], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
    members = {line.split(":")[0]: line.split(":")[3].split(",")
               for line in (tmp_path / "etc" / "group").read_text().splitlines()}
    for group in groups:
        assert members[group].count("kiosk") == 1, (group, members[group])
    assert "pi" in members["video"]


def syscall_set(*groups: str) -> set[str]:
    """The system calls in systemd's groups, nested groups expanded."""
    names: set[str] = set()
    for group in groups:
        out = subprocess.run([systemd_analyze(), "syscall-filter", group], capture_output=True, text=True,
                             timeout=60).stdout
        for word in (line.strip() for line in out.splitlines()[1:]):
            if word.startswith("@"):
                names |= syscall_set(word)
            elif word and not word.startswith("#"):
                names.add(word)
    return names


# Called by OpenBLAS (numpy's and OpenCV's) as a NUMA placement hint whose failure it ignores: with
# SystemCallErrorNumber=EPERM the call fails and the buffer is simply not bound (a Pi has one NUMA node).
TOLERATED_DENIED = {"mbind"}
# Taken away with @resources, given back: lowering one's own priority (`nice -n 10` for USB sync children).
ALLOWED_BACK = {"setpriority"}


def test_the_kiosk_makes_only_system_calls_the_filter_allows(tmp_path):
    """strace a replay through the real face engine, printer and store: every system call is in @system-service,
    and of those the unit takes away (~@privileged @resources) only ones whose failure is harmless."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed: apt-get install -y strace (CI installs it)")
    kiosk = Path(sys.executable).parent / "kiosk"
    faces = REPO.parent / "shared" / "data" / "faces" / "dev"
    people = sorted(p for p in faces.iterdir() if p.is_dir())[:1] if faces.is_dir() else []
    visits = [{"image": None, "category": "ho-tich"}]
    if people:
        photos = sorted(people[0].glob("*.jpg"))[:2]
        visits = [{"image": str(p), "category": "ho-tich", "consent": True} for p in photos] + visits
    else:
        print("../shared/data/faces absent: the replay runs without faces")
    script = tmp_path / "visits.jsonl"
    script.write_text("".join(json.dumps(v) + "\n" for v in visits))
    trace = tmp_path / "trace"
    result = subprocess.run([strace, "-f", "-qq", "-o", str(trace), str(kiosk), "replay", str(script),
                             "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"printed": true') == len(visits)
    used = set(re.findall(r"^\d+\s+([a-z_0-9]+)\(", trace.read_text(), re.M))
    assert {"openat", "fsync", "rename"} <= used                     # the trace is the kiosk's real work
    allowed = syscall_set("@system-service")
    denied = syscall_set("@privileged", "@resources") - ALLOWED_BACK
    print(f"{len(used)} system calls used; outside @system-service: {sorted(used - allowed)}; "
          f"taken away by ~@privileged @resources: {sorted(used & denied)}")
    assert used <= allowed
    assert used & denied <= TOLERATED_DENIED
