"""Readable by everyone: every text on every screen state has a contrast of at least 7:1 (WCAG AAA) against what
is around it, measured from the rendered pixels, and none is smaller than the configured minimum."""
from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import typing  # noqa: E402
from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from kiosk import notices, screen_sync  # noqa: E402
from kiosk.config import ScreenConfig  # noqa: E402
from kiosk.screen import MIN_TEXT_PX, Placed, Screen  # noqa: E402
from kiosk.views import ConfirmView, GreetingView, IdleView, SyncBanner, View  # noqa: E402
from kiosk.screen_samples import sample_views  # noqa: E402

AAA = 7.0
LONG_USB_ERROR = ("/media/kiosk/KIOSK-STICK-0042/kiosk-sync/kiosk-quan-ba-dinh-01/00000007.tmp: [Errno 5] "
                  "Input/output error while writing bundle 7 of 9 (the stick may be worn out; try another one)")


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG 2 relative luminance of sRGB colours (..., 3) in 0..255."""
    c = rgb.astype(float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def contrast(a: float, b: float) -> float:
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def measured_contrast(frame: pygame.Surface, placed: Placed) -> tuple[float, tuple, tuple]:
    """The text's contrast from the pixels of its line box: the ground is the box's commonest colour, the ink the
    commonest colour among the pixels that differ most from it (the glyphs' cores, not their anti-aliased edges)."""
    pixels = pygame.surfarray.pixels3d(frame)[placed.box.left:placed.box.right, placed.box.top:placed.box.bottom]
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    ground = colours[counts.argmax()]
    lum = luminance(colours)
    ratios = (np.maximum(lum, luminance(ground)) + 0.05) / (np.minimum(lum, luminance(ground)) + 0.05)
    strong = ratios >= 1 + 0.85 * (ratios.max() - 1)
    ink = colours[strong][counts[strong].argmax()]
    return contrast(luminance(ink), luminance(ground)), tuple(ink), tuple(ground)


def every_state() -> dict[str, tuple[View, object]]:
    """Every sample view, the USB banners over the idle screen, and a long staff notice."""
    views = sample_views()
    states: dict[str, tuple[View, object]] = {kind: (view, None) for kind, view in views.items()}
    states.update({kind: (views["idle"], banner) for kind, banner in screen_sync.sample_banners().items()})
    long_notice = notices.join([notices.staff("Máy in lỗi; vui lòng kiểm tra máy in", "Printer fault: out of paper"),
                                notices.staff("Camera lỗi; kiosk vẫn cấp số", "Camera: /dev/video0 unplugged"),
                                notices.data_notice("visits/2026-10.jsonl: 20 records lost (set aside)")])
    greeting = views["greeting"]
    assert isinstance(greeting, GreetingView)
    states["greeting-notices"] = (GreetingView(greeting.office, greeting.categories, notice=long_notice), None)
    states["confirm-word-label"] = (ConfirmView(greeting.categories[1], "N****n V*n A*", "ông", 8, "Đồng ý"), None)
    states["greeting-proposal-word-label"] = (replace(views["greeting-proposal"], consent_button="Đồng ý"), None)
    states["usb-error-long"] = (views["idle"], SyncBanner("error", detail=LONG_USB_ERROR))
    return states


def test_the_sample_views_cover_every_kind_of_view():
    """A new kind of view must get a sample (and with it this file's contrast check and a voice clip)."""
    assert {type(view) for view in sample_views().values()} == set(typing.get_args(View))


@pytest.mark.parametrize("size", [(800, 480), (1024, 600)], ids=lambda size: "x".join(map(str, size)))
@pytest.mark.parametrize("kind", sorted(every_state()))
def test_every_text_has_a_contrast_of_7_to_1_measured_from_the_pixels(kind, size):
    view, banner = every_state()[kind]
    with Screen(size) as screen:
        frame = screen.draw(view, banner)   # type: ignore[arg-type]
        assert screen.placed, f"{kind}: no text drawn"
        poor = []
        for placed in screen.placed:
            ratio, ink, ground = measured_contrast(frame, placed)
            if ratio < AAA:
                poor.append(f"{placed.text!r}: {ratio:.2f}:1 (ink {ink} on {ground})")
        assert not poor, f"{kind}: below {AAA}:1: " + "; ".join(poor)


def test_the_contrast_measure_sees_poor_contrast():
    surface = pygame.Surface((200, 60))
    surface.fill((16, 42, 67))
    pygame.font.init()
    font = pygame.font.Font(None, 40)
    image = font.render("grey", True, (70, 90, 110))
    surface.blit(image, (10, 10))
    ratio, ink, ground = measured_contrast(surface, Placed("grey", 40, image.get_rect(topleft=(10, 10))))
    assert ground == (16, 42, 67) and ink == (70, 90, 110)
    assert 1.5 < ratio < 2.5


@pytest.mark.parametrize("minimum", [MIN_TEXT_PX, 20])
def test_no_text_is_smaller_than_the_configured_minimum(minimum):
    with Screen((800, 480), min_text_px=minimum) as screen:
        for kind, (view, banner) in every_state().items():
            screen.draw(view, banner)   # type: ignore[arg-type]
            small = [(p.text, p.px) for p in screen.placed if p.px < minimum]
            assert not small, f"{kind}: {small}"


def test_at_the_default_minimum_every_text_is_whole_on_the_screen():
    """The layout fits at the default size: no line pushed off the bottom or clipped at an edge."""
    with Screen((800, 480)) as screen:
        for kind, (view, banner) in every_state().items():
            screen.draw(view, banner)   # type: ignore[arg-type]
            for p in screen.placed:
                assert p.box.height >= p.px and p.box.width > 0, (kind, p.text, p.box)


def test_the_default_minimum_is_the_configs():
    assert ScreenConfig().min_text_px == MIN_TEXT_PX == 16


def test_staff_notices_are_vietnamese_first_wrapped_and_never_cut():
    view, _ = every_state()["greeting-notices"]
    with Screen((800, 480)) as screen:
        screen.draw(view)
        texts = screen.drawn_text
        assert not any("…" in text for text in texts)
        vi_index = next(i for i, t in enumerate(texts) if t.startswith("Máy in lỗi"))
        en_index = next(i for i, t in enumerate(texts) if t.startswith("Printer fault"))
        assert vi_index < en_index
        joined = " ".join(texts)
        for words in ("Camera lỗi; kiosk vẫn cấp số", "20 records lost (set aside)", "/dev/video0 unplugged"):
            assert words in joined
        notice_sizes = {p.px for p in screen.placed if p.text.startswith(("Máy in", "Printer"))}
        assert min(notice_sizes) >= MIN_TEXT_PX


def test_a_word_on_the_consent_button_is_drawn_whole_on_its_badge():
    view, _ = every_state()["confirm-word-label"]
    with Screen((800, 480)) as screen:
        screen.draw(view)
        assert "Đồng ý" in screen.drawn_text
        assert "Nhấn nút Đồng ý nếu ĐÚNG" in screen.drawn_text
        view, _ = every_state()["greeting-proposal-word-label"]
        screen.draw(view)
        assert "Nhấn nút Đồng ý nếu đúng" in screen.drawn_text     # not "Nhấn nút Đồng ý (Đồng ý)"


def test_a_long_usb_error_is_wrapped_whole_in_a_taller_band():
    view, banner = every_state()["usb-error-long"]
    with Screen((800, 480)) as screen:
        screen.draw(view, banner)   # type: ignore[arg-type]
        texts = screen.drawn_text
        assert not any("…" in text for text in texts)
        assert " ".join(texts).replace("  ", " ").find("try another one)") > 0
        detail = [p for p in screen.placed if p.text.startswith("/media/kiosk")]
        assert detail and all(p.box.bottom <= 480 for p in screen.placed)


def test_an_old_style_notice_still_shows():
    with Screen((800, 480)) as screen:
        views = sample_views()
        idle = views["idle"]
        assert isinstance(idle, IdleView)
        screen.draw(IdleView(idle.office, idle.categories, notice="Camera lỗi / camera: unplugged"))
        assert "Camera lỗi / camera: unplugged" in screen.drawn_text


def test_every_text_drawn_is_one_whose_contrast_is_measured():
    """A text rendered but blitted past ``Screen._place`` would escape the contrast check."""
    with Screen((800, 480)) as screen:
        for kind, (view, banner) in every_state().items():
            screen.draw(view, banner)   # type: ignore[arg-type]
            assert [text for text, _ in screen.drawn] == [p.text for p in screen.placed], kind
