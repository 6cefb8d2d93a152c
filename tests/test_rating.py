"""Satisfaction rating and call staff (issue 13, items 4 and 6): the store, the state machine, the desk output."""
import queue
from datetime import datetime, timedelta

import pytest

from fakes import Clock, Obs, Services, card
from kiosk.loop import EventLoop
from kiosk.machine_events import Phase, Rated, StaffCalled, TicketIssued, VisitEnded
from kiosk.states import KioskMachine
from kiosk.store import Store
from kiosk.store_ratings import RATINGS_DIR
from kiosk.visit import CONSENT, ButtonPressed, FaceUpdate, Timing
from kiosk.views import CategoryChoice, GreetingView, HelpView, IdleView, RatingChoice, ThanksView

T0 = datetime(2026, 11, 27, 9, 0)
CATEGORIES = (CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),
              CategoryChoice("dat-dai", "Đất đai", "Land", "2"))
RATINGS = (RatingChoice("good", "G"), RatingChoice("ok", "N"), RatingChoice("bad", "B"))


# ------------------------------------------------------------------------------------------------------ store
@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "data", kiosk_id="k-01", clock=lambda: T0) as s:
        yield s


def test_a_rating_links_to_the_citizens_visit_of_the_same_day(store):
    store.issue_ticket("ho-tich", "HT", citizen_id="c1", now=T0)
    land = store.issue_ticket("dat-dai", "DD", citizen_id="c1", now=T0 + timedelta(minutes=5))
    store.issue_ticket("ho-tich", "HT", citizen_id="c2", now=T0 + timedelta(minutes=6))
    rated = store.rate("good", citizen_id="c1", now=T0 + timedelta(hours=1))
    assert rated.new and rated.visit == land.id and rated.category == "dat-dai"    # the latest visit of the day
    assert rated.to_json()["kiosk"] == "k-01" and "citizen" not in rated.to_json()


def test_an_unknown_rater_or_a_visit_of_another_day_is_anonymous(store):
    store.issue_ticket("ho-tich", "HT", citizen_id="c1", now=T0)
    nobody = store.rate("bad", citizen_id=None, now=T0 + timedelta(minutes=1))
    tomorrow = store.rate("ok", citizen_id="c1", now=T0 + timedelta(days=1))
    assert nobody.visit is None and nobody.category is None and nobody.new
    assert tomorrow.visit is None                     # yesterday's visit: not this day's, anonymous
    assert [r.rating for r in store.ratings()] == ["bad", "ok"]


def test_one_rating_per_visit_the_first_stands_even_after_a_restart(tmp_path):
    data = tmp_path / "data"
    with Store.open(data, kiosk_id="k", clock=lambda: T0) as s:
        visit = s.issue_ticket("ho-tich", "HT", citizen_id="c1", now=T0)
        first = s.rate("good", citizen_id="c1", now=T0 + timedelta(minutes=30))
        again = s.rate("bad", citizen_id="c1", now=T0 + timedelta(minutes=31))
        assert first.new and not again.new and again.rating == "good" and again.id == first.id
    size = sum(p.stat().st_size for p in (data / RATINGS_DIR).iterdir())
    with Store.open(data, kiosk_id="k", clock=lambda: T0) as s:
        later = s.rate("ok", citizen_id="c1", now=T0 + timedelta(hours=2))
        assert not later.new and later.visit == visit.id
        assert [(r.rating, r.visit) for r in s.ratings()] == [("good", visit.id)]
    assert sum(p.stat().st_size for p in (data / RATINGS_DIR).iterdir()) == size     # nothing written


def test_a_torn_rating_is_cut_off_at_start_and_the_rest_kept(tmp_path):
    data = tmp_path / "data"
    with Store.open(data, kiosk_id="k", clock=lambda: T0) as s:
        s.rate("good", citizen_id=None, now=T0)
        s.rate("ok", citizen_id=None, now=T0)
    month = data / RATINGS_DIR / "2026-11.jsonl"
    month.write_bytes(month.read_bytes()[:-9])       # a power cut in the middle of the second append
    with Store.open(data, kiosk_id="k", clock=lambda: T0) as s:
        assert [r.rating for r in s.ratings()] == ["good"]
        assert s.rate("bad", citizen_id=None, now=T0).new
        assert [r.rating for r in s.ratings()] == ["good", "bad"]


