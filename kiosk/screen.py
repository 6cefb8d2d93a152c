"""The kiosk's screen: view models (``kiosk.views``) -> pygame pixels, and keys pressed -> names.

The views carry data; this module owns the wording (Vietnamese first, English second and smaller) and the
layout. Everything is sized for a citizen about 60 cm from a 7" 800x480 panel, no text under ``min_text_px``,
every text 7:1 against its ground (tests/test_readable.py), and scales with the real panel size.
:meth:`Screen.draw` renders off-screen and works with no display at all; the display is opened on the first
:meth:`Screen.show` (KMS/DRM fullscreen on the Pi, a window on a laptop, or ``SDL_VIDEODRIVER=dummy`` headless).

``python -m kiosk.screen --screenshots docs/images`` renders every kind of view to PNG files.
"""
from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # the banner would land in the journal on every start
import pygame  # noqa: E402  (importing pygame initialises nothing; the display opens in Screen.show)

from kiosk.display import HEADLESS_DRIVERS, open_display  # noqa: E402
from kiosk.paths import FONT_BOLD, FONT_REGULAR  # noqa: E402
from kiosk.text import wrap  # noqa: E402
from kiosk import (screen_cards, screen_notice, screen_privacy, screen_rating, screen_rules, screen_samples,  # noqa: E402
                   screen_sync, screen_views)
from kiosk.screen_parts import (BACKGROUND, GOLD, HEADER, ON_GOLD, PANEL, SECONDARY, TEXT, WARNING,  # noqa: E402,F401
                                FOOTNOTE, _disc, _Line)
from kiosk.views import (CategoryChoice, ConfirmView, ConsentView, DoneView, FailsafeView, GreetingView,  # noqa: E402
                         HelpView, IdleView, IssuingView, PrivacyView, RefusedView, SyncBanner, ThanksView, View)

log = logging.getLogger(__name__)

BASE_SIZE = (800, 480)  # the layout is designed at this size and scaled to the panel
MIN_TEXT_PX = 16        # the smallest text drawn, in panel px (README "Readable by everyone": why 16)


@dataclass(frozen=True)
class Placed:
    """One text as drawn: its words, its size in px and its line box on the frame (ink and the ground around it)."""
    text: str
    px: int
    box: pygame.Rect

