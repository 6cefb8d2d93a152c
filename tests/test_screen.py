"""The screen: every view renders off-screen, reads right in Vietnamese, and the display path works headless."""
from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"   # before pygame opens any display: tests never open a window
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from pathlib import Path  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from kiosk import screen as screen_module  # noqa: E402
from kiosk.screen import GOLD, WARNING, Screen, save_screenshots  # noqa: E402
from kiosk.screen_samples import sample_views  # noqa: E402
from kiosk.views import (CategoryChoice, ConfirmView, ConsentView, DoneView, FailsafeView, GreetingView, IdleView,  # noqa: E402
                         IssuingView, PrivacyView, ThanksView, HelpView, RefusedView)

REPO = Path(__file__).resolve().parents[1]
LAND = CategoryChoice("dat-dai", "Đất đai", "Land", "2")
CATEGORIES = (CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"), LAND,
              CategoryChoice("chung-thuc", "Chứng thực", "Certification", "3"))
OFFICE = "UBND Quận Ba Đình — Bộ phận Một cửa"


@pytest.fixture
def screen():
    s = Screen((800, 480))
    yield s
    s.close()


def colour_box(surface: pygame.Surface, colour) -> pygame.Rect | None:
    """Bounding box of the pixels of exactly ``colour`` (anti-aliased edges excluded)."""
    mask = pygame.mask.from_threshold(surface, colour, (1, 1, 1, 255))
    rects = mask.get_bounding_rects()
    if not rects:
        return None
    return rects[0].unionall(rects[1:])


def test_every_view_kind_renders_without_a_display(screen):
    kinds = {type(view) for view in sample_views().values()}
    assert kinds == {IdleView, GreetingView, ConfirmView, ConsentView, IssuingView, DoneView, FailsafeView,
                     PrivacyView, ThanksView, HelpView, RefusedView}
    for kind, view in sample_views().items():
        surface = screen.draw(view)
        assert surface.get_size() == (800, 480), kind
        assert screen.drawn_text, f"{kind}: nothing written on screen"
    assert not pygame.display.get_init()


def test_vietnamese_text_has_no_tofu(screen):
    checked = set()
    for kind, view in sample_views().items():
        screen.draw(view)
        for text in screen.drawn_text:
            assert screen.missing_glyphs(text) == set(), f"{kind}: {text!r}"
            assert screen.missing_glyphs(text, bold=True) == set(), f"{kind}: {text!r}"
            checked |= set(text)
    assert {"ộ", "ạ", "ứ", "ự", "Đ", "ẽ", "ữ", "ố", "Ô"} <= checked   # the check did see the hard letters


def test_glyph_check_detects_a_missing_glyph(screen, caplog):
    assert screen.missing_glyphs("Hộ tịch 一") == {"一"}   # DejaVu Sans has no CJK
    screen.draw(IdleView("Văn phòng 一", CATEGORIES))
    assert "U+4E00" in caplog.text


def test_ticket_number_is_very_large(screen):
    surface = screen.draw(DoneView("HT-023", LAND, printed=True))
    box = colour_box(surface, GOLD)
    assert box is not None
    assert box.height >= 100 and box.width >= 400, box
    assert ("HT-023", max(size for _, size in screen.drawn)) in screen.drawn   # the biggest thing on screen


def test_ticket_number_stays_large_and_inside_when_not_printed(screen):
    surface = screen.draw(DoneView("HT-1234", LAND, printed=False))
    box = colour_box(surface, GOLD)
    assert box.height >= 90
    assert surface.get_rect().contains(box)


def test_not_printed_tells_the_staff(screen):
    printed = screen.draw(DoneView("HT-023", LAND, printed=True)).copy()
    printed_text = " ".join(screen.drawn_text)
    failed = screen.draw(DoneView("HT-023", LAND, printed=False))
    failed_text = " ".join(screen.drawn_text)
    assert "Vui lòng báo nhân viên" in failed_text and "please tell the staff" in failed_text.lower()
    assert "nhân viên" not in printed_text
    assert colour_box(failed, WARNING) is not None and colour_box(printed, WARNING) is None
    assert pygame.image.tobytes(printed, "RGB") != pygame.image.tobytes(failed, "RGB")


def test_returning_citizen_sees_only_the_masked_name(screen):
    screen.draw(GreetingView(OFFICE, CATEGORIES, masked_name="N***n V*n A", returning=True))
    assert "N***n V*n A" in screen.drawn_text
    assert any("Chào mừng quay lại" in t for t in screen.drawn_text)
    screen.draw(GreetingView(OFFICE, CATEGORIES))
    assert "Xin chào!" in screen.drawn_text
    assert not any("quay lại" in t or "*" in t for t in screen.drawn_text)


def test_returning_without_a_name_is_welcomed_back(screen):
    screen.draw(GreetingView(OFFICE, CATEGORIES, returning=True))
    assert "Chào mừng quay lại!" in screen.drawn_text


