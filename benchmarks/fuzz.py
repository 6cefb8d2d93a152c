"""Bad input, measured: N mutated configs, N mutated replay scripts, N damaged or hostile images (issue 15).

Each case ends as one of: a clear error (ConfigError / ScriptError, one line), accepted (and then usable: a
sample of accepted configs builds the kiosk; every accepted image decodes in the file camera), a traceback (any
other exception; ``missed`` for an accepted image the camera then cannot read) or a hang (over ``--timeout``
seconds). Target: 0 tracebacks, 0 missed, 0 hangs at any N.

    python benchmarks/fuzz.py --n 10000          # long
    python benchmarks/fuzz.py --n 50 --seed 3    # the short version the tests run

The store family (benchmarks/fuzz_store.py) damages every file of a data folder in five ways and opens it as the
kiosk does: ``clear`` (reported), ``accepted`` (nothing reported, nothing lost), ``silent`` (an acknowledged
record gone with no report), ``unkept`` (a loss reported, no damaged copy kept). Target: 0 silent, 0 unkept.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import json
import os
import random
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from PIL import Image  # noqa: E402

from kiosk.config import SIMULATION_CONFIG, ConfigError, load_config  # noqa: E402
from kiosk.replay import MAX_PIXELS, ScriptError, read_script  # noqa: E402
from fuzz_store import store_family  # noqa: E402

CATEGORIES = ("ho-tich", "dat-dai")
HOSTILE_TOML = ["nan", "inf", "-inf", "-1", "-800", "0", "9223372036854775807", "1e308", '"x"', '""', "[]",
                '[1, "a"]', "{}", "{a = 1}", "true", '"' + "a" * 2000 + '"', '"\\u0000"', "0.5", "28", "2026-12-01",
                "-0.0", "1e-300", '"../../etc/passwd"', "99999999999999999999", "1" + "0" * 400]
HOSTILE_JSON = [None, True, 0, -1, 1e308, "", "x" * 5000, [], ["ho-tich"], {}, {"a": [1]}, "ho-tich", "dat-dai",
                "faces/missing.jpg", "a/" * 600, "\u0000", "../" * 50, [None], [[]], "/dev/null", "/"]


class Hang(Exception):
    """The per-case timeout went off."""


def _alarm(signum, frame):
    raise Hang()


@dataclasses.dataclass
class Tally:
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: list[str] = dataclasses.field(default_factory=list)

    def add(self, outcome: str, detail: str = "") -> None:
        self.counts[outcome] += 1
        if outcome in ("traceback", "hang", "missed", "silent", "unkept") and len(self.examples) < 5:
            self.examples.append(f"{outcome}: {detail}")


def run_case(tally: Tally, case: Callable[[], str], timeout: float) -> None:
    """Run one case under an alarm; ``case`` returns "clear" or "accepted", or raises."""
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        outcome = case()
        tally.add(outcome)
    except Hang:
        tally.add("hang", getattr(case, "label", ""))
    except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
        tally.add("traceback", f"{type(exc).__name__}: {str(exc)[:200]} "
                               f"at {traceback.extract_tb(exc.__traceback__)[-1].name}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


# ---------------------------------------------------------------------------------------------------- configs
def mutate_config_text(text: str, rng: random.Random) -> bytes:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        what = rng.random()
        assigned = [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
        headers = [i for i, line in enumerate(lines) if line.startswith("[")]
        if what < 0.6 and assigned:
            i = rng.choice(assigned)
            lines[i] = lines[i].split("=", 1)[0] + "= " + rng.choice(HOSTILE_TOML)
        elif what < 0.75 and assigned:
            del lines[rng.choice(assigned)]
        elif what < 0.85 and headers:
            i = rng.choice(headers)
            lines.insert(rng.randrange(len(lines) + 1), lines[i])      # duplicated (or misplaced) table
        elif what < 0.92 and headers:
            del lines[rng.choice(headers)]
        else:
            i = rng.randrange(len(lines))
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
    data = "\n".join(lines).encode("utf-8")
    if rng.random() < 0.03:
        data = data.decode().encode(rng.choice(["utf-16", "latin-1", "utf-8-sig"]), errors="replace")
    return data


def config_family(n: int, rng: random.Random, work: Path, timeout: float, build: int) -> Tally:
    tally = Tally()
    base = SIMULATION_CONFIG.read_text(encoding="utf-8")
    built = 0
    for i in range(n):
        path = work / "kiosk.toml"
        path.write_bytes(mutate_config_text(base, rng))

        def case() -> str:
            nonlocal built
            try:
                config = load_config(path)
            except ConfigError as exc:
                if "\n" in str(exc):
                    raise AssertionError(f"a config error of more than one line: {exc}") from None
                return "clear"
            if built < build:
                _build(config, work / f"built{i}")
                built += 1
            return "accepted"
        run_case(tally, case, timeout)
    return tally


def _build(config, folder: Path) -> None:
    """The kiosk builds from an accepted config (simulated devices; the data and keys in ``folder``)."""
    from kiosk.app import build_kiosk
    from kiosk.loop import FakeClock

    data = folder / "data"
    config = dataclasses.replace(
        config, data_dir=data, simulate=True, camera=dataclasses.replace(config.camera, kind="none"),
        privacy=dataclasses.replace(config.privacy, key_source="file", key_file=str(folder / "data.key")),
        identity=dataclasses.replace(config.identity, secret_file=str(data / "office-secret")),
        printer=dataclasses.replace(config.printer, connection="simulated", out_dir=str(folder / "out")),
        sync=dataclasses.replace(config.sync, hotplug="off"))
    kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True)
    kiosk.close()


# ----------------------------------------------------------------------------------------------------- images
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")


def base_image(fmt: str, rng: random.Random) -> bytes:
    out = io.BytesIO()
    image = Image.effect_noise((rng.randint(8, 96), rng.randint(8, 96)), 40).convert("RGB")
    image.save(out, fmt)
    return out.getvalue()


def damage_image(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["cut", "flip", "garbage", "empty", "huge", "random", "zero", "flip"])
    data = bytearray(raw)
    if kind == "cut":
        return bytes(data[: rng.randrange(len(data))])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == "garbage":
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.randint(1, 200))
        data[start:end] = rng.randbytes(end - start)
        return bytes(data)
    if kind == "empty":
        return b""
    if kind == "random":
        return rng.randbytes(rng.randint(1, 4000))
    size = (rng.choice([0, 30000, 65535, 12000, 1]), rng.choice([0, 30000, 12000, 1]))
    if kind == "zero":
        size = (0, rng.randint(0, 5))
    if data.startswith(b"\x89PNG"):
        data[16:24] = struct.pack(">II", *size)
    elif b"\xff\xc0" in data:
        sof = data.index(b"\xff\xc0")
        data[sof + 5:sof + 9] = struct.pack(">HH", size[1] & 0xFFFF, size[0] & 0xFFFF)
    elif data.startswith(b"BM"):
        data[18:26] = struct.pack("<ii", size[0], size[1])
    elif data.startswith(b"GIF"):
        data[6:10] = struct.pack("<HH", size[0] & 0xFFFF, size[1] & 0xFFFF)
    return bytes(data)


def image_family(n: int, rng: random.Random, work: Path, timeout: float) -> Tally:
    from hardware.camera import CameraError, FileCamera

    tally = Tally()
    bases = {fmt: base_image(fmt, rng) for fmt in FORMATS}
    for i in range(n):
        fmt = rng.choice(FORMATS)
        path = work / f"img{i % 50}.{fmt.lower()}"
        path.write_bytes(damage_image(bases[fmt], rng))
        script = work / "one.jsonl"
        script.write_text(json.dumps({"image": path.name, "category": "ho-tich"}) + "\n", encoding="utf-8")

        def case() -> str:
            try:
                read_script(script, CATEGORIES)
            except ScriptError:
                return "clear"
            camera = FileCamera([], loop=True, max_pixels=MAX_PIXELS)
            try:
                camera.show(path)
                frame = camera.read()
                assert frame is not None and frame.ndim == 3
            except CameraError as exc:
                tally.add("missed", f"{path.name}: {exc}")
                return "accepted"
            finally:
                camera.close()
            return "accepted"
        run_case(tally, case, timeout)
    return tally


# ---------------------------------------------------------------------------------------------------- scripts
def script_family(n: int, rng: random.Random, work: Path, timeout: float) -> Tally:
    tally = Tally()
    (work / "faces").mkdir(exist_ok=True)
    Image.new("RGB", (32, 32), "white").save(work / "faces" / "ok.jpg")
    (work / "faces" / "not-an-image.jpg").write_text("hello", encoding="utf-8")
    (work / "faces" / "folder.jpg").mkdir(exist_ok=True)
    good = [{"image": "faces/ok.jpg", "category": "ho-tich", "consent": True},
            {"image": None, "category": "dat-dai"},
            {"image": ["faces/ok.jpg", "faces/ok.jpg"], "category": "ho-tich", "confirm": True}]
    fields = ["image", "category", "consent", "confirm", "extra"]
    values = HOSTILE_JSON + ["faces/not-an-image.jpg", "faces/folder.jpg", "faces/ok.jpg"]
    for _ in range(n):
        visits = [dict(v) for v in good]
        for _ in range(rng.randint(1, 3)):
            visit = rng.choice(visits)
            key = rng.choice(fields)
            if rng.random() < 0.2:
                visit.pop(key, None)
            else:
                visit[key] = rng.choice(values)
        text = "\n".join(json.dumps(v, ensure_ascii=False) for v in visits) + "\n"
        data = text.encode("utf-8")
        what = rng.random()
        if what < 0.08:
            data = text.encode(rng.choice(["utf-16", "utf-16-le", "utf-32", "cp1258"]), errors="replace")
        elif what < 0.16:
            cut = bytearray(data)
            for _ in range(rng.randint(1, 5)):
                cut[rng.randrange(len(cut))] = rng.randrange(256)
            data = bytes(cut)
        elif what < 0.2:
            data = b"[" * rng.randint(1000, 200000)
        script = work / "visits.jsonl"
        script.write_bytes(data)

        def case() -> str:
            try:
                read_script(script, CATEGORIES)
            except ScriptError as exc:
                if "\n" in str(exc):
                    raise AssertionError(f"a script error of more than one line: {exc}") from None
                return "clear"
            return "accepted"
        run_case(tally, case, timeout)
    return tally


def _store(n: int, rng: random.Random, work: Path, timeout: float) -> Tally:
    tally = Tally()
    tally.per = store_family(n, rng, work, timeout, run_case, tally)  # type: ignore[attr-defined]
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="cases per family")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a case may take before it is a hang")
    parser.add_argument("--build", type=int, default=3, help="accepted configs the kiosk is built from")
    parser.add_argument("--families", default="configs,scripts,images,store",
                        help="comma-separated families to run (default: all four)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("ignore")           # Pillow warns about the damage it is fed: expected here
    import logging

    logging.disable(logging.CRITICAL)          # the built kiosks' start-up notices are not the measurement
    worst = 0
    with tempfile.TemporaryDirectory(prefix="kiosk-fuzz-") as tmp:
        work = Path(tmp)
        families = {
            "configs": lambda rng: config_family(args.n, rng, work / "c", args.timeout, args.build),
            "scripts": lambda rng: script_family(args.n, rng, work / "s", args.timeout),
            "images": lambda rng: image_family(args.n, rng, work / "i", args.timeout),
            "store": lambda rng: _store(args.n, rng, work / "t", args.timeout),
        }
        print(f"fuzz: n={args.n} per family, seed {args.seed}, timeout {args.timeout:g} s a case")
        chosen = args.families.split(",")
        for offset, (name, family) in enumerate(families.items()):
            if name not in chosen:          # each family keeps its own seed whichever others run
                continue
            (work / ("t" if name == "store" else name[0])).mkdir()
            started = time.perf_counter()
            tally = family(random.Random(args.seed * 100 + offset))
            c = tally.counts
            print(f"{name:<8} clear={c['clear']} traceback={c['traceback']} hang={c['hang']} "
                  f"accepted={c['accepted']} missed={c['missed']} silent={c['silent']} unkept={c['unkept']}  "
                  f"({time.perf_counter() - started:.1f} s)")
            for example in tally.examples:
                print(f"    {example}")
            for (file, kind), counts in sorted(getattr(tally, "per", {}).items()):
                print(f"    {file:<22} {kind:<8} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
            worst += c["traceback"] + c["hang"] + c["missed"] + c["silent"] + c["unkept"]
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
