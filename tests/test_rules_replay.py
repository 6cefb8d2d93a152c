"""The office's rules end to end through ``kiosk replay`` (issue 13): priority series by button, opening hours
and daily caps scripted with ``"at"``, a clock that may not go back, closures by ``kiosk service`` beside a
running kiosk, and two kiosks of one office whose merged exports share no number."""
import json
from datetime import datetime

import pytest

from kiosk import bundle as B
from kiosk.audit import verify
from kiosk.cli_service import service_command
from kiosk.config import ConfigError, load_config
from kiosk.office.db import Database
from kiosk.office.ingest import ingest
from kiosk.office.kiosks import add_kiosk
from kiosk.replay import ScriptError, read_script, run_replay
from kiosk.sync import export
from kiosk.synckeys import SyncKeys, load_kiosk_key, read_office_key, write_office_key

CONFIG = """
[kiosk]
id = "{kiosk}"
office = "UBND Phường Một"
data_dir = "{data}"
simulate = true

[[categories]]
key = "ho-tich"
prefix = "HT"
name_vi = "Hộ tịch"
name_en = "Civil status"

[[categories]]
key = "dat-dai"
prefix = "DD"
name_vi = "Đất đai"
name_en = "Land"

[camera]
kind = "none"

[recognition]
enabled = false

[sync]
key_file = "{keys}/{kiosk}.key"
office_key_file = "{keys}/office-sync.pub"

[privacy]
key_file = "{keys}/{kiosk}-data.key"
{extra}
"""
HOURS = """
[hours]
mon = ["07:30-11:30", "13:00-17:00"]
tue = ["07:30-11:30", "13:30-17:00"]
sat = ["07:30-11:30"]

[caps]
dat-dai = 2
"""
NUMBERS = """
[numbers]
kiosk-01 = [1, 499]
kiosk-02 = { ho-tich = [500, 999], dat-dai = [500, 999] }
"""


def config_file(tmp_path, kiosk="kiosk-01", extra=""):
    path = tmp_path / f"{kiosk}.toml"
    path.write_text(CONFIG.format(kiosk=kiosk, data=tmp_path / kiosk, keys=tmp_path / "keys", extra=extra),
                    encoding="utf-8")
    return path


def replay(tmp_path, lines, kiosk="kiosk-01", extra=HOURS):
    script = tmp_path / f"{kiosk}.jsonl"
    script.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    config = config_file(tmp_path, kiosk, extra)
    visits = read_script(script, ["ho-tich", "dat-dai"])
    return run_replay(visits, data_dir=tmp_path / kiosk, out_dir=tmp_path / f"{kiosk}-out", config_path=config)


def test_priority_tickets_have_their_own_series_per_service(tmp_path):
    out = replay(tmp_path, [{"image": None, "category": "ho-tich", "at": "2026-11-30T08:00"},
                            {"image": None, "category": "ho-tich", "priority": True},
                            {"image": None, "category": "ho-tich"},
                            {"image": None, "category": "ho-tich", "priority": True},
                            {"image": None, "category": "dat-dai", "priority": True}])
    assert [(r["ticket"], r["priority"]) for r in out] == [("HT-001", False), ("HT-U01", True), ("HT-002", False),
                                                           ("HT-U02", True), ("DD-U01", True)]
    assert all("refused" not in r for r in out)


def test_outside_hours_the_press_is_refused_with_closed(tmp_path):
    out = replay(tmp_path, [{"image": None, "category": "ho-tich", "at": "2026-12-01T07:00"},   # Tuesday, early
                            {"image": None, "category": "ho-tich", "at": "2026-12-01T07:30"},
                            {"image": None, "category": "dat-dai", "at": "2026-12-01T12:00", "priority": True},
                            {"image": None, "category": "dat-dai", "at": "2026-12-01T13:30"},
                            {"image": None, "category": "ho-tich", "at": "2026-12-06T12:00"}])  # Saturday noon
    assert [(r["ticket"], r.get("refused")) for r in out] == [(None, "closed"), ("HT-001", None), (None, "closed"),
                                                              ("DD-001", None), (None, "closed")]
    assert out[2]["priority"] is True and out[2]["category"] == "dat-dai"


