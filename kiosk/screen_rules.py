"""The screens of the office's rules (issue 13): a service that gives no ticket now, and the issuing screen's
moment for the priority button.

Functions of a :class:`kiosk.screen.Screen` (its first argument), drawn with its own helpers like the other
screen modules. The refusal's main sentence comes whole from the view (kiosk/rules.py words it), so what is
shown and what is read aloud are the same text.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from kiosk.screen_parts import SECONDARY, _Line
from kiosk.views import CategoryChoice, IdleView, IssuingView, RefusedView, View

if TYPE_CHECKING:
    from kiosk.screen import Screen


def draw_refused(screen: Screen, view: RefusedView) -> None:
    top = screen._header(screen._category_title(view.category))
    title = ("Hết số hôm nay", "No more numbers today") if view.reason == "full" else \
        ("Chưa nhận hồ sơ lúc này", "Not taking applications now")
    y = screen._banner(*title, top + screen._px(14))
    w = screen._surface.get_width() - 2 * screen._px(36)
    lines = [_Line(line, 26, True, gap=12 if i == 0 else 0) for i, line in enumerate(screen._wrap(
        view.sentence, 26, True, w))]
    lines += [_Line(line, 18, colour=SECONDARY, gap=12 if i == 0 else 0) for i, line in enumerate(screen._wrap(
        view.sentence_en, 18, False, w))]
    lines.append(_Line("Không có phiếu nào được in · No ticket was printed", 16, colour=SECONDARY, gap=18))
    screen._block(lines, y / screen._scale)


def tile_status(screen: Screen, choice: CategoryChoice, size: int, width_px: int) -> str:
    """A tile's reason in both languages when it fits at its size, else in Vietnamese only."""
    both = f"{choice.status_vi} · {choice.status_en}"
    return both if screen._fit_size(both, size, False, width_px) >= size else str(choice.status_vi)


def issuing_lines(view: IssuingView) -> list[_Line]:
    """The issuing screen's extra lines: a priority ticket coming, or the moment left for the priority button."""
    if view.priority:
        return [_Line("Phiếu ưu tiên · Priority ticket", 22, True, gap=12)]
    if view.priority_button is not None:
        return [_Line(f"Người cao tuổi, khuyết tật, phụ nữ mang thai: bấm {view.priority_button} · Ưu tiên", 18,
                      True, gap=12),
                _Line(f"Priority (elderly, disabled, pregnant): press {view.priority_button}", 15,
                      colour=SECONDARY)]
    return []


def sample_views(office: str, categories: tuple[CategoryChoice, ...]) -> dict[str, View]:
    """The rules' screens for screenshots and tests: tiles that say why, a refusal, the priority moment."""
    from kiosk.rules import Rules, full_refusal, parse_rules

    keys = [c.key for c in categories]
    rules: Rules = parse_rules({"hours": {"tue": ["07:30-11:30", "13:30-17:00"]}}, keys, "kiosk-01")
    noon = datetime(2026, 12, 1, 12, 10)              # a Tuesday, between the morning and the afternoon
    afternoon = rules.refusal(categories[1].key, categories[1].name_vi, categories[1].name_en, noon, taken=0,
                              taken_office=0, closed=False)
    assert afternoon is not None
    full = full_refusal(categories[2].name_vi, categories[2].name_en)
    why = {categories[1].key: afternoon, categories[2].key: full}
    tiles = tuple(replace(c, status_vi=why[c.key].tile_vi, status_en=why[c.key].tile_en) if c.key in why else c
                  for c in categories)
    return {
        "idle-rules": IdleView(office, tiles),
        "refused-closed": RefusedView(categories[1], "closed", afternoon.sentence_vi, afternoon.sentence_en),
        "refused-full": RefusedView(categories[2], "full", full.sentence_vi, full.sentence_en),
        "issuing-priority": IssuingView(categories[0], priority_button="U"),
    }
