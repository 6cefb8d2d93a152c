"""What the screen shows, as plain frozen values.

The state machine produces one of these; ``kiosk.screen`` turns it into pixels. Views carry data
(numbers, names, flags), the screen owns the wording, so the state machine stays free of layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kiosk.consent import SAMPLE, ConsentWording


@dataclass(frozen=True)
class CategoryChoice:
    key: str          # "ho-tich"
    name_vi: str      # "Hộ tịch"
    name_en: str      # "Civil status"
    button: str       # the label printed next to the physical button / keyboard key, e.g. "1"
    status_vi: str | None = None     # why it gives no ticket now ("Hết số hôm nay", "Mở lúc 13:30"); None: open
    status_en: str | None = None


@dataclass(frozen=True)
class RatingChoice:
    """A satisfaction rating button (kiosk.states_rating): its rating and the label of the physical button / key."""
    rating: str       # "good" | "ok" | "bad"
    button: str       # e.g. "G"


@dataclass(frozen=True)
class IdleView:
    office: str
    categories: tuple[CategoryChoice, ...]
    notice: str | None = None        # for staff, e.g. "printer offline"; None when all is well
    ratings: tuple[RatingChoice, ...] = ()   # the rating buttons' strip at the bottom (none: ratings off)


@dataclass(frozen=True)
class GreetingView:
    office: str
    categories: tuple[CategoryChoice, ...]
    masked_name: str | None = None   # returning citizen with a known name, already masked ("N***n V*n A")
    returning: bool = False          # a known citizen (even without a name on record)
    hint: str | None = None          # "look_at_camera" | "come_closer" | "one_at_a_time"
    notice: str | None = None
    honorific: str | None = None     # "ông" | "bà" from the card's sex; None: "Ông/Bà"
    proposal: bool = False           # the face matched somebody: "is this you? press the consent button"
    card: str | None = None          # "ok": card read; "invalid": a card that could not be read
    ask_card: bool = False           # the face is near somebody but not sure: show the card (outline)
    consent_button: str = "Y"        # label of the consent ("Đồng ý") button, for "is this you?"
    ratings: tuple[RatingChoice, ...] = ()   # as on the idle screen: a citizen on the way out is seen first


@dataclass(frozen=True)
class ConfirmView:
    """After a service is chosen: "is this you?" about the citizen the face matched."""
    category: CategoryChoice
    masked_name: str | None
    honorific: str | None
    seconds_left: int                # no answer when it reaches 0 means "no": the visit stays unlinked
    consent_button: str


@dataclass(frozen=True)
class ConsentView:
    category: CategoryChoice         # the service already chosen
    seconds_left: int                # no answer when it reaches 0 means "no"
    consent_button: str              # label of the consent button / key, e.g. "Y"
    wording: ConsentWording = field(default=SAMPLE)   # the office's wording (kiosk.consent): stored as shown


@dataclass(frozen=True)
class IssuingView:
    category: CategoryChoice
    priority_button: str | None = None   # waiting a moment for the priority button: its label (else None)
    priority: bool = False               # a priority ticket is coming


@dataclass(frozen=True)
class RefusedView:
    """A service button that gives no ticket now; ``sentence`` is the screen's main sentence (read aloud too)."""
    category: CategoryChoice
    reason: str                      # "closed" | "full"
    sentence: str                    # Vietnamese, whole: "Lĩnh vực Hộ tịch mở lúc 13:30. ..."
    sentence_en: str


@dataclass(frozen=True)
class DoneView:
    ticket: str                      # "HT-023": shown very large, the citizen's proof when paper fails
    category: CategoryChoice
    printed: bool | None             # False: "please tell the staff", number stays on screen; None: printing
    enrolled: bool = False           # consent given now: the kiosk will recognise them next time
    returning: bool = False
    card: str | None = None          # "ok" | "invalid" | None: what became of a card shown in this visit


@dataclass(frozen=True)
class FailsafeView:
    reason: str                      # short technical reason for the journal/staff; citizens see a fixed text
    disk_full: bool = False          # the fixed text then says the kiosk cannot store numbers and whom to ask


@dataclass(frozen=True)
class PrivacyView:
    """A consent receipt's code (or then a card) was shown: delete my data, or print what is kept."""
    masked_name: str | None          # whose data, masked; None with a refused code or no name on record
    identified: bool                 # a genuine code (or a card on record) named a citizen: the choices are on
    answer: str | None               # None: choosing; "deleted" | "printed" | "refused" (kiosk.machine_events)
    seconds_left: int
    delete_button: str               # the consent button's label: the destructive choice is the "yes" button
    print_button: str                # the first category button's label


@dataclass(frozen=True)
class ThanksView:
    """A rating was pressed: a short thank-you (``linked``: it counts for the visit of the day)."""
    linked: bool


@dataclass(frozen=True)
class HelpView:
    """The call-staff button was pressed: someone is coming."""


View = (IdleView | GreetingView | ConfirmView | ConsentView | IssuingView | DoneView | FailsafeView
        | PrivacyView | ThanksView | HelpView | RefusedView)


@dataclass(frozen=True)
class SyncBanner:
    """The USB stick notice (kiosk.stickwatch), drawn over whatever the citizen sees: never a phase of its own."""
    stage: str                       # "working" | "done" | "not_kiosk" | "error"
    step: str = ""                   # while working: "mount" | "export" | "import" | "unmount"
    progress: float = 0.0            # 0..1, the bar
    written: int = 0                 # bundles written to the stick so far ...
    to_write: int = 0                # ... of this many
    counts: str | None = None        # what the new bundle holds: "120 visits, 3 consents"
    detail: str | None = None        # the error's one line, or a note for staff
    pulled: bool = False             # the stick was pulled out while in use
