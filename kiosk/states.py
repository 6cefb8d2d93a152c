"""The kiosk's state machine: Idle, Greeting, Confirm, Consent, Issuing, Done, Failsafe, Privacy, Rated, Help.

Pure logic: no pygame, gpiozero, picamera2, escpos, tinydb or face_recognition here. The loop in
``kiosk.loop`` feeds it events, calls :meth:`KioskMachine.tick` and drains what it says
(:meth:`KioskMachine.drain`: a ticket issued, a question asked, a visit ended, ...); it reads time only
from the injected clock, so tests drive it with a fake clock and no threads. Whatever happens, a citizen
who pressed a category button gets a ticket: a face only ever adds a link to their record.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable, Sequence

from kiosk.consent import SAMPLE, ConsentWording
from kiosk.machine_events import (CodeJudged, FaceSettled, MachineEvent, Outcome, Phase, PrinterAnswered,
                                  PrivacyAnswer, Question, QuestionAsked, TicketIssued, VisitEnded, VisitFailed,
                                  disk_full)
from kiosk.states_privacy import PrivacySteps
from kiosk.states_rating import RatingSteps
from kiosk.states_rules import RuleSteps
from kiosk.views import (CategoryChoice, ConfirmView, ConsentView, DoneView, FailsafeView, GreetingView,
                         IdleView, PrivacyView, RatingChoice, View)
from kiosk.visit import (CONSENT, PRINT_WAIT, PRIORITY, ButtonPressed, FaceUpdate, Gate, Known, Services, Timing, Visit,
                         VisitRequest)

log = logging.getLogger("kiosk.states")


class KioskMachine(PrivacySteps, RatingSteps, RuleSteps):
    """One citizen at a time, from greeting to ticket.

    A face only proposes a citizen ("is this you?"; the consent button confirms); a card read by the camera
    decides who the citizen is. Everything of one visit lives in a :class:`Visit`, dropped when it ends
    (its ticket screen included). What happens goes out as :data:`MachineEvent` values, never as counters.

    >>> machine = KioskMachine(office="UBND", categories=choices, services=services, clock=clock)
    >>> machine.handle(ButtonPressed("ho-tich")); machine.tick()
    >>> machine.view        # DoneView(ticket="HT-001", ...)
    >>> machine.drain()     # [TicketIssued(Outcome(ticket="HT-001", ...))]
    """

    def __init__(self, *, office: str, categories: Sequence[CategoryChoice], services: Services,
                 clock: Callable[[], float], timing: Timing = Timing(), enrolment: bool = True,
                 consent_button: str = "Y", autolink_below: float | None = None, consent: ConsentWording = SAMPLE,
                 ratings: Sequence[RatingChoice] = (), gate: Gate | None = None, priority_age: int | None = None,
                 priority_wait: float = 0.0, priority_button: str | None = None) -> None:
        self._office = office
        self._categories = tuple(categories)
        self._by_key = {c.key: c for c in self._categories}
        self._services = services
        self._clock = clock
        self._timing = timing
        self._enrolment = enrolment
        self._consent_button = consent_button
        self._autolink_below = autolink_below
        self._consent = consent                # the consent screen's wording (the services store the same one)
        self._gate, self._priority_age = gate, priority_age       # the office's rules (kiosk/states_rules.py)
        self._priority_wait, self._priority_button = priority_wait, priority_button
        self.phase = Phase.IDLE
        self._deadline: float | None = None    # the current phase's timer
        self.visit = Visit()
        self._failure = ""                     # the failsafe screen's reason
        self._disk_full = False                # ... and whether it was a full disk (said to citizens too)
        self._outbox: list[MachineEvent] = []
        self._ratings = tuple(ratings)         # the rating buttons (kiosk.states_rating); none: ratings off
        self._thanks_linked = False            # the thank-you screen's wording

    def handle(self, event: ButtonPressed | FaceUpdate) -> None:
        """Take one event; an unexpected error shows the failsafe screen instead of stopping."""
        self._guarded(self._handle, event)

    def tick(self) -> None:
        """Advance timers and do the work of the current phase (issuing stores the ticket and queues its print)."""
        self._guarded(self._tick)

    def drain(self) -> list[MachineEvent]:
        """What the machine said since the last call, in order (the loop takes it every turn)."""
        said, self._outbox = self._outbox, []
        return said

    @property
    def view(self) -> View:
        return self._tiles(self._view())

    def _view(self) -> View:
        notice = self._safe_notice()
        visit = self.visit
        if self.phase == Phase.IDLE:
            return IdleView(self._office, self._categories, notice=notice, ratings=self._ratings)
        if self.phase == Phase.GREETING:
            return self._greeting(notice)
        if self.phase == Phase.CONFIRM:
            known = self._who(visit.proposed)
            return ConfirmView(self._chosen(), known.masked_name if known else None,
                               known.honorific if known else None, seconds_left=self._seconds_left(),
                               consent_button=self._consent_button)
        if self.phase == Phase.CONSENT:
            return ConsentView(self._chosen(), seconds_left=self._seconds_left(),
                               consent_button=self._consent_button, wording=self._consent)
        if self.phase in (Phase.ISSUING, Phase.REFUSED) and (ruled := self._rules_view(self._chosen())):
            return ruled
        if self.phase == Phase.PRIVACY:
            known = self._who(visit.privacy) if visit.answer is None else None
            return PrivacyView(known.masked_name if known else None, visit.privacy is not None,
                               None if visit.answer is None else visit.answer.value, self._seconds_left(),
                               self._consent_button, self._categories[0].button if self._categories else "1")
        if self.phase == Phase.DONE and (outcome := visit.outcome) is not None:
            return DoneView(outcome.ticket, self._chosen(), printed=outcome.printed, enrolled=outcome.enrolled,
                            returning=outcome.identified_by is not None, card=outcome.card)
        return self._rating_view() or FailsafeView(self._failure, self._disk_full)

    # -- the machine ------------------------------------------------------------------------------
    def _handle(self, event: ButtonPressed | FaceUpdate) -> None:
        if isinstance(event, FaceUpdate):
            self._see(event.observation)
        elif isinstance(event, ButtonPressed):
            self._press(event.name)
        else:
            raise TypeError(f"unknown event {event!r}")

    def _see(self, obs: Any) -> None:
        visit = self.visit
        visit.hint = obs.hint
        if self.phase in (Phase.IDLE, Phase.GREETING, Phase.CONFIRM, Phase.CONSENT, Phase.ISSUING, Phase.PRIVACY):
            self._read_cards(getattr(obs, "cards", ()))
        same = visit.person is not None and obs.track_id == visit.person.track_id
        if self._unprinted() and visit.person is not None and obs.track_id is not None and not same:
            self._finish_visit()            # the next citizen came: the unprinted number has been seen long enough
            self._see(obs)
            return
        if self.phase in (Phase.IDLE, Phase.GREETING):
            if obs.track_id is None or not same:
                # whoever was recognised has gone: the next face starts afresh (a card stays with the visit)
                visit.citizen = visit.proposed = None
                visit.declined = False
            if obs.track_id is None:
                visit.person = None
                if self.phase == Phase.IDLE and (visit.card is not None or visit.card_invalid):
                    self._enter(Phase.GREETING, self._timing.greeting)    # a card read: somebody is here
                return
            visit.person = obs
            self._consider_face(obs)
            self._enter(Phase.GREETING, self._timing.greeting)
            if obs.settled:
                self._outbox.append(FaceSettled(obs.citizen_id))
        elif self.phase in (Phase.ISSUING, Phase.CONFIRM, Phase.CONSENT) and visit.person is not None:
            # Waiting for the verdict on the person who pressed: only their own track counts.
            if same:
                visit.person = obs
            elif obs.track_id is None:
                visit.person = None     # they stepped away: the ticket goes out without their face

    def _read_cards(self, texts: Sequence[str]) -> None:
        visit = self.visit
        for text in texts:
            if text in visit.texts:
                if self.phase == Phase.PRIVACY and visit.answer in (PrivacyAnswer.DELETED, PrivacyAnswer.PRINTED):
                    self._enter(Phase.PRIVACY, self._timing.done)   # receipt still held up: no new visit yet
                continue
            visit.texts.add(text)
            code = self._services.check_code(text)
            if code is not None:
                self._open_privacy(code)
                self._outbox.append(CodeJudged(None))
                continue
            card = self._services.read_card(text)
            if self.phase == Phase.PRIVACY:
                self._privacy_card(card)
            elif card is None:
                pass                    # not a card (a payment code, a URL), or cards are not in use
            elif card.ok:
                visit.card, visit.card_invalid = card, False
                log.info("card read%s", "" if card.citizen_id is None else f": citizen {card.citizen_id}")
            elif visit.card is None:
                visit.card_invalid = True
                log.info("a card could not be used: plain ticket")
            self._outbox.append(CodeJudged(None if card is None else "ok" if card.ok else "invalid"))

    def _consider_face(self, obs: Any) -> None:
        """A face match proposes its citizen; only a very close one (``autolink_below``) links by itself."""
        visit = self.visit
        if obs.citizen_id is None or visit.citizen == obs.citizen_id or visit.declined:
            return
        distance = getattr(obs, "distance", None)
        if self._autolink_below is not None and distance is not None and distance < self._autolink_below:
            visit.citizen, visit.proposed = obs.citizen_id, None
        else:
            visit.proposed = visit.offered = obs.citizen_id

    def _press(self, name: str) -> None:
        if self.phase == Phase.PRIVACY and self._privacy_press(name) or self._special_press(name):
            return
        visit = self.visit
        if name == CONSENT:
            if self.phase == Phase.CONSENT:
                visit.consented = True
                self._enter(Phase.ISSUING, None)
            elif self.phase == Phase.CONFIRM or (self.phase == Phase.GREETING and visit.proposed
                                                 and visit.card is None):
                visit.citizen, visit.proposed = visit.proposed, None    # "yes, that is me"
                if self.phase == Phase.CONFIRM:
                    self._enter(Phase.ISSUING, None)
            return                  # consent outside a question means nothing
        if name == PRIORITY:
            self._press_priority()
            return
        category = self._by_key.get(name)
        if category is None:
            log.warning("button %r is not a configured category; ignored", name)
            return
        if self.phase in (Phase.IDLE, Phase.GREETING):
            if self._refused(category):
                return
            visit.category = category
            visit.consented = False
            person = visit.person
            wait = self._timing.settle if person is not None and not person.settled else None
            self._enter(Phase.ISSUING, self._issuing_wait(wait))
        elif self.phase in (Phase.CONSENT, Phase.CONFIRM):
            self._decline()                 # a service button during a question answers "no"
        elif self.phase in (Phase.DONE, Phase.REFUSED):
            self._finish_visit()            # next citizen already pressing (or another service): at once
            self._press(name)

    def _decline(self) -> None:
        if self.phase == Phase.CONFIRM:
            self.visit.proposed, self.visit.declined = None, True
        self._enter(Phase.ISSUING, None)

    def _tick(self) -> None:
        self._collect_prints()
        now = self._clock()
        expired = self._deadline is not None and now >= self._deadline
        if self.phase == Phase.GREETING and expired:
            self.visit = Visit()
            self._enter(Phase.IDLE, None)
        elif self.phase in (Phase.CONSENT, Phase.CONFIRM) and expired:
            log.info("no answer to the %s question", self.phase)
            self._decline()
        elif self.phase == Phase.ISSUING:
            settling = self._deadline is not None and not expired
            person = self.visit.person
            if settling and person is not None and not person.settled and person.hint is None:
                return                      # still recognising a usable face: give it a moment
            if settling and self._priority_pending():
                return                      # a moment for the priority button (it ends by itself)
            self._issue()
        elif self.phase == Phase.REFUSED and expired:
            self._finish_visit()
        elif self.phase == Phase.DONE and expired:
            waited = self._deadline is None or now >= self._deadline + PRINT_WAIT
            if self.visit.outcome is None or self.visit.outcome.printed is not None or waited:
                self._finish_visit()        # (the citizen sees whether their paper came out)
        elif self.phase == Phase.PRIVACY and expired:
            self._finish_visit()            # no choice: nothing happens
        elif self._rating_tick(expired):
            pass
        elif self.phase == Phase.FAILSAFE and expired:
            self._enter(Phase.IDLE, None)

    def _issue(self) -> None:
        visit = self.visit
        person = visit.person
        if person is not None:
            self._consider_face(person)
        if visit.card is None and visit.proposed is not None and not visit.declined:
            self._ask(Question.CONFIRM)                    # "is this you?"
            return
        if self._should_ask_consent(person):
            visit.asked = True
            self._ask(Question.CONSENT)
            return
        encodings = None
        if person is not None and person.settled:
            encodings = getattr(person, "encodings", None)
            if encodings is None:
                encodings = person.enrol_encodings
        category = self._chosen()
        if self._refused(category):                        # closed or filled up while the citizen answered
            return
        request = VisitRequest(category.key, citizen_id=visit.citizen, card=visit.card,
                               face_match=person.citizen_id if person is not None else None,
                               encodings=encodings, consent=visit.consented, priority=self._is_priority())
        issued = self._services.issue(request)
        visit.outcome = Outcome(issued.ticket, category.key, issued.citizen, issued.identified_by == "face",
                                issued.enrolled, issued.printed, identified_by=issued.identified_by,
                                proposed=visit.offered, card=visit.card_state(), visit_id=issued.visit_id,
                                priority=request.priority)
        self._outbox.append(TicketIssued(visit.outcome))
        self._enter(Phase.DONE, self._timing.unprinted if issued.printed is False else self._timing.done)

    def _collect_prints(self) -> None:
        """Show the printer's answer on the ticket screen once the printer thread has it."""
        answers = self._services.take_print_answers()   # (all stored, this visit's or an older one's)
        outcome = self.visit.outcome
        if outcome is not None and outcome.printed is None and outcome.visit_id in answers:
            self.visit.outcome = replace(outcome, printed=answers[outcome.visit_id])
            self._outbox.append(PrinterAnswered(self.visit.outcome))
            if self._unprinted():
                self._enter(Phase.DONE, self._timing.unprinted)     # the number stays: it is all they have

    def _should_ask_consent(self, person: Any) -> bool:
        """May the kiosk ask to keep this face? Once per visit, a settled usable face, enrolment on, and:

        with a card: an adult whose record has no face yet and whose face matched nobody else;
        without: an unknown face that is not in the unsure zone (that one is asked for the card instead);
        never after an unreadable card.
        """
        visit = self.visit
        if not self._enrolment or visit.asked or person is None or not person.settled:
            return False
        card = visit.card
        if card is not None:
            if card.minor or card.has_templates:
                return False
            if person.citizen_id is not None and person.citizen_id != card.citizen_id:
                return False
            return getattr(person, "encodings", None) is not None or person.enrol_encodings is not None
        if visit.card_invalid:
            return False            # a card that failed its checks: a plain ticket, nothing stored
        if visit.citizen is not None or person.citizen_id is not None or getattr(person, "unsure", False):
            return False
        return person.enrol_encodings is not None

    def _greeting(self, notice: str | None) -> GreetingView:
        visit = self.visit
        card, person = visit.card, visit.person
        base: dict[str, Any] = dict(notice=notice, card=visit.card_state(), consent_button=self._consent_button,
                                    ratings=self._ratings)
        if card is not None:
            return GreetingView(self._office, self._categories, masked_name=card.masked_name,
                                honorific=card.honorific, returning=card.citizen_id is not None, **base)
        if visit.citizen is not None:
            known = self._who(visit.citizen)
            return GreetingView(self._office, self._categories, masked_name=known.masked_name if known else None,
                                honorific=known.honorific if known else None, returning=True, **base)
        if visit.proposed is not None:
            known = self._who(visit.proposed)
            return GreetingView(self._office, self._categories, masked_name=known.masked_name if known else None,
                                honorific=known.honorific if known else None, proposal=True, **base)
        unsure = person is not None and person.settled and getattr(person, "unsure", False)
        return GreetingView(self._office, self._categories, hint=visit.hint, ask_card=unsure, **base)

    def _unprinted(self) -> bool:
        """On the ticket screen of a ticket the printer failed: it stays until the next citizen or ``unprinted``."""
        outcome = self.visit.outcome
        return self.phase == Phase.DONE and outcome is not None and outcome.printed is False

    def _chosen(self) -> CategoryChoice:
        """The service chosen in this visit (every phase after a button press has one)."""
        if self.visit.category is None:
            raise RuntimeError(f"phase {self.phase} without a chosen service")
        return self.visit.category

    def _who(self, citizen_id: str | None) -> Known | None:
        return None if citizen_id is None else self._services.who(citizen_id)

    def _seconds_left(self) -> int:
        return int(max(0.0, (self._deadline or 0.0) - self._clock()) + 0.999)

    def _finish_visit(self) -> None:
        self.visit = Visit()
        self._outbox.append(VisitEnded())
        self._enter(Phase.IDLE, None)

    def _ask(self, question: Question) -> None:
        self._enter(Phase.CONFIRM if question is Question.CONFIRM else Phase.CONSENT, self._timing.consent)
        self._outbox.append(QuestionAsked(question))

    def _enter(self, phase: Phase, seconds: float | None) -> None:
        if phase != self.phase:
            log.debug("%s -> %s", self.phase, phase)
        self.phase = phase
        self._deadline = None if seconds is None else self._clock() + seconds

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        try:
            step(*args)
        except Exception as exc:  # the kiosk must never stop: show failsafe, then idle
            log.exception("unexpected error in phase %s", self.phase)
            self._failure, self._disk_full = f"{type(exc).__name__}: {exc}", disk_full(exc)
            self.visit = Visit()     # the failed visit is dropped whole: nothing of it reaches the next one
            self._enter(Phase.FAILSAFE, self._timing.failsafe)
            self._outbox.append(VisitFailed(self._failure, self._disk_full))

    def _safe_notice(self) -> str | None:
        try:
            return self._services.notice()
        except Exception:  # a broken notice must not break the screen
            log.exception("notice failed")
            return None
