"""What the voice costs the loop: decoding the clips at start, starting an utterance, and a turn whose view did not
change, against the baseline of drawing that view (what a turn costs when the screen changes), in the same run.

    .venv/bin/python benchmarks/voice.py [--repeat N]

Runs with SDL's dummy audio driver (the mixer's thread plays into nothing), so it measures the kiosk's side.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.speaker import MixerSpeaker  # noqa: E402
from kiosk import voice  # noqa: E402
from kiosk.screen import Screen  # noqa: E402
from kiosk.screen_samples import sample_views  # noqa: E402


def per_call(fn, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    view = sample_views()["done-not-printed"]          # among the longest things the kiosk says
    clips = [voice.CLIPS / f"{word}{voice.EXTENSION}" for word in voice.utterance(view)]
    with Screen((800, 480)) as screen:
        draw = per_call(lambda: screen.draw(view), max(5, args.repeat // 10))
    speaker = MixerSpeaker()
    if not speaker.available:
        print("no mixer (not even SDL's dummy driver): nothing to measure")
        return 1
    started = time.perf_counter()
    speaker.play(clips)
    cold = time.perf_counter() - started
    fresh = MixerSpeaker()
    started = time.perf_counter()
    voice.Voice(fresh).warm_up()
    warm_up = time.perf_counter() - started
    warm = per_call(lambda: speaker.play(clips), args.repeat)
    said = voice.Voice(speaker)
    said.say(view)
    unchanged = per_call(lambda: said.say(view), args.repeat * 50)
    print(f"baseline: drawing the ticket screen        {draw * 1e3:8.2f} ms")
    print(f"decoding all {len(voice.texts())} clips at start        {warm_up * 1e3:8.2f} ms  "
          f"({warm_up / draw:.1f}x a draw, once)")
    print(f"an utterance of {len(clips)} clips, not decoded  {cold * 1e3:8.2f} ms  ({cold / draw:.2f}x a draw)")
    print(f"the same, decoded at start                {warm * 1e3:8.2f} ms  ({warm / draw:.3f}x a draw)")
    print(f"a turn whose view did not change          {unchanged * 1e6:8.2f} us  ({unchanged / draw:.5f}x a draw)")
    speaker.close()
    fresh.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
