"""The staff notice: a dark band at the bottom of the screen, Vietnamese first and English below, wrapped, never
cut short (kiosk.notices makes the text). A function of a :class:`kiosk.screen.Screen`, like kiosk.screen_cards.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pygame

from kiosk import notices
from kiosk.screen_parts import FOOTNOTE, HEADER, _Line

if TYPE_CHECKING:
    from kiosk.screen import Screen

SIZE = 16          # in 800x480 units; never below the screen's minimum text size either


def draw_footer(screen: Screen, text: str) -> int:
    """Draw the notice ``text`` at the bottom; returns the px it takes (at most half the screen)."""
    vi, en = notices.split(text)
    surface = screen._surface
    w, h = surface.get_size()
    lines = [_Line(vi, SIZE, True, colour=FOOTNOTE)] + ([_Line(en, SIZE, colour=FOOTNOTE)] if en else [])
    width = w / screen._scale - 32
    height = screen._px(8) + sum(screen._font(line.size, line.bold).get_linesize()
                                 * len(screen._wrap(line.text, line.size, line.bold, screen._px(width)))
                                 for line in lines)
    height = min(height, h // 2)          # a flood of notices keeps the upper half for the citizen
    pygame.draw.rect(surface, HEADER, (0, h - height, w, height))
    screen._block(lines, (h - height) / screen._scale + 4, left=16, width=width)
    return height