@pytest.mark.parametrize("hint, english", [("look_at_camera", "Please look at the camera"),
                                           ("come_closer", "Please come a little closer"),
                                           ("one_at_a_time", "One person at a time, please")])
def test_greeting_shows_the_recognizer_hint(screen, hint, english):
    screen.draw(GreetingView(OFFICE, CATEGORIES, hint=hint))
    assert english in screen.drawn_text


def test_unknown_hint_is_ignored_not_fatal(screen):
    screen.draw(GreetingView(OFFICE, CATEGORIES, hint="dance"))
    assert "Xin chào!" in screen.drawn_text


def test_categories_show_button_vietnamese_big_english_small(screen):
    screen.draw(IdleView(OFFICE, CATEGORIES))
    sizes = dict(screen.drawn)
    for choice in CATEGORIES:
        assert choice.button in sizes
        assert sizes[choice.name_vi] > sizes[choice.name_en]
    assert sizes[OFFICE] < sizes["Xin mời lấy số thứ tự"]


def test_consent_says_what_is_stored_the_yes_button_and_the_countdown(screen):
    first = screen.draw(ConsentView(LAND, seconds_left=12, consent_button="Y")).copy()
    text = " ".join(screen.drawn_text)
    for needle in ("không lưu ảnh", "never a photo", "nhạy cảm", "Rút lại", "Withdraw any time", "Nhấn nút Y để ĐỒNG Ý",
                   "Press Y to agree", "KHÔNG đồng ý", "No answer means no", "12"):
        assert needle in text, needle
    later = screen.draw(ConsentView(LAND, seconds_left=11, consent_button="Y"))
    assert "11" in screen.drawn_text
    assert pygame.image.tobytes(first, "RGB") != pygame.image.tobytes(later, "RGB")


def test_issuing_and_failsafe_wording(screen):
    screen.draw(IssuingView(LAND))
    assert "Printing your ticket…" in screen.drawn_text
    screen.draw(FailsafeView("store: disk full"))
    text = " ".join(screen.drawn_text)
    assert "Xin lỗi!" in text and "Back in a few seconds." in text and "Tickets already issued remain valid." in text


def test_staff_notice_is_discreet(screen):
    screen.draw(IdleView(OFFICE, CATEGORIES, notice="printer offline"))
    sizes = dict(screen.drawn)
    notice = next(t for t in sizes if "printer offline" in t)
    assert sizes[notice] < sizes["Please take a queue number"]
    screen.draw(IdleView(OFFICE, CATEGORIES))
    assert not any("printer offline" in t for t in screen.drawn_text)


def test_long_text_stays_inside_the_screen(screen):
    """Text is wrapped or shrunk to the width: the 8 px side margins hold nothing but background."""
    long = CategoryChoice("ld", "Lao động – Thương binh và Xã hội và nhiều thủ tục khác nữa",
                          "Labour, Invalids and Social Affairs and many other procedures", "6")
    views = [*sample_views().values(),
             IdleView("Ủy ban nhân dân phường có tên rất dài — Bộ phận tiếp nhận và trả kết quả một cửa liên thông",
                      (*CATEGORIES, long), notice="máy in ngoại tuyến; giấy sắp hết; camera không phản hồi " * 3),
             GreetingView(OFFICE, (long,), masked_name="N***n T*i Thị Ph***g Th**o Nguyên Hồng Ánh", returning=True),
             DoneView("HT-123456789", long, printed=False)]
    for view in views:
        surface = screen.draw(view)
        background = {screen_module.BACKGROUND, screen_module.HEADER}
        for x in (*range(0, 8), *range(792, 800)):
            column = {tuple(surface.get_at((x, y)))[:3] for y in range(0, 480, 2)}
            assert column <= background, (type(view).__name__, x, column - background)


def test_draw_scales_to_another_panel():
    big = Screen((1024, 600))
    try:
        surface = big.draw(DoneView("HT-023", LAND, printed=True))
        assert surface.get_size() == (1024, 600)
        assert colour_box(surface, GOLD).height >= 125
    finally:
        big.close()


def test_show_redraws_only_when_the_view_changes(screen, monkeypatch):
    drawn = []
    real_draw = screen.draw
    monkeypatch.setattr(screen, "draw", lambda view, overlay=None: drawn.append(view) or real_draw(view, overlay))
    idle = IdleView(OFFICE, CATEGORIES)
    screen.show(idle)
    screen.show(IdleView(OFFICE, CATEGORIES))   # equal, not identical
    screen.show(idle)
    assert drawn == [idle]
    assert pygame.display.get_surface().get_size() == (800, 480)
    issuing = IssuingView(LAND)
    screen.show(issuing)
    assert drawn == [idle, issuing]
    shown = pygame.display.get_surface()
    assert shown.get_at((400, 240)) == screen.draw(issuing).get_at((400, 240))
    from kiosk.views import SyncBanner

    screen.show(issuing, SyncBanner("not_kiosk"))    # the USB banner came: drawn again, once
    screen.show(issuing, SyncBanner("not_kiosk"))
    assert drawn == [idle, issuing, issuing, issuing]   # (the check above drew it once by hand)


