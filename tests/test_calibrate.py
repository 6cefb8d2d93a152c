"""kiosk calibrate: the protocol and the choice on hand-made encodings, then a small run on real photos."""
import io
import math
from pathlib import Path

import numpy as np
import pytest

from kiosk.calibrate import (Trial, choose, cross_validate, pair_distances, photo_folders, play_protocol, run,
                             score)

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
RNG = np.random.default_rng(11)
AXES = np.linalg.qr(RNG.normal(size=(128, 128)))[0].T


def person(axis: int, *spreads: float) -> list[np.ndarray]:
    """Photos of one person: a centre 1.0 along ``axis``, each photo moved by ``spread`` along its own axis."""
    centre = AXES[axis] * 1.0
    return [centre + s * AXES[100 + i] for i, s in enumerate(spreads)]


def test_protocol_enrols_first_photos_and_plays_every_person_as_a_stranger():
    people = {"a": person(0, 0.0, 0.3, 0.4), "b": person(1, 0.0, 0.2), "c": person(2, 0.0)}
    returning, strangers = play_protocol(people)
    assert [(t.person, t.nearest) for t in returning] == [("a", "a"), ("a", "a"), ("b", "b")]
    assert returning[0].distance == pytest.approx(0.3)
    assert len(strangers) == 3 + 2 + 1           # every photo of each person against the two others
    assert all(t.nearest != t.person for t in strangers)
    # Centres are sqrt(2) apart: a stranger's nearest citizen is about 1.41 away.
    assert min(t.distance for t in strangers) == pytest.approx(math.sqrt(2), abs=0.1)


def test_choice_has_zero_false_accepts_and_prefers_the_lower_threshold():
    returning = [Trial("a", "a", 0.40, 0.80), Trial("b", "b", 0.45, 0.70), Trial("c", "c", 0.60, 0.62)]
    strangers = [Trial("x", "a", 0.52, 0.56), Trial("y", "b", 0.58, 0.75)]
    best = choose(returning, strangers)
    assert best.false_accepts == 0
    assert best.recall == pytest.approx(2 / 3)
    assert best.threshold == pytest.approx(0.455)      # just enough for b; strangers stay out
    assert score(returning, strangers, 0.6, 0.0).false_accepts == 2
    # A margin lets the threshold rise past stranger x (whose runner-up is close) but not past y.
    assert score(returning, strangers, 0.55, 0.05).false_accepts == 0


def test_a_returning_photo_given_to_someone_else_is_a_false_accept():
    returning = [Trial("a", "b", 0.30, 0.90)]
    assert score(returning, [], 0.5, 0.0).false_accepts == 1
    assert choose(returning, [], safety_gap=0.0).recall == 0.0
    assert choose(returning, []) is None          # even the lowest threshold is within the gap of it


def test_two_fold_check_counts_on_the_half_that_did_not_choose():
    # Alternate people (by name) form the halves: a, c, e, g return 0.1 from their enrolment, b, d, f, h 0.3.
    people = {name: person(axis, 0.0, 0.1 if axis % 2 == 0 else 0.3) for axis, name in enumerate("abcdefgh")}
    # Chosen on the tight half, the threshold (just above 0.1) misses all four of the loose half; chosen on the
    # loose half, it recognises all four of the tight one. Strangers are ~1.41 away: never accepted.
    assert cross_validate(people) == (4, 8, 0)
    assert cross_validate({name: person(axis, 0.0, 0.1) for axis, name in enumerate("abcde")}) is None


def test_pair_distances_split_same_and_different_people():
    same, different = pair_distances({"a": person(0, 0.0, 0.3), "b": person(1, 0.0)})
    assert same.tolist() == pytest.approx([0.3])
    assert len(different) == 2 and min(different) > 1.0


def test_folder_errors_name_the_folder(tmp_path):
    err = io.StringIO()
    assert run(tmp_path / "missing", out=err) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no person folders"):
        photo_folders(tmp_path / "empty")


