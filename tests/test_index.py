"""FaceIndex on hand-made 128-d vectors: threshold, margin, several templates per citizen, delete, growth."""
import math
import threading

import numpy as np
import pytest

from kiosk.index import FaceIndex, Match

RNG = np.random.default_rng(7)
BASE = RNG.normal(size=128).astype(np.float32)
BASE /= np.linalg.norm(BASE)
# Orthonormal directions: BASE + d * AXES[k] lies exactly d away from BASE.
AXES = np.linalg.qr(RNG.normal(size=(128, 128)))[0].T.astype(np.float32)


def at(distance: float, axis: int) -> np.ndarray:
    return (BASE + distance * AXES[axis]).astype(np.float32)


def test_empty_index_matches_nobody():
    match = FaceIndex().match(BASE, threshold=0.6, margin=0.0)
    assert match == Match(None, math.inf, math.inf)
    assert not match.accepted


def test_threshold_accepts_only_closer_faces():
    index = FaceIndex()
    index.add("alice", at(0.30, 0))
    assert index.match(BASE, threshold=0.40, margin=0.0).citizen_id == "alice"
    rejected = index.match(BASE, threshold=0.25, margin=0.0)
    assert rejected.citizen_id is None
    assert rejected.nearest == "alice"
    assert rejected.distance == pytest.approx(0.30, abs=1e-4)


def test_margin_rejects_a_close_second_citizen():
    index = FaceIndex()
    index.add("alice", at(0.30, 0))
    index.add("bob", at(0.33, 1))
    close_call = index.match(BASE, threshold=0.5, margin=0.05)
    assert close_call.citizen_id is None
    assert close_call.nearest == "alice"
    assert close_call.runner_up == pytest.approx(0.33, abs=1e-4)
    assert index.match(BASE, threshold=0.5, margin=0.02).citizen_id == "alice"


def test_runner_up_is_another_citizen_not_the_same_citizens_second_template():
    index = FaceIndex()
    index.add("alice", np.stack([at(0.30, 0), at(0.31, 1), at(0.32, 2)]))
    index.add("bob", at(0.50, 3))
    match = index.match(BASE, threshold=0.4, margin=0.1)
    assert match.citizen_id == "alice"
    assert match.runner_up == pytest.approx(0.50, abs=1e-4)
    assert len(index) == 4 and index.citizen_count == 2


def test_more_templates_can_be_added_to_a_known_citizen():
    index = FaceIndex()
    index.add("alice", at(0.45, 0))
    assert index.match(BASE, threshold=0.4, margin=0.0).citizen_id is None
    index.add("alice", at(0.20, 1))
    assert index.match(BASE, threshold=0.4, margin=0.0).citizen_id == "alice"
    assert index.templates_of("alice").shape == (2, 128)


def test_delete_forgets_every_template_and_keeps_the_others():
    index = FaceIndex()
    index.add("alice", np.stack([at(0.10, 0), at(0.12, 1)]))
    index.add("bob", at(0.30, 2))
    index.add("carol", at(0.70, 3))
    index.remove("alice")
    assert "alice" not in index
    assert index.templates_of("alice").shape == (0, 128)
    assert len(index) == 2
    match = index.match(BASE, threshold=0.4, margin=0.1)
    assert match.citizen_id == "bob"
    assert match.runner_up == pytest.approx(0.70, abs=1e-4)
    index.remove("alice")  # idempotent
    index.remove("nobody")
    index.add("alice", at(0.05, 4))  # the same id may enrol again later
    assert index.match(BASE, threshold=0.4, margin=0.1).citizen_id == "alice"


def test_constructor_from_store_rows_and_growth_match_brute_force():
    people = [f"c{i}" for i in range(150)]
    ids = [p for p in people for _ in range(2)]
    matrix = RNG.normal(size=(len(ids), 128)).astype(np.float32)
    index = FaceIndex(ids, matrix)
    extra = RNG.normal(size=(500, 128)).astype(np.float32)
    for i, row in enumerate(extra):          # grows past the initial capacity several times
        index.add(f"x{i}", row)
    all_ids = ids + [f"x{i}" for i in range(500)]
    all_rows = np.vstack([matrix, extra])
    for query in RNG.normal(size=(20, 128)).astype(np.float32):
        exact = np.linalg.norm(all_rows - query, axis=1)
        order = np.argsort(exact)
        best = all_ids[order[0]]
        second = min(d for d, who in zip(exact, all_ids) if who != best)
        match = index.match(query, threshold=100.0, margin=0.0)
        assert match.citizen_id == best
        assert match.distance == pytest.approx(exact[order[0]], rel=1e-4)
        assert match.runner_up == pytest.approx(second, rel=1e-4)
        owners, distances = index.distances(query)
        assert owners == all_ids
        np.testing.assert_allclose(distances, exact, rtol=1e-4)


@pytest.mark.parametrize(
    "ids, matrix, message",
    [
        (["a"], None, "without a matrix"),
        (["a", "b"], np.zeros((1, 128)), "2 ids for 1 matrix rows"),
        (["a"], np.zeros((1, 64)), "k x 128"),
        (["a"], np.full((1, 128), np.nan), "NaN"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(ids, matrix, message):
    with pytest.raises(ValueError, match=message):
        FaceIndex(ids, matrix)


def test_add_refuses_bad_ids_and_shapes():
    index = FaceIndex()
    with pytest.raises(ValueError, match="citizen id"):
        index.add("", BASE)
    with pytest.raises(ValueError, match="k x 128"):
        index.add("alice", np.zeros((2, 3)))
    assert len(index) == 0


def test_concurrent_adds_removes_and_matches_stay_consistent():
    index = FaceIndex()
    errors = []
    stop = threading.Event()

    def matcher():
        try:
            while not stop.is_set():
                match = index.match(BASE, threshold=10.0, margin=0.0)
                assert match.distance >= 0.0
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=matcher)
    thread.start()
    for i in range(300):
        index.add(f"c{i}", at(0.1 + i / 1000, i % 128))
        if i % 3 == 0:
            index.remove(f"c{i}")
    stop.set()
    thread.join()
    assert errors == []
    assert index.citizen_count == 200 and len(index) == 200
    assert index.match(BASE, threshold=10.0, margin=0.0).nearest == "c1"


def test_built_from_pieces_it_takes_them_and_answers_as_from_one_matrix():
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(3000, 128)).astype(np.float32) * 0.2
    ids = [f"c{i // 3}" for i in range(len(rows))]
    parts = [rows[:1000].copy(), rows[1000:1001].copy(), rows[1001:].copy()]
    pieces = FaceIndex.from_parts(ids, parts)
    whole = FaceIndex(ids, rows)
    assert parts == [] and len(pieces) == 3000 and pieces.citizen_count == 1000   # the pieces were taken
    np.testing.assert_array_equal(pieces._basis, whole._basis)     # the same rows fitted the rotation
    for probe in rows[::97] + rng.normal(size=(len(rows[::97]), 128)).astype(np.float32) * 0.01:
        a, b = pieces.match(probe, threshold=0.5, margin=0.05), whole.match(probe, threshold=0.5, margin=0.05)
        assert (a.citizen_id, a.nearest) == (b.citizen_id, b.nearest)   # rotated in other batches: float32 rounding
        assert a.distance == pytest.approx(b.distance, abs=1e-6) and a.runner_up == pytest.approx(b.runner_up, abs=1e-6)
    with pytest.raises(ValueError, match="2 ids for 3 matrix rows"):
        FaceIndex.from_parts(["a", "b"], [np.zeros((3, 128), np.float32)])
