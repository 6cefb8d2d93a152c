"""What the kiosk says aloud: each screen's main sentence in Vietnamese, and the ticket number read out.

Every view type maps to the names of the clips it says (:data:`SPEECH`); the clips are recorded from the texts
below at build time (``make voice``: espeak-ng, ``kiosk.voice_build``) and kept in ``assets/voice``, so the
kiosk needs no speech engine. A number is said from letter and digit clips ("H T không hai bảy"). A new kind of
view needs a line in :data:`SPEECH` and its sentence in :data:`PROMPTS`; the tests fail until it has both.
:class:`Voice` speaks when what a view says changes, not every turn (a countdown does not repeat itself).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from kiosk.paths import ASSETS
from kiosk.views import (ConfirmView, ConsentView, DoneView, FailsafeView, GreetingView, HelpView, IdleView,
                         IssuingView, PrivacyView, RefusedView, ThanksView, View)

log = logging.getLogger("kiosk.voice")

CLIPS = ASSETS / "voice"
EXTENSION = ".ogg"

# "Ông Bà", not "Ông/Bà": a speech engine reads the slash aloud.
PROMPTS: dict[str, str] = {
    "idle": "Xin mời lấy số thứ tự. Nhấn nút của lĩnh vực cần giải quyết.",
    "greeting": "Xin chào. Mời chọn lĩnh vực.",
    "greeting-returning": "Chào mừng Ông Bà quay lại. Mời chọn lĩnh vực.",
    "greeting-card": "Đã đọc thẻ. Mời chọn lĩnh vực.",
    "greeting-card-invalid": "Không đọc được thẻ. Ông Bà vẫn nhận số bình thường.",
    "greeting-proposal": "Nếu đúng là Ông Bà, xin nhấn nút đồng ý.",
    "greeting-ask-card": "Ông Bà đã đến đây trước? Vui lòng đưa thẻ căn cước trước camera.",
    "confirm": "Có đúng là Ông Bà không? Nếu đúng, xin nhấn nút đồng ý.",
    # The consent screen's five facts (kiosk.consent), said in order: what for, sensitive, who keeps it and how
    # long (the months from the config, said in words between two clips), how to withdraw; then the answer.
    "consent": "Lưu mẫu khuôn mặt để lần sau nhận ra Ông Bà?",
    "consent-sensitive": "Đây là dữ liệu cá nhân nhạy cảm.",
    "consent-kept": "Cơ quan này lưu giữ",
    "consent-months": "tháng, kể từ lần đến cuối.",
    "consent-withdraw": "Muốn rút lại, đưa mã cu e rờ trên biên nhận vào camera.",
    "consent-answer": "Nếu đồng ý, xin nhấn nút đồng ý; nếu không, nhấn nút lĩnh vực.",
    "issuing": "Đang in phiếu. Vui lòng chờ trong giây lát.",
    "done": "Mời nhận phiếu.",
    "done-not-printed": "Không in được phiếu. Vui lòng báo nhân viên và ghi nhớ số này.",
    "your-number": "Số thứ tự của Ông Bà là",
    "failsafe": "Xin lỗi. Kiosk sẽ hoạt động lại sau vài giây.",
    "failsafe-disk-full": "Xin lỗi. Bộ nhớ của kiosk đã đầy, chưa cấp được số. Vui lòng báo nhân viên.",
    "privacy": "Ông Bà muốn làm gì với dữ liệu của mình? Nhấn nút đồng ý để xoá dữ liệu, "
               "hoặc nút lĩnh vực thứ nhất để in những gì kiosk lưu.",
    "privacy-deleted": "Đã xoá dữ liệu của Ông Bà. Mời nhận biên nhận xoá.",
    "privacy-printed": "Mời nhận phiếu in những gì kiosk lưu về Ông Bà.",
    "privacy-refused": "Mã này không hợp lệ hoặc đã dùng. Không có gì thay đổi.",
    "rating-thanks": "Cảm ơn Ông Bà đã đánh giá.",
    "call-staff": "Nhân viên sẽ đến hỗ trợ Ông Bà ngay. Vui lòng chờ trong giây lát.",
    # a refused press (kiosk/rules.py): the screen's sentence names the service and the hour; said in general here
    "refused-closed": "Lĩnh vực này hiện chưa nhận hồ sơ. Giờ mở cửa ghi trên màn hình. Không có phiếu nào được in.",
    "refused-full": "Lĩnh vực này đã hết số hôm nay. Mời Ông Bà quay lại vào ngày làm việc tiếp theo.",
}
# The consent prompt takes about 18 s to say (12 months; 20 s for the longest number of months), longer than the
# screen's default 10 s: while the voice speaks, the consent screen stays up at least this long (kiosk.app).
CONSENT_SECONDS = 25.0
# How the letters and digits of a ticket number are said (the Vietnamese names of the letters).
DIGITS = dict(zip("0123456789", ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")))
LETTERS = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", (
    "a", "bê", "xê", "đê", "e", "ép", "giê", "hát", "i", "gi", "ca", "e lờ", "em mờ", "en nờ", "o", "pê", "cu",
    "e rờ", "ét", "tê", "u", "vê", "vê kép", "ích", "i dài", "dét")))


# The words a number is said with besides its digits: "mười hai", "hai mươi mốt", "một trăm linh năm".
NUMBER_WORDS = {"num-muoi": "mười", "num-muoi-tens": "mươi", "num-mot": "mốt", "num-lam": "lăm",
                "num-tram": "trăm", "num-linh": "linh", "num-nghin": "nghìn"}


def texts() -> dict[str, str]:
    """Every clip's name and the Vietnamese it is recorded from: the prompts, a clip per letter and digit, the
    number words."""
    return {**PROMPTS, **{f"letter-{c}": t for c, t in LETTERS.items()},
            **{f"digit-{c}": t for c, t in DIGITS.items()}, **NUMBER_WORDS}


def spoken_number(value: int) -> tuple[str, ...]:
    """The clips that say ``value`` (0-9999) as a Vietnamese number, not digit by digit: 12 -> "mười hai",
    21 -> "hai mươi mốt", 105 -> "một trăm linh năm", 1200 -> "một nghìn hai trăm"."""
    if not 0 <= value <= 9999:
        raise ValueError(f"a spoken number is 0-9999, got {value}")
    if value == 0:
        return ("digit-0",)
    thousands, rest = divmod(value, 1000)
    hundreds, below = divmod(rest, 100)
    words: list[str] = [f"digit-{thousands}", "num-nghin"] if thousands else []
    if hundreds or (thousands and below):          # 1012: "một nghìn không trăm mười hai"
        words += [f"digit-{hundreds}", "num-tram"]
    tens, unit = divmod(below, 10)
    if tens == 0:
        words += (["num-linh"] if words and unit else []) + ([f"digit-{unit}"] if unit else [])
        return tuple(words)
    words += ["num-muoi"] if tens == 1 else [f"digit-{tens}", "num-muoi-tens"]
    if unit == 1 and tens >= 2:
        words.append("num-mot")
    elif unit == 5:
        words.append("num-lam")
    elif unit:
        words.append(f"digit-{unit}")
    return tuple(words)


def number(ticket: str) -> tuple[str, ...]:
    """The clips that say a ticket number: "HT-027" -> H, T, 0, 2, 7 (the dash is not said)."""
    return tuple(f"letter-{c}" if c.isalpha() else f"digit-{c}" for c in ticket.upper()
                 if (c in LETTERS or c in DIGITS))


def _greeting(view: GreetingView) -> tuple[str, ...]:
    if view.proposal:
        return ("greeting-proposal",)
    if view.card == "invalid":
        return ("greeting-card-invalid",)
    if view.ask_card:
        return ("greeting-ask-card",)
    return ("greeting-card",) if view.card == "ok" else ("greeting-returning",) if view.returning else ("greeting",)


def _done(view: DoneView) -> tuple[str, ...]:
    # Printing (None) and printed say the same: the number is not read twice when the paper comes out.
    return ("done-not-printed" if view.printed is False else "done", "your-number", *number(view.ticket))


SPEECH: dict[type, Callable[[Any], tuple[str, ...]]] = {
    IdleView: lambda view: ("idle",),
    GreetingView: _greeting,
    ConfirmView: lambda view: ("confirm",),
    ConsentView: lambda view: ("consent", "consent-sensitive", "consent-kept",
                               *spoken_number(view.wording.templates_months), "consent-months", "consent-withdraw",
                               "consent-answer"),
    IssuingView: lambda view: ("issuing",),
    DoneView: _done,
    FailsafeView: lambda view: ("failsafe-disk-full" if view.disk_full else "failsafe",),
    PrivacyView: lambda view: (f"privacy-{view.answer}",) if view.answer else ("privacy",),
    ThanksView: lambda view: ("rating-thanks",),
    HelpView: lambda view: ("call-staff",),
    RefusedView: lambda view: (f"refused-{view.reason}",),
}


def utterance(view: View) -> tuple[str, ...]:
    """The clips ``view`` says, in order; () for a view the voice does not know (logged, never an error)."""
    speak = SPEECH.get(type(view))
    if speak is None:
        log.warning("voice: nothing to say for %s", type(view).__name__)
        return ()
    return speak(view)


class Speaker(Protocol):
    """Plays clip files in order without blocking (``hardware.speaker.MixerSpeaker``)."""

    def play(self, clips: Sequence[Path]) -> bool: ...
    def preload(self, clips: Sequence[Path]) -> None: ...
    def close(self) -> None: ...


class Voice:
    """Says each view's sentence once, when it changes; the loop calls :meth:`say` every turn."""

    def __init__(self, speaker: Speaker, folder: Path = CLIPS) -> None:
        self.speaker = speaker
        self._folder = folder
        self._said: tuple[str, ...] | None = None

    def say(self, view: View) -> None:
        words = utterance(view)
        if words == self._said:
            return
        self._said = words
        if words:
            self.speaker.play([self._folder / f"{word}{EXTENSION}" for word in words])

    def warm_up(self) -> None:
        """Decode every clip at start (``kiosk run``): tens of ms on a Pi that no citizen should wait for."""
        self.speaker.preload([self._folder / f"{name}{EXTENSION}" for name in texts()])

    def close(self) -> None:
        self.speaker.close()
