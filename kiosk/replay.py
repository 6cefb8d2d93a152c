"""``kiosk replay``: the acceptance harness. Drives the same loop headless, visit by visit.

A script is JSON Lines, one visit a line: ``{"image": "faces/a/1.jpg", "category": "ho-tich",
"consent": true}``; ``image`` may be a list shown one after another (a face, then a card), and
``"confirm": true`` presses the consent button when the kiosk asks "is this you?"; ``"privacy": "delete"`` (or
``"print"``) with a consent receipt's PNG as the image answers the privacy screen instead of taking a ticket
(its line says ``"privacy": "deleted" | "printed" | "refused"``). The file camera
shows the images, scripted button presses stand in for the citizen, and a fake clock makes every timeout pass instantly. One JSON line per visit comes out,
and the simulated printer leaves each ticket's exact bytes (.bin) and picture (.png) in ``out_dir``.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import IO, Any, Iterable

from kiosk.app import build_kiosk
from kiosk.loop import FakeClock
from kiosk.config import Config, SIMULATION_CONFIG, load_config
from kiosk.machine_events import (CodeJudged, FaceSettled, PrivacyAnswered, PrivacyOffered, QuestionAsked,
                                  TicketIssued, VisitEnded)
from kiosk.states import CONSENT, ButtonPressed

MAX_FRAMES_PER_VISIT = 12   # frames shown to the recognizer before the button is pressed anyway
PRIVACY_CHOICES = ("delete", "print")


class ScriptError(ValueError):
    """A replay script that cannot run; the message names the line."""


def read_script(path: Path, categories: Iterable[str]) -> list[dict]:
    """Parse and check the whole script before anything runs."""
    known = set(categories)
    visits = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"{where}: not JSON: {exc.msg}") from None
        if not isinstance(entry, dict):
            raise ScriptError(f"{where}: a visit must be a JSON object")
        unknown = set(entry) - {"image", "category", "consent", "confirm", "privacy"}
        if unknown:
            raise ScriptError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        privacy = _privacy_choice(entry, where)
        category = entry.get("category")
        if category not in known and privacy is None:
            raise ScriptError(f"{where}: unknown category {category!r} (known: {', '.join(sorted(known))})")
        image = entry.get("image")
        if image is not None:
            paths = [image] if isinstance(image, str) else image
            if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
                raise ScriptError(f"{where}: image must be a path, a list of paths or null")
            resolved = []
            for one in paths:
                image_path = (path.parent / one) if not Path(one).is_absolute() else Path(one)
                if not image_path.is_file():
                    raise ScriptError(f"{where}: image not found: {image_path}")
                resolved.append(str(image_path))
            image = resolved[0] if isinstance(image, str) else resolved
        consent, confirm = entry.get("consent", False), entry.get("confirm", False)
        if not isinstance(consent, bool):
            raise ScriptError(f"{where}: consent must be true or false")
        if not isinstance(confirm, bool):
            raise ScriptError(f"{where}: confirm must be true or false")
        visits.append({"image": image, "category": category, "consent": consent, "confirm": confirm,
                       **({"privacy": privacy} if privacy else {})})
    return visits


def _privacy_choice(entry: dict, where: str) -> str | None:
    """A privacy visit's choice (then no category is needed: it takes no ticket)."""
    choice = entry.get("privacy")
    if choice is not None and choice not in PRIVACY_CHOICES:
        raise ScriptError(f"{where}: privacy must be one of {', '.join(PRIVACY_CHOICES)}")
    return choice


def replay_config(config_path: Path | None, data_dir: Path, out_dir: Path, overrides: dict | None = None) -> Config:
    """The simulation config (or ``config_path``) pointed at ``data_dir`` and ``out_dir``."""
    config = load_config(config_path or SIMULATION_CONFIG)
    if overrides:
        config = dataclasses.replace(config, recognition=dataclasses.replace(config.recognition, **overrides))
    # The simulation makes the office secret for cards in the data folder on first use, and the data key beside
    # the folder (never in it): <data>.key.
    data_dir = Path(data_dir)
    key_file = data_dir.resolve().with_name(data_dir.resolve().name + ".key")
    return dataclasses.replace(config, data_dir=data_dir, simulate=True,
                               privacy=dataclasses.replace(config.privacy, key_source="file", key_file=str(key_file)),
                               printer=dataclasses.replace(config.printer, connection="simulated",
                                                           out_dir=str(out_dir)),
                               identity=dataclasses.replace(config.identity,
                                                            secret_file=str(Path(data_dir) / "office-secret")))


