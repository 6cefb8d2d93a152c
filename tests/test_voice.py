"""The voice: a clip for every sentence, letter and digit, decoding as audio; each view says its sentence once
when it changes; the ticket number is read out; no sound device means silence, never an error."""
from __future__ import annotations

import json
import logging
import os
import shutil

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"      # CI has no sound card: SDL's dummy driver plays into nothing

import typing  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402

from hardware.speaker import MixerSpeaker  # noqa: E402
from kiosk import voice, voice_build  # noqa: E402
from kiosk.app import build_kiosk, make_voice  # noqa: E402
from kiosk.config import SIMULATION_CONFIG, load_config  # noqa: E402
from kiosk.loop import FakeClock  # noqa: E402
from kiosk.views import ConsentView, DoneView, View  # noqa: E402
from kiosk.visit import ButtonPressed  # noqa: E402
from kiosk.screen_samples import sample_views  # noqa: E402

MANIFEST = voice.CLIPS / "manifest.json"


class RecordingSpeaker:
    def __init__(self) -> None:
        self.played: list[list[str]] = []

    def play(self, clips):
        self.played.append([Path(c).stem for c in clips])
        return True

    def preload(self, clips):
        self.preloaded = [Path(c).stem for c in clips]

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def mixer():
    speaker = MixerSpeaker()
    assert speaker.available, "SDL's dummy audio driver should open"
    yield speaker
    speaker.close()


def test_every_kind_of_view_has_something_to_say():
    assert set(typing.get_args(View)) <= set(voice.SPEECH), "a new view needs a line in kiosk.voice.SPEECH"


@pytest.mark.parametrize("kind", sorted(sample_views()))
def test_every_screen_says_its_sentence_from_a_committed_clip(kind):
    words = voice.utterance(sample_views()[kind])
    assert words, f"{kind} says nothing"
    for word in words:
        assert (voice.CLIPS / f"{word}{voice.EXTENSION}").is_file(), f"{kind}: no clip {word} (run make voice)"


def test_the_clips_were_made_from_the_current_texts():
    """A sentence changed in kiosk/voice.py without `make voice` would say the old words."""
    assert json.loads(MANIFEST.read_text(encoding="utf-8")) == voice.texts()
    on_disk = {p.stem for p in voice.CLIPS.glob(f"*{voice.EXTENSION}")}
    assert on_disk == set(voice.texts())


def test_every_clip_decodes_as_short_audio(mixer):
    total = 0
    for name in voice.texts():
        path = voice.CLIPS / f"{name}{voice.EXTENSION}"
        seconds = pygame.mixer.Sound(str(path)).get_length()
        assert 0.15 < seconds < 12, (name, seconds)
        total += path.stat().st_size
    assert total < 1024 * 1024          # the whole voice stays small in the repository


def test_the_ticket_number_is_read_letter_by_letter_and_digit_by_digit():
    assert voice.number("HT-027") == ("letter-H", "letter-T", "digit-0", "digit-2", "digit-7")
    assert voice.number("HT-U01") == ("letter-H", "letter-T", "letter-U", "digit-0", "digit-1")
    done = sample_views()["done"]
    assert voice.utterance(done) == ("done", "your-number", *voice.number("DD-023"))
    assert voice.PROMPTS["your-number"] == "Số thứ tự của Ông Bà là"
    assert [voice.texts()[w] for w in voice.number("HT-027")] == ["hát", "tê", "không", "hai", "bảy"]


def test_a_view_is_said_once_when_its_sentence_changes_not_every_turn():
    speaker = RecordingSpeaker()
    said = voice.Voice(speaker)
    consent = sample_views()["consent"]
    assert isinstance(consent, ConsentView)
    for seconds in (10, 9, 8):                 # the countdown ticks: the same sentence, said once
        said.say(replace(consent, seconds_left=seconds))
    printing = DoneView("HT-027", consent.category, printed=None)
    said.say(printing)
    said.say(replace(printing, printed=True))  # the paper came out: the number is not read again
    said.say(replace(printing, printed=False))  # it did not: say so, and the number again
    assert speaker.played == [list(voice.utterance(consent)), ["done", "your-number", "letter-H", "letter-T", "digit-0", "digit-2",
                                             "digit-7"],
                              ["done-not-printed", "your-number", "letter-H", "letter-T", "digit-0", "digit-2",
                               "digit-7"]]


def test_the_mixer_plays_an_utterance_without_blocking(mixer):
    clips = [voice.CLIPS / f"{w}{voice.EXTENSION}" for w in ("your-number", "letter-H", "digit-7")]
    assert mixer.play(clips) is True
    assert mixer.busy                          # play() returned while the sound is still going


