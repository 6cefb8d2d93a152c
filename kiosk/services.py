"""What the state machine may do to the world: read a card, store and print a ticket, keep a consenting face.

The machine only sees the small ``Services`` protocol of ``kiosk.visit``; this is the real one,
over the store, the face index and the ticket printer.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Sequence

import numpy as np

from kiosk.auditspool import entry
from kiosk.cccd import InvalidCard, NotACard, parse_card
from kiosk.consent import SAMPLE, ConsentWording
from kiosk.identity import DISAGREEMENTS, CardBook, CardPolicy, IdentityError, kept_fields, ticket_fields
from kiosk.machine_events import CodeCheck, Rated
from kiosk.notices import join, staff
from kiosk.rules import Rules
from kiosk.withdrawal import Withdrawals, new_secret, parse, payload
from kiosk.ticketcode import TicketFacts, TicketSealer
from kiosk.visit import CardRead, Issued, Known, VisitRequest
from kiosk.store_numbers import SeriesFull
from kiosk.tickets import TicketContent, mask_name

log = logging.getLogger("kiosk.services")


class KioskServices:
    """What the state machine may do to the world: store a visit (card record, face templates, ticket), print it.

    Everything of one visit arrives in one :class:`~kiosk.visit.VisitRequest` and is finished in one
    :meth:`issue`: nothing waits here for the next visit (a consent receipt can never go out with somebody
    else's ticket).
    """

    def __init__(self, *, store: Any, index: Any, printer: Any, office: str, kiosk_id: str,
                 categories: Sequence[Any], wall: Callable[[], datetime], faults: Sequence[str] = (),
                 notices: Sequence[Callable[[], str | None]] = (), book: CardBook | None = None,
                 policy: CardPolicy = CardPolicy(), consent: ConsentWording = SAMPLE,
                 sealer: TicketSealer | None = None, rules: Rules = Rules()) -> None:
        self._store = store
        self._index = index
        self._printer = printer           # a kiosk.printing.PrintQueue: paper never blocks the loop
        self._office = office
        self._kiosk_id = kiosk_id
        self._categories = {c.key: c for c in categories}
        self._wall = wall
        self._faults = list(faults)       # devices that failed at start (camera, buttons): for staff, on screen
        self._notices = list(notices)     # conditions that come and go (low disk space): their current text
        self._book = book if book is not None and book.enabled else None
        self._records = book                # deletions reach the card records even when cards are not read
        self._policy = policy
        self._consent = consent           # what the consent screen showed: stored with each enrolment, printed
        self._withdrawal_codes: dict[str, str] = {}   # the receipt's code, from enrolment to its slip (one visit)
        self._sealer = sealer             # None: tickets keep the plain visit-id QR (no office key installed)
        self._rules = rules               # priority series and this kiosk's range of numbers (kiosk/rules.py)

    # -- the visit --------------------------------------------------------------------------------------
    def issue(self, visit: VisitRequest) -> Issued:
        """Link the visit (card record, face), keep face templates if allowed, store the ticket, print it."""
        now = self._wall()
        self._withdrawal_codes.clear()        # a code never outlives the visit it was made in
        citizen, enrolled = visit.citizen_id, False
        identified_by = "face" if citizen is not None else None
        if visit.card is not None and self._book is not None:
            citizen, enrolled = self._card_visit(visit, visit.card, self._book, now)
            identified_by = "card" if citizen is not None else None
        elif visit.consent and visit.encodings is not None and citizen is None:
            try:
                citizen, enrolled = self._enrol(visit.encodings, now), True
            except Exception:  # the face is optional: a failed enrolment still gets the ticket
                log.exception("enrolment failed; issuing the ticket without a citizen")
        spec = self._categories[visit.category]
        numbers = self._rules.numbers(self._kiosk_id, visit.category)
        try:
            stored = self._store.issue_ticket(visit.category, spec.prefix, citizen_id=citizen, now=now,
                                              identified_by=identified_by, numbers=numbers,
                                              mark=self._rules.priority.mark if visit.priority else "")
        except SeriesFull:
            if not visit.priority:
                raise                     # (the machine refuses a press once the normal series is used up)
            # The priority range ran out before the normal one: a normal number rather than no ticket at all.
            log.warning("%s: this kiosk's priority numbers are used up today; a normal number instead",
                        visit.category)
            stored = self._store.issue_ticket(visit.category, spec.prefix, citizen_id=citizen, now=now,
                                              identified_by=identified_by, numbers=numbers)
        code = None
        if self._sealer is not None:
            fields = self._ticket_fields(citizen, visit.card if identified_by == "card" else None)
            code = self._sealer.code(TicketFacts(stored.id, stored.ticket, visit.category, spec.name_vi,
                                                 stored.issued_at, self._kiosk_id, citizen, fields))
        content = TicketContent(office=self._office, ticket=stored.ticket, category_vi=spec.name_vi,
                                category_en=spec.name_en, issued_at=stored.issued_at, kiosk_id=self._kiosk_id,
                                visit_id=stored.id, code=code)
        self._printer.ticket(stored.id, content)
        if enrolled and citizen is not None:      # after the ticket: the citizen's number comes first
            code = self._withdrawal_codes.pop(citizen, None)
            self._printer.slip("Xác nhận đồng ý / Consent receipt", consent_receipt_lines(citizen, now, code,
                                                                                           self._consent),
                               f"consent-{citizen}", qr=code)
        if citizen is not None:
            self._store.touch(citizen, stored.issued_at)
        printed = self.take_print_answers().get(stored.id)   # (an inline print queue has answered already)
        return Issued(stored.ticket, stored.id, printed, citizen=citizen, enrolled=enrolled,
                      identified_by=identified_by)

    def _ticket_fields(self, citizen: str | None, card: CardRead | None) -> dict[str, str]:
        """What the ticket code says of a linked citizen: this visit's card, else the card record or the store's
        display name (a face visit has no card number: the kiosk never keeps it)."""
        if citizen is None:
            return {}
        if card is not None:
            return dict(card.ticket)
        try:
            record = self._records.record(citizen) if self._records is not None else None
            if record is not None:
                return dict(record.fields)
            known = self._store.citizen(citizen)
        except Exception:  # the ticket goes out all the same, its code with the citizen id alone
            log.exception("citizen %s: card fields for the ticket code not read", citizen)
            return {}
        return {"name": known.display_name} if known is not None and known.display_name else {}

    def _enrol(self, encodings: Any, now: datetime, citizen_id: str | None = None) -> str:
        encodings = encodings[-self._policy.max_templates:]
        secret, secret_hash = new_secret()    # the receipt carries the secret, the store only its hash
        citizen = self._store.enrol(encodings, now=now, consent_text=self._consent.text, citizen_id=citizen_id,
                                    withdrawal_hash=secret_hash)
        self._withdrawal_codes[citizen.id] = payload(citizen.id, secret)
        self._index.add(citizen.id, encodings)
        log.info("citizen %s enrolled with %d face templates", citizen.id, len(encodings))
        return citizen.id

    def _card_visit(self, visit: VisitRequest, card: CardRead, book: CardBook,
                    now: datetime) -> tuple[str | None, bool]:
        """The card decides who it is; the face only confirms (refresh) or, with consent, is kept for next time."""
        if card.key is None:              # an unreadable card links nothing
            return None, False
        try:
            citizen, _ = book.link(card.key, card.fields, now=now)
        except IdentityError as exc:      # a card record that cannot be saved: a plain ticket
            log.error("card: %s; ticket without a citizen", exc)
            return None, False
        encodings = visit.encodings
        if encodings is None or card.minor:
            return citizen, False
        if visit.face_match is not None and visit.face_match != citizen:
            count = book.bump(DISAGREEMENTS)
            log.warning("card of citizen %s, face of citizen %s: the card wins, no face templates kept "
                        "(%d such visits so far)", citizen, visit.face_match, count)
            return citizen, False
        try:
            if citizen in self._index:
                if self._same_face(citizen, encodings):
                    kept = self._store.add_templates(citizen, encodings, now=now, keep=self._policy.max_templates)
                    self._index.remove(citizen)
                    self._index.add(citizen, kept)
                    log.info("citizen %s: face confirmed the card, %d templates kept", citizen, len(kept))
                else:
                    log.info("citizen %s: the face does not confirm the card; templates unchanged", citizen)
                return citizen, False
            if visit.consent:
                return self._enrol(encodings, now, citizen_id=citizen), True
        except Exception:  # the face is optional: the visit keeps its card link and its ticket
            log.exception("face templates of citizen %s not saved", citizen)
        return citizen, False

    def _same_face(self, citizen: str, encodings: Any) -> bool:
        """One-to-one: every good frame of this visit is within the threshold of the card holder's templates."""
        templates = self._index.templates_of(citizen)
        if not len(templates):
            return False
        enc = np.asarray(encodings, np.float32).reshape(-1, templates.shape[1])
        distances = np.linalg.norm(enc[:, None, :] - templates[None, :, :], axis=2).min(axis=1)
        return bool((distances < self._policy.threshold).all())

    def deletion_receipt(self, citizen_id: str, when: datetime) -> None:
        """Print the receipt of a deletion (asked at the kiosk, or queued by `kiosk forget`: kiosk/deletions.py)."""
        self._printer.slip("Biên nhận xoá dữ liệu / Deletion receipt", deletion_receipt_lines(citizen_id, when),
                           f"deleted-{citizen_id}")

    # -- withdrawal and access at the kiosk (the privacy screen) ---------------------------------------
    def _withdrawals(self) -> Withdrawals:
        return Withdrawals(store=self._store, book=self._records, index=self._index, wall=self._wall)

    def check_code(self, text: str) -> CodeCheck | None:
        """Judge one QR text as a consent receipt's code: None if it is not one; never stores anything."""
        if parse(text) is None:
            return None
        try:
            citizen = self._withdrawals().verify(text)
        except Exception:  # a store that cannot answer refuses the code; it must not take the screen down
            log.exception("withdrawal code could not be checked; refused")
            citizen = None
        log.info("withdrawal code %s", "accepted" if citizen else "refused (forged, or its citizen is gone)")
        return CodeCheck(citizen)

    def delete_citizen(self, citizen_id: str) -> None:
        """The citizen asked at the kiosk: delete now, the same way as `kiosk forget` (the index first), and print
        the deletion receipt."""
        self.deletion_receipt(citizen_id, self._withdrawals().delete(citizen_id))
        log.info("citizen %s deleted (asked at the kiosk)", citizen_id)

    def print_kept(self, citizen_id: str) -> None:
        """Print what is kept about the citizen: fields, counts, dates, the masked name only."""
        kept = self._withdrawals().kept(citizen_id)
        self._printer.slip("Dữ liệu kiosk lưu / What the kiosk keeps", kept.lines(),
                           f"kept-{citizen_id}-{self._wall():%Y%m%d-%H%M%S}")
        log.info("citizen %s: what is kept printed", citizen_id)

    # -- what the screen may know --------------------------------------------------------------------
    def read_card(self, text: str) -> CardRead | None:
        """Judge one QR text: None if it is no card (or cards are off). A card is audited (valid or not, card
        record new or known: never its number or name); nothing else is stored."""
        if self._book is None:
            return None
        now = self._wall()
        try:
            card = parse_card(text, today=now.date())
        except NotACard:
            return None
        except InvalidCard as exc:
            log.info("card rejected: %s", exc)
            self._store.audit_event(entry("card_read", now, {"valid": False}))
            return CardRead(ok=False)
        today = now.date()
        key = self._book.key(card.number)
        record = self._book.find(key)
        citizen = record.citizen_id if record is not None else None
        self._store.audit_event(entry("card_read", now, {"valid": True, "record": "known" if record else "new"}))
        return CardRead(ok=True, key=key, citizen_id=citizen, masked_name=mask_name(card.name),
                        honorific=card.honorific, minor=card.age_on(today) < self._policy.min_age_for_face,
                        has_templates=citizen is not None and citizen in self._index,
                        fields=kept_fields(card, self._policy.keep), age=card.age_on(today),
                        ticket=ticket_fields(card, self._policy.ticket) if self._sealer is not None else {})

    def who(self, citizen_id: str) -> Known | None:
        """The masked name and honorific of a known citizen (from the card record, else the store)."""
        record = self._book.record(citizen_id) if self._book is not None else None
        if record is not None:
            name, sex = record.fields.get("name"), record.fields.get("sex")
            return Known(mask_name(name) if name else None, {"Nam": "ông", "Nữ": "bà"}.get(sex or ""))
        citizen = self._store.citizen(citizen_id)
        if citizen is None:
            return None
        return Known(mask_name(citizen.display_name) if citizen.display_name else None, None)

    def rate(self, rating: str, citizen_id: str | None) -> Rated:
        """Store a satisfaction rating, linked to the citizen's visit of the day when there is one (kiosk.store_ratings)."""
        stored = self._store.rate(rating, citizen_id=citizen_id, now=self._wall())
        log.info("rating %s%s", rating, f" for visit {stored.visit}" if stored.visit else " (anonymous)")
        return Rated(rating, stored.visit is not None, stored.new)    # the press; stored.rating is what stands

    def take_print_answers(self) -> dict[str, bool]:
        """The printer's answers since the last call, by visit id, recorded in the store first (a command, not a query:
        each answer is handed out once)."""
        outcomes = dict(self._printer.finished())
        for visit_id, ok in outcomes.items():
            self._store.mark_printed(visit_id, ok)
        return outcomes

    def notice(self) -> str | None:
        faults = list(self._faults)
        if self._printer.fault:
            faults.insert(0, staff("Máy in lỗi; vui lòng kiểm tra máy in", f"Printer fault: {self._printer.fault}"))
        return join(faults + [notice() for notice in self._notices])


def deletion_receipt_lines(citizen_id: str, when: datetime) -> list[str]:
    return [
        f"Mã công dân / Citizen id: {citizen_id}",
        f"Đã xoá lúc / Deleted at: {when:%d/%m/%Y %H:%M}",
        "Mẫu khuôn mặt và hồ sơ của công dân này đã bị xoá khỏi kiosk.",
        "This citizen's face templates and record were deleted from the kiosk.",
    ]


def consent_receipt_lines(citizen_id: str, when: datetime, code: str | None = None,
                          wording: ConsentWording = SAMPLE) -> list[str]:
    """The consent receipt: the wording in full (kiosk.consent) and its version, as stored with the consent;
    ``code``: the withdrawal code (kiosk.withdrawal) the kiosk reads back to delete."""
    return [
        f"Mã công dân / Citizen id: {citizen_id}",
        f"Thời điểm / Time: {when:%d/%m/%Y %H:%M}",
        *wording.receipt,
        f"Phiên bản nội dung / Wording version: {wording.version}",
        *([f"Mã rút lại đồng ý / Withdrawal code: {code}"] if code else []),
    ]
