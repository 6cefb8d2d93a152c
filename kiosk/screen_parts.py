"""What the screen's modules share: the palette, a text line's style, a smooth disc."""
from __future__ import annotations

from dataclasses import dataclass

import pygame

# Calm, high-contrast palette: white on deep blue (contrast ~14:1), gold reserved for what matters most.
BACKGROUND = (16, 42, 67)
HEADER = (9, 27, 45)
PANEL = (30, 56, 84)
TEXT = (255, 255, 255)
SECONDARY = (208, 222, 236)      # English lines: ~11:1 on the background, ~8.8:1 on a panel
GOLD = (255, 204, 77)            # ticket number, button badges
ON_GOLD = (16, 42, 67)
WARNING = (255, 176, 59)         # "tell the staff" banner
FOOTNOTE = (196, 212, 228)       # staff notice: in its own dark band, as readable as the rest (7:1)


@dataclass(frozen=True)
class _Line:
    """One line of a text block: the text and how it looks (size in 800x480 units)."""
    text: str
    size: int
    bold: bool = False
    colour: tuple[int, int, int] = TEXT
    gap: int = 0     # extra space above, in 800x480 units


def _disc(surface: pygame.Surface, colour, centre: tuple[int, int], radius: int) -> None:
    """A filled circle with a smooth (anti-aliased) edge."""
    from pygame import gfxdraw

    x, y = centre
    gfxdraw.filled_circle(surface, x, y, radius, colour)
    gfxdraw.aacircle(surface, x, y, radius, colour)
