"""Small hand-written stand-ins shared by the tests of the state machine and the loop."""
from dataclasses import dataclass

from kiosk.loop import FakeClock
from kiosk.machine_events import Rated
from kiosk.visit import CardRead, Issued, Known


@dataclass(frozen=True)
class Obs:
    """Same fields as kiosk.faces.Observation."""
    faces: int = 1
    track_id: int | None = 1
    citizen_id: str | None = None
    settled: bool = True
    enrol_encodings: object = None
    hint: str | None = None
    encodings: object = None
    distance: float | None = None
    nearest: str | None = None
    unsure: bool = False
    cards: tuple = ()


class Clock(FakeClock):
    """kiosk.loop.FakeClock, with its time settable as ``t`` (the tests move it by hand)."""

    @property
    def t(self):
        return self._t

    @t.setter
    def t(self, value):
        self._t = value


class Services:
    """Records what the machine asked for; numbers tickets like the store does.

    ``issued``: (category, citizen) per ticket; ``requests``: the whole VisitRequest; ``cards``: payload ->
    CardRead that ``read_card`` answers (anything else is not a card).
    """

    def __init__(self, printer_ok=True):
        self.issued = []
        self.requests = []
        self.enrolled = []
        self.printer_ok = printer_ok
        self.names = {}
        self.cards = {}
        self.fail_issue = False
        self.fail_enrol = False
        self.codes = {}          # payload -> CodeCheck that ``check_code`` answers
        self.deleted = []
        self.kept_printed = []
        self.ratings = []        # (rating, citizen) per rating press; a citizen in ``visited`` links (once)
        self.visited = set()

    def issue(self, visit):
        if self.fail_issue:
            raise OSError("disk full")
        citizen, enrolled, by = visit.citizen_id, False, "face" if visit.citizen_id else None
        if visit.card is not None:
            citizen, by = visit.card.citizen_id or "card-new", "card"
        elif visit.consent and visit.encodings is not None and not self.fail_enrol:
            self.enrolled.append(visit.encodings)
            citizen, enrolled = f"citizen{len(self.enrolled)}", True
        self.requests.append(visit)
        self.issued.append((visit.category, citizen))
        return Issued(f"HT-{len(self.issued):03d}", f"visit{len(self.issued)}", self.printer_ok, citizen=citizen,
                      enrolled=enrolled, identified_by=by)

    def read_card(self, text):
        return self.cards.get(text)

    def check_code(self, text):
        return self.codes.get(text)

    def delete_citizen(self, citizen_id):
        self.deleted.append(citizen_id)

    def print_kept(self, citizen_id):
        self.kept_printed.append(citizen_id)

    def take_print_answers(self):
        return {}

    def rate(self, rating, citizen_id):
        linked = citizen_id in self.visited
        new = not (linked and any(c == citizen_id for _, c in self.ratings))
        self.ratings.append((rating, citizen_id))
        return Rated(rating, linked, new)

    def who(self, citizen_id):
        name = self.names.get(citizen_id)
        return Known(name, None) if name else None

    def notice(self):
        return None if self.printer_ok else "printer fault"


def card(citizen_id=None, **kw):
    """A valid card as the services would judge it."""
    return CardRead(ok=True, key="k-" + str(citizen_id), citizen_id=citizen_id, masked_name="N****n V*n A*",
                    honorific="ông", **kw)
