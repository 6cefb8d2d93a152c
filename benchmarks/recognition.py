"""Recognition end to end: accuracy through the kiosk's replay path, and CPU per minute of a person in view.

    .venv/bin/python benchmarks/recognition.py --faces ../shared/data/faces/dev [--set threshold=0.54 ...] [--one-core]
    .venv/bin/python benchmarks/recognition.py --scale ../shared/data/faces/scale [--limit 300] [--one-core]

``--one-core`` re-runs the script under ``taskset -c 0`` (one CPU: the closest stand-in for a Pi 4 core here).
Every timed figure is printed as CPU and wall time with the machine's load average beside it.

Accuracy (``kiosk.replay.run_replay``: the real loop, state machine, store and recognizer, fake clock):
every person in DIR enrols with their first photo (consent yes) and returns with each other photo
(consent no, so a missed return never creates a second record); every sixth person is held back as a
stranger and visits with all photos without ever enrolling, as do ``singletons/`` and ``noface/`` (siblings
of DIR); each ``multi/`` photo visits twice with consent yes (the first visit may enrol its dominant face).
Two more runs follow: the returning visits of enrolled people that the face missed are replayed on the same
data with consent yes, and every record that creates is counted as a duplicate (target 0: the unsure zone
asks for the card instead); then every enrolling person gets an invented card (``kiosk.cardgen``), enrols
with face, card and consent, and returns with each other photo and the card in one picture: returning visits
linked to the right citizen (target 100 %).

District scale (``--scale DIR``, ``kiosk.scale``'s protocol): one photo per person enrolled in a gallery of
1,000, 2,000 and all enrolled people; returning citizens visit with their second photo, held-back strangers
with theirs, and every enrolled person is left out in turn and visits as a stranger. The kiosk's engine,
quality gate and ``FaceIndex.match`` with the Pi config's threshold and margin decide what is proposed.
Linking is counted under the confirmation rule (a face-only proposal links only when the visitor confirms,
and a visitor confirms only their own masked name) against today's rule (face alone links) in the same run,
overall and for the East Asian subset; the unsure zone's share of missed returns is printed too. Encodings
are cached outside the repository (``kiosk.encoding_cache``): the first full run encodes ~3,600 photos.

CPU (same run): a citizen stands in front of a file camera for one simulated minute (900 frames at 15 fps,
one photo scaled to a 640 x 480 frame); the kiosk's Recognizer processes every frame, against
face_recognition's "faster webcam" recipe (every other frame at quarter size: face_locations,
face_encodings, compare_faces) on the same frames. A still replayed frame is the kiosk's best case (nothing
moves, so nothing is re-detected); the second minute moves the picture by a few pixels on every frame, the
worst case for its tracking; the third run is that minute as the Pi camera delivers it, with the lores
stream's greyscale copy beside each frame (made before timing starts: the camera's ISP scales for free), so
detection needs no resize (``benchmarks/cpu_minute.py``). CPU is ``time.process_time()`` of this process. The live loop gives the
recognizer at most ``camera.active_fps`` frames a second (8 in the shipped configs), fewer than here.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.benchkit import load, pinned, rerun_on_one_core  # noqa: E402
from benchmarks.cpu_minute import FACE_SCALE, FPS, SECONDS, SWAY_PX, cpu_minute, recognizer_settings  # noqa: E402
from kiosk import scale  # noqa: E402
from kiosk.calibrate import (IMAGE_SUFFIXES, EncodingCache, photo_folders, shipped_disk_cache,  # noqa: E402
                             unsure_below_from)



def parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not value:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        overrides[key.strip()] = float(value) if "." in value else int(value)
    return overrides


# -- accuracy through the replay path -------------------------------------------------------------------------
def plan_visits(faces_dir: Path, category: str, stranger_every: int):
    people = photo_folders(faces_dir)
    names = sorted(people)
    strangers = set(names[stranger_every // 2::stranger_every]) if stranger_every else set()
    enrolled = [n for n in names if n not in strangers]
    visits, roles = [], []

    def visit(path, consent, role):
        # "confirm": the citizen answers yes when shown a proposed name (the kiosk links a face only then)
        visits.append({"image": str(path) if path else None, "category": category, "consent": consent,
                       "confirm": True})
        roles.append(role)

    for name in enrolled:
        visit(people[name][0], True, ("enrol", name))
    for round_ in range(1, max(len(p) for p in people.values())):
        for name in enrolled:
            if round_ < len(people[name]):
                visit(people[name][round_], False, ("return", name))
    for name in sorted(strangers):
        for path in people[name]:
            visit(path, False, ("stranger", name))
    for folder in ("singletons", "noface"):
        extra = faces_dir.parent / folder
        if extra.is_dir():
            for path in sorted(p for p in extra.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                visit(path, False, ("stranger", f"{folder}/{path.name}"))
    multi = faces_dir.parent / "multi"
    if multi.is_dir():
        for path in sorted(p for p in multi.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            visit(path, True, ("group-first", path.name))
            visit(path, True, ("group-again", path.name))
    return people, enrolled, sorted(strangers), visits, roles


def accuracy(faces_dir: Path, overrides: dict, config_path: Path | None, stranger_every: int) -> dict:
    from kiosk.config import SIMULATION_CONFIG, load_config
    from kiosk.replay import run_replay

    category = load_config(config_path or SIMULATION_CONFIG).categories[0].key
    people, enrolled, strangers, visits, roles = plan_visits(faces_dir, category, stranger_every)
    print(f"replay: {len(visits)} visits: {len(enrolled)} people enrol and return, {len(strangers)} held back "
          f"as strangers ({', '.join(strangers)}), plus singletons/, noface/ and multi/ (twice each)")
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        data, tickets = Path(tmp) / "data", Path(tmp) / "tickets"
        results = run_replay(visits, data_dir=data, out_dir=tickets, config_path=config_path,
                             overrides=overrides or None)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        result = tally_visits(roles, results)
        result.update(seconds=elapsed, cpu=cpu, load=load(), visits=len(visits), people=len(enrolled))
        result["again"] = consent_again(visits, roles, results, result["citizen of"], data, tickets, config_path,
                                        overrides)
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        result["cards"] = with_cards(people, enrolled, category, Path(tmp), config_path, overrides)
    result["cards"].update(seconds=time.perf_counter() - started, cpu=time.process_time() - cpu, load=load())
    return result


def tally_visits(roles: list, results: list[dict]) -> dict:
    """Right, wrong and missed links of the dev run, per role (see plan_visits)."""
    citizen_of: dict[str, str] = {}
    group_citizen: dict[str, str] = {}
    counts: Counter = Counter()
    misses = []
    for (role, who), result in zip(roles, results):
        citizen = result["citizen"]
        if role == "enrol":
            if result["recognized"]:
                counts["wrong"] += 1                  # a first visit given to somebody already enrolled
            elif result["enrolled"]:
                citizen_of[who] = citizen
            else:
                counts["not enrolled"] += 1
        elif role == "return":
            counts["returning"] += 1
            if citizen is not None and citizen == citizen_of.get(who):
                counts["right"] += 1
            elif citizen is not None:
                counts["wrong"] += 1
            else:
                misses.append(who)
        elif role == "stranger":
            counts["strangers"] += 1
            counts["strangers accepted"] += citizen is not None
        elif role == "group-first":
            counts["group visits"] += 1
            if result["recognized"]:
                counts["group attached"] += 1         # nobody from this photo was enrolled yet
            elif result["enrolled"]:
                group_citizen[who] = citizen
        elif role == "group-again":
            counts["group visits"] += 1
            if citizen is not None and citizen != group_citizen.get(who):
                counts["group attached"] += 1
            counts["group recognised"] += citizen is not None and citizen == group_citizen.get(who)
    return {"counts": counts, "misses": misses, "group enrolled": sorted(group_citizen),
            "enrolled": len(citizen_of), "citizen of": citizen_of}


def citizens_on_record(data: Path) -> int:
    """How many citizens ``kiosk citizens`` would list for the data folder (card or face records)."""
    from kiosk.citizens import citizen_lines
    from kiosk.identity import CardBook
    from kiosk.store import Store

    store = Store.open_readonly(data)
    book = CardBook.open(data, secret=None, readonly=True)
    try:
        return len(citizen_lines(store, book))
    finally:
        book.close()
        store.close()


def consent_again(visits: list[dict], roles: list, results: list[dict], citizen_of: dict[str, str], data: Path,
                  tickets: Path, config_path: Path | None, overrides: dict) -> dict:
    """The returning visits of enrolled people that the face missed, replayed on the same data with consent yes
    (the citizen says yes to everything): every record this creates is a second record for somebody."""
    from kiosk.replay import run_replay

    missed = [(visit, who) for visit, (role, who), result in zip(visits, roles, results)
              if role == "return" and result["citizen"] is None and who in citizen_of]
    before = citizens_on_record(data)
    # This replay's fake clock starts at the real time again, behind the first one's last ticket: the store's
    # "clock went back" warning is expected here (numbering goes on), so it is kept out of the output.
    quiet = logging.getLogger("kiosk")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        again = run_replay([dict(visit, consent=True, confirm=True) for visit, _ in missed], data_dir=data,
                           out_dir=tickets, config_path=config_path, overrides=overrides or None) if missed else []
    finally:
        quiet.setLevel(level)
    after = citizens_on_record(data)
    return {"visits": len(missed), "people": len({who for _, who in missed}),
            "duplicates": sum(r["enrolled"] for r in again), "records before": before, "records after": after,
            "linked right": sum(r["citizen"] == citizen_of[who] for r, (_, who) in zip(again, missed)),
            "linked wrong": sum(r["citizen"] not in (None, citizen_of[who]) and not r["enrolled"]
                                for r, (_, who) in zip(again, missed))}


CARD_PX_PER_MODULE = 2    # the card's QR in the composed picture: the Pi camera's floor at 25 cm


def card_pictures(face: Path, card: np.ndarray, out: Path) -> list[str]:
    """The citizen holding their card below the face (one frame with both), as the camera sees them over a
    few frames: the same picture with the person moved by 0, SWAY_PX and 2 x SWAY_PX pixels, saved as PNGs.

    The photo is enlarged as in the CPU minute (FACE_SCALE: a 150 px crop becomes a face at arm's length).
    The replay shows each picture until the person's verdict is in or a card was judged. dlib's detector
    misses a few faces in one exact position that it finds a few pixels away (a real camera's frames never
    repeat exactly): the sway lets the face beside the card be found, so that its templates can be kept."""
    from PIL import Image

    card_picture = Image.fromarray(card)
    with Image.open(face) as opened:
        photo = opened.convert("RGB").resize((round(opened.width * FACE_SCALE), round(opened.height * FACE_SCALE)),
                                             Image.Resampling.BICUBIC)
    paths = []
    for step in range(3):
        frame = Image.new("RGB", (max(photo.width, card_picture.width) + 2 * SWAY_PX,
                                  photo.height + card_picture.height), (110, 110, 110))
        frame.paste(photo, ((frame.width - photo.width) // 2 - SWAY_PX + step * SWAY_PX, 0))
        frame.paste(card_picture, ((frame.width - card_picture.width) // 2, photo.height))
        path = out.with_name(f"{out.stem}-{step}.png")
        frame.save(path)
        paths.append(str(path))
    return paths


def adult_payload(rng, today) -> str:
    """An invented card (kiosk.cardgen) of somebody old enough for face templates (identity.min_age_for_face)."""
    from kiosk.cardgen import invent_payload
    from kiosk.cccd import parse_card

    while True:
        payload = invent_payload(rng, today=today)
        born = parse_card(payload, today=today).birth_date
        if (today.year - born.year - ((today.month, today.day) < (born.month, born.day))) >= 18:
            return payload


def with_cards(people: dict, enrolled: list[str], category: str, folder: Path, config_path: Path | None,
               overrides: dict) -> dict:
    """Each person gets an invented card, enrols with face + card + consent, and returns with face + card."""
    import random
    from datetime import date

    from kiosk.cardgen import card_image
    from kiosk.replay import run_replay

    rng = random.Random(11)
    today = date.today()
    payloads = {name: adult_payload(rng, today) for name in enrolled}
    visits, whose, photos = [], [], []
    for name in enrolled:
        card = card_image(payloads[name], px_per_module=CARD_PX_PER_MODULE, rng=rng)
        for number, photo in enumerate(people[name]):
            pictures = card_pictures(photo, card, folder / f"{name}-{number}.png")
            # Walking up: the face alone first (as in the dev run; the visit is then under way, so the card
            # is looked for even in a frame where the face is missed), then the card held up below it.
            visits.append({"image": [str(photo), *pictures], "category": category, "consent": number == 0,
                           "confirm": True})
            whose.append((name, number == 0))
            photos.append(f"{name}/{photo.name}")
    results = run_replay(visits, data_dir=folder / "data", out_dir=folder / "tickets", config_path=config_path,
                         overrides=overrides or None)
    record_of = {name: r["citizen"] for (name, first), r in zip(whose, results) if first}
    returning = [(name, r) for (name, first), r in zip(whose, results) if not first]
    return {"people": len(enrolled), "records": len({c for c in record_of.values() if c}),
            "enrolled with face": sum(r["enrolled"] for (_, first), r in zip(whose, results) if first),
            "returning": len(returning),
            "right": sum(r["citizen"] is not None and r["citizen"] == record_of[name] for name, r in returning),
            "wrong": sum(r["citizen"] not in (None, record_of[name]) for name, r in returning),
            "by card": sum(r["identified_by"] == "card" for _, r in returning),
            "card unread": [f"{photo} ({r['card']})" for photo, r in zip(photos, results) if r["card"] != "ok"],
            "records on file": citizens_on_record(folder / "data")}


def print_accuracy(result: dict) -> None:
    """The dev run's lines, then the missed returns consenting again, then the same people with their cards."""
    c = result["counts"]
    print(f"  {result['visits']} visits replayed in {result['seconds']:.0f} s wall, {result['cpu']:.0f} s CPU "
          f"({result['load']}); "
          f"{result['enrolled']} of {result['people']} people enrolled on their first visit")
    print(f"  returning visits recognised as the right citizen: {c['right']}/{c['returning']} = "
          f"{c['right'] / max(c['returning'], 1):.1%}   (target >= 99 %)")
    print(f"  visits attached to a wrong citizen: {c['wrong']}   (target 0)")
    print(f"  strangers accepted: {c['strangers accepted']} of {c['strangers']} stranger visits   (target 0)")
    print(f"  group photos attached to anyone not enrolled as that group's dominant face: "
          f"{c['group attached']} of {c['group visits']} group visits "
          f"(dominant face enrolled from: {', '.join(result['group enrolled']) or 'none'}; "
          f"recognised again: {c['group recognised']})")
    if result["misses"]:
        print(f"  missed returns: {', '.join(f'{k} x{v}' for k, v in sorted(Counter(result['misses']).items()))}")
    a = result["again"]
    print(f"  duplicate records created when the {a['visits']} missed returning visits of {a['people']} enrolled "
          f"people are replayed with consent yes: {a['duplicates']}   (target 0; citizens on record "
          f"{a['records before']} before, {a['records after']} after; linked right this time {a['linked right']}, "
          f"to a wrong citizen {a['linked wrong']})")
    k = result["cards"]
    print(f"  returning visits linked to the right citizen when each shows a card: {k['right']}/{k['returning']} = "
          f"{k['right'] / max(k['returning'], 1):.1%}   (target 100 %; {k['people']} people with invented cards "
          f"at {CARD_PX_PER_MODULE} px/module below the face, swaying {SWAY_PX} px, {k['records']} records, {k['enrolled with face']} "
          f"enrolled with face templates; identified by the card {k['by card']}, to a wrong citizen {k['wrong']}, "
          f"cards not read {len(k['card unread'])}, citizens on record {k['records on file']}; replayed in "
          f"{k['seconds']:.0f} s wall, {k['cpu']:.0f} s CPU, {k['load']})")
    if k["card unread"]:
        print(f"    cards not read: {', '.join(k['card unread'])}")


# -- district scale -------------------------------------------------------------------------------------------
def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({part / whole:.1%})" if whole else f"{part} of 0"


def scale_lines(label: str, t: scale.Tally) -> list[str]:
    """One subset at one gallery size: proposals, links under both rules, where the missed returns go."""
    return [
        f"  {label}: returning visits proposed the right name {_share(t.proposed_right, t.returning)}; "
        f"shown a wrong name: returning {_share(t.returning_wrong, t.returning)}, strangers "
        f"{_share(t.strangers_shown, t.strangers)}, left-out {_share(t.left_out_shown, t.left_out)}",
        f"    visits linked to a wrong citizen: {t.linked_wrong_confirmed} with confirmation (target 0)   "
        f"baseline, face alone links (today's rule): {t.linked_wrong_unconfirmed}"
        + (f"   linked without asking below autolink_below: {t.autolinked_right} right, {t.autolinked_wrong} wrong"
           if t.autolinked_right or t.autolinked_wrong else ""),
        f"    missed returns {t.missed}: in the unsure zone, asked for the card {_share(t.missed_unsure, t.missed)}; "
        f"under the threshold, not offered enrolment {t.missed_below_threshold}; offered face-only enrolment again "
        f"{t.missed_offered_enrolment}   (strangers asked for a card: "
        f"{_share(t.strangers_unsure, t.strangers + t.left_out)})",
    ]


def district_scale(scale_dir: Path, settings: dict, *, limit: int | None, unsure_below: float | None,
                   autolink_below: float | None) -> None:
    from kiosk.faces import FaceRecognitionEngine, Recognizer
    from kiosk.index import FaceIndex

    threshold, margin = settings["threshold"], settings["margin"]
    gate = {k: v for k, v in settings.items() if k not in ("threshold", "margin", "confirm_frames", "enrol_frames")}
    recognizer = Recognizer(FaceRecognitionEngine(), FaceIndex(), threshold=threshold, margin=margin, **gate)
    cache = EncodingCache(recognizer, shipped_disk_cache(recognizer))
    source = "--unsure-below or the config"
    if unsure_below is None:
        dev = scale_dir.parent / "dev"
        unsure_below = unsure_below_from(dev, cache, threshold) if dev.is_dir() else None
        source = f"kiosk calibrate's suggestion on {dev}" if dev.is_dir() else "none: no dev/ beside DIR"
    folders = photo_folders(scale_dir)
    names = scale.sample(list(folders), limit)
    started, cpu = time.perf_counter(), time.process_time()
    encodings = scale.encode_people({n: folders[n] for n in names}, cache)
    chosen = {n: folders[n] for n in names}
    plan = scale.plan(encodings, scale.read_east_asian(scale_dir), aliases=scale.aliases_of(chosen))
    ea_returning = sum(n in plan.east_asian for n in plan.returning)
    ea_strangers = sum(n in plan.east_asian for n in plan.strangers)
    refused = Counter(cache.refused.values())
    print(f"district scale: {scale_dir}: {len(names)} people, {sum(len(folders[n]) for n in names)} photos, "
          f"{sum(refused.values())} refused by the kiosk's detection and quality gate"
          f"{' (' + ', '.join(f'{k} {v}' for k, v in sorted(refused.items())) + ')' if refused else ''}; "
          f"encoded or read from {cache.disk_path or 'no disk cache'} in {time.perf_counter() - started:.0f} s wall, "
          f"{time.process_time() - cpu:.0f} s CPU ({load()})")
    print(f"  kiosk engine (mirror-averaged), detection and quality gate; FaceIndex.match, threshold {threshold}, "
          f"margin {margin}; unsure_below {'unset' if unsure_below is None else f'{unsure_below:.2f}'} ({source}); "
          f"autolink_below "
          f"{autolink_below if autolink_below is not None else 'unset'}")
    print(f"  protocol: {len(plan.returning)} people with two usable photos enrol photo 1 and return with photo 2 "
          f"({ea_returning} East Asian); of the people with one usable photo, every {scale.STRANGER_EVERY}th is held "
          f"back as a stranger ({len(plan.strangers)}, {ea_strangers} East Asian) and the rest "
          f"({len(plan.others)}) are enrolled and never return; {len(plan.unusable)} people have no usable photo. "
          f"Every enrolled person is also left out in turn and visits as a stranger.")
    print("  a wrong name is confirmed only when its masked form equals the visitor's own (kiosk.tickets.mask_name); "
          "one person under two names is neither right nor wrong: "
          + (", ".join(" = ".join(sorted(pair)) for pair in sorted(plan.aliases, key=sorted)) or "none"))
    for size in plan.sizes():
        probes = scale.replay(plan, encodings, size, threshold=threshold, margin=margin)
        print(f" gallery of {size:,} enrolled ({load()})")
        for label, subset in (("everyone", probes), ("East Asian", scale.east_asian_probes(probes, plan.east_asian))):
            for line in scale_lines(label, scale.tally(subset, threshold=threshold, unsure_below=unsure_below,
                                                       autolink_below=autolink_below)):
                print(line)
    gallery, strangers = scale.east_asian_gallery(plan)
    if len(gallery) > 2:
        probes = scale.replay(plan, encodings, 0, threshold=threshold, margin=margin, gallery=gallery,
                              strangers=strangers)
        print(f" the East Asian people alone, {len(gallery)} enrolled (an office where everybody is East Asian)")
        for line in scale_lines("East Asian", scale.tally(probes, threshold=threshold, unsure_below=unsure_below,
                                                          autolink_below=autolink_below)):
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, help="folder of person/N.jpg (e.g. ../shared/data/faces/dev)")
    parser.add_argument("--scale", type=Path, help="a large gallery (e.g. ../shared/data/faces/scale): the "
                                                   "district-scale run instead of the dev run")
    parser.add_argument("--limit", type=int, help="--scale: only this many people, spread over the names")
    parser.add_argument("--unsure-below", type=float, help="--scale: the unsure zone's upper end (default: the "
                                                           "config's, else kiosk calibrate's suggestion on dev/)")
    parser.add_argument("--autolink-below", type=float, help="--scale: link without confirmation below this "
                                                             "(default: the config's, else unset)")
    parser.add_argument("--config", type=Path, help="kiosk config (default: the shipped simulation config)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a [recognition] setting, e.g. --set threshold=0.54")
    parser.add_argument("--stranger-every", type=int, default=6, help="hold back every Nth person as a stranger")
    parser.add_argument("--person", help="who stands in view for the CPU minute (default: first enrolled)")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--one-core", action="store_true", help="re-run pinned to CPU 0 (taskset -c 0)")
    args = parser.parse_args(argv)
    if args.one_core and not pinned():
        return rerun_on_one_core(__file__, argv if argv is not None else sys.argv[1:])
    on_one = "; pinned to CPU 0 (taskset -c 0)" if pinned() else ""
    warnings.filterwarnings("ignore", module="face_recognition_models")
    if args.scale is not None:
        if not args.scale.is_dir():
            print(f"recognition benchmark: {args.scale}: not a folder of person/N.jpg photos", file=sys.stderr)
            return 2
        if args.limit is not None and args.limit < 1:
            parser.error("--limit must be at least 1")
        from kiosk.config import PACKAGED_CONFIGS, load_config
        config_path = args.config or PACKAGED_CONFIGS / "pi.toml"
        settings = recognizer_settings(config_path, parse_overrides(args.set))
        rec = load_config(config_path).recognition
        unsure = args.unsure_below if args.unsure_below is not None else getattr(rec, "unsure_below", None)
        autolink = args.autolink_below if args.autolink_below is not None else getattr(rec, "autolink_below", None)
        print(f"recognition benchmark, district scale{on_one} ({load()})")
        district_scale(args.scale, settings, limit=args.limit, unsure_below=unsure, autolink_below=autolink)
        return 0
    if args.faces is None:
        parser.error("give --faces DIR (the dev run) or --scale DIR (the district-scale run)")
    if not args.faces.is_dir():
        print(f"recognition benchmark: {args.faces}: not a folder of person/N.jpg photos", file=sys.stderr)
        return 2
    overrides = parse_overrides(args.set)
    settings = recognizer_settings(args.config, overrides)
    print(f"recognition benchmark on {args.faces}{on_one} ({load()})")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items())
          + (f"  (overridden: {', '.join(sorted(overrides))})" if overrides else "  (from the config)"))

    if not args.skip_accuracy:
        print_accuracy(accuracy(args.faces, overrides, args.config, args.stranger_every))

    if not args.skip_cpu:
        people, enrolled, _, _, _ = plan_visits(args.faces, "x", args.stranger_every)
        candidates = [n for n in enrolled if len(people[n]) >= 2]
        person = args.person or candidates[0]
        cpu = cpu_minute(people, enrolled, person, settings)
        print(f"CPU per simulated minute of {person} ({cpu['photo'].name}) standing in view "
              f"({FPS} fps x {SECONDS} s = {FPS * SECONDS} frames of 640x480, every frame given to the recognizer):")
        for name, run in cpu["runs"].items():
            kiosk, recipe, s = run["kiosk"], run["recipe"], run["kiosk"]["stats"]
            label = {"still": "a still (file camera)", "swaying": f"swaying {SWAY_PX} px every frame",
                     "swaying, lores": f"swaying {SWAY_PX} px every frame, with the Pi camera's lores stream"}[name]
            print(f"  {label}:")
            print(f"    kiosk Recognizer:                {kiosk['cpu']:6.2f} s CPU, {kiosk['wall']:6.2f} s wall "
                  f"({load()}; {s.full_detections} full-frame "
                  f"detections at {settings['detect_width']} px, {s.window_detections} tracking-window "
                  f"detections, {s.unchanged} frames unchanged, {s.encodings} encodings)")
            print(f"    face_recognition 'faster webcam': {recipe['cpu']:6.2f} s CPU, {recipe['wall']:6.2f} s wall "
                  f"({load()}; face found {recipe['found']} "
                  f"times, named {recipe['named']} times)")
            print(f"    ratio kiosk / recipe: {kiosk['cpu'] / recipe['cpu']:.3f}   (target <= 0.2)")
            at = kiosk["identity_at"]
            print(f"    processed frames from the face appearing to its identity: "
                  f"{at[0] if at else 'never'}{f' ({at[1]})' if at else ''}   (target <= 2; the recipe names "
                  f"someone on frame {recipe['first'][0] if recipe['first'] else 'never'}, unconfirmed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
