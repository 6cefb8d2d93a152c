"""The privacy screen's steps of the state machine (issue 10): a consent receipt's code or a card opens it,
the consent button deletes the citizen's data, the first service button prints what is kept.

A mixin of :class:`kiosk.states.KioskMachine`, kept apart so the machine's file stays about one thing; it
uses only the machine's visit, services, timers and outbox, declared below.
"""
from __future__ import annotations

import logging

from kiosk.machine_events import (CodeCheck, MachineEvent, Phase, PrivacyAnswer, PrivacyAnswered,
                                  PrivacyOffered)
from kiosk.views import CategoryChoice
from kiosk.visit import CONSENT, CardRead, Services, Timing, Visit

log = logging.getLogger("kiosk.states")


class PrivacySteps:
    """Opening the privacy screen and answering its buttons; the screen is a visit of its own."""

    phase: Phase
    visit: Visit
    _services: Services
    _timing: Timing
    _categories: tuple[CategoryChoice, ...]
    _outbox: list[MachineEvent]

    def _enter(self, phase: Phase, seconds: float | None) -> None:
        raise NotImplementedError

    def _finish_visit(self) -> None:
        raise NotImplementedError

    def _open_privacy(self, code: CodeCheck) -> None:
        """A receipt's code opens the privacy screen when nobody is mid-visit; a forged or used one changes nothing."""
        if self.phase not in (Phase.IDLE, Phase.GREETING, Phase.PRIVACY) or self.visit.answer not in (
                None, PrivacyAnswer.REFUSED):
            log.info("a withdrawal code shown during phase %s: ignored", self.phase)
            return
        texts, self.visit = self.visit.texts, Visit()   # the privacy screen is a visit of its own
        self.visit.texts, self.visit.privacy = texts, code.citizen
        if code.citizen is None:
            self.visit.answer = PrivacyAnswer.REFUSED
            self._outbox.append(PrivacyAnswered(PrivacyAnswer.REFUSED))
        else:
            self._outbox.append(PrivacyOffered())
        self._enter(Phase.PRIVACY, self._timing.greeting)

    def _privacy_card(self, card: CardRead | None) -> None:
        """On the privacy screen a valid card on record names its citizen, like a genuine code."""
        visit = self.visit
        if card is not None and card.ok and card.citizen_id is not None and visit.answer in (
                None, PrivacyAnswer.REFUSED):
            visit.privacy, visit.answer = card.citizen_id, None
            self._outbox.append(PrivacyOffered())
            self._enter(Phase.PRIVACY, self._timing.greeting)

    def _privacy_press(self, name: str) -> bool:
        """The consent button deletes, the first service button prints what is kept; True if the press is used."""
        visit = self.visit
        if visit.privacy is not None and visit.answer is None:
            if name == CONSENT:
                self._services.delete_citizen(visit.privacy)
                visit.answer = PrivacyAnswer.DELETED
            elif self._categories and name == self._categories[0].key:
                self._services.print_kept(visit.privacy)
                visit.answer = PrivacyAnswer.PRINTED
            else:
                self._finish_visit()        # another service: they came for a ticket after all
                return False
            self._outbox.append(PrivacyAnswered(visit.answer))
            self._enter(Phase.PRIVACY, self._timing.done)
            return True
        if name == CONSENT:
            return True
        self._finish_visit()                # a service button: a ticket, as from the idle screen
        return False
