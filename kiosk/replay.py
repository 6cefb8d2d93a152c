"""``kiosk replay``: the acceptance harness. Drives the same loop headless, visit by visit.

A script is JSON Lines, one visit a line: ``{"image": "faces/a/1.jpg", "category": "ho-tich",
"consent": true}``; ``image`` may be a list shown one after another (a face, then a card), and
``"confirm": true`` presses the consent button when the kiosk asks "is this you?"; ``"privacy": "delete"`` (or
``"print"``) with a consent receipt's PNG as the image answers the privacy screen instead of taking a ticket
(its line says ``"privacy": "deleted" | "printed" | "refused"``); ``"rating": "good" | "ok" | "bad"`` presses
that rating button instead (kiosk.replay_rating: ``"linked"``, ``"counted"``). ``"priority": true`` presses the
priority button with the service; ``"at": "2026-12-01T09:30"`` sets the kiosk's clock for that visit (never back),
so opening hours and caps are scriptable: a refused press says ``"ticket": null, "refused": "closed" | "full"``.
The file camera
shows the images, scripted button presses stand in for the citizen, and a fake clock makes every timeout pass instantly. One JSON line per visit comes out,
and the simulated printer leaves each ticket's exact bytes (.bin) and picture (.png) in ``out_dir``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import json
import logging
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from hardware.camera import CameraError
from kiosk.app import build_kiosk
from kiosk.storage import StorageError
from kiosk.store import StoreError
from kiosk.loop import FakeClock
from kiosk.config import CameraConfig, Config, SIMULATION_CONFIG, load_config
from kiosk.machine_events import (CodeJudged, FaceSettled, PrivacyAnswered, PrivacyOffered, QuestionAsked,
                                  TicketIssued, TicketRefused, VisitEnded)
from kiosk.replay_rating import rating_choice, rating_visit
from kiosk.visit import CONSENT, PRIORITY, ButtonPressed

MAX_FRAMES_PER_VISIT = 12   # frames shown to the recognizer before the button is pressed anyway
PRIVACY_CHOICES = ("delete", "print")
MAX_PIXELS = CameraConfig.max_image_pixels   # the default of [camera] max_image_pixels (the config's is used)
MAX_PATH = 1024            # characters of an image path in a script
FIELDS = {"image", "category", "consent", "confirm", "privacy", "rating", "priority", "at"}   # other branches add theirs here
AT_FORMAT = "%Y-%m-%dT%H:%M"


class ScriptError(ValueError):
    """A replay script that cannot run; the message names the line."""


class ReplayStopped(RuntimeError):
    """Replay could not go on (a visit got no ticket, the disk is full); the message says which visit and why."""


def read_script(path: Path, categories: Iterable[str], *, max_pixels: int = MAX_PIXELS) -> list[dict]:
    """Parse and check the whole script before anything runs: text, fields, paths, each image's header."""
    known = set(categories)
    visits = []
    checked: dict[str, str] = {}      # an image shown in many visits is read once
    lines = _script_lines(path)
    clock: datetime | None = None     # the latest "at": the kiosk's clock never goes back
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"{where}: not JSON: {exc.msg}") from None
        except RecursionError:
            raise ScriptError(f"{where}: not a visit: JSON nested too deeply") from None
        if not isinstance(entry, dict):
            raise ScriptError(f"{where}: a visit must be a JSON object")
        unknown = set(entry) - FIELDS
        if unknown:
            raise ScriptError(f"{where}: unknown field(s) {_short(', '.join(sorted(unknown)))}")
        privacy = _privacy_choice(entry, where)
        try:
            rating = rating_choice(entry, where)
        except ValueError as exc:
            raise ScriptError(str(exc)) from None
        category = entry.get("category")
        if privacy is None and rating is None and (not isinstance(category, str) or category not in known):
            raise ScriptError(f"{where}: unknown category {_short(repr(category))} "
                              f"(known: {', '.join(sorted(known))})")
        image = entry.get("image")
        if image is not None:
            paths = [image] if isinstance(image, str) else image
            if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
                raise ScriptError(f"{where}: image must be a path, a list of paths or null")
            resolved = []
            for one in paths:
                if one not in checked:
                    checked[one] = str(_check_image(where, path.parent, one, max_pixels))
                resolved.append(checked[one])
            image = resolved[0] if isinstance(image, str) else resolved
        consent, confirm = entry.get("consent", False), entry.get("confirm", False)
        if not isinstance(consent, bool):
            raise ScriptError(f"{where}: consent must be true or false")
        if not isinstance(confirm, bool):
            raise ScriptError(f"{where}: confirm must be true or false")
        if not isinstance(entry.get("priority", False), bool):
            raise ScriptError(f"{where}: priority must be true or false")
        at = _at(entry.get("at"), where, clock)
        clock = at or clock
        visits.append({"image": image, "category": category, "consent": consent, "confirm": confirm,
                       **({"priority": True} if entry.get("priority") else {}), **({"at": at} if at else {}),
                       **({"privacy": privacy} if privacy else {}), **({"rating": rating} if rating else {})})
    return visits


