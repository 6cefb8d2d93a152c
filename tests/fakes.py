"""Small hand-written stand-ins shared by the tests of the state machine and the loop."""
from dataclasses import dataclass

from kiosk.loop import FakeClock
from kiosk.states import Issued


@dataclass(frozen=True)
class Obs:
    """Same fields as kiosk.faces.Observation."""
    faces: int = 1
    track_id: int | None = 1
    citizen_id: str | None = None
    settled: bool = True
    enrol_encodings: object = None
    hint: str | None = None


class Clock(FakeClock):
    """kiosk.loop.FakeClock, with its time settable as ``t`` (the tests move it by hand)."""

    @property
    def t(self):
        return self._t

    @t.setter
    def t(self, value):
        self._t = value


class Services:
    """Records what the machine asked for; numbers tickets like the store does."""

    def __init__(self, printer_ok=True):
        self.issued = []
        self.enrolled = []
        self.printer_ok = printer_ok
        self.names = {}
        self.fail_issue = False
        self.fail_enrol = False

    def issue(self, category, citizen_id):
        if self.fail_issue:
            raise OSError("disk full")
        self.issued.append((category, citizen_id))
        return Issued(f"HT-{len(self.issued):03d}", f"visit{len(self.issued)}", self.printer_ok)

    def enrol(self, encodings):
        if self.fail_enrol:
            raise OSError("templates file read-only")
        self.enrolled.append(encodings)
        return f"citizen{len(self.enrolled)}"

    def printed(self):
        return {}

    def greeting_name(self, citizen_id):
        return self.names.get(citizen_id)

    def notice(self):
        return None if self.printer_ok else "printer fault"
