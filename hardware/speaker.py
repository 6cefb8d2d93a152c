"""The loudspeaker: short recorded clips played one after another with ``pygame.mixer``, never blocking.

A kiosk with no sound device (no card, no driver, ``SDL_AUDIODRIVER=dummy`` in tests) stays silent and says so
once in the journal: sound is a comfort, never a reason to stop issuing tickets. Clips are decoded once and
kept; an utterance is their samples joined into one sound, so the parts of "H T không hai bảy" follow each
other without a gap the loop would have to fill. ``play`` returns at once: the mixer's own thread plays.
"""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

log = logging.getLogger("hardware.speaker")

RATE = 16_000        # the clips' own rate (assets/voice): mono 16-bit, nothing to resample
SND_DIR = Path("/dev/snd")           # ALSA's device nodes: none on a machine without a sound card
SOUND_SERVERS = ("pulse/native", "pipewire-0")     # a desktop's sound server, under $XDG_RUNTIME_DIR


def no_sound_device() -> bool:
    """Linux with no ALSA device and no sound server: opening the mixer would only fill the journal with
    libasound's errors. ``SDL_AUDIODRIVER`` set (dummy in tests) always tries."""
    if os.environ.get("SDL_AUDIODRIVER") or not sys.platform.startswith("linux") or SND_DIR.exists():
        return False
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return not (runtime and any((Path(runtime) / server).exists() for server in SOUND_SERVERS))


class MixerSpeaker:
    """Plays clip files through pygame's mixer; silent (``available`` False) when the mixer cannot start."""

    def __init__(self, volume: float = 1.0) -> None:
        self.volume = min(1.0, max(0.0, volume))
        self._raw: dict[Path, bytes] = {}
        self._playing: pygame.mixer.Sound | None = None    # kept alive while the mixer plays it
        self._warned: set[str] = set()
        try:
            if no_sound_device():
                raise RuntimeError(f"no sound card ({SND_DIR} absent) and no sound server")
            pygame.mixer.init(frequency=RATE, size=-16, channels=1)
            self.available = pygame.mixer.get_init() is not None
        except Exception as exc:  # pygame.error (no device, no driver) or anything SDL raises: silence
            self.available = False
            log.warning("speaker: no sound (%s); the kiosk runs silent", exc)

    def play(self, clips: Sequence[Path]) -> bool:
        """Stop what is playing and start ``clips`` in order; False when nothing could be played."""
        if not self.available:
            return False
        try:
            raw = b"".join(self._samples(Path(clip)) for clip in clips)
            pygame.mixer.stop()
            if not raw:
                return False
            sound = pygame.mixer.Sound(buffer=raw)
            sound.set_volume(self.volume)
            sound.play()
            self._playing = sound
            return True
        except Exception as exc:  # a device that went away mid-run: one journal line, then silence
            self._warn(f"speaker: cannot play ({exc}); silent", str(exc))
            return False

    def preload(self, clips: Sequence[Path]) -> None:
        """Decode ``clips`` now (at start), so the first citizen's sentence does not wait for Ogg decoding."""
        if self.available:
            for clip in clips:
                self._samples(Path(clip))

    @property
    def busy(self) -> bool:
        """Whether something is being played now."""
        return self.available and pygame.mixer.get_busy()

    def close(self) -> None:
        if self.available:
            pygame.mixer.quit()
            self.available = False

    def _samples(self, clip: Path) -> bytes:
        """The clip's samples in the mixer's format, decoded on first use; b"" (and one warning) when unreadable."""
        raw = self._raw.get(clip)
        if raw is None:
            try:
                raw = pygame.mixer.Sound(str(clip)).get_raw()
            except (pygame.error, FileNotFoundError, OSError) as exc:
                self._warn(f"speaker: clip {clip} unusable ({exc}); skipped", str(clip))
                raw = b""
            self._raw[clip] = raw
        return raw

    def _warn(self, message: str, key: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)
