"""The USB sync banner (kiosk.stickwatch): a band at the bottom of the screen, drawn over any view.

Functions of a :class:`kiosk.screen.Screen` (its first argument), like kiosk.screen_cards. The view above keeps
working: a citizen can still read the categories and take a ticket while a stick is being written.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pygame

from kiosk.screen_parts import GOLD, HEADER, ON_GOLD, PANEL, SECONDARY, TEXT, WARNING, _Line
from kiosk.views import SyncBanner

if TYPE_CHECKING:
    from kiosk.screen import Screen

DONE = (120, 205, 150)           # green band: the stick may go
BAND = 104                       # the band's least height, in 800x480 units
DETAIL = 13                      # the detail line's size (the screen's minimum text size wins when larger)

WORKING = {
    "mount": ("Đang mở USB…", "Opening the USB stick…"),
    "export": ("Đang ghi dữ liệu ra USB — xin đừng rút", "Copying to the USB stick — please do not remove it"),
    "import": ("Đang đọc hồ sơ của văn phòng từ USB", "Reading the office's files from the stick"),
    "unmount": ("Đang đóng USB…", "Closing the USB stick…"),
}
DONE_TEXT = ("Có thể rút USB", "You may remove the stick")
NOT_KIOSK = ("USB không dùng cho kiosk", "This stick is not for the kiosk")
PULLED = ("USB bị rút ra giữa chừng — dữ liệu không mất",
          "The stick was pulled out: nothing is lost, the next export sends it again")
ERROR = ("Lỗi USB — dữ liệu trên kiosk không mất", "USB stick problem: nothing on the kiosk is lost")


def band_height(screen: Screen, banner: SyncBanner) -> int:
    """The band's height in px: BAND, or more when the detail wraps onto further lines (it is never cut)."""
    vi, en = wording(banner)
    detail = detail_line(banner)
    width = screen._surface.get_width() - 2 * screen._px(20)
    needed = screen._px(10) + screen._font(21, True).get_linesize() + screen._font(15).get_linesize() + screen._px(4)
    if banner.stage == "working":
        needed += screen._px(20)
    if detail:
        needed += screen._font(DETAIL, False).get_linesize() * len(screen._wrap(detail, DETAIL, False, width))
    return min(max(screen._px(BAND), needed + screen._px(6)), screen._surface.get_height() // 2)


def wording(banner: SyncBanner) -> tuple[str, str]:
    """The banner's two lines, Vietnamese then English."""
    if banner.stage == "working":
        return WORKING.get(banner.step, WORKING["export"])
    if banner.stage == "done":
        return DONE_TEXT
    if banner.stage == "not_kiosk":
        return NOT_KIOSK
    return PULLED if banner.pulled else ERROR


def detail_line(banner: SyncBanner) -> str | None:
    """The small third line: bundles and counts while working, the reason when something went wrong."""
    if banner.stage == "working":
        parts = []
        if banner.to_write:
            parts.append(f"Gói {banner.written}/{banner.to_write} · bundle {banner.written} of {banner.to_write}")
        if banner.counts:
            parts.append(banner.counts)
        return " · ".join(parts) or None
    if banner.stage == "done":
        said = [p for p in (banner.counts and f"exported: {banner.counts}", banner.detail) if p]
        return " · ".join(said) or None
    return banner.detail


def draw_banner(screen: Screen, banner: SyncBanner, band: int) -> None:
    surface = screen._surface
    w, h = surface.get_size()
    top = h - band
    colour, ink = {"done": (DONE, ON_GOLD), "error": (WARNING, ON_GOLD)}.get(banner.stage, (HEADER, TEXT))
    pygame.draw.rect(surface, colour, (0, top, w, band))
    pygame.draw.rect(surface, GOLD if banner.stage == "working" else colour, (0, top, w, screen._px(3)))
    vi, en = wording(banner)
    margin = screen._px(20)
    y = top + screen._px(10)
    screen._text(vi, 21, (margin, y), bold=True, colour=ink, max_width_px=w - 2 * margin)
    y += screen._font(21, True).get_linesize()
    screen._text(en, 15, (margin, y), colour=ink if banner.stage != "working" else SECONDARY,
                 max_width_px=w - 2 * margin)
    y += screen._font(15).get_linesize() + screen._px(4)
    detail = detail_line(banner)
    if banner.stage == "working":
        bar = pygame.Rect(margin, y + screen._px(3), w - 2 * margin, screen._px(12))
        pygame.draw.rect(surface, PANEL, bar, border_radius=screen._px(6))
        filled = bar.copy()
        filled.width = max(screen._px(12), round(bar.width * min(1.0, max(0.0, banner.progress))))
        pygame.draw.rect(surface, GOLD, filled, border_radius=screen._px(6))
        y = bar.bottom + screen._px(5)
    if detail:       # wrapped, never cut: a path or an error is what a technician needs whole
        screen._block([_Line(detail, DETAIL, colour=SECONDARY if banner.stage == "working" else ink)],
                      y / screen._scale, left=margin / screen._scale, width=(w - 2 * margin) / screen._scale)


def sample_banners() -> dict[str, SyncBanner]:
    """One banner of each kind, for screenshots and tests."""
    return {
        "usb-export": SyncBanner("working", step="export", progress=0.55, written=1, to_write=2,
                                 counts="412 visits, 9 consents, 1 tombstones, 38 audit"),
        "usb-done": SyncBanner("done", progress=1.0, counts="412 visits, 9 consents"),
        "usb-not-kiosk": SyncBanner("not_kiosk"),
        "usb-error": SyncBanner("error", detail="/media/kiosk/STICK/kiosk-sync/k1/00000007.tmp: "
                                                "[Errno 28] No space left on device"),
    }