def test_above_the_cap_the_press_is_refused_with_full_and_the_next_day_opens_again(tmp_path):
    out = replay(tmp_path, [{"image": None, "category": "dat-dai", "at": "2026-11-30T08:00"},
                            {"image": None, "category": "dat-dai", "priority": True},
                            {"image": None, "category": "dat-dai"},
                            {"image": None, "category": "ho-tich"},
                            {"image": None, "category": "dat-dai", "at": "2026-12-01T08:00"}])
    assert [(r["ticket"], r.get("refused")) for r in out] == [("DD-001", None), ("DD-U01", None), (None, "full"),
                                                              ("HT-001", None), ("DD-001", None)]


def test_a_script_whose_clock_goes_back_is_refused_in_one_line(tmp_path):
    script = tmp_path / "s.jsonl"
    script.write_text('{"category": "ho-tich", "at": "2026-12-01T09:30"}\n'
                      '{"category": "ho-tich", "at": "2026-12-01T09:29"}\n', encoding="utf-8")
    with pytest.raises(ScriptError, match=r"s.jsonl:2: at 2026-12-01T09:29 goes back before 2026-12-01T09:30"):
        read_script(script, ["ho-tich"])
    script.write_text('{"category": "ho-tich", "at": "1/12/2026 9:30"}\n', encoding="utf-8")
    with pytest.raises(ScriptError, match="YYYY-MM-DDTHH:MM"):
        read_script(script, ["ho-tich"])
    script.write_text('{"category": "ho-tich", "priority": "yes"}\n', encoding="utf-8")
    with pytest.raises(ScriptError, match="priority must be true or false"):
        read_script(script, ["ho-tich"])


def test_overlapping_kiosk_ranges_are_refused_naming_both(tmp_path):
    overlap = "[numbers]\nkiosk-01 = [1, 499]\nkiosk-02 = [400, 999]\n"
    with pytest.raises(ConfigError, match=r"kiosks kiosk-01 and kiosk-02 overlap in ho-tich \(1-499 and 400-999\)"):
        load_config(config_file(tmp_path, extra=overlap))
    with pytest.raises(ConfigError, match=r"this kiosk \(kiosk-03\) is not listed"):
        load_config(config_file(tmp_path, "kiosk-03", extra=NUMBERS))
    path = config_file(tmp_path, extra="[priority]\npin = 5\n")
    path.write_text(path.read_text(encoding="utf-8").replace('name_en = "Land"', 'name_en = "Land"\npin = 5'),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"priority.pin: GPIO pin 5 is already used by categories\[1\].pin"):
        load_config(path)


def test_two_kiosks_of_one_office_issue_the_same_day_with_no_number_in_common(tmp_path):
    office = B.OfficeKeys.generate()
    (tmp_path / "keys").mkdir()
    write_office_key(tmp_path / "keys" / "office-sync.pub", office.public())
    script = [{"image": None, "category": "ho-tich", "at": "2026-11-30T08:00"},
              {"image": None, "category": "ho-tich", "priority": True},
              {"image": None, "category": "dat-dai"},
              {"image": None, "category": "ho-tich"}]
    tickets = {k: [r["ticket"] for r in replay(tmp_path, script, k, NUMBERS)] for k in ("kiosk-01", "kiosk-02")}
    assert tickets == {"kiosk-01": ["HT-001", "HT-U01", "DD-001", "HT-002"],
                       "kiosk-02": ["HT-500", "HT-U500", "DD-500", "HT-501"]}
    stick, url = tmp_path / "stick", str(tmp_path / "office.db")
    (stick / B.SYNC_DIR).mkdir(parents=True)
    now = datetime(2026, 11, 30, 18, 0)
    for kiosk in tickets:
        keys = SyncKeys(load_kiosk_key(tmp_path / "keys" / f"{kiosk}.key", create=True),
                        read_office_key(tmp_path / "keys" / "office-sync.pub"))
        export(stick, data_dir=tmp_path / kiosk, kiosk_id=kiosk, keys=keys, now=now)
        with Database.open(url) as db:
            add_kiosk(db, kiosk, keys.kiosk.verify_key.encode().hex(), now=now)
    with Database.open(url) as db:
        ingest(stick, db=db, office=office, now=lambda: now)
        rows = db.query("SELECT kiosk_id, ticket FROM visits ORDER BY kiosk_id, ticket")
    assert len(rows) == 8
    assert len({ticket for _, ticket in rows}) == 8           # merged: no number in common
    assert {kiosk for kiosk, _ in rows} == {"kiosk-01", "kiosk-02"}


