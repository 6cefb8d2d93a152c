"""The kiosk's state machine: Idle, Greeting, Consent, Issuing, Done, Failsafe.

Pure logic: no pygame, gpiozero, picamera2, escpos, tinydb or face_recognition here. The loop in
``kiosk.app`` feeds it events and calls :meth:`KioskMachine.tick`; it reads time only from the
injected clock, so tests drive it with a fake clock and no threads. Whatever happens, a citizen who
pressed a category button gets a ticket: a face only ever adds a link to their record.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol, Sequence

from kiosk.views import (CategoryChoice, ConsentView, DoneView, FailsafeView, GreetingView, IdleView,
                         IssuingView, View)

CONSENT = "consent"     # name of the consent button's event

log = logging.getLogger("kiosk.states")


@dataclass(frozen=True)
class ButtonPressed:
    """A category button (its key) or the consent button (``CONSENT``) was pressed."""
    name: str


@dataclass(frozen=True)
class FaceUpdate:
    """The recognizer's verdict on one processed frame (a ``kiosk.faces.Observation``)."""
    observation: Any


@dataclass(frozen=True)
class Issued:
    """What the services report back once a ticket is stored; printing goes on in the background."""
    ticket: str
    visit_id: str
    printed: bool | None     # None: still printing (the outcome comes from ``Services.printed``)


@dataclass(frozen=True)
class Outcome:
    """One finished visit, as ``kiosk replay`` reports it."""
    ticket: str
    category: str
    citizen: str | None
    recognized: bool
    enrolled: bool
    printed: bool | None


class Services(Protocol):
    """What the state machine needs from the rest of the kiosk (implemented in ``kiosk.app``)."""

    def issue(self, category: str, citizen_id: str | None) -> Issued: ...
    def printed(self) -> dict[str, bool]: ...
    def enrol(self, encodings: Any) -> str: ...
    def greeting_name(self, citizen_id: str) -> str | None: ...
    def notice(self) -> str | None: ...


@dataclass(frozen=True)
class Timing:
    greeting: float = 20.0
    settle: float = 2.0
    consent: float = 10.0
    done: float = 6.0
    failsafe: float = 4.0


PRINT_WAIT = 30.0   # seconds the ticket screen may outstay its time while the printer has not answered

IDLE, GREETING, CONSENT_PHASE, ISSUING, DONE, FAILSAFE = (
    "idle", "greeting", "consent", "issuing", "done", "failsafe")


