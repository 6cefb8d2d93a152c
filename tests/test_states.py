"""The state machine, driven with a fake clock and scripted events: no pygame, no threads, no devices."""
import numpy as np
import pytest

from fakes import Clock, Obs, Services
from kiosk.machine_events import PrinterAnswered, TicketIssued, VisitEnded
from kiosk.states import KioskMachine
from kiosk.visit import CONSENT, ButtonPressed, FaceUpdate, Timing
from kiosk.views import (CategoryChoice, ConfirmView, ConsentView, DoneView, FailsafeView, GreetingView, IdleView,
                         IssuingView)

CATEGORIES = (CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),
              CategoryChoice("dat-dai", "Đất đai", "Land", "2"))
TIMING = Timing(greeting=20, settle=2, consent=10, done=6, failsafe=4)


def last_outcome(machine):
    """The latest ticket the machine said it issued (as the loop and replay see it: from its events)."""
    outcomes = [e.outcome for e in machine.drain() if isinstance(e, (TicketIssued, PrinterAnswered))]
    return outcomes[-1] if outcomes else None


def visits_ended(machine):
    return sum(isinstance(e, VisitEnded) for e in machine.drain())


@pytest.fixture
def kiosk():
    clock, services = Clock(), Services()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock, timing=TIMING)
    return machine, services, clock


def test_button_without_a_face_gives_a_plain_ticket(kiosk):
    machine, services, clock = kiosk
    assert isinstance(machine.view, IdleView)
    machine.handle(ButtonPressed("dat-dai"))
    assert isinstance(machine.view, IssuingView)      # shown until the next tick stores the ticket
    machine.tick()
    assert services.issued == [("dat-dai", None)]
    view = machine.view
    assert isinstance(view, DoneView) and view.ticket == "HT-001" and view.printed
    clock.t += 5.9
    machine.tick()
    assert isinstance(machine.view, DoneView)
    clock.t += 0.2
    machine.tick()
    assert isinstance(machine.view, IdleView) and visits_ended(machine) == 1


def test_known_face_is_proposed_and_the_consent_button_links_it(kiosk):
    machine, services, clock = kiosk
    services.names["c7"] = "N***n V*n A"
    machine.handle(FaceUpdate(Obs(citizen_id="c7")))
    view = machine.view
    assert isinstance(view, GreetingView) and view.proposal and not view.returning
    assert view.masked_name == "N***n V*n A"
    machine.handle(ButtonPressed(CONSENT))                # "yes, that is me"
    view = machine.view
    assert view.returning and not view.proposal
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert services.issued == [("ho-tich", "c7")]
    outcome = last_outcome(machine)
    assert outcome.recognized and not outcome.enrolled and outcome.identified_by == "face"
    assert outcome.proposed == "c7" and outcome.card is None


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
    assert machine.view.enrolled and last_outcome(machine).enrolled


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
    assert isinstance(machine.view, ConfirmView)           # "is this you?" after the service was chosen
    machine.handle(ButtonPressed(CONSENT))
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
    assert [c for c, _ in services.issued] == ["ho-tich", "dat-dai"] and visits_ended(machine) == 1


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


# -- cards, proposals, the unsure zone -------------------------------------------------------------------------
from fakes import card  # noqa: E402
from dataclasses import replace  # noqa: E402

from kiosk.visit import CardRead, VisitRequest  # noqa: E402

ENC = np.ones((3, 128), np.float32)


def test_a_card_links_the_visit_and_the_screen_says_card_read(kiosk):
    machine, services, clock = kiosk
    services.cards["CARD-A"] = card("c5")
    machine.handle(FaceUpdate(Obs(faces=0, track_id=None, cards=("CARD-A", "https://pay.example/qr"))))
    view = machine.view
    assert isinstance(view, GreetingView) and view.card == "ok" and view.honorific == "ông"
    assert view.masked_name == "N****n V*n A*" and view.returning
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert services.issued == [("ho-tich", "c5")]
    assert services.requests[0].card.citizen_id == "c5"
    outcome = last_outcome(machine)
    assert outcome.identified_by == "card" and outcome.card == "ok" and machine.view.card == "ok"


