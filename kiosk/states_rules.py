"""The office's rules in the state machine (issue 13): priority tickets, and services that give no ticket now.

A mixin of :class:`kiosk.states.KioskMachine`, kept apart so the machine's file stays about one visit's flow.
Priority comes from the "Ưu tiên" button, pressed before the service button or in the short wait after it (the
issuing screen waits ``priority_wait`` seconds for it, then issues anyway: nobody is ever stuck), or from a card
whose holder is ``priority_age`` or older. A closed or full service (the :class:`~kiosk.visit.Gate`) shows the
refusal screen and gives no ticket.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from kiosk.machine_events import MachineEvent, Phase, TicketRefused
from kiosk.views import CategoryChoice, GreetingView, IdleView, IssuingView, RefusedView, View
from kiosk.visit import Gate, Timing, Visit

log = logging.getLogger("kiosk.states")


class RuleSteps:
    """Priority and refusal steps; they use the machine's visit, phase, timers and outbox."""

    phase: Phase
    visit: Visit
    _timing: Timing
    _categories: tuple[CategoryChoice, ...]
    _outbox: list[MachineEvent]
    _gate: Gate | None                 # None: always open, no caps
    _priority_age: int | None          # None: the card's age gives no priority
    _priority_wait: float              # seconds the issuing screen waits for the priority button
    _priority_button: str | None       # its label; None: the kiosk has no priority button

    def _enter(self, phase: Phase, seconds: float | None) -> None:
        raise NotImplementedError

    def _is_priority(self) -> bool:
        """This visit's ticket is a priority one: the button was pressed, or the card's holder is old enough."""
        card = self.visit.card
        by_age = (self._priority_age is not None and card is not None and card.age is not None
                  and card.age >= self._priority_age)
        return self.visit.priority or by_age

    def _press_priority(self) -> None:
        """Before a service button, or while the ticket is not yet issued; later (the ticket is out) it is ignored."""
        if self.phase in (Phase.IDLE, Phase.GREETING, Phase.ISSUING, Phase.CONFIRM, Phase.CONSENT):
            self.visit.priority = True
            if self.phase == Phase.IDLE:
                self._enter(Phase.GREETING, self._timing.greeting)   # somebody is here, about to choose
        else:
            log.info("priority button during phase %s: ignored", self.phase)

    def _priority_pending(self) -> bool:
        """Still worth waiting for the priority button (the kiosk has one, and this visit is not priority yet)."""
        return self._priority_button is not None and self._priority_wait > 0 and not self._is_priority()

    def _issuing_wait(self, settle: float | None) -> float | None:
        """How long the issuing screen may wait: for the face to settle and for the priority button."""
        waits = [w for w in (settle, self._priority_wait if self._priority_pending() else None) if w]
        return max(waits) if waits else None

    def _refused(self, category: CategoryChoice) -> bool:
        """A closed or full service: the refusal screen says why and no ticket is issued (True)."""
        refusal = self._gate.refusal(category.key) if self._gate is not None else None
        if refusal is None:
            return False
        self.visit.category, self.visit.refusal = category, refusal
        log.info("service %s: no ticket (%s)", category.key, refusal.reason)
        self._outbox.append(TicketRefused(category.key, refusal.reason, self._is_priority()))
        self._enter(Phase.REFUSED, self._timing.done)
        return True

    def _tiles(self, view: View) -> View:
        """The idle and greeting screens' tiles carry why a service gives no ticket now."""
        if self._gate is None or not isinstance(view, (IdleView, GreetingView)):
            return view
        tiles = []
        for choice in self._categories:
            refusal = self._gate.refusal(choice.key)
            tiles.append(choice if refusal is None else replace(choice, status_vi=refusal.tile_vi,
                                                                  status_en=refusal.tile_en))
        return replace(view, categories=tuple(tiles))

    def _rules_view(self, category: CategoryChoice) -> View | None:
        """The issuing and refusal screens (None in other phases)."""
        refusal = self.visit.refusal
        if self.phase == Phase.REFUSED and refusal is not None:
            return RefusedView(category, refusal.reason, refusal.sentence_vi, refusal.sentence_en)
        if self.phase == Phase.ISSUING:
            return IssuingView(category, self._priority_button if self._priority_pending() else None,
                               priority=self._is_priority())
        return None
