"""Memory at district scale (issue 16): the store keeps citizens' records in their shards and only a compact roster
in memory; start-up hands the templates to the index in pieces big enough to go back to the system once freed."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from kiosk.datakey import key_from_file, make_key_file
from kiosk.roster import Roster
from kiosk.store import Store

NOW = datetime(2026, 3, 2, 9, 0)
CONSENT = "Tôi đồng ý (v1)"


def test_roster_answers_like_the_records_it_replaces():
    roster = Roster()
    roster.extend(["0a" * 16, "ff" * 16], [3, 9], ["2026-01-01T08:00:00", "2026-02-01T08:00:00.500000"])
    roster.add("10" * 16, 4, "2025-12-31T23:59:59")
    assert "0a" * 16 in roster and "0b" * 16 not in roster and "not hex" not in roster and 5 not in roster
    assert [roster.doc_id(c) for c in ("0a" * 16, "10" * 16, "ff" * 16, "0b" * 16)] == [3, 4, 9, None]
    assert sorted(roster.stale(datetime(2026, 1, 1, 8, 0))) == ["10" * 16]          # the edge itself is not stale
    assert sorted(roster.stale(datetime(2026, 2, 1, 8, 0, 0, 500001))) == sorted(["0a" * 16, "10" * 16, "ff" * 16])
    roster.touch("10" * 16, "2026-03-01T00:00:00")
    assert roster.stale(datetime(2026, 1, 2)) == ["0a" * 16]
    roster.remove(["0a" * 16, "0b" * 16])
    assert sorted(roster) == ["10" * 16, "ff" * 16] and len(roster) == 2 and roster.doc_id("10" * 16) == 4


def test_a_running_store_parses_two_shards_at_most_and_reads_every_record_on_demand(tmp_path):
    make_key_file(tmp_path / "data.key")
    key = key_from_file(tmp_path / "data.key")
    rng = np.random.default_rng(3)
    data = tmp_path / "data"
    with Store.open(data, kiosk_id="k1", day_start_hour=6, clock=lambda: NOW, key=key) as store:
        people = [store.enrol(rng.normal(size=(2, 128)), now=NOW - timedelta(days=400 - i), consent_text=CONSENT,
                              display_name=f"Nguyễn Văn {i}").id for i in range(40)]
    with Store.open(data, kiosk_id="k1", day_start_hour=6, clock=lambda: NOW, key=key) as store:
        assert len(store._parsed) <= 2                # the records are not all held after start-up
        for i, cid in enumerate(people):
            assert store.citizen(cid).display_name == f"Nguyễn Văn {i}"
            assert len(store._parsed) <= 2
        store.touch(people[0], NOW)
        stale = store.stale_citizens(NOW - timedelta(days=365))
        assert people[0] not in stale and set(stale) == set(people[1:35])
        store.forget(people[1], now=NOW)
        assert store.citizen(people[1]) is None and len(store.consents()) == 39
        assert store.consent(people[2])["text"] == CONSENT and store.consent(people[1]) is None
        assert store.drop_receipts(NOW) == 0 and store.drop_receipts(NOW + timedelta(seconds=1)) == 1
    with Store.open_readonly(data, key=key) as store:     # a tool beside the kiosk: one view of every shard
        assert store.citizen(people[0]).last_seen == NOW and store.citizen(people[1]) is None
        assert store.receipts() == []                     # the purge above dropped the one receipt


def test_start_up_templates_are_handed_over_in_pieces_once(tmp_path):
    make_key_file(tmp_path / "data.key")
    key = key_from_file(tmp_path / "data.key")
    rng = np.random.default_rng(4)
    data = tmp_path / "data"
    faces = rng.normal(size=(5, 3, 128)).astype(np.float32)
    with Store.open(data, kiosk_id="k1", day_start_hour=6, clock=lambda: NOW, key=key) as store:
        people = [store.enrol(f, now=NOW, consent_text=CONSENT).id for f in faces]
    with Store.open(data, kiosk_id="k1", day_start_hour=6, clock=lambda: NOW, key=key) as store:
        ids, parts = store.template_parts()            # the start-up check's own pieces: the store keeps none
        assert store._tpl_parts is None and all(p.dtype == np.float32 for p in parts)
        assert ids == [c for c in people for _ in range(3)]
        np.testing.assert_array_equal(np.concatenate(parts), faces.reshape(-1, 128))
        again, more = store.template_parts()           # later: read from the file again, the same templates
        assert again == ids and np.array_equal(np.concatenate(more), np.concatenate(parts))


def test_start_up_pieces_are_blocks_the_system_gets_back_and_frames_are_not():
    from kiosk.memory import BIG_BLOCK
    from kiosk.storage import TemplateFile

    piece = TemplateFile.CHUNK * 128 * 4                  # float32 templates of one chunk read
    frame = 2304 * 1296 * 3                               # the Pi camera's main stream, RGB888
    assert frame < BIG_BLOCK <= piece