def test_an_invalid_card_gives_a_plain_ticket_and_says_so(kiosk):
    machine, services, clock = kiosk
    services.cards["BAD"] = CardRead(ok=False)
    machine.handle(FaceUpdate(Obs(faces=1, track_id=1, enrol_encodings=ENC, cards=("BAD",))))
    assert machine.view.card == "invalid"
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()                                   # no consent question either: nothing is stored
    assert services.issued == [("ho-tich", None)] and services.requests[0].card is None
    outcome = last_outcome(machine)
    assert outcome.card == "invalid" and outcome.identified_by is None


def test_a_card_does_not_outlive_its_visit(kiosk):
    machine, services, clock = kiosk
    services.cards["CARD-A"] = card("c5")
    machine.handle(FaceUpdate(Obs(faces=0, track_id=None, cards=("CARD-A",))))
    for _ in range(20):                              # the holder walks off: empty frames keep coming
        clock.t += 1
        machine.handle(FaceUpdate(Obs(faces=0, track_id=None, cards=("CARD-A",) if clock.t < 5 else ())))
        machine.tick()
    assert isinstance(machine.view, IdleView)        # greeting timed out: back to idle
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert services.issued == [("ho-tich", None)]


def test_unconfirmed_proposal_leaves_the_visit_unlinked(kiosk):
    machine, services, clock = kiosk
    services.names["c7"] = "N***n V*n A"
    machine.handle(FaceUpdate(Obs(citizen_id="c7", distance=0.3)))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    view = machine.view
    assert isinstance(view, ConfirmView) and view.masked_name == "N***n V*n A" and view.seconds_left == 10
    clock.t += 10
    machine.tick()                                   # no answer: "no"
    machine.tick()
    assert services.issued == [("ho-tich", None)]
    outcome = last_outcome(machine)
    assert outcome.proposed == "c7" and outcome.citizen is None
    assert services.enrolled == []                   # a declined proposal is not offered enrolment either


def test_service_button_answers_no_to_is_this_you(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(citizen_id="c7")))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    machine.handle(ButtonPressed("dat-dai"))
    machine.tick()
    assert services.issued == [("ho-tich", None)]


def test_autolink_only_below_its_distance():
    clock, services = Clock(), Services()
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock, timing=TIMING,
                           autolink_below=0.35)
    machine.handle(FaceUpdate(Obs(citizen_id="c1", distance=0.30)))
    assert machine.view.returning and not machine.view.proposal
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    clock.t += 6
    machine.tick()                                   # the ticket screen ends
    machine.handle(FaceUpdate(Obs(track_id=2, citizen_id="c2", distance=0.40)))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert isinstance(machine.view, ConfirmView)     # 0.40 is above autolink_below: asked
    assert services.issued == [("ho-tich", "c1")]


def test_unsure_face_is_asked_for_the_card_never_offered_enrolment(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(enrol_encodings=ENC, encodings=ENC, distance=0.57, unsure=True)))
    view = machine.view
    assert isinstance(view, GreetingView) and view.ask_card and not view.proposal
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert isinstance(machine.view, DoneView) and services.enrolled == []


def test_unsure_face_with_a_card_may_keep_its_templates(kiosk):
    machine, services, clock = kiosk
    services.cards["CARD-NEW"] = card(None)
    machine.handle(FaceUpdate(Obs(enrol_encodings=ENC, encodings=ENC, unsure=True, cards=("CARD-NEW",))))
    assert not machine.view.ask_card and machine.view.card == "ok"
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert isinstance(machine.view, ConsentView)
    machine.handle(ButtonPressed(CONSENT))
    machine.tick()
    [request] = services.requests
    assert request.consent and request.encodings is ENC and request.card.citizen_id is None


