"""The technician's commands fail in one line with a non-zero exit, never a traceback (issue 15, item 5)."""
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import SIMULATION_CONFIG, load_config
from kiosk.store import Store

NOW = datetime(2026, 12, 1, 9, 0)
KIOSK = Path(sys.executable).with_name("kiosk")


def _data_with_visits(data: Path, n: int = 3) -> None:
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW) as store:
        for _ in range(n):
            store.issue_ticket("ho-tich", "HT", citizen_id=None, now=NOW)


def test_a_bad_since_date_names_the_expected_form(tmp_path, capsys):
    from kiosk.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["visits", "--data", str(tmp_path), "--since", "01/12/2026"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "'01/12/2026' is not a date: expected YYYY-MM-DD" in err and "fromisoformat" not in err


def test_without_the_installed_config_the_error_says_how_to_point_at_one(tmp_path, monkeypatch, capsys):
    import kiosk.__main__ as cli

    monkeypatch.setattr(cli, "DEFAULT_CONFIG", tmp_path / "etc" / "kiosk.toml")
    assert cli.main(["visits"]) == 2
    err = capsys.readouterr().err
    assert "config file not found" in err and "--config FILE" in err and str(SIMULATION_CONFIG) in err
    assert cli.main(["doctor"]) == 2
    assert "--simulate" in capsys.readouterr().err


def test_ctrl_c_exits_130_quietly(monkeypatch, capsys):
    import kiosk.__main__ as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_dispatch", interrupted)
    assert cli.main(["visits", "--data", "x"]) == 130
    assert capsys.readouterr().err == ""


def test_permission_denied_says_to_run_as_the_kiosk_user(tmp_path, monkeypatch, capsys):
    import kiosk.__main__ as cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/var/lib/kiosk/kiosk.lock")

    monkeypatch.setattr(cli, "_dispatch", denied)
    assert cli.main(["visits", "--data", "/var/lib/kiosk"]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/var/lib/kiosk/kiosk.lock: permission denied" in err
    assert "sudo -u kiosk kiosk visits" in err


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to be nobody")
def test_permission_denied_for_real_as_another_user(tmp_path):
    data = tmp_path / "data"
    _data_with_visits(data)
    data.chmod(0o700)
    tmp_path.chmod(0o755)
    done = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                           str(KIOSK), "visits", "--data", str(data)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert "permission denied; run it as the kiosk user" in done.stderr


def test_a_closed_pipe_ends_quietly(tmp_path):
    data = tmp_path / "data"
    _data_with_visits(data, 600)          # over 64 KiB of JSON lines: more than the pipe holds once head is gone
    done = subprocess.run(["bash", "-c", f'"{KIOSK}" visits --json --data "{data}" | head -1; '
                                         f'echo "status=${{PIPESTATUS[0]}}" >&2'],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.count("\n") == 1 and "HT-001" in done.stdout
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert done.stderr.strip().endswith("status=141"), done.stderr


def test_ctrl_c_on_the_running_kiosk_stops_it_without_a_traceback(tmp_path):
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    proc = subprocess.Popen([str(KIOSK), "run", "--simulate", "--data", str(tmp_path / "data"), "--exit-after", "60"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "data" / "kiosk.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert proc.returncode in (0, 130), (proc.returncode, err[-2000:])


def _forget_config(tmp_path):
    config = load_config(SIMULATION_CONFIG)
    return dataclasses.replace(config, data_dir=tmp_path / "data",
                               printer=dataclasses.replace(config.printer, out_dir=str(tmp_path / "out")),
                               privacy=dataclasses.replace(config.privacy, key_file=str(tmp_path / "k" / "data.key")))


def test_forget_takes_an_unambiguous_prefix_and_lists_an_ambiguous_one(tmp_path, capsys):
    from kiosk.cli_store import forget
    from kiosk.datakey import KeySource, load_key

    config = _forget_config(tmp_path)
    key = load_key(KeySource("file", Path(config.privacy.key_file), create=True), config.data_dir)
    ids = ["abcdef01" + "0" * 24, "abcdef02" + "0" * 24, "12345678" + "f" * 24]
    rng = np.random.default_rng(1)
    with Store.open(config.data_dir, kiosk_id="k1", clock=lambda: NOW, key=key) as store:
        for cid in ids:
            store.enrol(rng.random((2, 128), dtype=np.float32), now=NOW, consent_text="yes", citizen_id=cid)
    assert forget(config, "abcdef", print_receipt=False, now=NOW) == 1
    err = capsys.readouterr().err
    assert ids[0] in err and ids[1] in err and "give more digits" in err
    assert forget(config, "ABCDEF02", print_receipt=False, now=NOW) == 0
    assert ids[1] in capsys.readouterr().out
    assert forget(config, "abcdef02", print_receipt=False, now=NOW) == 1       # its prefix, once forgotten
    assert "already forgotten" in capsys.readouterr().err
    assert forget(config, "999999", print_receipt=False, now=NOW) == 1
    assert "no citizen id starts with 999999" in capsys.readouterr().err
    assert forget(config, "123", print_receipt=False, now=NOW) == 1            # too short to be meant
    assert "not a citizen id" in capsys.readouterr().err
    with Store.open(config.data_dir, kiosk_id="k1", clock=lambda: NOW, key=key) as store:
        assert set(store.templates()[0]) == {ids[0], ids[2]}