def test_poll_reports_keys_and_quit(screen):
    assert screen.poll() == []               # no display yet: nothing to read
    screen.show(IdleView(OFFICE, CATEGORIES))
    screen.poll()                            # drop whatever the dummy driver queued on opening
    for key in (pygame.K_1, pygame.K_y, pygame.K_KP3, pygame.K_ESCAPE):
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=pygame.K_1, mod=0, unicode="", scancode=0))
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert screen.poll() == ["1", "y", "3", "escape", "quit"]
    assert screen.poll() == []
    screen.close()
    assert screen.poll() == []
    assert not pygame.display.get_init()


def test_save_png_writes_the_last_frame(screen, tmp_path):
    with pytest.raises(RuntimeError, match="nothing drawn"):
        screen.save_png(tmp_path / "x.png")
    surface = screen.draw(DoneView("HT-023", LAND, printed=True))
    path = screen.save_png(tmp_path / "sub" / "done.png")
    image = Image.open(path)
    assert image.size == (800, 480)
    assert image.convert("RGB").getpixel((5, 100)) == tuple(surface.get_at((5, 100)))[:3]


def test_screenshots_cover_every_kind(tmp_path):
    written = save_screenshots(tmp_path)
    from kiosk.screen_sync import sample_banners

    kinds = [*sample_views(), *sample_banners()]
    assert sorted(p.name for p in written) == sorted(f"screen-{kind}.png" for kind in kinds)
    assert all(Image.open(p).size == (800, 480) for p in written)


def test_readme_screenshots_are_committed():
    missing = [kind for kind in sample_views() if not (REPO / "docs" / "images" / f"screen-{kind}.png").is_file()]
    assert not missing, f"run: python -m kiosk.screen --screenshots docs/images (missing {missing})"


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nofont.ttf"):
        Screen(font_path=tmp_path / "nofont.ttf")
    with pytest.raises(ValueError, match="too small"):
        Screen((100, 50))
    with pytest.raises(TypeError, match="str"):
        Screen().draw("idle")


def test_still_printing_shows_the_number_without_alarming_anyone(screen):
    surface = screen.draw(DoneView("HT-023", LAND, printed=None))
    text = " ".join(screen.drawn_text)
    assert "Đang in phiếu…" in text and "nhân viên" not in text
    assert colour_box(surface, WARNING) is None and colour_box(surface, GOLD).height >= 100


# -- who the citizen is: card, "is this you?", show your card ---------------------------------------------------
def test_card_read_greets_with_the_honorific_and_the_masked_name_only(screen):
    screen.draw(GreetingView(OFFICE, CATEGORIES, masked_name="L* T*ị C*c", honorific="bà", returning=True,
                             card="ok"))
    text = screen.drawn_text
    assert "Chào bà," in text and "L* T*ị C*c" in text and "Đã đọc thẻ" in text and "Card read" in text
    assert not any("Lê Thị Cúc" in t for t in text)


def test_an_unreadable_card_is_said_plainly(screen):
    screen.draw(GreetingView(OFFICE, CATEGORIES, card="invalid"))
    assert any("Không đọc được thẻ" in t for t in screen.drawn_text)
    assert any("could not be read" in t for t in screen.drawn_text)


def test_a_face_proposal_asks_is_this_you_with_the_consent_button(screen):
    surface = screen.draw(GreetingView(OFFICE, CATEGORIES, masked_name="N****n V*n A*", honorific="ông",
                                       proposal=True, consent_button="Y"))
    assert "Đúng là Ông N****n V*n A*?" in screen.drawn_text
    assert "Nhấn nút Y (Đồng ý) nếu đúng" in screen.drawn_text
    assert colour_box(surface, GOLD).width > 600            # the answer is a gold band across the screen


def test_unsure_face_is_shown_where_to_hold_the_card(screen):
    plain = screen.draw(GreetingView(OFFICE, CATEGORIES)).copy()
    surface = screen.draw(GreetingView(OFFICE, CATEGORIES, ask_card=True))
    text = " ".join(screen.drawn_text)
    assert "Vui lòng đưa thẻ CCCD" in text and "ID card" in text
    outline = colour_box(surface, GOLD)
    assert outline is not None and outline.right > 700 and outline.top < 120     # the card outline, top right
    assert colour_box(plain, GOLD).top > outline.top                             # only when asking for the card


def test_confirm_screen_counts_down_and_says_no_answer_means_unlinked(screen):
    screen.draw(ConfirmView(CATEGORIES[0], "N****n V*n A*", None, seconds_left=7, consent_button="Y"))
    text = screen.drawn_text
    assert "Đúng là Ông/Bà N****n V*n A*?" in text and "7" in text
    assert any("không gắn với ai" in t for t in text)