@pytest.mark.parametrize("card_read, face", [
    (card(None, minor=True), Obs(enrol_encodings=ENC, encodings=ENC)),             # a minor: never asked
    (card("c5", has_templates=True), Obs(citizen_id="c5", encodings=ENC)),         # refresh needs no question
    (card("c5"), Obs(citizen_id="c9", encodings=ENC)),                             # the face is somebody else's
])
def test_card_visits_that_are_never_asked_for_consent(kiosk, card_read, face):
    machine, services, clock = kiosk
    services.cards["C"] = card_read
    machine.handle(FaceUpdate(replace(face, cards=("C",))))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert isinstance(machine.view, DoneView)        # no consent question, no "is this you?"
    [request] = services.requests
    assert not request.consent and request.card is card_read and request.face_match == face.citizen_id
    assert request.encodings is ENC                  # the services decide: refresh, or nothing


def test_a_failed_visit_leaves_nothing_for_the_next_one(kiosk):
    """Item 11: enrolment, consent and card travel with their visit; a failure drops them all."""
    machine, services, clock = kiosk
    services.cards["CARD-A"] = card("c5")
    machine.handle(FaceUpdate(Obs(enrol_encodings=ENC, cards=("CARD-A",))))
    services.fail_issue = True
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    machine.handle(ButtonPressed(CONSENT))
    machine.tick()
    assert isinstance(machine.view, FailsafeView)
    services.fail_issue = False
    clock.t += 4
    machine.tick()
    machine.handle(ButtonPressed("dat-dai"))         # the next citizen, nobody in view
    machine.tick()
    [request] = services.requests
    assert request == VisitRequest("dat-dai")        # no card, no face, no consent of the one before


# -- what the machine says: events, not counters or phase names ------------------------------------------------
from kiosk.machine_events import (CodeJudged, FaceSettled, Phase, Question, QuestionAsked,  # noqa: E402
                                  VisitFailed)


def test_a_visit_is_told_as_events_the_loop_and_replay_react_to(kiosk):
    machine, services, clock = kiosk
    machine.handle(FaceUpdate(Obs(enrol_encodings=ENC, cards=("https://pay.example/qr",))))
    assert machine.drain() == [CodeJudged(None), FaceSettled(None)] and machine.drain() == []
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert machine.drain() == [QuestionAsked(Question.CONSENT)] and machine.phase is Phase.CONSENT
    machine.handle(ButtonPressed(CONSENT))
    machine.tick()
    [issued] = machine.drain()
    assert isinstance(issued, TicketIssued) and issued.outcome.ticket == "HT-001" and issued.outcome.enrolled
    clock.t += 6
    machine.tick()
    assert machine.drain() == [VisitEnded()] and machine.phase == "idle"      # (a string enum)


def test_the_printers_late_answer_is_said_and_shown_failure_too(kiosk):
    machine, services, clock = kiosk
    services.printer_ok = None                       # still printing when the ticket is stored
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    [issued] = machine.drain()
    assert issued.outcome.printed is None and machine.view.printed is None
    services.take_print_answers = lambda: {"visit0": True, issued.outcome.visit_id: False}   # (another visit's answer too)
    machine.tick()
    [answered] = machine.drain()
    assert isinstance(answered, PrinterAnswered) and answered.outcome.printed is False
    assert answered.outcome.ticket == "HT-001" and machine.view.printed is False


def test_a_failure_is_said_and_its_visit_dropped(kiosk):
    machine, services, clock = kiosk
    services.fail_issue = True
    machine.handle(FaceUpdate(Obs(citizen_id="c7")))
    machine.handle(ButtonPressed(CONSENT))
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()
    assert machine.drain()[-1] == VisitFailed("OSError: disk full")
    assert machine.visit.citizen is None and machine.visit.outcome is None
