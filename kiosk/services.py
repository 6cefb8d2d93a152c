"""What the state machine may do to the world: store and print a ticket, enrol a consenting face.

The machine only sees the small ``Services`` protocol of ``kiosk.states``; this is the real one,
over the store, the face index and the ticket printer.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Sequence

from kiosk.consent import CONSENT_TEXT
from kiosk.states import Issued
from kiosk.tickets import TicketContent, mask_name

log = logging.getLogger("kiosk.services")


class KioskServices:
    """What the state machine may do to the world: store a ticket and print it, enrol a consenting face."""

    def __init__(self, *, store: Any, index: Any, printer: Any, office: str, kiosk_id: str,
                 categories: Sequence[Any], wall: Callable[[], datetime], faults: Sequence[str] = (),
                 notices: Sequence[Callable[[], str | None]] = ()) -> None:
        self._store = store
        self._index = index
        self._printer = printer           # a kiosk.printing.PrintQueue: paper never blocks the loop
        self._office = office
        self._kiosk_id = kiosk_id
        self._categories = {c.key: c for c in categories}
        self._wall = wall
        self._faults = list(faults)       # devices that failed at start (camera, buttons): for staff, on screen
        self._notices = list(notices)     # conditions that come and go (low disk space): their current text
        self._consent_slip: tuple[str, datetime] | None = None   # printed right after the enrolled visit's ticket

    def issue(self, category: str, citizen_id: str | None) -> Issued:
        spec = self._categories[category]
        visit = self._store.issue_ticket(category, spec.prefix, citizen_id=citizen_id, now=self._wall())
        content = TicketContent(office=self._office, ticket=visit.ticket, category_vi=spec.name_vi,
                                category_en=spec.name_en, issued_at=visit.issued_at, kiosk_id=self._kiosk_id,
                                visit_id=visit.id)
        self._printer.ticket(visit.id, content)
        if self._consent_slip is not None:      # after the ticket: the citizen's number comes first
            citizen, when = self._consent_slip
            self._consent_slip = None
            self._printer.slip("Xác nhận đồng ý / Consent receipt", consent_receipt_lines(citizen, when),
                               f"consent-{citizen}")
        if citizen_id is not None:
            self._store.touch(citizen_id, visit.issued_at)
        return Issued(visit.ticket, visit.id, self.printed().get(visit.id))

    def printed(self) -> dict[str, bool]:
        """Outcomes of the prints finished since the last call, by visit id, now recorded in the store."""
        outcomes = dict(self._printer.finished())
        for visit_id, ok in outcomes.items():
            self._store.mark_printed(visit_id, ok)
        return outcomes

    def enrol(self, encodings: Any) -> str:
        now = self._wall()
        citizen = self._store.enrol(encodings, now=now, consent_text=CONSENT_TEXT)
        self._index.add(citizen.id, encodings)
        log.info("citizen %s enrolled with %d face templates", citizen.id, len(encodings))
        self._consent_slip = (citizen.id, now)
        return citizen.id

    def greeting_name(self, citizen_id: str) -> str | None:
        citizen = self._store.citizen(citizen_id)
        if citizen is None or not citizen.display_name:
            return None
        return mask_name(citizen.display_name)

    def notice(self) -> str | None:
        faults = list(self._faults)
        if self._printer.fault:
            faults.insert(0, f"Máy in lỗi / printer fault: {self._printer.fault}")
        faults += [text for notice in self._notices if (text := notice())]
        return " · ".join(faults) or None


def deletion_receipt_lines(citizen_id: str, when: datetime) -> list[str]:
    return [
        f"Mã công dân / Citizen id: {citizen_id}",
        f"Đã xoá lúc / Deleted at: {when:%d/%m/%Y %H:%M}",
        "Mẫu khuôn mặt và hồ sơ của công dân này đã bị xoá khỏi kiosk.",
        "This citizen's face templates and record were deleted from the kiosk.",
    ]


def consent_receipt_lines(citizen_id: str, when: datetime) -> list[str]:
    return [
        f"Mã công dân / Citizen id: {citizen_id}",
        f"Thời điểm / Time: {when:%d/%m/%Y %H:%M}",
        "Kiosk lưu mẫu khuôn mặt (dãy số, không lưu ảnh) để nhận ra bạn lần sau.",
        "The kiosk keeps a face template (numbers, not a photo) to recognise you next time.",
        "Yêu cầu xoá: báo nhân viên với mã trên / To delete: tell the staff this id.",
    ]
