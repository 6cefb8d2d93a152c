"""The office's config updates with the service running (kiosk/officeconfig.py): written to the data folder,
layered over the read-only config file, the running kiosk restarts with them, `kiosk doctor` says so."""
import pytest
from synckit import Office, make_kiosk, run_import

from hardware.printer import SimulatedPrinter
from hardware.usb import FolderSticks, Stick, StickEvent
from kiosk.app import build_kiosk
from kiosk.config import load_config
from kiosk.doctor import check_office_config
from kiosk.loop import FakeClock
from kiosk.officeconfig import CHECK_SECONDS, EX_RESTART
from kiosk.visit import ButtonPressed
from kiosk.stickwatch import ChildCommand, StickWatch


@pytest.fixture
def k(tmp_path):
    k = make_kiosk(tmp_path)
    k.store().close()
    return k


def running(k, tmp_path, clock=None, sticks=None):
    clock = clock or FakeClock()
    kiosk = build_kiosk(load_config(k.config), clock=clock, use_gpio=False, sync=True, sticks=sticks,
                        printer=SimulatedPrinter(tmp_path / "out", width_dots=576))
    return kiosk, clock


def test_the_running_kiosk_restarts_when_idle_with_the_offices_new_config(k, tmp_path):
    stick = tmp_path / "stick"
    kiosk, clock = running(k, tmp_path)
    try:
        k.config.chmod(0o444)                  # as /etc/kiosk is to the service: never written
        Office(k).signed(stick, "1.signed", {"kind": "config", "sequence": 1, "toml": '[kiosk]\noffice = "Hai"\n'})
        assert run_import(k, stick).applied
        kiosk.loop.events.put(ButtonPressed("ho-tich"))
        kiosk.loop.step()                      # a citizen is being served: no restart under their nose
        clock.advance(CHECK_SECONDS + 0.1)
        kiosk.loop.step()
        assert kiosk.loop.running and kiosk.loop.exit_status == 0
        for _ in range(200):                   # the visit ends, the kiosk is idle again
            clock.advance(0.5)
            kiosk.loop.step()
            if not kiosk.loop.running:
                break
        assert not kiosk.loop.running and kiosk.loop.exit_status == EX_RESTART
        assert kiosk.loop.tickets == 1
    finally:
        kiosk.close()
    assert load_config(k.config).office == "Hai"           # what the restarted kiosk reads
    again, again_clock = running(k, tmp_path)    # ...and it does not restart again for the same file
    try:
        again_clock.advance(3 * CHECK_SECONDS)
        again.loop.step()
        assert again.loop.running
    finally:
        again.close()


def test_the_restart_waits_until_the_stick_that_brought_the_config_is_done_with(k, tmp_path):
    stick = tmp_path / "sticks" / "s1"
    Office(k).signed(stick, "1.signed", {"kind": "config", "sequence": 1, "toml": '[kiosk]\noffice = "Hai"\n'})
    clock = FakeClock()
    watch = StickWatch(FolderSticks(stick.parent, lambda e: None), ChildCommand.kiosk("--config", str(k.config)),
                       clock=clock, linger=60)
    kiosk, _ = running(k, tmp_path, clock=clock, sticks=watch)
    try:
        watch.event(StickEvent("added", Stick(str(stick))))
        assert watch.wait_finished(1, 120)
        assert watch.poll().stage == "done" and "restarts with it" in watch.poll().detail
        clock.advance(CHECK_SECONDS + 1)
        kiosk.loop.step()
        assert kiosk.loop.running                         # "you may remove the stick" is still on screen
        clock.advance(60)                                 # the banner has gone
        kiosk.loop.step()
        assert not kiosk.loop.running and kiosk.loop.exit_status == EX_RESTART
    finally:
        kiosk.close()


def test_doctor_says_when_an_office_override_is_active(k, tmp_path):
    assert check_office_config(load_config(k.config)).detail.startswith("no office override")
    stick = tmp_path / "stick"
    Office(k).signed(stick, "1.signed", {"kind": "config", "sequence": 1, "toml": '[kiosk]\noffice = "Hai"\n'})
    run_import(k, stick)
    check = check_office_config(load_config(k.config))
    assert check.ok and "office override active" in check.detail and "kiosk.office" in check.detail
    (k.data / "office-config.toml").write_text("not = [toml")
    check = check_office_config(load_config(k.config))
    assert not check.ok and "config file alone is used" in check.detail


def test_the_data_option_reads_the_override_of_that_folder(k, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "office-config.toml").write_text('[kiosk]\noffice = "Ba"\n')
    assert load_config(k.config, data_dir=other).office == "Ba"
    assert load_config(k.config, data_dir=other).data_dir == other
    assert load_config(k.config).office == "UBND Phường Một"


def test_the_shipped_unit_restarts_the_kiosk_on_its_restart_status():
    from pathlib import Path

    unit = (Path(__file__).resolve().parents[1] / "systemd" / "kiosk.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Restart"] in ("on-failure", "always")          # a non-zero exit status is restarted...
    assert str(EX_RESTART) not in settings.get("RestartPreventExitStatus", "").split()   # ...75 included
    assert "StateDirectory" in settings                              # the override lives where the kiosk writes
