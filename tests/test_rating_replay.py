"""Ratings through ``kiosk replay`` (issue 13, item 8): ``"rating"`` lines, linked to the day's visit or anonymous.

The drawn world and fake face engine of test_identity_replay: distances are known exactly.
"""
from __future__ import annotations

import io
import json

import pytest

from kiosk.cli_ratings import print_ratings
from kiosk.replay import ScriptError, read_script, run_replay
from test_identity_replay import AN_1, AN_2, CUC_1, DrawnEngine, _picture


def test_rating_lines_link_to_the_visit_of_the_day_once_or_stay_anonymous(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    an_first, an_later, cuc = (_picture(tmp_path, "an-1", AN_1), _picture(tmp_path, "an-2", AN_2),
                               _picture(tmp_path, "cuc", CUC_1))
    results = run_replay([
        {"image": an_first, "category": "dat-dai", "consent": True, "confirm": False},   # enrolled, ticket
        {"image": an_later, "rating": "good"},          # on the way out: recognised, linked to that visit
        {"image": an_later, "rating": "bad"},           # again: one rating per visit, nothing changes
        {"image": cuc, "rating": "ok"},                 # a stranger: anonymous
        {"image": None, "rating": "bad"},               # nobody in view: anonymous
    ], data_dir=data, out_dir=out, engine=DrawnEngine())
    assert results[0]["ticket"] == "DD-001" and results[0]["enrolled"]
    said = [(r["rating"], r["linked"], r["counted"], r["ticket"]) for r in results[1:]]
    assert said == [("good", True, True, None), ("bad", True, False, None), ("ok", False, True, None),
                    ("bad", False, True, None)]
    counts = io.StringIO()
    print_ratings(data, None, True, counts)
    rows = {row["service"]: row for row in map(json.loads, counts.getvalue().splitlines())}
    assert rows["dat-dai"] == {"service": "dat-dai", "good": 1, "ok": 0, "bad": 0, "total": 1}
    assert rows[None]["total"] == 2


def test_a_rating_line_needs_no_category_and_a_bad_rating_is_named(tmp_path):
    script = tmp_path / "visits.jsonl"
    script.write_text('{"image": null, "rating": "ok"}\n{"image": null, "rating": "great"}\n', encoding="utf-8")
    with pytest.raises(ScriptError, match="visits.jsonl:2: rating must be one of good, ok, bad"):
        read_script(script, ("ho-tich",))
    script.write_text('{"image": null, "rating": "ok"}\n', encoding="utf-8")
    assert read_script(script, ("ho-tich",)) == [
        {"image": None, "category": None, "consent": False, "confirm": False, "rating": "ok"}]
