"""Withdrawal and access at the kiosk (issue 10, item 3): the consent receipt's code opens the privacy screen,
the consent button deletes, the first service button prints what is kept, silence changes nothing."""
from fakes import Clock, Obs, Services, card
from kiosk.machine_events import CodeCheck, Phase, PrivacyAnswer, PrivacyAnswered, VisitEnded
from kiosk.states import KioskMachine
from kiosk.visit import CONSENT, ButtonPressed, FaceUpdate, Timing
from kiosk.views import CategoryChoice, IdleView, PrivacyView

CATEGORIES = (CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),
              CategoryChoice("dat-dai", "Đất đai", "Land", "2"))
TIMING = Timing(greeting=20, settle=2, consent=10, done=6, failsafe=4)
CODE, FORGED = "KIOSK-W1:good", "KIOSK-W1:forged"


def kiosk():
    clock, services = Clock(), Services()
    services.codes = {CODE: CodeCheck("c7"), FORGED: CodeCheck(None)}
    services.names["c7"] = "N***n V*n A"
    machine = KioskMachine(office="UBND", categories=CATEGORIES, services=services, clock=clock, timing=TIMING)
    return machine, services, clock


def show(machine, *texts, face=False):
    machine.handle(FaceUpdate(Obs(faces=int(face), track_id=1 if face else None, cards=texts)))


def answers(machine):
    return [e.answer for e in machine.drain() if isinstance(e, PrivacyAnswered)]


def test_the_code_opens_the_screen_and_the_consent_button_deletes():
    machine, services, clock = kiosk()
    show(machine, CODE)
    view = machine.view
    assert machine.phase == Phase.PRIVACY and isinstance(view, PrivacyView)
    assert view.identified and view.masked_name == "N***n V*n A" and view.answer is None
    assert (view.delete_button, view.print_button) == ("Y", "1")
    machine.handle(ButtonPressed(CONSENT))
    assert services.deleted == ["c7"] and services.kept_printed == [] and services.issued == []
    assert machine.view.answer == "deleted" and answers(machine) == [PrivacyAnswer.DELETED]
    machine.handle(ButtonPressed(CONSENT))           # pressing again deletes nothing more
    assert services.deleted == ["c7"]
    clock.t += TIMING.done
    machine.tick()
    assert isinstance(machine.view, IdleView) and machine.visit.privacy is None


def test_the_first_service_button_prints_what_is_kept_and_deletes_nothing():
    machine, services, clock = kiosk()
    show(machine, CODE, face=True)                   # held up with the face in view (greeting) works too
    machine.handle(ButtonPressed("ho-tich"))
    assert services.kept_printed == ["c7"] and services.deleted == [] and services.issued == []
    assert answers(machine) == [PrivacyAnswer.PRINTED]


def test_no_choice_times_out_to_idle_and_nothing_happens():
    machine, services, clock = kiosk()
    show(machine, CODE)
    clock.t += TIMING.greeting
    machine.tick()
    assert isinstance(machine.view, IdleView)
    assert any(isinstance(e, VisitEnded) for e in machine.drain())
    assert services.deleted == services.kept_printed == services.issued == []


def test_a_forged_code_is_refused_and_the_buttons_then_do_nothing_to_data():
    machine, services, clock = kiosk()
    show(machine, FORGED)
    view = machine.view
    assert isinstance(view, PrivacyView) and not view.identified and view.answer == "refused"
    assert answers(machine) == [PrivacyAnswer.REFUSED]
    machine.handle(ButtonPressed(CONSENT))
    assert services.deleted == [] and machine.phase == Phase.PRIVACY
    machine.handle(ButtonPressed("dat-dai"))         # a service button: an ordinary ticket
    machine.tick()
    assert services.deleted == services.kept_printed == [] and [c for c, _ in services.issued] == ["dat-dai"]


def test_a_card_on_record_shown_on_the_screen_names_the_citizen():
    machine, services, clock = kiosk()
    services.cards = {"CARD-C9": card("c9"), "CARD-NEW": card(None)}
    show(machine, FORGED)
    show(machine, "CARD-NEW")                        # a card with no record: nothing to delete
    assert not machine.view.identified
    show(machine, "CARD-C9")
    assert machine.view.identified and machine.view.answer is None
    machine.handle(ButtonPressed(CONSENT))
    assert services.deleted == ["c9"]


def test_a_code_mid_visit_is_ignored_and_another_service_button_leaves_the_screen():
    machine, services, clock = kiosk()
    machine.handle(ButtonPressed("ho-tich"))
    machine.tick()                                   # the ticket screen
    show(machine, CODE)
    assert machine.phase == Phase.DONE
    clock.t += TIMING.done
    machine.tick()
    show(machine, CODE)                              # a new visit: the same code opens the screen
    assert machine.phase == Phase.PRIVACY
    machine.handle(ButtonPressed("dat-dai"))         # not a privacy choice: they want a ticket after all
    machine.tick()
    assert services.deleted == services.kept_printed == [] and [c for c, _ in services.issued] == ["ho-tich",
                                                                                                   "dat-dai"]


def test_a_receipt_still_held_up_after_the_answer_is_not_judged_again_as_a_new_visit():
    machine, services, clock = kiosk()
    show(machine, CODE)
    machine.handle(ButtonPressed(CONSENT))
    services.codes[CODE] = CodeCheck(None)           # deleted: the code is used up
    for _ in range(3):                               # still in front of the camera past the done time
        clock.t += TIMING.done - 1
        machine.tick()
        show(machine, CODE)
    assert machine.view.answer == "deleted"          # not "refused"
    clock.t += TIMING.done                           # put away
    machine.tick()
    assert isinstance(machine.view, IdleView) and services.deleted == ["c7"]