def test_kiosk_service_close_and_open_without_and_beside_a_running_kiosk(tmp_path):
    from kiosk.app import build_kiosk
    from kiosk.loop import FakeClock
    from kiosk.replay import replay_config

    path = config_file(tmp_path, extra="[hours]\nalways_open = true\n")
    config = load_config(path)
    now = datetime(2026, 11, 30, 9, 0)
    assert service_command(config, "close", "dat-dai", now=now) == 0       # no kiosk running: done at once
    assert service_command(config, "close", "nope", now=now) == 1
    clock = FakeClock(now)
    kiosk = build_kiosk(replay_config(path, config.data_dir, tmp_path / "out"), clock=clock, sync=True,
                        use_gpio=False)
    try:
        machine = kiosk.loop.machine
        tiles = {c.key: c.status_vi for c in machine.view.categories}
        assert tiles == {"ho-tich": None, "dat-dai": "Tạm ngừng hôm nay"}
        assert service_command(config, "open", "dat-dai", now=now, wait=0) == 4    # queued for the running kiosk
        clock.advance(1.0)
        kiosk.loop.step()                                                   # the idle chore applies it
        assert {c.key: c.status_vi for c in machine.view.categories}["dat-dai"] is None
    finally:
        kiosk.close()
    audit = [json.loads(line.split(" ", 1)[1]) for line in (config.data_dir / "audit.jsonl").read_text().splitlines()]
    events = [(e.get("event"), e.get("service"), e.get("by")) for e in audit if "service" in e]
    assert events == [("service_close", "dat-dai", "cli"), ("service_open", "dat-dai", "cli")]
    assert verify(config.data_dir / "audit.jsonl").ok


def test_a_signed_usb_file_from_the_office_closes_a_service_for_its_day(tmp_path):
    from kiosk.app import build_kiosk
    from kiosk.loop import FakeClock
    from kiosk.office.outbox import service_closure
    from kiosk.replay import replay_config
    from synckit import T0, make_kiosk, run_import

    k = make_kiosk(tmp_path / "kiosk")
    k.issue(1)                                      # a kiosk that has run: its data folder exists
    stick = tmp_path / "stick"
    (stick / B.SYNC_DIR).mkdir(parents=True)
    with Database.open(str(tmp_path / "office.db")) as db:
        service_closure(stick, "close", "dat-dai", db=db, office=k.office, now=T0)
    result = run_import(k, stick)
    assert [line.split(": ", 1)[1] for line in result.applied] == [
        "service dat-dai: close (for 2026-11-27, applied by the kiosk when idle)"]
    kiosk = build_kiosk(replay_config(k.config, k.data, tmp_path / "out"), clock=FakeClock(T0), sync=True,
                        use_gpio=False)     # the kiosk starts: it applies the queued closure
    try:
        assert [c.status_vi for c in kiosk.loop.machine.view.categories] == [None, "Tạm ngừng hôm nay"]
    finally:
        kiosk.close()
    kiosk = build_kiosk(replay_config(k.config, k.data, tmp_path / "out"), clock=FakeClock(T0.replace(day=28)),
                        sync=True, use_gpio=False)     # the next day: open again
    try:
        assert [c.status_vi for c in kiosk.loop.machine.view.categories] == [None, None]
    finally:
        kiosk.close()
    audit = (k.data / "audit.jsonl").read_text(encoding="utf-8")
    assert '"event":"service_close"' in audit and '"by":"usb"' in audit