def test_ratings_are_counted_by_service(store):
    for i, (citizen, category) in enumerate([("c1", "ho-tich"), ("c2", "ho-tich"), ("c3", "dat-dai")]):
        store.issue_ticket(category, category[:2].upper(), citizen_id=citizen, now=T0 + timedelta(minutes=i))
    for citizen, rating in [("c1", "good"), ("c2", "bad"), ("c3", "good"), (None, "ok")]:
        store.rate(rating, citizen_id=citizen, now=T0 + timedelta(hours=1))
    assert store.rating_counts() == {"ho-tich": {"good": 1, "ok": 0, "bad": 1},
                                     "dat-dai": {"good": 1, "ok": 0, "bad": 0},
                                     None: {"good": 0, "ok": 1, "bad": 0}}
    with pytest.raises(ValueError, match="good, ok, bad"):
        store.rate("great", citizen_id=None, now=T0)


# ----------------------------------------------------------------------------------------------- state machine
@pytest.fixture
def kiosk():
    clock, services = Clock(), Services()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock,
                           timing=Timing(greeting=20, settle=2, consent=10, done=6, failsafe=4), ratings=RATINGS)
    return machine, services, clock


def test_the_idle_and_greeting_screens_carry_the_rating_buttons(kiosk):
    machine, _, _ = kiosk
    assert machine.view == IdleView("UBND", CATEGORIES, ratings=RATINGS)
    machine.handle(FaceUpdate(Obs(citizen_id=None)))
    assert isinstance(machine.view, GreetingView) and machine.view.ratings == RATINGS


def test_a_recognised_citizen_rates_their_visit_and_is_thanked(kiosk):
    machine, services, clock = kiosk
    services.visited.add("c7")
    machine.handle(FaceUpdate(Obs(citizen_id="c7")))          # proposed by the face, on the way out
    machine.drain()
    machine.handle(ButtonPressed("rate-good"))
    assert services.ratings == [("good", "c7")]
    said = machine.drain()
    assert Rated("good", True, True) in said and any(isinstance(e, VisitEnded) for e in said)
    assert machine.view == ThanksView(linked=True) and machine.visit.citizen is None    # the visit is gone
    machine.handle(ButtonPressed("rate-bad"))                 # pressed again on the thank-you screen: nothing
    assert services.ratings == [("good", "c7")] and not machine.drain()
    clock.t += 3.1
    machine.tick()
    assert isinstance(machine.view, IdleView)


def test_a_card_decides_who_rates_and_nobody_known_is_anonymous(kiosk):
    machine, services, clock = kiosk
    services.cards["qr"] = card("c9")
    machine.handle(FaceUpdate(Obs(citizen_id="c7", cards=("qr",))))
    machine.handle(ButtonPressed("rate-ok"))
    clock.t += 5
    machine.tick()
    machine.handle(ButtonPressed("rate-bad"))                 # nobody in view: anonymous
    assert services.ratings == [("ok", "c9"), ("bad", None)]
    assert machine.view == ThanksView(linked=False)


def test_a_rating_mid_visit_is_ignored_and_a_service_on_the_thanks_screen_takes_a_ticket(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(citizen_id="c7")))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()                                            # "is this you?"
    assert machine.phase == Phase.CONFIRM
    machine.handle(ButtonPressed("rate-good"))
    assert services.ratings == [] and machine.phase == Phase.CONFIRM
    machine.handle(ButtonPressed(CONSENT))
    machine.tick()
    clock.t += 7
    machine.tick()
    machine.handle(ButtonPressed("rate-good"))
    machine.handle(ButtonPressed("dat-dai"))
    machine.tick()
    assert [e for e in machine.drain() if isinstance(e, TicketIssued)][-1].outcome.category == "dat-dai"


