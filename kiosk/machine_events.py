"""What the state machine says, as values: its phases, the questions it asks, the events the loop drains.

The loop (and through it ``kiosk replay``) reacts to these instead of reading the machine's insides: a
ticket issued, a question put to the citizen, a visit ended or failed. Pure: no I/O library here.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Outcome:
    """One visit's ticket: what its ticket screen shows and ``kiosk replay`` reports."""
    ticket: str
    category: str
    citizen: str | None
    recognized: bool                   # linked by the face
    enrolled: bool
    printed: bool | None               # None: the printer has not answered yet
    identified_by: str | None = None   # "card" | "face" | None
    proposed: str | None = None        # the citizen whose masked name was offered ("is this you?")
    card: str | None = None            # "ok" | "invalid" | None
    visit_id: str = ""                 # the stored visit, to match the printer's answer
    priority: bool = False             # a priority ticket (HT-U01)


class Phase(StrEnum):
    """Where the machine is; a string enum, so a journal line or a status text shows the plain name."""
    IDLE = "idle"
    GREETING = "greeting"
    CONFIRM = "confirm"                # "is this you?" about the citizen the face matched
    CONSENT = "consent"                # may the kiosk keep this face?
    ISSUING = "issuing"
    DONE = "done"                      # the ticket screen
    FAILSAFE = "failsafe"
    PRIVACY = "privacy"                # a consent receipt's code was shown: delete my data / print what is kept
    REFUSED = "refused"                # the service pressed is closed or full: the screen says why, no ticket
    RATED = "rated"                    # a satisfaction rating was pressed: "thank you" (kiosk.states_rating)
    HELP = "help"                      # the call-staff button was pressed: "someone is coming"


@dataclass(frozen=True)
class CodeCheck:
    """A consent receipt's withdrawal code as the services judged it: ``citizen`` None when forged or used up."""
    citizen: str | None


class PrivacyAnswer(StrEnum):
    """What became of the privacy screen (the screen's wording, ``kiosk replay``'s ``privacy`` field)."""
    DELETED = "deleted"
    PRINTED = "printed"
    REFUSED = "refused"                # a code that is not (or no longer) genuine: nothing changed


class Question(StrEnum):
    """A yes/no question put to the citizen; the consent button answers yes, silence or a service button no."""
    CONFIRM = "confirm"
    CONSENT = "consent"


# -- what the machine says: the loop drains these every turn, reacts, and hands them on (to replay) ----------
@dataclass(frozen=True)
class FaceSettled:
    """The recognizer's verdict on the person in view is in (said for every such frame before a button)."""
    citizen_id: str | None


@dataclass(frozen=True)
class CodeJudged:
    """A QR text new to this visit was judged: ``card`` "ok", "invalid", or None (not a card)."""
    card: str | None


@dataclass(frozen=True)
class QuestionAsked:
    question: Question


@dataclass(frozen=True)
class TicketIssued:
    """The visit's ticket is stored and queued for printing (``outcome.printed`` None until the printer answers)."""
    outcome: Outcome


@dataclass(frozen=True)
class TicketRefused:
    """A service button gave no ticket: ``reason`` "closed" | "full" (kiosk/rules.py); the screen says why."""
    category: str
    reason: str
    priority: bool = False


@dataclass(frozen=True)
class PrinterAnswered:
    """The printer's answer for the ticket on screen came back: ``outcome.printed`` is set."""
    outcome: Outcome


@dataclass(frozen=True)
class PrivacyOffered:
    """The privacy screen offers its choices: a genuine code (or a card on record) named the citizen."""


@dataclass(frozen=True)
class PrivacyAnswered:
    """The privacy screen did what the citizen chose (or refused a code); nothing else of the visit changes."""
    answer: PrivacyAnswer


@dataclass(frozen=True)
class VisitEnded:
    """The ticket screen closed: whoever comes next is somebody new (the loop resets face tracking)."""


@dataclass(frozen=True)
class VisitFailed:
    """An unexpected error dropped the visit; the failsafe screen is up (the loop looks at the disk at once)."""
    reason: str
    disk_full: bool = False          # the error was a full disk (ENOSPC / EDQUOT): staff and citizens are told


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or an error it came from is a full disk or quota (the store wraps OSErrors in its own)."""
    seen: BaseException | None = exc
    for _ in range(10):               # a chain of causes, never a cycle
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(frozen=True)
class Rated:
    """A satisfaction rating pressed and stored: linked to the citizen's visit of the day, or anonymous."""
    rating: str                        # "good" | "ok" | "bad": the button pressed
    linked: bool                       # linked to a visit of the same service day
    new: bool = True                   # False: that visit was rated before, nothing changed (one per visit)


@dataclass(frozen=True)
class StaffCalled:
    """The call-staff button was pressed: the desk's light or buzzer goes on until staff reset it."""


@dataclass(frozen=True)
class StaffReset:
    """Staff reset the call (the simulation's key; on a Pi the reset button acts on the output directly)."""


MachineEvent = (FaceSettled | CodeJudged | QuestionAsked | TicketIssued | PrinterAnswered | PrivacyOffered
                | PrivacyAnswered | VisitEnded | VisitFailed | Rated | StaffCalled | StaffReset | TicketRefused)
