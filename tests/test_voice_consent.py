"""The spoken consent prompt says what the consent screen says (issue 10 item 7): a face template is sensitive
personal data, who keeps it, what for, how long (the config's months, said as a Vietnamese number) and how to
withdraw; it is heard whole before the screen's time runs out."""
from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

from dataclasses import replace  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402

from hardware.speaker import MixerSpeaker  # noqa: E402
from kiosk import voice  # noqa: E402
from kiosk.app import build_kiosk, machine_timing  # noqa: E402
from kiosk.config import SIMULATION_CONFIG, load_config  # noqa: E402
from kiosk.consent import consent_wording  # noqa: E402
from kiosk.loop import FakeClock  # noqa: E402
from kiosk.screen_samples import sample_views  # noqa: E402
from kiosk.views import ConsentView  # noqa: E402

DECIDE = 4.0        # seconds left to press the button once the prompt was heard


def _consent(months: int) -> ConsentView:
    view = sample_views()["consent"]
    assert isinstance(view, ConsentView)
    return replace(view, wording=consent_wording("UBND phường Bến Nghé", months, 24))


def _said(months: int) -> str:
    return " ".join(voice.texts()[clip] for clip in voice.utterance(_consent(months)))


@pytest.mark.parametrize("value, words", [
    (1, "một"), (5, "năm"), (10, "mười"), (11, "mười một"), (12, "mười hai"), (15, "mười lăm"), (20, "hai mươi"),
    (21, "hai mươi mốt"), (24, "hai mươi bốn"), (25, "hai mươi lăm"), (36, "ba mươi sáu"), (100, "một trăm"),
    (105, "một trăm linh năm"), (110, "một trăm mười"), (121, "một trăm hai mươi mốt"), (1000, "một nghìn"),
    (1012, "một nghìn không trăm mười hai"), (1200, "một nghìn hai trăm"), (0, "không")])
def test_a_number_is_said_as_vietnamese_words_not_digit_by_digit(value, words):
    assert " ".join(voice.texts()[clip] for clip in voice.spoken_number(value)) == words


def test_a_number_out_of_range_is_refused():
    with pytest.raises(ValueError):
        voice.spoken_number(10_000)


@pytest.mark.parametrize("months, said", [(12, "mười hai tháng"), (24, "hai mươi bốn tháng"),
                                          (6, "sáu tháng"), (18, "mười tám tháng")])
def test_the_spoken_prompt_names_every_fact_of_the_consent_screen(months, said):
    text = _said(months)
    screen = " ".join(vi for vi, _ in _consent(months).wording.promises)
    assert "mẫu khuôn mặt" in text and "nhận ra Ông Bà" in text            # what, and for what
    assert "dữ liệu cá nhân nhạy cảm" in text and "nhạy cảm" in screen      # sensitive personal data
    assert "Cơ quan này lưu giữ" in text                                    # who keeps it (the screen names it)
    assert f"{said}, kể từ lần đến cuối" in text and f"{months} tháng" in screen   # how long: the config's months
    assert "rút lại" in text and "mã cu e rờ" in text and "camera" in text  # how to withdraw: the receipt's QR
    assert "QR" in screen and "camera" in screen
    assert "nhấn nút đồng ý" in text and "Ông/Bà" not in text               # a slash would be read aloud


def test_the_prompt_is_heard_whole_before_the_consent_screen_times_out():
    speaker = MixerSpeaker()
    assert speaker.available
    try:
        def seconds(months: int) -> float:
            clips = voice.utterance(_consent(months))
            for clip in clips:
                assert (voice.CLIPS / f"{clip}{voice.EXTENSION}").is_file(), f"no clip {clip}: run make voice"
            return sum(pygame.mixer.Sound(str(voice.CLIPS / f"{clip}{voice.EXTENSION}")).get_length()
                       for clip in clips)
        longest = max(range(1, 1201), key=lambda months: len(voice.spoken_number(months)))
        assert len(voice.spoken_number(longest)) == 7          # 1177: "một nghìn một trăm bảy mươi bảy"
        usual, worst = seconds(12), seconds(longest)
        assert 10 < usual < worst                              # longer than the screen's default 10 s...
        assert worst + DECIDE <= voice.CONSENT_SECONDS         # ...so with a voice the screen waits for it
    finally:
        speaker.close()


def test_with_a_voice_the_consent_screen_stays_up_until_heard_and_without_one_as_configured(tmp_path):
    config = load_config(SIMULATION_CONFIG)
    assert config.timing.consent_seconds == 10
    assert machine_timing(config).consent == 10
    assert machine_timing(config, spoken=True).consent == voice.CONSENT_SECONDS
    longer = replace(config, timing=replace(config.timing, consent_seconds=40.0))
    assert machine_timing(longer, spoken=True).consent == 40.0          # a longer setting is kept

    class Silent:
        def play(self, clips):
            return True

        def preload(self, clips):
            pass

        def close(self):
            pass

    config = replace(config, data_dir=tmp_path / "data", printer=replace(config.printer, out_dir=str(tmp_path / "p")),
                     privacy=replace(config.privacy, key_file=str(tmp_path / "data.key")))
    for spoken, expected in ((voice.Voice(Silent()), voice.CONSENT_SECONDS), (None, 10)):
        kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True, voice=spoken)
        try:
            assert kiosk.loop.machine._timing.consent == expected
        finally:
            kiosk.close()
