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


def _expired_store(data: Path, count: int):
    """A store with ``count`` citizens enrolled at T0 (so expired 13 months on) and one seen recently."""
    store = Store.open(data, kiosk_id="k1", clock=lambda: T0 + timedelta(days=396))
    rng = np.random.default_rng(7)
    old = [store.enrol(rng.random((2, 128), dtype=np.float32), now=T0, consent_text="yes").id for _ in range(count)]
    fresh = store.enrol(rng.random((2, 128), dtype=np.float32), now=T0, consent_text="yes").id
    store.touch(fresh, T0 + timedelta(days=390))
    return store, old, fresh


def test_the_running_kiosk_purges_in_small_steps_each_one_journal_and_logs_the_totals_once(tmp_path, caplog):
    from kiosk.index import FaceIndex
    from fakes import Clock

    clock = Clock(start=T0 + timedelta(days=396))
    store, old, fresh = _expired_store(tmp_path / "data", 40)
    index = FaceIndex(*store.templates())
    retention = Retention(store, None, RetentionPolicy(), index=index, clock=clock, wall=clock.wall, batch=3)
    try:
        sizes, finished = [], None
        caplog.set_level("INFO", logger="kiosk.privacy")
        for _ in range(200):
            before = {c for c in old + [fresh] if c in index}
            finished = retention.poll()
            gone = before - {c for c in old + [fresh] if c in index}
            sizes.append(len(gone))
            assert len({int(c[:2], 16) % 64 for c in gone}) <= 8   # one step: a few journals' citizens at most
            if finished is not None:
                break
        assert finished is not None and set(finished.citizens) == set(old)
        assert max(sizes) <= 3 and sum(1 for s in sizes if s) >= 14   # 40 citizens, 3 at a time
        assert fresh in index and not any(c in index for c in old)
        assert set(store.templates()[0]) == {fresh}
        assert [r.message for r in caplog.records if "retention purge" in r.message] == \
            ["retention purge: templates_citizens 40, card_records 0, visit_links 0, receipts 0"]
        purges = [line for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines() if '"purge"' in line]
        assert len(purges) == 1 and '"templates_citizens":40' in purges[0].replace(" ", "")
        assert retention.poll() is None and retention.next_due > clock()   # done for today: not again until tomorrow
    finally:
        store.close()


def test_a_purge_cut_short_by_a_crash_goes_on_at_the_next_start(tmp_path):
    from fakes import Clock

    clock = Clock(start=T0 + timedelta(days=396))
    data = tmp_path / "data"
    store, old, fresh = _expired_store(data, 20)
    first = Retention(store, None, RetentionPolicy(), clock=clock, wall=clock.wall, batch=2)
    for _ in range(4):                                   # the query, then a few batches ... then the power goes
        first.poll()
    store.close()
    with Store.open(data, kiosk_id="k1", clock=lambda: T0 + timedelta(days=396)) as again:
        assert not again.problems
        left = [c for c in old if again.citizen(c) is not None]
        assert 0 < len(left) < len(old)
        second = Retention(again, None, RetentionPolicy(), clock=clock, wall=clock.wall, batch=2)
        done = None
        while done is None:
            done = second.poll()
        assert set(done.citizens) == set(left) and set(again.templates()[0]) == {fresh}


def test_the_loop_runs_a_due_purge_only_while_nobody_is_at_the_kiosk_and_never_spins_on_it(tmp_path):
    import queue

    from fakes import Clock, Services
    from kiosk.loop import EventLoop
    from kiosk.machine_events import Phase
    from kiosk.states import KioskMachine
    from kiosk.visit import ButtonPressed
    from kiosk.views import CategoryChoice

    clock = Clock(start=T0 + timedelta(days=396))
    store, old, fresh = _expired_store(tmp_path / "data", 6)
    retention = Retention(store, None, RetentionPolicy(), clock=clock, wall=clock.wall, batch=1)
    machine = KioskMachine(office="UBND", categories=(CategoryChoice("ho-tich", "Hộ tịch", "Civil status", "1"),),
                           services=Services(), clock=clock)
    loop = EventLoop(machine=machine, events=queue.Queue(), clock=clock, chores=[retention])
    try:
        loop.step()                                      # idle: the query and then batches go on at once
        assert loop.wait_time() == 0.0
        machine.handle(ButtonPressed("ho-tich"))         # somebody took a ticket: the ticket screen is up
        machine.tick()
        assert machine.phase is not Phase.IDLE
        left = len(store.stale_citizens(T0 + timedelta(days=1)))
        for _ in range(5):
            loop.step()
        assert len(store.stale_citizens(T0 + timedelta(days=1))) == left   # nothing purged during the visit
        assert loop.wait_time() > 0                      # and the loop does not spin on the due chore meanwhile
        clock.t += 60
        loop.step()                                      # the visit is over: the purge goes on and finishes
        for _ in range(20):
            loop.step()
        assert machine.phase is Phase.IDLE and store.stale_citizens(T0 + timedelta(days=1)) == []
    finally:
        store.close()
