"""The state machine, driven with a fake clock and scripted events: no pygame, no threads, no devices."""
import numpy as np
import pytest

from fakes import Clock, Obs, Services
from kiosk.states import CONSENT, ButtonPressed, FaceUpdate, KioskMachine, Timing
from kiosk.views import (CategoryChoice, ConsentView, DoneView, FailsafeView, GreetingView, IdleView,
                         IssuingView)

CATEGORIES = (CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),
              CategoryChoice("dat-dai", "Đất đai", "Land", "2"))
TIMING = Timing(greeting=20, settle=2, consent=10, done=6, failsafe=4)


@pytest.fixture
def kiosk():
    clock, services = Clock(), Services()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock, timing=TIMING)
    return machine, services, clock


def test_button_without_a_face_gives_a_plain_ticket(kiosk):
    machine, services, clock = kiosk
    assert isinstance(machine.view, IdleView)
    machine.handle(ButtonPressed("dat-dai"))
    assert isinstance(machine.view, IssuingView)      # shown while printing
    machine.tick()
    assert services.issued == [("dat-dai", None)]
    view = machine.view
    assert isinstance(view, DoneView) and view.ticket == "HT-001" and view.printed
    clock.t += 5.9
    machine.tick()
    assert isinstance(machine.view, DoneView)
    clock.t += 0.2
    machine.tick()
    assert isinstance(machine.view, IdleView) and machine.visits_ended == 1


def test_known_face_is_greeted_and_linked(kiosk):
    machine, services, clock = kiosk
    services.names["c7"] = "N***n V*n A"
    machine.handle(FaceUpdate(Obs(citizen_id="c7")))
    view = machine.view
    assert isinstance(view, GreetingView) and view.returning and view.masked_name == "N***n V*n A"
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert services.issued == [("ho-tich", "c7")]
    assert machine.last_outcome.recognized and not machine.last_outcome.enrolled


def test_unknown_face_consent_yes_enrols_then_issues(kiosk):
    machine, services, clock = kiosk
    enc = np.ones((3, 128), np.float32)
    machine.handle(FaceUpdate(Obs(enrol_encodings=enc)))
    assert isinstance(machine.view, GreetingView) and not machine.view.returning
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    view = machine.view
    assert isinstance(view, ConsentView) and view.seconds_left == 10 and view.category.key == "ho-tich"
    assert services.issued == []                      # nothing issued or stored before the answer
    machine.handle(ButtonPressed(CONSENT))
    machine.tick()
    assert len(services.enrolled) == 1 and services.enrolled[0] is enc
    assert services.issued == [("ho-tich", "citizen1")]
    assert machine.view.enrolled and machine.last_outcome.enrolled


def test_consent_timeout_means_no(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(enrol_encodings=np.ones((3, 128), np.float32))))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    clock.t += 9.5
    machine.tick()
    assert isinstance(machine.view, ConsentView) and machine.view.seconds_left == 1
    clock.t += 0.5
    machine.tick()      # timeout -> issuing
    machine.tick()
    assert services.enrolled == [] and services.issued == [("ho-tich", None)]


def test_service_button_during_consent_answers_no(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(enrol_encodings=np.ones((3, 128), np.float32))))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    machine.handle(ButtonPressed("dat-dai"))
    machine.tick()
    assert services.enrolled == [] and services.issued == [("ho-tich", None)]


def test_consent_button_outside_the_question_does_nothing(kiosk):
    machine, services, clock = kiosk
    machine.handle(ButtonPressed(CONSENT))
    machine.handle(FaceUpdate(Obs(enrol_encodings=np.ones((3, 128), np.float32))))
    machine.handle(ButtonPressed(CONSENT))
    assert isinstance(machine.view, GreetingView) and services.enrolled == []


def test_enrolment_off_never_asks(kiosk):
    _, services, clock = kiosk
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock, timing=TIMING,
                           enrolment=False)
    machine.handle(FaceUpdate(Obs(enrol_encodings=np.ones((3, 128), np.float32))))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert isinstance(machine.view, DoneView) and services.enrolled == []


