"""The screens of a visit other than the identity ones: idle (the services), consent, issuing, the ticket, failsafe.

Functions of a :class:`kiosk.screen.Screen` (its first argument), like ``kiosk.screen_cards``: they draw with the
screen's own helpers (``_block``, ``_banner``, ``_text``, ``_px``), so every screen has one look.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pygame

from kiosk import notices, screen_cards, screen_rules
from kiosk.screen_parts import GOLD, SECONDARY, _disc, _Line
from kiosk.views import ConsentView, DoneView, FailsafeView, IdleView, IssuingView

if TYPE_CHECKING:
    from kiosk.screen import Screen


def draw_idle(screen: Screen, view: IdleView) -> None:
    top = screen._header(view.office)
    bottom = screen._surface.get_height() - screen._footer(view.notice) - screen._px(12)
    y = screen._block([_Line("Xin mời lấy số thứ tự", 36, True),
                       _Line("Please take a queue number", 19, colour=SECONDARY),
                       _Line("Nhấn nút của lĩnh vực cần giải quyết · Press the button for your service", 16,
                             colour=SECONDARY, gap=6)],
                      top / screen._scale + 12)
    screen._categories(view.categories, y + screen._px(8), bottom)


def draw_consent(screen: Screen, view: ConsentView) -> None:
    top = screen._header(screen._category_title(view.category))
    key = view.consent_button
    left, width = 28, 556
    wording = view.wording
    y = screen._block([_Line(wording.question[0], 25, True), _Line(wording.question[1], 17, colour=SECONDARY)],
                      top / screen._scale + 10, left=left, width=width)
    # What is stored, by whom, why, how long, how to withdraw: the short form (the receipt has it in full).
    for vi, en in wording.promises:
        y += screen._px(7)
        _disc(screen._surface, GOLD, (screen._px(left + 6), y + screen._px(12)), screen._px(5))
        y = screen._block([_Line(vi, 18), _Line(en, 14, colour=SECONDARY)], y / screen._scale,
                          left=left + 22, width=width - 22)
    # The yes-button: badge + instruction, in a panel so it reads as the one action on offer.
    panel = screen_cards._yes_panel(screen, key, f"Nhấn nút {key} để ĐỒNG Ý", f"Press {key} to agree", y,
                                   left=left, width=width)
    screen._block([_Line("Không nhấn nút là KHÔNG đồng ý; Ông/Bà vẫn nhận số.", 17, True),
                   _Line("No answer means no; you still get your ticket.", 14, colour=SECONDARY)],
                  panel.bottom / screen._scale + 8, left=left, width=width)
    screen_cards._countdown(screen, view.seconds_left, top)


def draw_issuing(screen: Screen, view: IssuingView) -> None:
    top = screen._header(screen._category_title(view.category))
    h = screen._surface.get_height()
    y = screen._block([_Line("Đang in phiếu…", 46, True), _Line("Printing your ticket…", 22, colour=SECONDARY),
                       _Line("Vui lòng chờ trong giây lát · One moment, please", 18, colour=SECONDARY, gap=20),
                       *screen_rules.issuing_lines(view), _Line(" ", 40)],   # room for the dots below
                      top / screen._scale, bottom=h / screen._scale)
    w = screen._surface.get_width()
    for i in range(3):   # three calm dots: something is happening
        _disc(screen._surface, GOLD, (w // 2 + (i - 1) * screen._px(30), y - screen._px(14)), screen._px(8))


def draw_done(screen: Screen, view: DoneView) -> None:
    top = screen._header(screen._category_title(view.category))
    w, h = screen._surface.get_size()
    if view.printed is not False:       # printed, or still printing (None): the number is what matters
        vi, en = ("Mời nhận phiếu", "Please take your ticket") if view.printed else \
            ("Đang in phiếu…", "Printing your ticket…")
        y = screen._block([_Line(vi, 36, True), _Line(en, 20, colour=SECONDARY)], top / screen._scale + 14)
    else:
        y = screen._banner("Không in được phiếu. Vui lòng báo nhân viên",
                           "The ticket could not be printed. Please tell the staff", top + screen._px(14))
        y = screen._block([_Line("Số thứ tự của Ông/Bà · Your number", 19, colour=SECONDARY)],
                          y / screen._scale + 10)
    note = screen_cards._done_note(view)
    note_top = h - screen._px(70)
    screen._block([_Line(note[0], 22, True), _Line(note[1], 17, colour=SECONDARY)], note_top / screen._scale)
    # The number: as large as the space allows, in gold, its ink centred in what is left.
    slot = pygame.Rect(screen._px(32), y + screen._px(6), w - screen._px(64), note_top - y - screen._px(12))
    size = screen._fit_size(view.ticket, 160, True, slot.width)
    while True:
        number = screen._font(size, True).render(view.ticket, True, GOLD)
        ink = number.get_bounding_rect()
        if ink.height <= slot.height or size <= 24:
            break
        size -= 4
    screen._texts.append((view.ticket, screen._text_px(size)))
    screen._place(number, number.get_rect(topleft=(slot.centerx - ink.centerx, slot.centery - ink.centery)),
                  view.ticket, screen._text_px(size))


_STILL_VALID = [_Line("Số thứ tự đã cấp vẫn giữ nguyên hiệu lực.", 22, gap=22),
                _Line("Tickets already issued remain valid.", 17, colour=SECONDARY)]
# A full disk is said in plain words: waiting a few seconds will not help, somebody has to be told.
DISK_FULL_LINES = [_Line("Xin lỗi! Bộ nhớ của kiosk đã đầy.", 40, True),
                   _Line("Sorry! The kiosk's storage is full.", 22, colour=SECONDARY),
                   _Line("Kiosk chưa cấp được số. Vui lòng báo nhân viên.", 28, True, gap=22),
                   _Line("No number could be issued. Please tell the staff.", 20, colour=SECONDARY), *_STILL_VALID]


def draw_failsafe(screen: Screen, view: FailsafeView) -> None:
    h = screen._surface.get_height()
    vi = "Bộ nhớ đầy; vui lòng báo kỹ thuật viên" if view.disk_full else "Lỗi kỹ thuật, kiosk tự phục hồi"
    footer = screen._footer(notices.staff(vi, view.reason))   # for staff: the reason
    lines = DISK_FULL_LINES if view.disk_full else [
        _Line("Xin lỗi!", 46, True), _Line("Sorry!", 22, colour=SECONDARY),
        _Line("Kiosk sẽ hoạt động lại sau vài giây.", 28, True, gap=22),
        _Line("Back in a few seconds.", 20, colour=SECONDARY), *_STILL_VALID]
    screen._block(lines,
                  0, bottom=(h - footer) / screen._scale)
