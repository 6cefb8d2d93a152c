"""Issue 15: a ticket the printer failed stays on screen until the next citizen comes or ``unprinted`` seconds
pass (60 by default), and the consent button is called by the word the config gives it."""
from dataclasses import replace

import pytest

from fakes import Clock, Obs, Services
from kiosk.config import SIMULATION_CONFIG, ConfigError, TimingConfig, load_config, parse_config
from kiosk.states import KioskMachine
from kiosk.visit import CONSENT, ButtonPressed, FaceUpdate, Timing
from kiosk.views import CategoryChoice, ConfirmView, DoneView, GreetingView, IdleView

CATEGORIES = (CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),
              CategoryChoice("dat-dai", "Đất đai", "Land", "2"))


def machine(timing=Timing(done=6), printer_ok=False, **kw):
    clock, services = Clock(), Services(printer_ok=printer_ok)
    return KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock, timing=timing,
                        **kw), services, clock


def shown_for(m, clock, limit=120.0, step=0.5):
    """Seconds the ticket screen stays, ticking like the loop."""
    start = clock.t
    while isinstance(m.view, DoneView) and clock.t - start < limit:
        clock.t += step
        m.tick()
    return clock.t - start


def test_the_default_is_60_seconds():
    assert Timing().unprinted == 60.0 == TimingConfig().unprinted_seconds


def test_an_unprinted_number_stays_60_seconds_a_printed_one_its_usual_6():
    m, services, clock = machine(printer_ok=True)
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    assert shown_for(m, clock) == 6.0
    m, services, clock = machine()
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    assert isinstance(m.view, DoneView) and m.view.printed is False
    assert shown_for(m, clock) == 60.0 and isinstance(m.view, IdleView)


def test_the_time_comes_from_the_config():
    m, _, clock = machine(timing=Timing(done=6, unprinted=15))
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    assert shown_for(m, clock) == 15.0


def test_a_late_failure_keeps_the_number_60_seconds_from_when_it_is_known():
    m, services, clock = machine(printer_ok=None)          # still printing when stored
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    [issued] = m.drain()
    clock.t += 5
    services.take_print_answers = lambda: {issued.outcome.visit_id: False}
    m.tick()
    services.take_print_answers = lambda: {}
    assert m.view.printed is False
    assert shown_for(m, clock) == 60.0


def test_the_next_citizens_face_ends_it_the_same_citizens_does_not():
    m, services, clock = machine()
    m.handle(FaceUpdate(Obs(track_id=1)))
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    assert isinstance(m.view, DoneView)
    clock.t += 30
    m.handle(FaceUpdate(Obs(track_id=1)))                  # still reading their number
    m.handle(FaceUpdate(Obs(track_id=None)))               # looked away
    m.tick()
    assert isinstance(m.view, DoneView)
    m.handle(FaceUpdate(Obs(track_id=2)))                  # somebody else at the kiosk
    assert isinstance(m.view, GreetingView) and m.visit.person.track_id == 2 and m.visit.outcome is None


def test_the_next_citizens_button_ends_it_and_serves_them():
    m, services, clock = machine()
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    m.handle(ButtonPressed("dat-dai"))
    m.tick()
    assert [c for c, _ in services.issued] == ["ho-tich", "dat-dai"] and m.view.ticket == "HT-002"


def test_a_face_after_a_faceless_ticket_does_not_hide_its_number():
    """The citizen the camera did not see may simply be seen now: only a button or the time ends it."""
    m, services, clock = machine()
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    m.handle(FaceUpdate(Obs(track_id=5)))
    m.tick()
    assert isinstance(m.view, DoneView) and m.view.ticket == "HT-001"


def test_the_consent_button_is_called_by_its_configured_word():
    m, services, clock = machine(consent_button="Đồng ý")
    services.names["c7"] = "N***n V*n A"
    m.handle(FaceUpdate(Obs(citizen_id="c7")))
    assert m.view.consent_button == "Đồng ý"
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    assert isinstance(m.view, ConfirmView) and m.view.consent_button == "Đồng ý"
    m.handle(ButtonPressed(CONSENT))
    m.tick()
    assert services.issued == [("ho-tich", "c7")]


def test_the_config_gives_the_consent_label_and_checks_it(tmp_path):
    import tomllib

    raw = tomllib.loads(SIMULATION_CONFIG.read_text(encoding="utf-8"))
    assert parse_config(raw).buttons.consent_label == "Y"
    raw["buttons"]["consent_label"] = "Đồng ý"
    assert parse_config(raw).buttons.consent_label == "Đồng ý"
    for bad in ("", "   ", "x" * 13):
        raw["buttons"]["consent_label"] = bad
        with pytest.raises(ConfigError, match="buttons.consent_label"):
            parse_config(raw)


def test_the_running_kiosk_shows_the_configured_label(tmp_path):
    from kiosk.app import build_kiosk
    from kiosk.loop import FakeClock

    config = load_config(SIMULATION_CONFIG)
    config = replace(config, data_dir=tmp_path / "data", printer=replace(config.printer, out_dir=str(tmp_path / "p")),
                     privacy=replace(config.privacy, key_file=str(tmp_path / "data.key")),
                     buttons=replace(config.buttons, consent_label="OK"))
    kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True)
    try:
        kiosk.loop.machine.handle(FaceUpdate(Obs()))
        view = kiosk.loop.machine.view
        assert isinstance(view, GreetingView) and view.consent_button == "OK"
    finally:
        kiosk.close()


def test_replay_goes_on_after_unprinted_tickets(tmp_path):
    from kiosk.replay import run_replay

    (tmp_path / "out").write_text("a file where the printed tickets should go: every print fails")
    results = run_replay([{"image": None, "category": "ho-tich"}, {"image": None, "category": "dat-dai"}],
                         data_dir=tmp_path / "data", out_dir=tmp_path / "out")
    assert [(r["ticket"], r["printed"]) for r in results] == [("HT-001", False), ("DD-001", False)]