def test_face_failing_the_quality_gate_gets_a_hint_and_a_plain_ticket(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(enrol_encodings=None, hint="look_at_camera")))
    assert machine.view.hint == "look_at_camera"
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert isinstance(machine.view, DoneView) and services.issued == [("ho-tich", None)]


def test_button_while_recognising_waits_for_the_verdict(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(settled=False)))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert isinstance(machine.view, IssuingView) and services.issued == []
    machine.handle(FaceUpdate(Obs(citizen_id="c9")))
    machine.tick()
    assert services.issued == [("ho-tich", "c9")]


def test_unsettled_face_does_not_hold_the_ticket_forever(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(settled=False)))
    machine.handle(ButtonPressed("ho-tich"))
    clock.t += 2.0
    machine.tick()
    assert services.issued == [("ho-tich", None)]


def test_several_faces_identify_nobody(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(faces=3, track_id=None, hint="one_at_a_time")))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert services.issued == [("ho-tich", None)]


def test_greeting_times_out_to_idle(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(citizen_id="c1")))
    clock.t += 20
    machine.tick()
    assert isinstance(machine.view, IdleView)
    machine.handle(ButtonPressed("ho-tich"))    # the person who left is not linked to the next ticket
    machine.tick()
    assert services.issued == [("ho-tich", None)]


def test_printer_failure_still_shows_the_number(kiosk):
    machine, services, clock = kiosk
    services.printer_ok = False
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    view = machine.view
    assert isinstance(view, DoneView) and view.ticket == "HT-001" and not view.printed


def test_unexpected_error_goes_to_failsafe_then_idle_and_tickets_go_on(kiosk):
    machine, services, clock = kiosk
    services.fail_issue = True
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert isinstance(machine.view, FailsafeView) and "disk full" in machine.view.reason
    clock.t += 4
    machine.tick()
    assert isinstance(machine.view, IdleView)
    services.fail_issue = False
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert isinstance(machine.view, DoneView)


def test_next_citizen_pressing_during_done_is_served_at_once(kiosk):
    machine, services, clock = kiosk
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    machine.handle(ButtonPressed("dat-dai"))
    machine.tick()
    assert [c for c, _ in services.issued] == ["ho-tich", "dat-dai"] and machine.visits_ended == 1


def test_unknown_button_is_ignored(kiosk):
    machine, services, clock = kiosk
    machine.handle(ButtonPressed("nope"))
    machine.tick()
    assert isinstance(machine.view, IdleView) and services.issued == []


def test_a_face_the_camera_cannot_use_does_not_delay_the_ticket(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(settled=False, hint="come_closer")))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert services.issued == [("ho-tich", None)]


def test_the_next_person_never_inherits_a_recognised_identity(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(track_id=1, citizen_id="c1")))
    machine.handle(FaceUpdate(Obs(track_id=None, faces=0)))        # c1 walks away
    machine.handle(FaceUpdate(Obs(track_id=2, settled=False)))     # somebody else steps in
    assert not machine.view.returning
    machine.handle(FaceUpdate(Obs(track_id=2, settled=True)))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert services.issued == [("ho-tich", None)]


def test_a_bystander_track_during_the_wait_does_not_settle_the_ticket(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(track_id=1, settled=False)))
    machine.handle(ButtonPressed("ho-tich"))
    machine.handle(FaceUpdate(Obs(track_id=7, citizen_id="c7")))   # another track: not the one who pressed
    machine.tick()
    assert services.issued == []
    clock.t += 2.0
    machine.tick()
    assert services.issued == [("ho-tich", None)]


def test_a_failed_enrolment_still_gives_the_ticket(kiosk):
    machine, services, clock = kiosk
    services.fail_enrol = True
    machine.handle(FaceUpdate(Obs(enrol_encodings=np.ones((3, 128), np.float32))))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    machine.handle(ButtonPressed(CONSENT))
    machine.tick()
    view = machine.view
    assert isinstance(view, DoneView) and not view.enrolled and services.issued == [("ho-tich", None)]
