"""District scale: the protocol, the confirmation model, the unsure zone, autolink's choice and the disk cache."""
import numpy as np
import pytest

from kiosk import scale
from kiosk.calibrate import suggest_unsure_below
from kiosk.calibrate_scale import choose_autolink, different_person_pairs, pairs_needed
from kiosk.encoding_cache import DiskEncodings, cache_file, photo_key

RNG = np.random.default_rng(5)
AXES = np.linalg.qr(RNG.normal(size=(128, 128)))[0].T     # orthonormal: centres sqrt(2) apart


def at(axis: int, offset: float = 0.0, along: int = 127) -> np.ndarray:
    """A face 1.0 along ``axis``, moved ``offset`` along another axis (distance to the centre = offset)."""
    return (AXES[axis] + offset * AXES[along]).astype(np.float32)


def test_plan_holds_back_strangers_in_both_subsets_and_grows_the_gallery_around_the_returning():
    encodings = {f"r{i}": [at(i), at(i, 0.1)] for i in range(3)}
    encodings.update({f"s{i:02d}": [at(10 + i)] for i in range(12)})
    encodings.update({f"e{i}": [None, at(30 + i)] for i in range(4)})       # photo 1 refused: one usable
    encodings["nobody"] = [None, None]
    plan = scale.plan(encodings, east_asian={"e0", "e1", "e2", "e3", "unknown"}, stranger_every=4)
    assert plan.returning == ("r0", "r1", "r2")
    assert plan.unusable == ("nobody",)
    assert plan.strangers == ("e2", "s02", "s06", "s10")             # every 4th of each subset, by name
    assert sorted(plan.others) == sorted({*encodings} - {*plan.returning, *plan.strangers, "nobody"})
    assert plan.east_asian == {"e0", "e1", "e2", "e3"}
    assert plan.enrolled_total == 3 + 12 + 4 - 4
    assert plan.sizes((5, 10, 100)) == [5, 10, 15]
    assert plan.gallery(5)[:3] == ["r0", "r1", "r2"] and len(plan.gallery(5)) == 5
    assert not set(plan.gallery(15)) & set(plan.strangers)


def test_replay_counts_proposals_links_under_both_rules_and_the_unsure_zone():
    # Returning: "Anh Le" comes back close (proposed), "Bao Vu" at 0.57 (missed, unsure zone), "Cam Do" at 0.8.
    # Stranger "Ash Le" (masked "A*h L*", like "Anh Le") stands 0.3 from Anh Le's enrolment: shown Anh Le's
    # masked name, which is also their own, so they confirm it: the one wrong link the new rule lets through.
    # Stranger "Duc Ho" stands 0.3 from Bao Vu's enrolment: shown a name that is not theirs, declines.
    encodings = {"Anh_Le": [at(0), at(0, 0.2)], "Bao_Vu": [at(1), at(1, 0.57)], "Cam_Do": [at(2), at(2, 0.8)],
                 "Ash_Le": [at(0, 0.3, 126)], "Duc_Ho": [at(1, 0.3, 126)]}
    for i in range(6):
        encodings[f"Other_{i}"] = [at(10 + i)]
    plan = scale.ScalePlan(("Anh_Le", "Bao_Vu", "Cam_Do"), tuple(f"Other_{i}" for i in range(6)),
                           ("Ash_Le", "Duc_Ho"), (), frozenset({"Anh_Le", "Ash_Le"}))
    probes = scale.replay(plan, encodings, 9, threshold=0.54, margin=0.05, left_out=False)
    assert [(p.person, p.proposed) for p in probes] == [("Anh_Le", "Anh_Le"), ("Bao_Vu", None), ("Cam_Do", None),
                                                         ("Ash_Le", "Anh_Le"), ("Duc_Ho", "Bao_Vu")]
    t = scale.tally(probes, threshold=0.54, unsure_below=0.6)
    assert (t.returning, t.proposed_right, t.returning_wrong) == (3, 1, 0)
    assert (t.strangers, t.strangers_shown) == (2, 2)
    assert t.linked_wrong_unconfirmed == 2          # face alone would link both strangers
    assert t.linked_wrong_confirmed == 1            # only the one shown their own masked name confirms
    assert (t.missed, t.missed_unsure, t.missed_offered_enrolment, t.missed_below_threshold) == (2, 1, 1, 0)
    # Autolink below 0.35 links Anh Le (0.2) and Ash Le (0.3, wrong) and Duc Ho (0.3, wrong) without asking.
    auto = scale.tally(probes, threshold=0.54, unsure_below=0.6, autolink_below=0.35)
    assert (auto.autolinked_right, auto.autolinked_wrong, auto.linked_wrong_confirmed) == (1, 2, 2)
    ea = scale.tally(scale.east_asian_probes(probes, plan.east_asian), threshold=0.54, unsure_below=0.6)
    assert (ea.returning, ea.strangers, ea.linked_wrong_confirmed) == (1, 1, 1)


