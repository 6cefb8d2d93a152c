"""The recognition benchmarks run end to end on a handful of real photos (their numbers come from `make bench`)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "faces"
PEOPLE = ("Barack_Obama", "Bill_Gates", "Clint_Eastwood", "Jennifer_Lopez", "John_McCain", "Richard_Gere",
          "Tim_Henman")


@pytest.fixture
def few_faces(tmp_path):
    """dev/ cut down to seven people, two photos each (links, nothing copied)."""
    if not (FACES / "dev").is_dir():
        pytest.skip(f"../shared/data/faces not present: the benchmarks need the labelled photos at {FACES}")
    dev = tmp_path / "faces" / "dev"
    for person in PEOPLE:
        (dev / person).mkdir(parents=True)
        for n in (1, 2):
            (dev / person / f"{n}.jpg").symlink_to(FACES / "dev" / person / f"{n}.jpg")
    return dev


def bench(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_encoders_benchmark_compares_every_recipe_against_the_baseline(few_faces, tmp_path):
    out = bench("encoders.py", "--faces", str(few_faces), "--jitters", "0", cwd=tmp_path)
    assert "14 photos of 7 people" in out
    for recipe in ("face_recognition default (baseline)", "kiosk: mirror-averaged (shipped)",
                   "68-point alignment, mirrored", "5- and 68-point averaged, mirrored"):
        assert f"\n{recipe}: 14 faces encoded" in out, recipe
    assert out.count("(1.0x the baseline)") >= 1 and out.count("TAR ") == 8
    assert "jitters" not in out


def test_recognition_benchmark_replays_enrolments_returns_and_strangers(few_faces, tmp_path):
    out = bench("recognition.py", "--faces", str(few_faces), "--skip-cpu", "--stranger-every", "7", cwd=tmp_path)
    assert "6 people enrol and return, 1 held back as strangers (Jennifer_Lopez)" in out
    assert "6 of 6 people enrolled on their first visit" in out
    assert "visits attached to a wrong citizen: 0" in out
    assert "strangers accepted: 0 of 2 stranger visits" in out


def test_idle_benchmark_measures_the_kiosk_loop_against_the_old_one(tmp_path):
    out = bench("idle.py", "--seconds", "0.3", "--no-camera-only", cwd=tmp_path)
    assert out.count("baseline loop (0.05 s max wait)") == 2 and out.count("kiosk loop ") == 2
    assert "no camera:" in out and "screen polled 10x/s" in out and out.count("kiosk / baseline: ") == 2
