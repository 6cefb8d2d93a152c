"""The screens about who the citizen is: the greeting (card read, "is this you?", show your card), the
confirmation question after a service is chosen, and where to hold the card (an outline).

Functions of a :class:`kiosk.screen.Screen` (its first argument): they draw with the screen's own helpers (``_block``, ``_banner``,
``_badge``, ``_text``, ``_px``), so both stay one look. Wording: Vietnamese first, English second and smaller;
a name is only ever the masked one the view carries.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pygame

from kiosk.screen_parts import GOLD, PANEL, SECONDARY, TEXT, _disc, _Line
from kiosk.views import ConfirmView, DoneView, GreetingView

if TYPE_CHECKING:
    from kiosk.screen import Screen

log = logging.getLogger("kiosk.screen")

CARD_READ = (120, 205, 150)      # "card read" band: green, with dark text like the other bands
CARD_RATIO = 85.6 / 53.98        # ID-1 card (CCCD): width / height
HINTS = {
    "look_at_camera": ("Vui lòng nhìn thẳng vào camera", "Please look at the camera"),
    "come_closer": ("Vui lòng đến gần hơn một chút", "Please come a little closer"),
    "one_at_a_time": ("Vui lòng đứng từng người một", "One person at a time, please"),
}


def _address(honorific: str | None) -> str:
    """"Ông" / "Bà" from the card, else the polite form that fits both: "Ông/Bà" (to begin a sentence)."""
    return (honorific or "Ông/Bà")[:1].upper() + (honorific or "Ông/Bà")[1:]



def _draw_greeting(screen: Screen, view: GreetingView) -> None:
    top = screen._header(view.office)
    bottom = screen._surface.get_height() - screen._footer(view.notice) - screen._px(12)
    name = view.masked_name
    if view.proposal:
        who = f"Đúng là {_address(view.honorific)} {name}?" if name else \
            f"{_address(view.honorific)} đã đăng ký khuôn mặt ở đây?"
        lines = [_Line(who, 30, True), _Line("Is this you?", 18, colour=SECONDARY)]
    elif name:
        lines = [_Line(f"Chào {view.honorific}," if view.honorific else "Chào mừng quay lại,", 24,
                       colour=SECONDARY), _Line(name, 36, True),
                 _Line("Welcome" if view.card and not view.returning else "Welcome back", 17, colour=SECONDARY)]
    elif view.returning:
        lines = [_Line("Chào mừng quay lại!", 36, True), _Line("Welcome back!", 19, colour=SECONDARY)]
    else:
        lines = [_Line("Xin chào!", 36, True), _Line("Hello!", 19, colour=SECONDARY)]
    if view.ask_card:
        y = _ask_card(screen, lines, top)
    else:
        y = screen._block(lines, top / screen._scale + 8)
    banner: tuple[tuple[str, str], tuple[int, int, int] | None] | None = None
    if view.proposal:
        key = view.consent_button
        said = "" if key.casefold() in ("đồng ý", "yes") else " (Đồng ý)"    # the button's own word says it
        banner = (f"Nhấn nút {key}{said} nếu đúng", f"Press {key}{said and ' (Yes)'} if this is you"), GOLD
    elif view.card == "ok":
        banner = ("Đã đọc thẻ", "Card read"), CARD_READ
    elif view.card == "invalid":
        banner = ("Không đọc được thẻ · Ông/Bà vẫn nhận số bình thường",
                  "The card could not be read · You still get your ticket"), None
    elif view.hint:
        hint = HINTS.get(view.hint)
        if hint is None:
            log.warning("screen: unknown hint %r", view.hint)
        banner = (hint, None) if hint else None
    if banner:
        (vi, en), colour = banner
        y = screen._banner(vi, en, y + screen._px(8), **({"colour": colour} if colour else {}))
    y = screen._block([_Line("Mời chọn lĩnh vực · Please choose a service", 18, True, SECONDARY)],
                    y / screen._scale + 8)
    screen._categories(view.categories, y + screen._px(6), bottom)

def _ask_card(screen: Screen, greeting: list[_Line], top: int) -> int:
    """Greeting on the left, "show your card" beside the outline of a card on the right; returns bottom px."""
    w = screen._surface.get_width()
    outline_w = screen._px(150)
    text_w = (w - outline_w) / screen._scale - 80
    y = screen._block(greeting + [
        # Two lines split where the sentence breaks, not where the width runs out (no orphaned "trước camera").
        _Line("Ông/Bà đã đến đây trước?", 20, True, gap=6),
        _Line("Vui lòng đưa thẻ CCCD trước camera", 20, True),
        _Line("Been here before? Please hold your ID card (CCCD) up to the camera", 16, colour=SECONDARY)],
        top / screen._scale + 8, left=28, width=text_w)
    card = pygame.Rect(0, 0, outline_w, round(outline_w / CARD_RATIO))
    card.topright = (w - screen._px(28), top + screen._px(18))
    _card_outline(screen, card)
    return max(y, card.bottom + screen._px(4))

def _card_outline(screen: Screen, rect: pygame.Rect) -> None:
    """Where to hold the card: a dashed card with its QR code corner (top right on the CCCD's front)."""
    step, dash = screen._px(10), screen._px(6)
    for x in range(rect.left, rect.right, step):
        for y in (rect.top, rect.bottom - 1):
            pygame.draw.line(screen._surface, GOLD, (x, y), (min(x + dash, rect.right), y), max(1, screen._px(3)))
    for y in range(rect.top, rect.bottom, step):
        for x in (rect.left, rect.right - 1):
            pygame.draw.line(screen._surface, GOLD, (x, y), (x, min(y + dash, rect.bottom)), max(1, screen._px(3)))
    side = rect.height * 46 // 100
    qr = pygame.Rect(rect.right - side - screen._px(10), rect.top + screen._px(10), side, side)
    finder = side * 3 // 7
    line = max(1, screen._px(2))
    for fx, fy in ((qr.left, qr.top), (qr.right - finder, qr.top), (qr.left, qr.bottom - finder)):
        pygame.draw.rect(screen._surface, GOLD, (fx, fy, finder, finder), width=line)   # a QR code's finders
        inner = finder // 3
        pygame.draw.rect(screen._surface, GOLD, (fx + inner, fy + inner, finder - 2 * inner, finder - 2 * inner))
    dot = max(2, finder // 4)
    for dx, dy in ((4, 4), (5, 6), (6, 5), (6, 3), (4, 6)):
        pygame.draw.rect(screen._surface, GOLD, (qr.left + dx * side // 7, qr.top + dy * side // 7, dot, dot))
    screen._text("Mã QR", 14, (rect.left + screen._px(10), rect.bottom - screen._px(8)), colour=GOLD,
               anchor="bottomleft", max_width_px=rect.width - side - screen._px(24))

def _draw_confirm(screen: Screen, view: ConfirmView) -> None:
    """After a service is chosen: "is this you?", the Yes button, and what no answer means."""
    top = screen._header(screen._category_title(view.category))
    left, width = 28, 556
    address = _address(view.honorific)
    who = f"Đúng là {address} {view.masked_name}?" if view.masked_name else \
        f"{address} đã đăng ký khuôn mặt ở đây?"
    y = screen._block([_Line(who, 30, True),
                     _Line("Is this you?" if view.masked_name else "Have you registered your face here?", 18,
                           colour=SECONDARY),
                     _Line("Lượt đến sẽ được gắn với hồ sơ của Ông/Bà.", 21, gap=10),
                     _Line("Your visit will be linked to your record.", 16, colour=SECONDARY)],
                    top / screen._scale + 14, left=left, width=width)
    panel = _yes_panel(screen, view.consent_button, f"Nhấn nút {view.consent_button} nếu ĐÚNG",
                            f"Press {view.consent_button} if it is you", y, left=left, width=width)
    screen._block([_Line("Không nhấn nút: lượt đến không gắn với ai. Ông/Bà vẫn nhận số bình thường.", 18, True),
                 _Line("No answer: the visit is not linked. You still get your ticket.", 16, colour=SECONDARY)],
                panel.bottom / screen._scale + 12, left=left, width=width)
    _countdown(screen, view.seconds_left, top)

def _yes_panel(screen: Screen, key: str, vi: str, en: str, y: int, *, left: int, width: int) -> pygame.Rect:
    """The Yes button as a panel (badge + instruction): the one action on offer; returns the panel."""
    panel = pygame.Rect(screen._px(left - 8), y + screen._px(16), screen._px(width + 8), screen._px(76))
    pygame.draw.rect(screen._surface, PANEL, panel, border_radius=screen._px(12))
    badge = screen._badge(key, panel.left + screen._px(14), panel.centery, screen._px(28))
    text_left = badge.right + screen._px(16)
    text_w = panel.right - text_left - screen._px(10)
    screen._text(vi, 28, (text_left, panel.centery + screen._px(4)), bold=True, anchor="bottomleft",
               max_width_px=text_w)
    screen._text(en, 18, (text_left, panel.centery + screen._px(4)), colour=SECONDARY, anchor="topleft",
               max_width_px=text_w)
    return panel

def _countdown(screen: Screen, seconds_left: int, top: int) -> None:
    """Seconds left to answer, in a gold ring on the right."""
    w, h = screen._surface.get_size()
    centre = (w - screen._px(108), top + (h - top) // 2)
    radius = screen._px(80)
    _disc(screen._surface, GOLD, centre, radius)
    _disc(screen._surface, PANEL, centre, radius - screen._px(6))
    screen._text(str(max(0, seconds_left)), 68, (centre[0], centre[1] + screen._px(10)), bold=True,
               colour=TEXT, anchor="midbottom")
    screen._text("giây · seconds", 16, (centre[0], centre[1] + screen._px(14)), colour=SECONDARY, anchor="midtop")

def _done_note(view: DoneView) -> tuple[str, str]:
    """The line under the ticket number: what became of the face and the card in this visit."""
    if view.enrolled:
        return "Đã lưu: lần sau kiosk sẽ nhận ra Ông/Bà.", "Saved: the kiosk will recognise you next time."
    if view.card == "ok":
        return "Đã đọc thẻ: lượt đến đã gắn với hồ sơ của Ông/Bà.", "Card read: your visit is linked to your record."
    if view.returning:
        return "Lượt đến đã gắn với hồ sơ của Ông/Bà.", "Your visit is linked to your record."
    if view.card == "invalid":
        return "Không đọc được thẻ; số thứ tự vẫn có hiệu lực.", "The card could not be read; your number is valid."
    if view.printed is False:
        return "Vui lòng ghi nhớ số này.", "Please remember this number."
    return "Vui lòng chờ đến lượt được gọi.", "Please wait until your number is called."