class KioskMachine:
    """One citizen at a time, from greeting to ticket.

    >>> machine = KioskMachine(office="UBND", categories=choices, services=services, clock=clock)
    >>> machine.handle(ButtonPressed("ho-tich")); machine.tick(); machine.tick()
    >>> machine.view        # DoneView(ticket="HT-001", ...)
    """

    def __init__(self, *, office: str, categories: Sequence[CategoryChoice], services: Services,
                 clock: Callable[[], float], timing: Timing = Timing(), enrolment: bool = True,
                 consent_button: str = "Y") -> None:
        self._office = office
        self._categories = tuple(categories)
        self._by_key = {c.key: c for c in self._categories}
        self._services = services
        self._clock = clock
        self._timing = timing
        self._enrolment = enrolment
        self._consent_button = consent_button
        self.phase = IDLE
        self._deadline: float | None = None
        self._reset_visit()
        self._done: DoneView | None = None
        self._visit_id: str | None = None  # the visit on the ticket screen, to match its print outcome
        self._failure = ""
        self.last_outcome: Outcome | None = None
        self.outcomes = 0                 # tickets issued since start (replay waits on it)
        self.visits_ended = 0             # visits closed (the loop then resets face tracking)

    # -- inputs ---------------------------------------------------------------------------------
    def handle(self, event: ButtonPressed | FaceUpdate) -> None:
        """Take one event; an unexpected error shows the failsafe screen instead of stopping."""
        self._guarded(self._handle, event)

    def tick(self) -> None:
        """Advance timers and do the work of the current phase (issuing prints here)."""
        self._guarded(self._tick)

    @property
    def view(self) -> View:
        notice = self._safe_notice()
        if self.phase == IDLE:
            return IdleView(self._office, self._categories, notice=notice)
        if self.phase == GREETING:
            returning = self._citizen is not None
            name = self._services.greeting_name(self._citizen) if returning else None
            return GreetingView(self._office, self._categories, masked_name=name, returning=returning,
                                hint=None if returning else self._hint, notice=notice)
        if self.phase == CONSENT_PHASE:
            left = max(0.0, (self._deadline or 0.0) - self._clock())
            return ConsentView(self._category, seconds_left=int(left + 0.999), consent_button=self._consent_button)
        if self.phase == ISSUING:
            return IssuingView(self._category)
        if self.phase == DONE:
            return self._done
        return FailsafeView(self._failure)

    @property
    def person(self) -> Any:
        """The latest observation of a usable face in front of the kiosk, or None."""
        return self._person

    # -- the machine ------------------------------------------------------------------------------
    def _handle(self, event: ButtonPressed | FaceUpdate) -> None:
        if isinstance(event, FaceUpdate):
            self._see(event.observation)
        elif isinstance(event, ButtonPressed):
            self._press(event.name)
        else:
            raise TypeError(f"unknown event {event!r}")

    def _see(self, obs: Any) -> None:
        self._hint = obs.hint
        same = self._person is not None and obs.track_id == self._person.track_id
        if self.phase in (IDLE, GREETING):
            if obs.track_id is None or not same:
                self._citizen = None    # whoever was recognised has gone: the next face starts afresh
            if obs.track_id is None:
                self._person = None
                return
            self._person = obs
            if obs.citizen_id is not None:
                self._citizen = obs.citizen_id
            self._enter(GREETING, self._timing.greeting)
        elif self.phase == ISSUING and self._person is not None:
            # Waiting for the verdict on the person who pressed: only their own track counts.
            if same:
                self._person = obs
            elif obs.track_id is None:
                self._person = None     # they stepped away: the ticket goes out without a citizen

    def _press(self, name: str) -> None:
        if name == CONSENT:
            if self.phase == CONSENT_PHASE:
                self._consented = True
                self._enter(ISSUING, None)
            return                  # consent outside the question means nothing
        category = self._by_key.get(name)
        if category is None:
            log.warning("button %r is not a configured category; ignored", name)
            return
        if self.phase in (IDLE, GREETING):
            self._category = category
            self._consented = False
            wait = self._timing.settle if self._person is not None and not self._person.settled else None
            self._enter(ISSUING, wait)
        elif self.phase == CONSENT_PHASE:
            self._enter(ISSUING, None)      # a service button during the question answers "no"
        elif self.phase == DONE:
            self._finish_visit()            # next citizen already pressing: serve them at once
            self._press(name)

    def _tick(self) -> None:
        self._collect_prints()
        now = self._clock()
        expired = self._deadline is not None and now >= self._deadline
        if self.phase == GREETING and expired:
            self._reset_visit()
            self._enter(IDLE, None)
        elif self.phase == CONSENT_PHASE and expired:
            log.info("no answer to the consent question: not enrolled")
            self._enter(ISSUING, None)
        elif self.phase == ISSUING:
            settling = self._deadline is not None and not expired
            person = self._person
            if settling and person is not None and not person.settled and person.hint is None:
                return                      # still recognising a usable face: give it a moment
            self._issue()
        elif self.phase == DONE and expired:
            if self._done.printed is not None or now >= self._deadline + PRINT_WAIT:
                self._finish_visit()        # (the citizen sees whether their paper came out)
        elif self.phase == FAILSAFE and expired:
            self._enter(IDLE, None)

    def _issue(self) -> None:
        person = self._person
        if person is not None and person.citizen_id is not None:
            self._citizen = person.citizen_id
        recognized = self._citizen is not None
        if self._should_ask_consent(person):
            self._asked = True
            self._candidate = person.enrol_encodings
            self._enter(CONSENT_PHASE, self._timing.consent)
            return
        enrolled = False
        if self._consented and self._candidate is not None:
            try:
                self._citizen = self._services.enrol(self._candidate)
                enrolled = True
            except Exception:  # the face is optional: a failed enrolment still gets the ticket
                log.exception("enrolment failed; issuing the ticket without a citizen")
        category = self._category
        issued = self._services.issue(category.key, self._citizen)
        self.last_outcome = Outcome(issued.ticket, category.key, self._citizen, recognized, enrolled,
                                    issued.printed)
        self._done = DoneView(issued.ticket, category, printed=issued.printed, enrolled=enrolled,
                              returning=recognized)
        self._visit_id = issued.visit_id
        self.outcomes += 1
        self._enter(DONE, self._timing.done)

    def _collect_prints(self) -> None:
        """Show the outcome of the ticket on screen once the printer thread has it."""
        printed = self._services.printed().get(self._visit_id) if self._visit_id else None
        if printed is not None and self._done is not None and self._done.printed is None:
            self._done = replace(self._done, printed=printed)
            self.last_outcome = replace(self.last_outcome, printed=printed)

    def _should_ask_consent(self, person: Any) -> bool:
        """Only an unknown face that passed the quality gate, once per visit, and only if enrolment is on."""
        if not self._enrolment or self._asked or self._citizen is not None or person is None:
            return False
        return person.settled and person.citizen_id is None and person.enrol_encodings is not None

    def _finish_visit(self) -> None:
        self._reset_visit()
        self.visits_ended += 1
        self._enter(IDLE, None)

    def _reset_visit(self) -> None:
        self._category: CategoryChoice | None = None
        self._citizen: str | None = None  # identity recognised for the current visit
        self._asked = False               # the consent question was put for this visit
        self._consented = False
        self._candidate: Any = None       # encodings of the face the consent question was about
        self._person: Any = None          # latest observation of a usable face, or None
        self._hint: str | None = None

    def _enter(self, phase: str, seconds: float | None) -> None:
        if phase != self.phase:
            log.debug("%s -> %s", self.phase, phase)
        self.phase = phase
        self._deadline = None if seconds is None else self._clock() + seconds

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        try:
            step(*args)
        except Exception as exc:  # the kiosk must never stop: show failsafe, then idle
            log.exception("unexpected error in phase %s", self.phase)
            self._failure = f"{type(exc).__name__}: {exc}"
            self._reset_visit()
            self._enter(FAILSAFE, self._timing.failsafe)

    def _safe_notice(self) -> str | None:
        try:
            return self._services.notice()
        except Exception:  # a broken notice must not break the screen
            log.exception("notice failed")
            return None