def run_replay(visits: list[dict], *, data_dir: Path, out_dir: Path, config_path: Path | None = None,
               overrides: dict | None = None, engine: Any = None, out: IO[str] | None = None) -> list[dict]:
    """Play ``visits`` through the kiosk's loop; return (and write to ``out``) one result per visit."""
    from hardware.camera import FileCamera

    config = replay_config(config_path, data_dir, out_dir, overrides)
    clock = FakeClock()
    camera = FileCamera([], loop=True)    # a shown still stays in view until the next visit
    kiosk = build_kiosk(config, clock=clock, camera=camera, engine=engine, sync=True, use_gpio=False)
    results = []
    try:
        for visit in visits:
            result = _play_visit(kiosk, camera, clock, config, visit)
            results.append(result)
            if out is not None:
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
                out.flush()
    finally:
        kiosk.close()
    return results


def _play_visit(kiosk: Any, camera: Any, clock: FakeClock, config: Config, visit: dict) -> dict:
    """One visit, driven by what the machine says: a verdict or a card to stop looking, a question to answer."""
    loop = kiosk.loop
    # One camera frame per turn whatever the loop's current rate (idle or active).
    frame_period = 1.0 / min(config.camera.idle_fps, config.camera.active_fps)
    images = visit["image"] if isinstance(visit["image"], list) else [visit["image"]]
    seen: list[Any] = []        # what the machine said while the images were shown
    for image in images:        # shown one after another: a face, then a card held up, ...
        camera.show(image)
        # Let the recognizer look until it has a verdict on the person in view (or a QR code was judged).
        if image is not None:
            for _ in range(MAX_FRAMES_PER_VISIT):
                clock.advance(frame_period)
                said = loop.step()
                seen += said
                if any(isinstance(event, (FaceSettled, CodeJudged)) for event in said):
                    break
    if visit.get("privacy"):
        return _privacy_visit(kiosk, camera, clock, config, visit["privacy"], seen)
    loop.events.put(ButtonPressed(visit["category"]))
    said = loop.step()
    for _ in range(1000):
        issued = [event.outcome for event in said if isinstance(event, TicketIssued)]
        if issued:
            break
        asked = [event.question for event in said if isinstance(event, QuestionAsked)]
        if asked and visit[asked[-1].value]:            # the script's "consent" / "confirm" answer
            loop.events.put(ButtonPressed(CONSENT))
        elif asked:
            clock.advance(config.timing.consent_seconds)  # no answer means no
        else:
            clock.advance(frame_period)
        said = loop.step()
    else:
        raise RuntimeError(f"visit {visit} never reached a ticket (phase {loop.machine.phase})")
    [outcome] = issued
    # The citizen walks away: nobody in view, the ticket screen times out, back to idle.
    camera.show(None)
    clock.advance(config.timing.done_seconds)
    loop.step()
    loop.step()
    return {"ticket": outcome.ticket, "category": outcome.category, "citizen": outcome.citizen,
            "recognized": outcome.recognized, "enrolled": outcome.enrolled, "printed": outcome.printed,
            "identified_by": outcome.identified_by, "proposed": outcome.proposed, "card": outcome.card,
            "privacy": None}


def _privacy_visit(kiosk: Any, camera: Any, clock: FakeClock, config: Config, choice: str, seen: list) -> dict:
    """The receipt was shown: press the chosen button if the privacy screen offers its choices; no ticket."""
    loop = kiosk.loop
    answers = [event.answer.value for event in seen if isinstance(event, PrivacyAnswered)]
    if any(isinstance(event, PrivacyOffered) for event in seen):
        loop.events.put(ButtonPressed(CONSENT if choice == "delete" else config.categories[0].key))
        answers += [event.answer.value for event in loop.step() if isinstance(event, PrivacyAnswered)]
    camera.show(None)           # the receipt is put away: the screen times out, back to idle
    for _ in range(4):
        clock.advance(max(config.timing.done_seconds, config.timing.greeting_seconds))
        if any(isinstance(event, VisitEnded) for event in loop.step()):
            break
    return {"ticket": None, "category": None, "citizen": None, "recognized": False, "enrolled": False,
            "printed": None, "identified_by": None, "proposed": None, "card": None,
            "privacy": answers[-1] if answers else None}


def main(script: Path, *, data_dir: Path, out_dir: Path, config_path: Path | None = None) -> int:
    config = replay_config(config_path, data_dir, out_dir)
    try:
        visits = read_script(script, (c.key for c in config.categories))
    except ScriptError as exc:
        print(f"kiosk replay: {exc}", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    run_replay(visits, data_dir=data_dir, out_dir=out_dir, config_path=config_path, out=sys.stdout)
    return 0