def test_a_card_aged_75_or_more_gets_a_priority_ticket_by_itself(tmp_path):
    from test_identity_replay import AN, DrawnEngine, _picture

    elder = "001045001234||Phạm Văn Lão|01021945|Nam|Hà Nội|15062021"     # invented: born 1945
    old_enough = "001051004321||Đỗ Văn Tư|01011951|Nam|Hà Nội|15062021"    # invented: born 1951, 75 in 2026
    visits = [{"image": _picture(tmp_path, name, card=payload), "category": "ho-tich", "consent": False,
               "confirm": False, "priority": False, "at": datetime(2026, 12, 1, 9, 0) if name == "a" else None}
              for name, payload in (("a", elder), ("b", AN), ("c", old_enough))]
    out = run_replay(visits, data_dir=tmp_path / "data", out_dir=tmp_path / "out", engine=DrawnEngine())
    assert [(r["ticket"], r["priority"], r["card"]) for r in out] == [("HT-U01", True, "ok"), ("HT-001", False, "ok"),
                                                                      ("HT-U02", True, "ok")]


def test_the_office_sets_hours_caps_and_ranges_by_a_signed_config_but_never_the_priority_pin(tmp_path):
    from synckit import Office, make_kiosk, run_import

    k = make_kiosk(tmp_path / "kiosk")
    k.issue(1)
    stick = tmp_path / "stick"
    (stick / B.SYNC_DIR).mkdir(parents=True)
    rules = ('[hours]\nsat = ["07:30-11:30"]\n[caps]\nho-tich = 40\n[numbers]\nk-01 = [1, 499]\nk-02 = [500, 999]\n'
             '[priority]\nage = 70\n')
    office = Office(k)
    office.signed(stick, "1.signed", {"kind": "config", "sequence": 1, "toml": rules})
    office.signed(stick, "2.signed", {"kind": "config", "sequence": 2, "toml": "[priority]\npin = 16\n"})
    result = run_import(k, stick)
    assert len(result.applied) == 1 and "in [priority] only age, mark, wait_seconds may change" in result.rejected[0]
    config = load_config(k.config)
    assert config.rules.caps == {"ho-tich": 40} and config.rules.priority.age == 70
    assert config.rules.numbers("k-01", "dat-dai") == (1, 499)
    assert config.rules.hours is not None and config.rules.hours.is_open(datetime(2026, 12, 5, 8, 0))
    assert not config.rules.hours.is_open(datetime(2026, 12, 7, 8, 0))       # a Monday: only Saturday is set


def test_a_used_up_priority_range_gives_a_normal_number_not_the_failsafe(tmp_path):
    """A kiosk's priority series may run out of its range before the normal one: the citizen still gets a number."""
    out = replay(tmp_path, [{"image": None, "category": "ho-tich", "at": "2026-11-30T08:00", "priority": True},
                            {"image": None, "category": "ho-tich", "priority": True},
                            {"image": None, "category": "ho-tich", "priority": True},
                            {"image": None, "category": "ho-tich"},
                            {"image": None, "category": "ho-tich"}],
                 extra="[numbers]\nkiosk-01 = [1, 2]\n")
    assert [(r["ticket"], r.get("refused")) for r in out] == [("HT-U01", None), ("HT-U02", None), ("HT-001", None),
                                                              ("HT-002", None), (None, "full")]
