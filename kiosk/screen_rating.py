"""The rating strip (three rating buttons' labels at the bottom of the idle and greeting screens), the thank-you
screen and the call-staff screen (issue 13). Functions of a :class:`kiosk.screen.Screen`, like kiosk.screen_sync.

Every text is white on a dark tile or the dark background: at least 9:1 (the rating tiles' colours were chosen
for it; kiosk.screen_parts has the rest of the palette).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pygame

from kiosk.screen_parts import HEADER, TEXT, _Line
from kiosk.views import HelpView, RatingChoice, ThanksView, View

if TYPE_CHECKING:
    from kiosk.screen import Screen

STRIP = 84                      # the strip's height, in 800x480 units
TILE = {"good": (20, 83, 45), "ok": (46, 52, 64), "bad": (110, 30, 30)}   # white on each: 9.1, 12.5, 11.3 : 1
WORDS = {"good": ("Hài lòng", "Satisfied"), "ok": ("Bình thường", "Neutral"),
         "bad": ("Chưa hài lòng", "Not satisfied")}
ASK = ("Đánh giá", "Rate us")
THANKS = ("Cảm ơn Ông/Bà đã đánh giá!", "Thank you for your rating!")
THANKS_LINKED = ("Ý kiến được ghi cho lượt giải quyết hôm nay", "It counts for today's visit")
HELP = ("Nhân viên sẽ đến hỗ trợ Ông/Bà ngay", "A member of staff is coming to help you")
HELP_WAIT = ("Xin vui lòng chờ tại đây", "Please wait here")


def strip_height(screen: Screen, view: View) -> int:
    """The px the rating strip takes under ``view`` (0: a view without rating buttons)."""
    return screen._px(STRIP) if getattr(view, "ratings", ()) else 0


def draw_strip(screen: Screen, ratings: tuple[RatingChoice, ...], bottom_px: int) -> None:
    """The rating buttons' labels in a dark band ending at ``bottom_px``: what each physical button means."""
    surface = screen._surface
    w = surface.get_width()
    height = screen._px(STRIP)
    top = bottom_px - height
    pygame.draw.rect(surface, HEADER, (0, top, w, height))
    gap, ask_w = screen._px(8), screen._px(118)
    screen._text(ASK[0], 20, (screen._px(14), top + height // 2 - screen._px(2)), bold=True, anchor="bottomleft",
                 max_width_px=ask_w - screen._px(14))
    screen._text(ASK[1], 15, (screen._px(14), top + height // 2 + screen._px(2)), anchor="topleft",
                 max_width_px=ask_w - screen._px(14))
    tile_w = (w - ask_w - gap * (len(ratings) + 1)) // max(1, len(ratings))
    for i, choice in enumerate(ratings):
        rect = pygame.Rect(ask_w + gap + i * (tile_w + gap), top + gap, tile_w, height - 2 * gap)
        pygame.draw.rect(surface, TILE.get(choice.rating, TILE["ok"]), rect, border_radius=screen._px(10))
        radius = screen._px(19)
        screen._badge(choice.button, rect.left + screen._px(10), rect.centery, radius)
        left = rect.left + screen._px(20) + 2 * radius
        vi, en = WORDS.get(choice.rating, (choice.rating, choice.rating))
        screen._text(vi, 21, (left, rect.centery + screen._px(1)), bold=True, anchor="bottomleft",
                     max_width_px=rect.right - left - screen._px(8))
        screen._text(en, 15, (left, rect.centery + screen._px(3)), anchor="topleft",
                     max_width_px=rect.right - left - screen._px(8))


def draw_thanks(screen: Screen, view: ThanksView) -> None:
    lines = [_Line(THANKS[0], 38, True), _Line(THANKS[1], 22)]
    if view.linked:
        lines += [_Line(THANKS_LINKED[0], 19, gap=24), _Line(THANKS_LINKED[1], 16)]
    screen._block(lines, 0, bottom=screen._surface.get_height() / screen._scale)


def draw_help(screen: Screen, view: HelpView) -> None:
    screen._block([_Line(HELP[0], 36, True), _Line(HELP[1], 22, colour=TEXT),
                   _Line(HELP_WAIT[0], 24, True, gap=28), _Line(HELP_WAIT[1], 18)],
                  0, bottom=screen._surface.get_height() / screen._scale)
