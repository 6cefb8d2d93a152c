"""The office's rules in the state machine (issue 13): priority by button (before, and in the short wait after
the service button) and by the card's age; a closed or full service refused with its reason; the tiles say why."""
from datetime import datetime

import pytest

from fakes import Clock, Obs, Services, card
from kiosk.machine_events import Phase, TicketIssued, TicketRefused
from kiosk.rules import Refusal, full_refusal, parse_rules
from kiosk.states import KioskMachine
from kiosk.views import CategoryChoice, DoneView, GreetingView, IdleView, IssuingView, RefusedView
from kiosk.visit import PRIORITY, ButtonPressed, FaceUpdate, Timing

CATEGORIES = (CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),
              CategoryChoice("dat-dai", "Đất đai", "Land", "2"))
TIMING = Timing(greeting=20, settle=2, consent=10, done=6, failsafe=4)


class Gate:
    """The office's rules as the machine sees them: a refusal per service, changed by the test."""

    def __init__(self):
        self.refusals: dict[str, Refusal] = {}

    def refusal(self, category):
        return self.refusals.get(category)


def machine(wait=0.0, gate=None, age=75):
    clock, services = Clock(), Services()
    m = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock, timing=TIMING,
                     gate=gate, priority_age=age, priority_wait=wait, priority_button="U")
    return m, services, clock


def issued(m):
    return [e.outcome for e in m.drain() if isinstance(e, TicketIssued)]


def test_priority_button_before_the_service_gives_a_priority_request():
    m, services, clock = machine()
    m.handle(ButtonPressed(PRIORITY))
    assert m.phase == Phase.GREETING                 # somebody is here
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    assert [r.priority for r in services.requests] == [True]
    assert [o.priority for o in issued(m)] == [True]


def test_priority_button_in_the_wait_after_the_service_button():
    m, services, clock = machine(wait=3.0)
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    view = m.view
    assert isinstance(view, IssuingView) and view.priority_button == "U"    # waiting, and saying so
    assert services.requests == []
    clock.t += 1.0
    m.handle(ButtonPressed(PRIORITY))
    m.tick()                                         # no need to wait out the rest
    assert [r.priority for r in services.requests] == [True]


def test_the_wait_for_the_priority_button_ends_by_itself():
    m, services, clock = machine(wait=3.0)
    m.handle(ButtonPressed("dat-dai"))
    clock.t += 2.9
    m.tick()
    assert services.requests == []
    clock.t += 0.2
    m.tick()
    assert [r.priority for r in services.requests] == [False]
    assert isinstance(m.view, DoneView)
    m.handle(ButtonPressed(PRIORITY))                # the ticket is out: too late, nothing changes
    assert len(services.requests) == 1 and isinstance(m.view, DoneView)


def test_no_wait_without_a_priority_button():
    clock, services = Clock(), Services()
    m = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock, timing=TIMING,
                     priority_wait=3.0)          # no button label: the kiosk has none, nobody waits for it
    m.handle(ButtonPressed("dat-dai"))
    m.tick()
    assert len(services.requests) == 1


@pytest.mark.parametrize("age, expected", [(75, True), (90, True), (74, False), (None, False)])
def test_priority_by_the_card_age(age, expected):
    m, services, clock = machine(wait=3.0)
    services.cards["CARD"] = card("c1", age=age)
    m.handle(FaceUpdate(Obs(track_id=None, cards=("CARD",))))
    m.handle(ButtonPressed("ho-tich"))
    if not expected:
        clock.t += 3.0                               # (the wait for the button runs out)
    m.tick()
    assert [r.priority for r in services.requests] == [expected]


def test_the_card_age_gives_no_priority_when_the_rule_is_off():
    m, services, clock = machine(age=None)
    services.cards["CARD"] = card("c1", age=90)
    m.handle(FaceUpdate(Obs(track_id=None, cards=("CARD",))))
    m.handle(ButtonPressed("ho-tich"))
    m.tick()
    assert [r.priority for r in services.requests] == [False]


def test_a_closed_service_is_refused_with_its_reason_and_no_ticket():
    gate = Gate()
    rules = parse_rules({"hours": {"tue": ["07:30-11:30", "13:30-17:00"]}}, ["ho-tich", "dat-dai"], "k1")
    gate.refusals["dat-dai"] = rules.refusal("dat-dai", "Đất đai", "Land", datetime(2026, 12, 1, 12, 10),
                                             taken=0, taken_office=0, closed=False)
    m, services, clock = machine(gate=gate)
    idle = m.view
    assert isinstance(idle, IdleView)
    assert [c.status_vi for c in idle.categories] == [None, "Mở lúc 13:30"]
    m.handle(ButtonPressed("dat-dai"))
    view = m.view
    assert isinstance(view, RefusedView) and view.reason == "closed"
    assert view.sentence == "Lĩnh vực Đất đai mở lúc 13:30. Mời Ông/Bà quay lại lúc đó."
    assert [(e.category, e.reason) for e in m.drain() if isinstance(e, TicketRefused)] == [("dat-dai", "closed")]
    m.tick()
    assert services.requests == []
    clock.t += TIMING.done
    m.tick()
    assert isinstance(m.view, IdleView)              # back by itself


def test_a_full_service_is_refused_and_another_service_still_issues():
    gate = Gate()
    gate.refusals["ho-tich"] = full_refusal("Hộ tịch", "Civil status")
    m, services, clock = machine(gate=gate)
    m.handle(FaceUpdate(Obs()))
    greeting = m.view
    assert isinstance(greeting, GreetingView) and greeting.categories[0].status_vi == "Hết số hôm nay"
    m.handle(ButtonPressed("ho-tich"))
    assert isinstance(m.view, RefusedView) and m.view.reason == "full"
    m.handle(ButtonPressed("dat-dai"))               # the citizen picks another service at once
    m.tick()
    assert [r.category for r in services.requests] == ["dat-dai"]


def test_a_service_that_fills_up_while_the_citizen_answers_is_refused_at_the_ticket():
    gate = Gate()
    m, services, clock = machine(gate=gate, wait=3.0)
    m.handle(ButtonPressed("ho-tich"))
    gate.refusals["ho-tich"] = full_refusal("Hộ tịch", "Civil status")
    clock.t += 3.0
    m.tick()
    assert services.requests == [] and isinstance(m.view, RefusedView)
