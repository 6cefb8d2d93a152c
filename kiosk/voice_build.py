"""Records the kiosk's voice clips from their texts (``make voice``): espeak-ng's Vietnamese voice, then sox.

Each clip of :func:`kiosk.voice.texts` becomes ``<name>.ogg`` (Ogg Vorbis, 16 kHz mono, silence trimmed) and
``manifest.json`` records the text each was made from, so a test sees a sentence changed without new clips.
Run at build time only: the kiosk plays the committed files and needs neither tool.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kiosk.voice import CLIPS, EXTENSION, texts

VOICE = "vi"          # espeak-ng's Vietnamese (Northern) voice
SPEED = 140           # words a minute: a little slower than espeak's 175, for a hall and older ears
TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox"}     # command: Debian package
# Trim the silence espeak puts around a clip, then a short pause after it, so joined clips sound like speech.
TRIM = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse", "pad", "0", "0.12"]
MANIFEST = "manifest.json"


class VoiceBuildError(RuntimeError):
    """A tool is missing or failed; the message says which and how to install it."""


def build(out: Path = CLIPS, only: Sequence[str] = ()) -> list[Path]:
    """Record every clip (or those named in ``only``) into ``out``; returns the files written."""
    missing = [f"{tool} (apt-get install {package})" for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing:
        raise VoiceBuildError("missing: " + ", ".join(missing))
    out.mkdir(parents=True, exist_ok=True)
    wanted = {name: text for name, text in texts().items() if not only or name in only}
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in wanted.items():
            wav = Path(tmp) / f"{name}.wav"
            target = out / f"{name}{EXTENSION}"
            _run(["espeak-ng", "-v", VOICE, "-s", str(SPEED), "-w", str(wav), text])
            _run(["sox", "-R", str(wav), "-r", "16000", "-c", "1", "-C", "2", str(target), "norm", "-1", *TRIM])
            written.append(target)
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    manifest.update(wanted)
    manifest = {name: manifest[name] for name in texts() if name in manifest}     # drop clips no longer said
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for stale in set(out.glob(f"*{EXTENSION}")) - {out / f"{name}{EXTENSION}" for name in manifest}:
        stale.unlink()
    return written


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise VoiceBuildError(f"{command[0]} failed: {result.stderr.strip().splitlines()[-1:] or result.returncode}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.voice_build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CLIPS, help=f"folder of the clips (default {CLIPS})")
    parser.add_argument("names", nargs="*", help="only these clips (default: all)")
    args = parser.parse_args(argv)
    try:
        written = build(args.out, args.names)
    except VoiceBuildError as exc:
        print(f"make voice: {exc}")
        return 1
    size = sum(path.stat().st_size for path in written)
    print(f"{len(written)} clips, {size // 1024} KiB in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