class Screen:
    """Draws view models and reads the keyboard.

    ``size`` is the drawing size (and the window size); with ``fullscreen=True`` the panel's own resolution is
    used instead. Fonts are cached per size, and :meth:`show` redraws only when the view changed, so the loop
    may call it every turn.

    Example::

        screen = Screen((800, 480))
        screen.show(IdleView(office="UBND phường", categories=()))
        keys = screen.poll()      # e.g. ["1"], ["quit"]
        screen.close()
    """

    def __init__(self, size: tuple[int, int] = BASE_SIZE, *, fullscreen: bool = False,
                 font_path: Path | str = FONT_REGULAR, bold_font_path: Path | str = FONT_BOLD,
                 min_text_px: int = MIN_TEXT_PX):
        self.size = (int(size[0]), int(size[1]))
        self.min_text_px = int(min_text_px)      # no text is drawn smaller, whatever the layout asks
        if self.size[0] < 160 or self.size[1] < 96:
            raise ValueError(f"screen size {self.size} is too small to be read")
        self.fullscreen = fullscreen
        self.font_paths = {False: Path(font_path), True: Path(bold_font_path)}
        for path in self.font_paths.values():
            if not path.is_file():
                raise FileNotFoundError(f"screen font not found: {path}")
        self._fonts: dict[tuple[bool, int], pygame.font.Font] = {}
        self._coverage_fonts: dict[bool, pygame.freetype.Font] = {}
        self._display: pygame.Surface | None = None
        self._driver = ""
        self._frame: pygame.Surface | None = None
        self._frame_view: tuple[View, SyncBanner | None] | None = None
        self._shown_view: tuple[View, SyncBanner | None] | None = None
        self._texts: list[tuple[str, int]] = []
        self._placed: list[Placed] = []
        self._warned_missing: set[str] = set()
        # Every string the last draw() put on screen with its pixel size, in drawing order: what a citizen
        # could read, for tests and for the glyph check.
        self.drawn: tuple[tuple[str, int], ...] = ()
        # The same texts with where they landed and their ink: the readability test measures each from the pixels.
        self.placed: tuple[Placed, ...] = ()

    # ------------------------------------------------------------------ public API

    def draw(self, view: View, overlay: SyncBanner | None = None) -> pygame.Surface:
        """Render ``view`` to an off-screen surface of :attr:`size` and return it (no display needed).

        ``overlay`` (the USB sync banner) takes a band at the bottom; the view is laid out above it.
        """
        if not pygame.font.get_init():
            pygame.font.init()
        surface = pygame.Surface(self.size)
        self._scale = min(self.size[0] / BASE_SIZE[0], self.size[1] / BASE_SIZE[1])
        self._texts, self._placed = [], []
        surface.fill(BACKGROUND)
        self._surface = surface
        band = screen_sync.band_height(self, overlay) if overlay is not None else 0
        strip = screen_rating.strip_height(self, view)      # the rating buttons' labels, above the banner
        self._surface = surface.subsurface((0, 0, self.size[0], self.size[1] - band - strip)) if band or strip \
            else surface
        if isinstance(view, IdleView):
            screen_views.draw_idle(self, view)
        elif isinstance(view, GreetingView):
            screen_cards._draw_greeting(self, view)
        elif isinstance(view, ConfirmView):
            screen_cards._draw_confirm(self, view)
        elif isinstance(view, ConsentView):
            screen_views.draw_consent(self, view)
        elif isinstance(view, IssuingView):
            screen_views.draw_issuing(self, view)
        elif isinstance(view, DoneView):
            screen_views.draw_done(self, view)
        elif isinstance(view, FailsafeView):
            screen_views.draw_failsafe(self, view)
        elif isinstance(view, PrivacyView):
            screen_privacy.draw_privacy(self, view)
        elif isinstance(view, RefusedView):
            screen_rules.draw_refused(self, view)
        elif isinstance(view, ThanksView):
            screen_rating.draw_thanks(self, view)
        elif isinstance(view, HelpView):
            screen_rating.draw_help(self, view)
        else:
            raise TypeError(f"the screen cannot draw {type(view).__name__}")
        self._surface = surface
        if strip and isinstance(view, (IdleView, GreetingView)):
            screen_rating.draw_strip(self, view.ratings, self.size[1] - band)
        if overlay is not None:
            screen_sync.draw_banner(self, overlay, band)
        self.drawn = tuple(self._texts)
        self.placed = tuple(self._placed)
        self._check_glyphs(self.drawn_text)
        self._frame, self._frame_view = surface, (view, overlay)
        return surface

    @property
    def drawn_text(self) -> tuple[str, ...]:
        """The strings of :attr:`drawn`."""
        return tuple(text for text, _ in self.drawn)

    def show(self, view: View, overlay: SyncBanner | None = None) -> None:
        """Draw ``view`` (and the banner over it; only if either changed since the last call) and display it."""
        if self._display is None:
            self._open_display()
        elif (view, overlay) == self._shown_view:
            return
        if (view, overlay) != self._frame_view or self._frame is None:
            self.draw(view, overlay)
        assert self._display is not None and self._frame is not None   # opened and drawn just above
        self._display.blit(self._frame, (0, 0))
        pygame.display.flip()
        self._shown_view = (view, overlay)

    def save_png(self, path: Path | str) -> Path:
        """Write the last drawn frame to ``path`` as PNG."""
        if self._frame is None:
            raise RuntimeError("nothing drawn yet: call draw() or show() before save_png()")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self._frame, str(path))
        return path

    def poll(self) -> list[str]:
        """Names of the keys pressed since the last poll ("1", "y", "escape", ...); "quit" for the close button."""
        if self._display is None or not pygame.display.get_init():
            return []
        keys: list[str] = []
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                keys.append("quit")
            elif event.type == pygame.KEYDOWN:
                name = pygame.key.name(event.key)
                if len(name) == 3 and name[0] == "[" and name[2] == "]":
                    name = name[1]                      # keypad "[1]" -> "1"
                if name:
                    keys.append(name)
            elif event.type in (pygame.VIDEOEXPOSE, pygame.WINDOWEXPOSED):
                self._shown_view = None                 # the window was uncovered: blit again on the next show
        return keys

    def close(self) -> None:
        """Close the display (if it was opened) and drop cached fonts."""
        if self._display is not None:
            pygame.display.quit()
            self._display = None
        self._fonts.clear()
        self._coverage_fonts.clear()
        self._shown_view = None

    def __enter__(self) -> "Screen":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def missing_glyphs(self, text: str, *, bold: bool = False) -> set[str]:
        """Characters of ``text`` that the font cannot draw (they would show as empty boxes, "tofu")."""
        import pygame.freetype  # pygame.font reports a missing glyph with the box's metrics; freetype says None

        font = self._coverage_fonts.get(bold)
        if font is None:
            if not pygame.freetype.get_init():
                pygame.freetype.init()
            font = self._coverage_fonts[bold] = pygame.freetype.Font(str(self.font_paths[bold]), 16)
        chars = sorted({c for c in text if not c.isspace()})
        return {c for c, m in zip(chars, font.get_metrics("".join(chars))) if m is None}

    # ------------------------------------------------------------------ display

    def open(self) -> None:
        """Open the display now (``kiosk run`` does, before it reports ready); raises ``DisplayError``."""
        if self._display is None:
            self._open_display()

    @property
    def needs_polling(self) -> bool:
        """Whether pygame's event queue can hold anything (a window, or keys under KMS/DRM); not so headless."""
        return self._display is not None and self._driver not in HEADLESS_DRIVERS

    def _open_display(self) -> None:
        display, self._driver = open_display(self.size, fullscreen=self.fullscreen)
        self._display = display
        pygame.display.set_caption("Queue kiosk")
        if self.fullscreen:
            pygame.mouse.set_visible(False)
            if display.get_size() != self.size:
                log.info("screen: panel is %dx%d (configured %dx%d); drawing at the panel size",
                         *display.get_size(), *self.size)
                self.size = display.get_size()
                self._frame = self._frame_view = None
        log.info("screen: %s display %dx%d via %s", "fullscreen" if self.fullscreen else "window",
                 *display.get_size(), self._driver)

    # ------------------------------------------------------------------ drawing helpers

    def _px(self, units: float) -> int:
        return max(1, round(units * self._scale))

    def _text_px(self, size: int) -> int:
        """A text size in px: the layout's size scaled to the panel, never below the configured minimum."""
        return max(self._px(size), self.min_text_px)

    def _font(self, size: int, bold: bool = False) -> pygame.font.Font:
        px = self._text_px(size)
        font = self._fonts.get((bold, px))
        if font is None:
            font = self._fonts[(bold, px)] = pygame.font.Font(str(self.font_paths[bold]), px)
        return font

    def _render(self, text: str, size: int, bold: bool, colour) -> pygame.Surface:
        if text.strip():
            self._texts.append((text, self._text_px(size)))
        return self._font(size, bold).render(text, True, colour)

    def _place(self, image: pygame.Surface, rect: pygame.Rect, text: str, px: int) -> None:
        """Blit a rendered text and remember where it went (for the readability check)."""
        self._surface.blit(image, rect)
        if text.strip():
            self._placed.append(Placed(text, px, rect.clip(self._surface.get_rect())))

    def _fit_size(self, text: str, size: int, bold: bool, width_px: int, *, minimum: int = 12) -> int:
        """The largest size <= ``size`` at which ``text`` fits on one line of ``width_px``."""
        while size > minimum and self._font(size, bold).size(text)[0] > width_px:
            size -= 1 if size < 24 else max(2, size // 12)
        return max(size, minimum)

    def _ellipsize(self, text: str, size: int, bold: bool, width_px: int) -> str:
        """``text`` cut short with "…" if even the smallest size does not fit (the last resort)."""
        font = self._font(size, bold)
        if font.size(text)[0] <= width_px:
            return text
        while text and font.size(text.rstrip() + "…")[0] > width_px:
            text = text[:-1]
        return text.rstrip() + "…"

    def _wrap(self, text: str, size: int, bold: bool, width_px: int) -> list[str]:
        """Break ``text`` into lines no wider than ``width_px`` (at spaces; inside a word only if it must)."""
        font = self._font(size, bold)
        return wrap(text, lambda s: font.size(s)[0], width_px)

    def _block(self, lines: Sequence[_Line], top: float, *, left: float | None = None,
               width: float | None = None, bottom: float | None = None) -> int:
        """Draw wrapped lines from ``top`` (units), centred (or left-aligned at ``left``); returns the bottom px.

        With ``bottom`` the block is centred vertically between ``top`` and ``bottom`` instead.
        """
        surface = self._surface
        x0 = self._px(left) if left is not None else 0
        width_px = self._px(width) if width is not None else surface.get_width() - x0 - self._px(32)
        placed: list[tuple[str, _Line, int]] = []   # (text, style, y offset in px)
        y = 0
        for item in lines:
            y += self._px(item.gap) if item.gap else 0
            for text in self._wrap(item.text, item.size, item.bold, width_px):
                placed.append((text, item, y))
                y += self._font(item.size, item.bold).get_linesize()
        origin = self._px(top)
        if bottom is not None:
            origin += max(0, (self._px(bottom) - origin - y) // 2)
        for text, item, offset in placed:
            image = self._render(text, item.size, item.bold, item.colour)
            x = x0 if left is not None else (surface.get_width() - image.get_width()) // 2
            self._place(image, image.get_rect(topleft=(x, origin + offset)), text, self._text_px(item.size))
        return origin + y

    def _text(self, text: str, size: int, pos_px: tuple[int, int], *, bold: bool = False, colour=TEXT,
              anchor: str = "topleft", max_width_px: int | None = None) -> pygame.Rect:
        if max_width_px is not None:
            size = self._fit_size(text, size, bold, max_width_px)
            text = self._ellipsize(text, size, bold, max_width_px)
        image = self._render(text, size, bold, colour)
        rect = image.get_rect(**{anchor: pos_px})
        self._place(image, rect, text, self._text_px(size))
        return rect

    def _header(self, title: str) -> int:
        """A dark bar with ``title`` (office or chosen service); returns its height in px."""
        height = self._px(52)
        pygame.draw.rect(self._surface, HEADER, (0, 0, self._surface.get_width(), height))
        self._text(title, 22, (self._px(24), height // 2), bold=True, anchor="midleft",
                   max_width_px=self._surface.get_width() - self._px(48))
        return height

    def _footer(self, text: str | None) -> int:
        """The staff notice at the bottom (kiosk.screen_notice); returns the px it takes (0 when there is none)."""
        return screen_notice.draw_footer(self, text) if text else 0

    def _badge(self, label: str, left: int, centre_y: int, radius: int) -> pygame.Rect:
        """A gold disc with the button's label, the thing to look for on the physical button; a pill when the label
        is a word ("Đồng ý") too wide for the disc. Returns the badge's rectangle."""
        size = self._fit_size(label, round(radius * 1.2 / self._scale), True, int(radius * 1.5), minimum=10)
        width = max(2 * radius, self._font(size, True).size(label)[0] + radius)
        rect = pygame.Rect(left, centre_y - radius, width, 2 * radius)
        if width == 2 * radius:
            _disc(self._surface, GOLD, rect.center, radius)
        else:
            pygame.draw.rect(self._surface, GOLD, rect, border_radius=radius)
        self._text(label, size, rect.center, bold=True, colour=ON_GOLD, anchor="center")
        return rect

    def _banner(self, vi: str, en: str, top_px: int, *, colour=WARNING) -> int:
        """A full-width coloured band with a bilingual message; returns its bottom px."""
        w = self._surface.get_width()
        margin = self._px(24)
        inner = w - 4 * margin
        vi_size = self._fit_size(vi, 24, True, inner)
        en_size = self._fit_size(en, 17, False, inner)
        height = self._font(vi_size, True).get_linesize() + self._font(en_size).get_linesize() + self._px(16)
        rect = pygame.Rect(margin, top_px, w - 2 * margin, height)
        pygame.draw.rect(self._surface, colour, rect, border_radius=self._px(12))
        y = rect.top + self._px(8)
        self._text(vi, vi_size, (rect.centerx, y), bold=True, colour=ON_GOLD, anchor="midtop")
        y += self._font(vi_size, True).get_linesize()
        self._text(en, en_size, (rect.centerx, y), colour=ON_GOLD, anchor="midtop")
        return rect.bottom

    def _categories(self, categories: Sequence[CategoryChoice], top_px: int, bottom_px: int) -> None:
        """The service categories as cards: button badge, Vietnamese name big, English small."""
        if not categories:
            self._block([_Line("Chưa cấu hình lĩnh vực nào", 24, True),
                         _Line("No service categories configured", 17, colour=SECONDARY)],
                        top_px / self._scale + 10)
            return
        w = self._surface.get_width()
        margin, gap = self._px(24), self._px(10)
        columns = 1 if len(categories) <= 3 else 2
        rows = -(-len(categories) // columns)
        cell_w = (w - 2 * margin - (columns - 1) * gap) // columns
        cell_h = min(self._px(84), (bottom_px - top_px - (rows - 1) * gap) // rows)
        grid_h = rows * cell_h + (rows - 1) * gap
        top_px += max(0, (bottom_px - top_px - grid_h) // 2)
        for i, choice in enumerate(categories):
            row, col = (i % rows, i // rows) if columns > 1 else (i, 0)   # fill columns top to bottom
            rect = pygame.Rect(margin + col * (cell_w + gap), top_px + row * (cell_h + gap), cell_w, cell_h)
            pygame.draw.rect(self._surface, PANEL, rect, border_radius=self._px(12))
            radius = min(rect.height * 38 // 100, self._px(30))
            self._badge(choice.button, rect.left + self._px(14), rect.centery, radius)
            text_left = rect.left + self._px(28) + 2 * radius
            text_w = rect.right - text_left - self._px(12)
            en_size = self._fit_size(choice.name_en, min(18, round(cell_h * 0.24 / self._scale)), False, text_w)
            en_h = self._font(en_size).get_linesize()
            vi_size, vi_lines = self._fit_lines(choice.name_vi, min(30, round(cell_h * 0.40 / self._scale)), True,
                                                text_w, rect.height - en_h - self._px(14))
            vi_h = self._font(vi_size, True).get_linesize()
            y = rect.centery - (vi_h * len(vi_lines) + en_h) // 2
            for line in vi_lines:
                self._text(line, vi_size, (text_left, y), bold=True)
                y += vi_h
            status = choice.status_vi and screen_rules.tile_status(self, choice, en_size, text_w)
            self._text(status or choice.name_en, en_size, (text_left, y), colour=GOLD if status else SECONDARY,
                       max_width_px=text_w)

    def _fit_lines(self, text: str, size: int, bold: bool, width_px: int, height_px: int) -> tuple[int, list[str]]:
        """The largest size <= ``size`` at which ``text`` fits the box on one line, or on two balanced lines."""
        one_line = self._fit_size(text, size, bold, width_px)
        words = text.split()
        if one_line >= size * 0.75 or len(words) < 2:
            return one_line, [text]
        for candidate in range(size, one_line - 1, -1):
            font = self._font(candidate, bold)
            # Break where the longer of the two lines is shortest: "Lao động – Thương / binh và Xã hội".
            lines = min(([" ".join(words[:i]), " ".join(words[i:])] for i in range(1, len(words))),
                        key=lambda pair: max(font.size(pair[0])[0], font.size(pair[1])[0]))
            fits_height = 2 * font.get_linesize() <= height_px
            squeezed = candidate == one_line and font.size(text)[0] > width_px    # one line would run past the card
            if max(font.size(line)[0] for line in lines) <= width_px and (fits_height or squeezed):
                return candidate, lines
        return one_line, [text]

    def _category_title(self, category: CategoryChoice) -> str:
        return f"{category.name_vi} · {category.name_en}"

    # ------------------------------------------------------------------ checks

    def _check_glyphs(self, texts: Sequence[str]) -> None:
        """Log once per character that the font cannot draw (an office name typed with an odd character)."""
        missing = set().union(*(self.missing_glyphs(t) for t in texts)) - self._warned_missing
        if missing:
            self._warned_missing |= missing
            log.warning("screen: the font has no glyph for %s", " ".join(f"U+{ord(c):04X}" for c in sorted(missing)))


# ---------------------------------------------------------------------- screenshots

def save_screenshots(out_dir: Path | str, size: tuple[int, int] = BASE_SIZE) -> list[Path]:
    """Render every sample view to ``out_dir/screen-<kind>.png``."""
    screen = Screen(size)
    written = []
    try:
        for kind, view in screen_samples.sample_views().items():
            screen.draw(view)
            written.append(screen.save_png(Path(out_dir) / f"screen-{kind}.png"))
        for kind, banner in screen_sync.sample_banners().items():    # the USB banner over the idle screen
            screen.draw(screen_samples.sample_views()["idle"], banner)
            written.append(screen.save_png(Path(out_dir) / f"screen-{kind}.png"))
    finally:
        screen.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.screen", description=__doc__.splitlines()[0])
    parser.add_argument("--screenshots", metavar="DIR", type=Path, required=True,
                        help="write screen-<kind>.png for every kind of view into DIR")
    parser.add_argument("--size", default="800x480", help="drawing size, WIDTHxHEIGHT (default 800x480)")
    args = parser.parse_args(argv)
    try:
        width, height = (int(part) for part in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must look like 800x480, not {args.size!r}")
    for path in save_screenshots(args.screenshots, (width, height)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