def test_no_sound_device_means_silence_never_an_error(monkeypatch, caplog):
    def no_device(*args, **kwargs):
        raise pygame.error("ALSA: Couldn't open audio device")

    monkeypatch.setattr(pygame.mixer, "init", no_device)
    with caplog.at_level(logging.WARNING, "hardware.speaker"):
        speaker = MixerSpeaker()
    assert not speaker.available and "runs silent" in caplog.text
    assert speaker.play([voice.CLIPS / "done.ogg"]) is False
    speaker.close()


def test_a_missing_clip_is_skipped_with_one_warning(mixer, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, "hardware.speaker"):
        assert mixer.play([tmp_path / "nothing.ogg", voice.CLIPS / "done.ogg"]) is True
        mixer.play([tmp_path / "nothing.ogg"])
    assert len([r for r in caplog.records if "nothing.ogg" in r.getMessage()]) == 1


def test_the_kiosk_speaks_through_the_dummy_sound_driver(tmp_path):
    config = load_config(SIMULATION_CONFIG)
    config = replace(config, data_dir=tmp_path / "data", printer=replace(config.printer, out_dir=str(tmp_path / "p")),
                     privacy=replace(config.privacy, key_file=str(tmp_path / "data.key")))
    spoken = make_voice(config)
    assert spoken is not None
    recorder = RecordingSpeaker()
    real = spoken.speaker
    spoken.speaker = recorder
    kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True, voice=spoken)
    try:
        kiosk.loop.step()
        kiosk.loop.events.put(ButtonPressed("dat-dai"))
        kiosk.loop.step()
        kiosk.loop.step()
        assert recorder.played[0] == ["idle"]
        assert recorder.played[-1][:2] == ["done", "your-number"] and len(recorder.played) == 2
        assert real.play([voice.CLIPS / "done.ogg"]) is True     # and the real mixer under SDL's dummy driver
    finally:
        kiosk.close()


def test_voice_off_in_the_config_means_no_voice(tmp_path):
    config = load_config(SIMULATION_CONFIG)
    assert config.voice.enabled and 0 <= config.voice.volume <= 1
    assert make_voice(replace(config, voice=replace(config.voice, enabled=False))) is None


needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                 reason="make voice needs espeak-ng and sox (apt-get install espeak-ng sox)")


@needs_tools
def test_make_voice_records_clips_that_decode_and_say_the_same_as_the_committed_ones(tmp_path, mixer):
    written = voice_build.build(tmp_path, ["your-number", "digit-7"])
    assert [p.name for p in written] == ["your-number.ogg", "digit-7.ogg"]
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8")) == {
        "your-number": "Số thứ tự của Ông Bà là", "digit-7": "bảy"}
    for path in written:
        fresh = pygame.mixer.Sound(str(path)).get_length()
        committed = pygame.mixer.Sound(str(voice.CLIPS / path.name)).get_length()
        assert fresh == pytest.approx(committed, abs=0.3), path.name     # same words, same length


def test_make_voice_without_its_tools_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(voice_build.shutil, "which", lambda tool: None)
    with pytest.raises(voice_build.VoiceBuildError, match=r"espeak-ng \(apt-get install espeak-ng\), sox"):
        voice_build.build(tmp_path)
    assert voice_build.main(["--out", str(tmp_path)]) == 1


def test_warm_up_decodes_every_clip_before_the_first_citizen(mixer):
    recorder = RecordingSpeaker()
    voice.Voice(recorder).warm_up()
    assert recorder.preloaded == list(voice.texts())
    fresh = MixerSpeaker()
    voice.Voice(fresh).warm_up()
    assert len(fresh._raw) == len(voice.texts()) and all(fresh._raw.values())


def test_the_voice_benchmark_runs_short():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "voice.py"), "--repeat", "5"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "baseline: drawing the ticket screen" in done.stdout
    assert f"decoding all {len(voice.texts())} clips at start" in done.stdout and "x a draw" in done.stdout


def test_a_machine_without_any_sound_device_is_silent_without_asking_alsa(monkeypatch, tmp_path, caplog):
    """No /dev/snd and no sound server: the mixer is not even opened (libasound would print errors)."""
    import hardware.speaker as speaker_module

    monkeypatch.delenv("SDL_AUDIODRIVER")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(speaker_module, "SND_DIR", tmp_path / "snd")

    def must_not_open(*args, **kwargs):
        raise AssertionError("the mixer was opened")

    monkeypatch.setattr(pygame.mixer, "init", must_not_open)
    with caplog.at_level(logging.WARNING, "hardware.speaker"):
        assert not MixerSpeaker().available
    assert "no sound card" in caplog.text
    (tmp_path / "pulse").mkdir()
    (tmp_path / "pulse" / "native").touch()             # a desktop's sound server: SDL may use it
    assert not speaker_module.no_sound_device()
    (tmp_path / "snd").mkdir()
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert not speaker_module.no_sound_device()