def test_photos_sort_numerically(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    for name in ("10.jpg", "2.jpg", "1.jpg", "notes.txt"):
        (folder / name).write_bytes(b"")
    assert [p.name for p in photo_folders(tmp_path)["p"]] == ["1.jpg", "2.jpg", "10.jpg"]


def test_calibration_on_a_few_real_photos(tmp_path):
    if not (FACES / "dev").is_dir():
        pytest.skip(f"../shared/data/faces not present: real-photo calibration needs the photos at {FACES}")
    # Four people, nine photos, linked (never copied) into a temporary folder.
    for name, count in (("Barack_Obama", 3), ("Alan_Greenspan", 2), ("John_McCain", 2), ("Amelia_Vega", 2)):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for n in range(1, count + 1):
            (tmp_path / "faces" / name / f"{n}.jpg").symlink_to(FACES / "dev" / name / f"{n}.jpg")
    from kiosk.faces import FaceRecognitionEngine

    class Counting(FaceRecognitionEngine):
        encoded = 0

        def encode(self, image, box):
            Counting.encoded += 1
            return super().encode(image, box)

    out = io.StringIO()
    assert run(tmp_path / "faces", out=out, engine=Counting()) == 0
    assert Counting.encoded == 9                 # each photo encoded once, however often it is compared
    report = out.getvalue()
    assert "photos: 9 of 9 encoded, 4 people" in report
    assert "5 returning photos" in report and "9 stranger probes" in report
    assert "same-person distances (6 pairs)" in report
    assert "recommended: threshold = " in report and "0 false accepts" in report
    unsure = float(report.split("suggested unsure_below = ")[1].split(":")[0])
    assert unsure >= threshold_of(report) and f"unsure_below = {unsure:.2f}\n" in report
    assert "two-fold check: needs at least six people" in report     # four people: too few to split
    threshold = float(report.split("recommended: threshold = ")[1].split(",")[0])
    assert 0.3 <= threshold <= 0.7


def threshold_of(report: str) -> float:
    return float(report.split("recommended: threshold = ")[1].split(",")[0])


def test_recommendation_keeps_a_safety_gap_to_the_nearest_stranger():
    returning = [Trial("a", "a", 0.40, 0.90), Trial("b", "b", 0.535, 0.90)]
    strangers = [Trial("x", "a", 0.540, 0.90)]
    assert choose(returning, strangers, safety_gap=0.0).threshold == pytest.approx(0.54)  # b only just in
    safe = choose(returning, strangers)
    assert safe.threshold + 0.01 <= 0.540 and safe.recall == pytest.approx(0.5)           # b given up for the gap


def test_calibrate_scale_refuses_to_vouch_for_autolink_on_a_small_gallery(tmp_path, monkeypatch, capsys):
    if not (FACES / "scale").is_dir():
        pytest.skip(f"../shared/data/faces not present: --scale needs the photos at {FACES / 'scale'}")
    for name, count in (("Aaron_Peirsol", 2), ("Hu_Jintao", 2), ("AJ_Cook", 1), ("Aaron_Pena", 1), ("Adam_Ant", 1),
                        ("Faye_Wong", 1)):
        (tmp_path / "scale" / name).mkdir(parents=True)
        for n in range(1, count + 1):
            (tmp_path / "scale" / name / f"{n}.jpg").symlink_to(FACES / "scale" / name / f"{n}.jpg")
    (tmp_path / "scale" / "east-asian-by-surname.txt").write_text("Hu_Jintao\nFaye_Wong\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from kiosk.__main__ import main as kiosk_main

    assert kiosk_main(["calibrate", "--scale", str(tmp_path / "scale")]) == 0
    report = capsys.readouterr().out
    assert "threshold 0.54, margin 0.05" in report
    assert "2 return (photo 1 enrolled, photo 2 visits), 3 more enrolled, 1 held back as strangers" in report
    assert "East Asian subset: 2 people" in report
    assert "no safe recognition.autolink_below: the gallery has 5 enrolled people" in report
    assert "autolink_below =" not in report                # nothing to paste
    assert list((tmp_path / "cache" / "queue-kiosk").glob("encodings-*.npz"))
