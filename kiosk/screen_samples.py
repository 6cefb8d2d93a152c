"""One view of each kind, with realistic Vietnamese data: the screenshots in docs/images and the tests that
draw, measure (contrast, text size) and voice every screen. A new kind of view needs a sample here.
"""
from __future__ import annotations

from kiosk import notices, screen_rules
from kiosk.consent import consent_wording
from kiosk.tickets import mask_name
from kiosk.views import (CategoryChoice, ConfirmView, ConsentView, DoneView, FailsafeView, GreetingView, HelpView,
                         IdleView, IssuingView, PrivacyView, RatingChoice, ThanksView, View)


def sample_views() -> dict[str, View]:
    """One view of each kind, with realistic Vietnamese data, for screenshots and tests."""
    office = "UBND Quận Ba Đình — Bộ phận Một cửa"
    categories = (
        CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),
        CategoryChoice("dat-dai", "Đất đai", "Land", "2"),
        CategoryChoice("chung-thuc", "Chứng thực", "Certification", "3"),
        CategoryChoice("xay-dung", "Xây dựng", "Construction", "4"),
        CategoryChoice("kinh-doanh", "Đăng ký kinh doanh", "Business registration", "5"),
        CategoryChoice("lao-dong", "Lao động – Thương binh và Xã hội", "Labour, Invalids and Social Affairs", "6"),
    )
    land = categories[1]
    return {
        "idle": IdleView(office, categories),
        "idle-notice": IdleView(office, categories, notice=notices.staff("Máy in lỗi; vui lòng kiểm tra máy in", "Printer fault: out of paper")),
        "greeting": GreetingView(office, categories),
        "greeting-hint": GreetingView(office, categories, hint="look_at_camera"),
        "greeting-returning": GreetingView(office, categories, masked_name=mask_name("Nguyễn Văn An"), returning=True,
                                           honorific="ông"),
        "greeting-card": GreetingView(office, categories, masked_name=mask_name("Lê Thị Cúc"), returning=True,
                                      honorific="bà", card="ok"),
        "greeting-card-invalid": GreetingView(office, categories, card="invalid"),
        "greeting-proposal": GreetingView(office, categories, masked_name=mask_name("Nguyễn Văn An"), proposal=True,
                                          honorific="ông"),
        "greeting-ask-card": GreetingView(office, categories, ask_card=True),
        "confirm": ConfirmView(land, mask_name("Nguyễn Văn An"), "ông", seconds_left=9, consent_button="Y"),
        "consent": ConsentView(land, seconds_left=12, consent_button="Y", wording=consent_wording(office)),
        "issuing": IssuingView(land),
        "done": DoneView("DD-023", land, printed=True),
        "done-enrolled": DoneView("DD-024", land, printed=True, enrolled=True),
        "done-card": DoneView("DD-026", land, printed=True, returning=True, card="ok"),
        "done-not-printed": DoneView("DD-025", land, printed=False),
        "failsafe": FailsafeView("RuntimeError: model file unreadable"),
        "failsafe-disk-full": FailsafeView("StoreError: ticket not saved: [Errno 28] No space left on device", True),
        "privacy": PrivacyView(mask_name("Nguyễn Văn An"), True, None, 18, "Y", "1"),
        "privacy-deleted": PrivacyView(None, True, "deleted", 6, "Y", "1"),
        "privacy-printed": PrivacyView(None, True, "printed", 6, "Y", "1"),
        "privacy-refused": PrivacyView(None, False, "refused", 17, "Y", "1"),
        "idle-rating": IdleView(office, categories, ratings=RATINGS),
        "greeting-rating": GreetingView(office, categories, masked_name=mask_name("Nguyễn Văn An"), returning=True,
                                        honorific="ông", ratings=RATINGS),
        "rating-thanks": ThanksView(linked=True),
        "rating-thanks-anonymous": ThanksView(linked=False),
        "call-staff": HelpView(),
        **screen_rules.sample_views(office, categories),
    }


RATINGS = (RatingChoice("good", "G"), RatingChoice("ok", "N"), RatingChoice("bad", "B"))   # as the simulation