def test_ratings_off_means_the_buttons_do_nothing():
    services = Services()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=Clock())
    machine.handle(ButtonPressed("rate-good"))
    assert services.ratings == [] and isinstance(machine.view, IdleView) and machine.view.ratings == ()


def test_call_staff_says_someone_is_coming_then_idles(kiosk):
    machine, _, clock = kiosk
    machine.handle(FaceUpdate(Obs(citizen_id=None)))
    machine.handle(ButtonPressed("call-staff"))
    said = machine.drain()
    assert StaffCalled() in said and any(isinstance(e, VisitEnded) for e in said)
    assert machine.view == HelpView()
    clock.t += 10.1
    machine.tick()
    assert isinstance(machine.view, IdleView)


def test_call_staff_during_a_question_keeps_the_visit(kiosk):
    machine, _, _ = kiosk
    machine.handle(FaceUpdate(Obs(citizen_id="c7")))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    machine.drain()
    machine.handle(ButtonPressed("call-staff"))
    assert machine.drain() == [StaffCalled()] and machine.phase == Phase.CONFIRM


# ------------------------------------------------------------------------------------------------ desk output
@pytest.fixture
def pins():
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    yield factory
    factory.reset()
    Device.pin_factory = None


def test_the_desk_output_goes_high_on_a_call_and_low_on_the_staff_reset_button(pins):
    from hardware.staffcall import StaffCall

    resets = []
    desk = StaffCall(12, reset_pin=27, kind="buzzer", pin_factory=pins, on_reset=lambda: resets.append(1))
    output, reset = pins.pin(12), pins.pin(27)
    assert not output.state
    desk.call()
    assert output.state and desk.is_on
    desk.call()                                   # a second call: still on
    reset.drive_low()                             # staff press the reset button at the desk
    reset.drive_high()
    assert not output.state and not desk.is_on and resets == [1]
    desk.close()


def test_a_busy_pin_is_one_line_naming_it(pins):
    from hardware.staffcall import StaffCall, StaffCallError

    first = StaffCall(12, pin_factory=pins)
    with pytest.raises(StaffCallError, match="GPIO pin 12"):
        StaffCall(12, pin_factory=pins)
    first.close()


def test_the_loop_turns_the_desk_light_on_and_the_staff_key_turns_it_off(pins):
    from hardware.staffcall import StaffCall

    clock = Clock()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=Services(), clock=clock, ratings=RATINGS)
    desk = StaffCall(12, kind="led", pin_factory=pins)
    events: queue.Queue = queue.Queue()
    loop = EventLoop(machine=machine, events=events, clock=clock, keymap={"h": "call-staff", "r": "staff-reset"},
                     staff=desk)
    events.put(ButtonPressed("call-staff"))
    loop.step()
    assert pins.pin(12).state and isinstance(machine.view, HelpView)
    clock.t += 60
    loop.step()
    assert pins.pin(12).state                      # on until staff reset it, whatever the screen shows
    events.put(ButtonPressed("staff-reset"))
    loop.step()
    assert not pins.pin(12).state
    desk.close()


def test_the_simulation_keys_rate_and_call_staff_on_the_logged_desk(tmp_path):
    from kiosk.app import build_kiosk
    from kiosk.loop import FakeClock
    from kiosk.replay import replay_config

    config = replay_config(None, tmp_path / "data", tmp_path / "out")
    kiosk = build_kiosk(config, clock=FakeClock(), sync=True, use_gpio=False)
    try:
        keymap = kiosk.loop._keymap
        assert {keymap[k] for k in "gnbhr"} == {"rate-good", "rate-ok", "rate-bad", "call-staff", "staff-reset"}
        kiosk.loop.events.put(ButtonPressed(keymap["h"]))
        kiosk.loop.step()
        assert kiosk.staff is not None and kiosk.staff.is_on
        kiosk.loop.events.put(ButtonPressed(keymap["r"]))
        kiosk.loop.step()
        assert not kiosk.staff.is_on
        kiosk.loop.events.put(ButtonPressed(keymap["g"]))
        assert any(isinstance(e, Rated) for e in kiosk.loop.step())
        assert [r.rating for r in kiosk.store.ratings()] == ["good"]
    finally:
        kiosk.close()