def _at(value: object, where: str, latest: datetime | None) -> datetime | None:
    """A visit's ``"at"``: the kiosk's clock for it, YYYY-MM-DDTHH:MM, never before an earlier visit's."""
    if value is None:
        return None
    try:
        at = datetime.strptime(value, AT_FORMAT) if isinstance(value, str) and len(value) == 16 else None
    except ValueError:
        at = None
    if at is None:
        raise ScriptError(f"{where}: at must be a time like \"2026-12-01T09:30\" (YYYY-MM-DDTHH:MM), "
                          f"got {_short(repr(value))}")
    if latest is not None and at < latest:
        raise ScriptError(f"{where}: at {value} goes back before {latest:{AT_FORMAT}}: the kiosk's clock never "
                          f"goes back")
    return at


def _privacy_choice(entry: dict, where: str) -> str | None:
    """A privacy visit's choice (then no category is needed: it takes no ticket)."""
    choice = entry.get("privacy")
    if choice is not None and choice not in PRIVACY_CHOICES:
        raise ScriptError(f"{where}: privacy must be one of {', '.join(PRIVACY_CHOICES)}")
    return choice


def _script_lines(path: Path) -> list[str]:
    """The script's lines; anything but UTF-8 text (UTF-16, Latin-1, a binary file) is one clear error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw:
        raise ScriptError(f"{path}: not UTF-8 text (UTF-16 or binary?): save the script as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ScriptError(f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x}): save the script as UTF-8") \
            from None
    return text.splitlines()


def _check_image(where: str, folder: Path, name: str, max_pixels: int) -> Path:
    """The image's path, once its header says it is an image no bigger than ``max_pixels`` (a bigger one is never
    decoded) and it decodes whole."""
    from PIL import Image, UnidentifiedImageError

    if not name or len(name) > MAX_PATH or "\x00" in name:
        raise ScriptError(f"{where}: image path empty, with a NUL or longer than {MAX_PATH} characters")
    image_path = Path(name) if Path(name).is_absolute() else folder / name
    try:
        if not image_path.is_file():
            raise ScriptError(f"{where}: image not found: {_short(str(image_path))}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)    # refused below, never decoded
            with Image.open(image_path) as image:      # reads the header only
                width, height = image.size
            if 0 < width * height <= max_pixels:        # small enough: decode it once, as the camera will
                with Image.open(image_path) as image:
                    image.verify()                      # chunk checksums where the format has them
                with Image.open(image_path) as image, _truncated_refused():
                    image.load()                        # a cut or damaged body fails here, not mid-replay
    except ScriptError:
        raise
    except Image.DecompressionBombError:
        raise ScriptError(f"{where}: image too large (over {max_pixels:,} pixels): {_short(str(image_path))}") \
            from None
    except UnidentifiedImageError:
        raise ScriptError(f"{where}: not an image Pillow can read: {_short(str(image_path))}") from None
    except Exception as exc:    # noqa: BLE001 - Pillow's plugins raise SyntaxError, struct.error, EOFError...
        raise ScriptError(f"{where}: cannot read image {_short(str(image_path))}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    if width * height > max_pixels or width < 1 or height < 1:
        raise ScriptError(f"{where}: image is {width}x{height} pixels, over the limit of {max_pixels:,}: "
                          f"{_short(str(image_path))}")
    return image_path


@contextlib.contextmanager
def _truncated_refused() -> Iterator[None]:
    """Pillow's switch off for one decode: face_recognition turns on decoding cut images (grey below the cut)
    for the whole process; a script's cut image is a mistake to name, not a picture to guess."""
    from PIL import ImageFile

    was = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = was