def test_left_out_probes_meet_everybody_but_themselves():
    encodings = {"a": [at(0), at(0, 0.1)], "b": [at(1)], "c": [at(2)], "a_twin": [at(0, 0.2, 126)]}
    plan = scale.ScalePlan(("a",), ("b", "c", "a_twin"), (), (), frozenset())
    probes = [p for p in scale.replay(plan, encodings, 4, threshold=0.54, margin=0.05) if p.kind == scale.LEFT_OUT]
    assert [p.person for p in probes] == ["a", "a", "b", "c", "a_twin"]
    shown = {(p.person, p.proposed) for p in probes if p.proposed}
    assert shown == {("a", "a_twin"), ("a_twin", "a")}      # each taken for the other once left out
    assert all(p.proposed != p.person for p in probes)


FEW = dict(district=10, tolerance=0.1)              # 300 served pairs suffice to vouch for a value
FAR_PAIRS = [0.9] * 300


def test_autolink_stays_the_gap_below_the_nearest_wrong_match():
    choice = choose_autolink([0.50, 0.45], [0.30, 0.44, 0.50], FAR_PAIRS, threshold=0.54, gallery=2000, **FEW)
    assert choice.value == pytest.approx(0.43) and choice.value <= 0.45 - 0.02 + 1e-9
    assert choice.nearest_wrong == pytest.approx(0.45) and choice.linked_right == 1
    rounded = choose_autolink([0.4537], [0.1], FAR_PAIRS, threshold=0.54, gallery=2000, **FEW)
    assert rounded.value == pytest.approx(0.430)            # 0.4337 rounded *down* to the 0.005 grid
    capped = choose_autolink([], [0.3], FAR_PAIRS, threshold=0.54, gallery=2000, **FEW)
    assert capped.value == pytest.approx(0.54)


def test_autolink_has_no_safe_value_when_it_would_link_nobody_or_the_gallery_is_small():
    nobody = choose_autolink([0.31], [0.30, 0.35], FAR_PAIRS, threshold=0.54, gallery=5000, **FEW)
    assert nobody.value is None and nobody.candidate is None and "no returning visit" in nobody.why
    small = choose_autolink([], [0.2], FAR_PAIRS, threshold=0.54, gallery=999, **FEW)
    assert small.value is None and "999 enrolled" in small.why


def test_autolink_needs_the_served_population_to_vouch_for_it():
    # Zero false accepts below 0.43, but two different East Asian people stand 0.40 apart: not safe.
    close = choose_autolink([0.45], [0.30], [0.40] + FAR_PAIRS, threshold=0.54, gallery=2000, **FEW)
    assert close.value is None and close.candidate == pytest.approx(0.43) and "1 pairs" in close.why
    # Nothing under it, but 299 pairs cannot bound the wrong links among 10 citizens to 1 visit in 10.
    few = choose_autolink([0.45], [0.30], FAR_PAIRS[:-1], threshold=0.54, gallery=2000, **FEW)
    assert few.value is None and few.candidate == pytest.approx(0.43) and few.pairs_needed == 300
    assert pairs_needed() == 30_000_000                     # 10,000 citizens, 1 wrong link in 1,000 visits


