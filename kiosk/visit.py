"""What one visit is made of, and what the state machine asks of the rest of the kiosk.

The events that reach :class:`kiosk.states.KioskMachine`, the :class:`Visit` it keeps (one per citizen, dropped
with them), the :class:`VisitRequest` it hands to the services at the ticket and the :class:`Services` protocol
the real ``kiosk.services`` implements. Pure data: no device library, no store.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from kiosk.machine_events import CodeCheck, Outcome, PrivacyAnswer, Rated
from kiosk.rules import Refusal
from kiosk.views import CategoryChoice

CONSENT = "consent"     # name of the consent button's event
PRIORITY = "priority"   # the "Ưu tiên" button's event: pressed before or just after a service button
@dataclass(frozen=True)
class ButtonPressed:
    """A category button (its key), the consent button (``CONSENT``) or the priority one (``PRIORITY``)."""
    name: str


@dataclass(frozen=True)
class FaceUpdate:
    """The recognizer's verdict on one processed frame (a ``kiosk.faces.Observation``)."""
    observation: Any


@dataclass(frozen=True)
class CardRead:
    """A CCCD card read during a visit, as the services judged it (the number only in ``ticket``, this visit's)."""
    ok: bool                           # False: a card-shaped QR that broke a rule (plain ticket, nothing stored)
    key: str | None = None             # the card's lookup key (keyed hash of the number)
    citizen_id: str | None = None      # the record this card already has, None if new
    masked_name: str | None = None
    honorific: str | None = None       # "ông" | "bà", from the card's sex
    minor: bool = False                # under the age for face templates
    has_templates: bool = False        # the card's record already has face templates
    fields: Mapping[str, str] = field(default_factory=dict)   # what the office keeps of the card
    age: int | None = None             # from the card's birth date: at ``priority.age`` the ticket is a priority one
    ticket: Mapping[str, str] = field(default_factory=dict, repr=False)   # for the sealed ticket code (the number too)


@dataclass(frozen=True)
class Known:
    """How the screen may greet a known citizen: never the full name."""
    masked_name: str | None
    honorific: str | None              # "ông" | "bà" when the record has the card's sex


@dataclass(frozen=True)
class VisitRequest:
    """Everything of one visit that the services need to store it; built at the ticket, dropped with the visit."""
    category: str
    citizen_id: str | None = None      # linked by the face: confirmed by the citizen, or auto-linked
    card: CardRead | None = None       # a valid card read in this visit: it decides who the citizen is
    face_match: str | None = None      # whom the face matched one-to-many (a card naming another: no templates)
    encodings: Any = None              # k x 128 of this visit's face (good frames), or None
    consent: bool = False              # the citizen pressed the consent button when asked
    priority: bool = False             # a priority ticket (its own series): the button, or the card's age


@dataclass(frozen=True)
class Issued:
    """What the services report back once a ticket is stored; printing goes on in the background."""
    ticket: str
    visit_id: str
    printed: bool | None     # None: still printing (the answer comes from ``Services.take_print_answers``)
    citizen: str | None = None         # the record the visit is linked to
    enrolled: bool = False             # face templates were kept for the first time in this visit
    identified_by: str | None = None   # "card" | "face" | None


class Services(Protocol):
    """What the state machine needs from the rest of the kiosk (implemented in ``kiosk.services``)."""

    def issue(self, visit: VisitRequest) -> Issued: ...
    def take_print_answers(self) -> dict[str, bool]: ...   # since the last call; stored
    def read_card(self, text: str) -> CardRead | None: ...     # None: not a card, or cards not in use
    def who(self, citizen_id: str) -> Known | None: ...
    def notice(self) -> str | None: ...
    def check_code(self, text: str) -> CodeCheck | None: ...    # None: not a consent receipt's code
    def delete_citizen(self, citizen_id: str) -> None: ...     # now, and print the deletion receipt
    def print_kept(self, citizen_id: str) -> None: ...         # print what is kept about them
    def rate(self, rating: str, citizen_id: str | None) -> Rated: ...   # stored; linked to their visit of the day


class Gate(Protocol):
    """The office's rules at this moment (kiosk/rules.py over the store's counters and the day's closures)."""

    def refusal(self, category: str) -> Refusal | None: ...    # why the service gives no ticket now, or None


@dataclass(frozen=True)
class Timing:
    greeting: float = 20.0
    settle: float = 2.0
    consent: float = 10.0
    done: float = 6.0
    failsafe: float = 4.0
    unprinted: float = 60.0     # a ticket that did not print stays on screen (its number is the citizen's proof)


PRINT_WAIT = 30.0   # seconds the ticket screen may outstay its time while the printer has not answered


@dataclass
class Visit:
    """What belongs to one citizen's visit; a new one starts with every visit, and nothing outlives it."""
    category: CategoryChoice | None = None
    person: Any = None            # latest observation of a usable face, or None
    hint: str | None = None
    citizen: str | None = None    # linked by the face (confirmed by the citizen or auto-linked)
    proposed: str | None = None   # matched by the face, waiting for "is this you?"
    offered: str | None = None    # the last citizen whose masked name was offered in this visit
    declined: bool = False        # the citizen did not confirm the proposal
    card: CardRead | None = None  # a valid card read in this visit
    card_invalid: bool = False    # a card-shaped QR that could not be used
    texts: set[str] = field(default_factory=set)   # QR texts already judged in this visit
    asked: bool = False           # the consent question was put
    consented: bool = False
    priority: bool = False        # the priority button was pressed in this visit
    refusal: Refusal | None = None  # the service pressed gives no ticket now (the refusal screen says why)
    outcome: Outcome | None = None  # its ticket, once issued (the ticket screen shows it)
    privacy: str | None = None    # on the privacy screen: the citizen a genuine code (or a card) named
    answer: PrivacyAnswer | None = None   # what the privacy screen did

    def card_state(self) -> str | None:
        return "ok" if self.card is not None else "invalid" if self.card_invalid else None
