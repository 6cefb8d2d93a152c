"""Retention per data class (issue 10, item 2) over the real store, with a clock that jumps months."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from kiosk.identity import CardBook
from kiosk.retention import Retention, RetentionPolicy, months_before, purge
from kiosk.store import Store

T0 = datetime(2025, 1, 10, 9, 0)
NAME_A = "Lê Văn Hết Hạn"      # invented


def _bytes_of(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_months_before_is_calendar_months():
    assert months_before(datetime(2026, 3, 31, 8), 1) == datetime(2026, 2, 28, 8)
    assert months_before(datetime(2026, 1, 15), 13) == datetime(2024, 12, 15)
    assert months_before(datetime(2026, 5, 1), 24) == datetime(2024, 5, 1)


def test_each_class_goes_when_its_time_is_up_and_the_visit_stays_anonymous(tmp_path):
    data = tmp_path / "data"
    a, b = (np.random.default_rng(s).random((3, 128), dtype=np.float32) for s in (1, 2))
    now = [T0]
    store = Store.open(data, kiosk_id="k1", clock=lambda: now[0])
    book = CardBook.open(data, secret=b"s" * 32)
    try:
        ca = store.enrol(a, now=T0, consent_text="yes", display_name=NAME_A).id
        cb = store.enrol(b, now=T0, consent_text="yes").id
        card_a, _ = book.link("aa" * 32, {"name": NAME_A}, now=T0)
        store.issue_ticket("ho-tich", "HT", citizen_id=ca, now=T0)
        store.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0 + timedelta(days=3))   # rolls T0 into visits/
        store.touch(cb, T0 + timedelta(days=330))                      # B came back 11 months later
        policy = RetentionPolicy()
        retention = Retention(store, book, policy)

        first = retention.tick(T0 + timedelta(days=396))                # 13 months on
        assert first is not None and first.citizens == (ca,) and first.cards == 0 and first.visit_links == 0
        assert retention.tick(T0 + timedelta(days=396, hours=3)) is None   # once a day
        ids, matrix = store.templates()
        assert set(ids) == {cb} and np.array_equal(matrix, b)
        raw = _bytes_of(data)
        assert all(row.tobytes() not in raw for row in a) and b[0].tobytes() in raw
        assert book.record(card_a) is not None                            # card data: 24 months

        second = purge(store, book, policy, T0 + timedelta(days=790))     # 26 months on
        assert second.citizens == (cb,) and second.cards == 1 and second.visit_links == 1
        assert second.receipts == 1                                       # A's receipt, 12 months after it
        assert book.records() == [] and NAME_A.encode() not in _bytes_of(data)
        visits = list(store.visits())
        assert len(visits) == 2 and all(v.citizen_id is None for v in visits)   # kept, anonymous
        purges = [json.loads(line.split(" ", 1)[1]) for line in (data / "audit.jsonl").read_text().splitlines()
                  if '"purge"' in line]
        assert [(p["templates_citizens"], p["card_records"], p["visit_links"], p["receipts"]) for p in purges] == \
            [(1, 0, 0, 0), (1, 1, 1, 1)]
    finally:
        book.close()
        store.close()
    with Store.open(data, kiosk_id="k1", clock=lambda: T0 + timedelta(days=800)) as again:  # month file checks out
        assert not again.problems and len(list(again.visits())) == 2