def test_different_person_pairs_skip_the_same_person_and_aliases():
    encodings = {"a": [at(0), at(0, 0.1)], "b": [at(1)], "b2": [at(1, 0.05)], "c": [None]}
    pairs = different_person_pairs(encodings, ["a", "b", "b2", "c"], frozenset({frozenset(("b", "b2"))}))
    assert len(pairs) == 2 * 2                              # a's two photos against b and against b2
    assert np.all(pairs > 1.3)


def test_unsure_below_lies_strictly_above_every_returning_distance():
    assert suggest_unsure_below([0.41, 0.598], 0.54) == pytest.approx(0.60)
    assert suggest_unsure_below([0.41, 0.60], 0.54) == pytest.approx(0.61)   # 0.60 itself must be caught
    assert suggest_unsure_below([0.30], 0.54) == pytest.approx(0.54)          # all recognised: no zone


def test_sample_spreads_over_the_names():
    names = [f"p{i:02d}" for i in range(10)]
    assert scale.sample(names, 5) == ["p00", "p02", "p04", "p06", "p08"]
    assert scale.sample(names, None) == names
    with pytest.raises(ValueError):
        scale.sample(names, 0)


def test_disk_cache_survives_reloads_merges_writers_and_tolerates_a_damaged_file(tmp_path):
    photo, other = tmp_path / "1.jpg", tmp_path / "2.jpg"
    photo.write_bytes(b"x")
    other.write_bytes(b"y")
    path = cache_file("recipe", {"detect_width": 320}, tmp_path / "cache")
    assert path != cache_file("recipe", {"detect_width": 240}, tmp_path / "cache")   # the gate is in the key
    first, second = DiskEncodings(path), DiskEncodings(path)
    first.put(photo_key(photo), at(3), None)
    second.put(photo_key(other), None, "come_closer")
    first.save()
    second.save()                                   # must keep the first writer's entry
    again = DiskEncodings(path)
    assert len(again) == 2
    found, encoding, reason = again.lookup(photo_key(photo))
    assert found and reason is None and np.allclose(encoding, at(3))
    assert again.lookup(photo_key(other)) == (True, None, "come_closer")
    photo.write_bytes(b"changed")                   # a changed photo is a new key: encoded again
    assert again.lookup(photo_key(photo))[0] is False
    path.write_bytes(b"not an npz")
    assert len(DiskEncodings(path)) == 0


def test_one_person_under_two_names_is_neither_right_nor_wrong(tmp_path):
    for name, content in (("Ricky", b"same picture"), ("Bart", b"same picture"), ("Carl", b"another")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "1.jpg").write_bytes(content)
    folders = {n: [tmp_path / n / "1.jpg"] for n in ("Ricky", "Bart", "Carl")}
    aliases = scale.aliases_of(folders, known=[("Carl", "Karl"), ("Bart", "Carl")])
    assert aliases == {frozenset(("Ricky", "Bart")), frozenset(("Bart", "Carl"))}   # Karl is not in the folder
    encodings = {"Ricky": [at(0)], "Bart": [at(0, 0.1)], "Carl": [at(1)], "Dan": [at(2)]}
    plan = scale.ScalePlan((), ("Bart", "Carl", "Dan"), ("Ricky",), (), frozenset(), aliases)
    probes = scale.replay(plan, encodings, 3, threshold=0.54, margin=0.05, left_out=False)
    assert [(p.person, p.proposed, p.alias, p.proposed_wrong) for p in probes] == [("Ricky", "Bart", True, False)]
    assert scale.tally(probes, threshold=0.54, unsure_below=0.6).linked_wrong_unconfirmed == 0
