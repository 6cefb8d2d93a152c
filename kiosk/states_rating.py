"""The state machine's satisfaction rating and call-staff steps (issue 13): a mixin of
:class:`kiosk.states.KioskMachine`, kept apart like :mod:`kiosk.states_privacy`.

A rating button on the idle (or greeting) screen stores a rating linked to the visit of the day of whoever the
kiosk knows is there (a card read in this visit, else the face: the linked or proposed citizen), anonymous
otherwise; it ends the visit and thanks them briefly. The call-staff button says :class:`StaffCalled` (the loop
turns the desk's light or buzzer on) and shows "someone is coming".
"""
from __future__ import annotations

import logging

from kiosk.machine_events import MachineEvent, Phase, Rated, StaffCalled, StaffReset, VisitEnded
from kiosk.views import CategoryChoice, HelpView, RatingChoice, ThanksView
from kiosk.visit import Services, Timing, Visit

log = logging.getLogger("kiosk.states")

RATING_BUTTONS = {"rate-good": "good", "rate-ok": "ok", "rate-bad": "bad"}   # button event name -> rating
CALL_STAFF = "call-staff"
STAFF_RESET = "staff-reset"
THANKS_SECONDS = 3.0     # the thank-you screen: brief, the citizen is leaving
HELP_SECONDS = 10.0      # "someone is coming": long enough to read, the light stays on until staff reset it
_BUSY = (Phase.CONFIRM, Phase.CONSENT, Phase.ISSUING)   # a question or a ticket under way: it goes on


def rater(visit: Visit) -> str | None:
    """Whom a rating pressed now is from: the card read in this visit decides, else the face (linked or proposed)."""
    if visit.card is not None and visit.card.citizen_id is not None:
        return visit.card.citizen_id
    return visit.citizen or visit.proposed


class RatingSteps:
    """Rating, call-staff and staff-reset presses; the thank-you and help screens and their timers."""

    phase: Phase
    visit: Visit
    _services: Services
    _timing: Timing
    _categories: tuple[CategoryChoice, ...]
    _by_key: dict[str, CategoryChoice]
    _outbox: list[MachineEvent]
    _ratings: tuple[RatingChoice, ...]
    _thanks_linked: bool

    def _enter(self, phase: Phase, seconds: float | None) -> None:
        raise NotImplementedError

    def _special_press(self, name: str) -> bool:
        """Handle a rating / call-staff / staff-reset button; True if ``name`` was one of them.

        A service button on the thank-you or help screen goes back to idle first (the press then takes a ticket).
        """
        if name in RATING_BUTTONS:
            self._rate(RATING_BUTTONS[name])
        elif name == CALL_STAFF:
            self._call_staff()
        elif name == STAFF_RESET:
            self._outbox.append(StaffReset())
            if self.phase == Phase.HELP:
                self._enter(Phase.IDLE, None)     # staff are here: the help screen has done its job
        else:
            if self.phase in (Phase.RATED, Phase.HELP) and name in self._by_key:
                self._enter(Phase.IDLE, None)
            return False
        return True

    def _rate(self, rating: str) -> None:
        if not self._ratings or self.phase not in (Phase.IDLE, Phase.GREETING):
            log.info("rating %s pressed during phase %s: ignored", rating, self.phase)   # RATED: pressed twice
            return
        said = self._services.rate(rating, rater(self.visit))
        self._outbox.append(said)
        self._thanks_linked = said.linked
        self._end_visit()
        self._enter(Phase.RATED, THANKS_SECONDS)

    def _call_staff(self) -> None:
        log.info("a citizen called staff (phase %s)", self.phase)   # the journal says when, for the desk
        self._outbox.append(StaffCalled())
        if self.phase in _BUSY:
            return                      # the visit's question or ticket goes on; the light is on already
        self._end_visit()
        self._enter(Phase.HELP, HELP_SECONDS)

    def _end_visit(self) -> None:
        """Drop the visit whole (a rating or a call for help ends it); the loop resets face tracking."""
        if self.visit != Visit():
            self.visit = Visit()
            self._outbox.append(VisitEnded())

    def _rating_tick(self, expired: bool) -> bool:
        """The thank-you and help screens' timers; True when the phase is one of them."""
        if self.phase not in (Phase.RATED, Phase.HELP):
            return False
        if expired:
            self._enter(Phase.IDLE, None)
        return True

    def _rating_view(self) -> ThanksView | HelpView | None:
        if self.phase == Phase.RATED:
            return ThanksView(self._thanks_linked)
        if self.phase == Phase.HELP:
            return HelpView()
        return None


__all__ = ["CALL_STAFF", "RATING_BUTTONS", "STAFF_RESET", "Rated", "RatingSteps", "rater"]