def _short(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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


def run_replay(visits: Iterable[dict], *, data_dir: Path, out_dir: Path, config_path: Path | None = None,
               overrides: dict | None = None, engine: Any = None, out: IO[str] | None = None,
               results: list[dict] | None = None) -> list[dict]:
    """Play ``visits`` through the kiosk's loop; return (and write to ``out``) one result per visit.

    ``results``: the list the results go in as they come, so a caller still has them when a visit fails."""
    from hardware.camera import FileCamera

    config = replay_config(config_path, data_dir, out_dir, overrides)
    if not isinstance(visits, list):      # (a lazy script: its first visit alone says when it starts)
        first = next(iter(visits), None)
        visits = itertools.chain([first] if first is not None else [], visits)
        first_at = first.get("at") if first is not None else None
    else:
        first_at = next((visit["at"] for visit in visits if visit.get("at") is not None), None)
    clock = FakeClock(first_at)           # the script's first "at", else now
    # A shown still stays in view until the next visit.
    camera = FileCamera([], loop=True, max_pixels=config.camera.max_image_pixels)
    kiosk = build_kiosk(config, clock=clock, camera=camera, engine=engine, sync=True, use_gpio=False)
    results = [] if results is None else results
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
    if visit.get("at") is not None:
        clock.set_wall(visit["at"])     # (a time already passed within the same minute stays as it is)
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
    if visit.get("rating"):
        try:
            return rating_visit(loop, camera, clock, visit["rating"])
        except RuntimeError as exc:
            raise ReplayStopped(str(exc)) from None
    if visit.get("priority"):
        loop.events.put(ButtonPressed(PRIORITY))
    loop.events.put(ButtonPressed(visit["category"]))
    said = loop.step()
    for _ in range(1000):
        issued = [event.outcome for event in said if isinstance(event, TicketIssued)]
        refused = [event for event in said if isinstance(event, TicketRefused)]
        if issued or refused:
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
        notice = (getattr(loop.machine.view, "notice", None) or "").replace("\n", " / ")
        raise ReplayStopped(f"no ticket was issued ({notice or f'the kiosk stayed in {loop.machine.phase}'})")
    # The citizen walks away: nobody in view, the ticket (or refusal) screen times out, back to idle (an unprinted
    # number stays on screen longer: the citizen copies it down).
    camera.show(None)
    t = config.timing
    clock.advance(t.unprinted_seconds if issued and issued[0].printed is False else t.done_seconds)
    loop.step()
    loop.step()
    if refused:
        return {**_nothing(), "category": refused[0].category, "priority": refused[0].priority,
                "refused": refused[0].reason}
    [outcome] = issued
    return {"ticket": outcome.ticket, "category": outcome.category, "citizen": outcome.citizen,
            "recognized": outcome.recognized, "enrolled": outcome.enrolled, "printed": outcome.printed,
            "identified_by": outcome.identified_by, "proposed": outcome.proposed, "card": outcome.card,
            "privacy": None, "priority": outcome.priority}


def _nothing() -> dict:
    """A visit's line when it took no ticket."""
    return {"ticket": None, "category": None, "citizen": None, "recognized": False, "enrolled": False,
            "printed": None, "identified_by": None, "proposed": None, "card": None, "privacy": None,
            "priority": False}


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
    return {**_nothing(), "privacy": answers[-1] if answers else None}


def main(script: Path, *, data_dir: Path, out_dir: Path, config_path: Path | None = None) -> int:
    config = replay_config(config_path, data_dir, out_dir)
    try:
        visits = read_script(script, (c.key for c in config.categories), max_pixels=config.camera.max_image_pixels)
    except ScriptError as exc:
        print(f"kiosk replay: {exc}", file=sys.stderr)
        return 2
    results: list[dict] = []
    errors = _LastError()
    logging.getLogger("kiosk").addHandler(errors)   # the kiosk logs a failed ticket and goes on; replay stops
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        run_replay(visits, data_dir=data_dir, out_dir=out_dir, config_path=config_path,
                   out=sys.stdout, results=results)
    except (ReplayStopped, StoreError, StorageError, CameraError, OSError) as exc:
        why = _why(errors.last or exc, data_dir) if isinstance(exc, ReplayStopped) else _why(exc, data_dir)
        print(f"kiosk replay: stopped at visit {len(results) + 1} of {len(visits)}: {why}", file=sys.stderr)
        return 3
    finally:
        logging.getLogger("kiosk").removeHandler(errors)
    return 0


class _LastError(logging.Handler):
    """Keeps the last exception the kiosk logged, the reason a visit got no ticket."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.last = record.exc_info[1]


def _why(exc: BaseException, data_dir: Path) -> str:
    """One line: the disk full said in plain words (what is stored stays as it was), else the error itself."""
    from kiosk.disk import MB, free_bytes

    try:
        free = free_bytes(data_dir)[0]
    except OSError:
        free = None
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    full = any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in chain) or (free is not None and free < MB)
    if full:
        return (f"the disk holding {data_dir} is full ({(free or 0) // MB} MB free); the tickets stored so far "
                f"are kept: free some space and replay the rest")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
