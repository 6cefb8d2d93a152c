"""The privacy screen: a consent receipt's code (or a card) was shown, so the citizen may delete their data or
print what is kept; then what was done.

A function of a :class:`kiosk.screen.Screen` (its first argument), like ``kiosk.screen_cards``. Two physical
buttons carry the choices: the consent ("yes") button deletes, the first service button prints. Vietnamese
first, English second and smaller; a name is only ever the masked one the view carries.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from kiosk import screen_cards
from kiosk.screen_parts import SECONDARY, _Line
from kiosk.views import PrivacyView

if TYPE_CHECKING:
    from kiosk.screen import Screen

TITLE = "Dữ liệu cá nhân · Your personal data"
ANSWERS = {
    "deleted": ("Đã xoá dữ liệu của Ông/Bà. Mời nhận biên nhận xoá.",
                "Your data was deleted. Please take the deletion receipt."),
    "printed": ("Mời nhận phiếu in những gì kiosk lưu về Ông/Bà.", "Please take the slip of what the kiosk keeps."),
    "refused": ("Mã này không hợp lệ hoặc đã dùng. Không có gì thay đổi.",
                "This code is not valid or was already used. Nothing was changed."),
}


def draw_privacy(screen: Screen, view: PrivacyView) -> None:
    top = screen._header(TITLE)
    left, width = 28, 556
    if view.answer in ("deleted", "printed"):
        vi, en = ANSWERS[view.answer]
        screen._block([_Line(vi, 30, True), _Line(en, 19, colour=SECONDARY)], top / screen._scale,
                      bottom=screen._surface.get_height() / screen._scale)
        return
    if not view.identified:
        y = screen._banner(*ANSWERS["refused"], top + screen._px(14))
        screen._block([_Line("Ông/Bà có thể đưa thẻ CCCD vào camera để tiếp tục.", 22, True, gap=10),
                       _Line("You may show your CCCD card to the camera instead.", 17, colour=SECONDARY),
                       _Line("Hoặc nhấn nút lĩnh vực để lấy số thứ tự.", 20, gap=14),
                       _Line("Or press a service button for a queue number.", 16, colour=SECONDARY)],
                      y / screen._scale + 6, left=left, width=width)
        screen_cards._countdown(screen, view.seconds_left, top)
        return
    who = f"Ông/Bà {view.masked_name}" if view.masked_name else "Ông/Bà"
    y = screen._block([_Line(f"{who} muốn làm gì với dữ liệu của mình?", 26, True),
                       _Line("What would you like to do with your data?", 17, colour=SECONDARY)],
                      top / screen._scale + 10, left=left, width=width)
    panel = screen_cards._yes_panel(screen, view.delete_button, f"Nhấn nút {view.delete_button} để XOÁ dữ liệu",
                                    f"Press {view.delete_button} to DELETE your data", y, left=left, width=width)
    panel = screen_cards._yes_panel(screen, view.print_button, f"Nhấn nút {view.print_button} để IN dữ liệu lưu",
                                    f"Press {view.print_button} to PRINT what is kept", panel.bottom, left=left,
                                    width=width)
    screen._block([_Line("Không nhấn nút: không có gì thay đổi.", 18, True),
                   _Line("No button: nothing changes.", 16, colour=SECONDARY)],
                  panel.bottom / screen._scale + 12, left=left, width=width)
    screen_cards._countdown(screen, view.seconds_left, top)
