"""kiosk doctor: every check says OK or FAIL with the reason, and the exit code tells a script."""
import dataclasses
import io
from datetime import datetime

from kiosk.config import SIMULATION_CONFIG, load_config
from kiosk.doctor import check_printer, check_store, report, run_checks
from kiosk.store import Store


def test_simulation_passes_every_check(tmp_path):
    config = dataclasses.replace(load_config(SIMULATION_CONFIG), data_dir=tmp_path / "data")
    results = run_checks(config)
    assert [r.name for r in results] == ["fonts", "store", "faces", "camera", "printer", "buttons"]
    assert all(r.ok for r in results), results
    out = io.StringIO()
    assert report(results, out) == 0 and "all 6 checks passed" in out.getvalue()


def test_missing_printer_device_fails_naming_it(tmp_path):
    config = load_config(SIMULATION_CONFIG)
    config = dataclasses.replace(config, printer=dataclasses.replace(
        config.printer, connection="file", device=str(tmp_path / "lp0")))
    [result] = run_checks(config, checks=[check_printer])
    assert not result.ok and "lp0" in result.detail
    out = io.StringIO()
    assert report([result], out) == 1 and out.getvalue().startswith("FAIL printer")


def test_store_in_use_by_the_running_kiosk_is_reported_not_failed(tmp_path):
    config = dataclasses.replace(load_config(SIMULATION_CONFIG), data_dir=tmp_path / "data")
    store = Store.open(config.data_dir, kiosk_id=config.kiosk_id)
    try:
        [result] = run_checks(config, checks=[check_store])
    finally:
        store.close()
    assert result.ok and "in use" in result.detail


def test_a_repair_that_lost_nothing_is_reported_and_passes_a_lost_file_fails(tmp_path):
    from kiosk.store import NUMBERS_FILE
    from kiosk.storage import SlotFile

    config = dataclasses.replace(load_config(SIMULATION_CONFIG), data_dir=tmp_path / "data")
    store = Store.open(config.data_dir, kiosk_id=config.kiosk_id)
    for _ in range(2):                                                # both copies of numbers.bin written
        store.issue_ticket("ho-tich", "HT", citizen_id=None, now=datetime.now())
    store.close()
    numbers = config.data_dir / NUMBERS_FILE
    data = bytearray(numbers.read_bytes())
    data[SlotFile.SLOT + 20:SlotFile.SLOT + 40] = b"\xff" * 20     # a torn write in one of the two copies
    numbers.write_bytes(bytes(data))
    [result] = run_checks(config, checks=[check_store])
    assert result.ok and f"repaired: {NUMBERS_FILE}: one copy damaged" in result.detail

    numbers.write_bytes(b"\xff" * 100)                               # both copies gone: set aside, reported
    [result] = run_checks(config, checks=[check_store])
    assert not result.ok and "unreadable, set aside" in result.detail


def test_a_crashing_check_is_a_failed_check(tmp_path):
    def check_boom(config):
        raise RuntimeError("no such device")

    [result] = run_checks(load_config(SIMULATION_CONFIG), checks=[check_boom])
    assert not result.ok and result.name == "boom" and "no such device" in result.detail


def test_cli(tmp_path, capsys):
    from kiosk.__main__ import main

    assert main(["doctor", "--simulate", "--data", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "OK   fonts" in out and "all 6 checks passed" in out


def test_a_serial_printer_too_slow_for_raster_tickets_fails(tmp_path):
    config = load_config(SIMULATION_CONFIG)
    slow = dataclasses.replace(config, printer=dataclasses.replace(
        config.printer, connection="serial", serial_port=str(tmp_path / "ttyUSB0"), baudrate=19200))
    [result] = run_checks(slow, checks=[check_printer])
    assert not result.ok and "19200 baud needs 33 s per ticket" in result.detail
