"""The one deletion queue (kiosk/deletions.py): `kiosk forget` and the office's requests, applied by one chore."""
import json

from synckit import T0, enrol, k  # noqa: F401  (fixture)

from kiosk.deletions import DeletionQueue, DeletionRequest, forget_request, pending_forgets, queue_dir, waiting, \
    write_request
from kiosk.identity import CardBook
from kiosk.syncinbox import ApplyError


def queue(k, store, receipts, clock=lambda: 0.0):
    return DeletionQueue(k.data, store=store, book=CardBook.open(k.data, secret=None), index=None,
                         wall=lambda: T0, clock=clock, receipt=lambda c, when: receipts.append((c, when)))


def test_both_kinds_of_request_go_through_one_queue_and_one_chore(k):
    a, b, c = enrol(k, 3)
    write_request(k.data, DeletionRequest("ab" * 32, 3, "cd" * 32, (b,), ()))
    write_request(k.data, forget_request(a, "2026-11-27T09:00:00"))
    assert [p.name for p in waiting(k.data)] == [f"forget-{a}.json", "office-00000003.json"]
    assert pending_forgets(k.data) == [a]
    receipts: list = []
    with k.store() as store:
        lines = queue(k, store, receipts).poll()
        assert store.citizen(a) is None and store.citizen(b) is None and store.citizen(c) is not None
    assert len(lines) == 2 and "kiosk forget" in lines[0] and "office deletion request 3" in lines[1]
    assert receipts == [(a, T0)]                       # the receipt of `kiosk forget` only
    assert json.loads((k.data / "sync" / "inbox.json").read_text())["sequence"] == 3
    assert waiting(k.data) == [] and pending_forgets(k.data) == []


def test_an_office_request_that_fails_holds_back_the_office_ones_after_it_not_a_forget(k, monkeypatch):
    import kiosk.syncinbox as inbox

    a, b, c = enrol(k, 3)
    for seq, cid in ((1, a), (2, b)):
        write_request(k.data, DeletionRequest("ab" * 32, seq, f"{seq:064x}", (cid,), ()))
    write_request(k.data, forget_request(c, "2026-11-27T09:00:00"))

    def full_disk(data_dir, request):
        raise ApplyError("inbox state not saved: no space left")
    monkeypatch.setattr(inbox, "mark_applied", full_disk)
    with k.store() as store:
        q = queue(k, store, [])
        q.poll()
        assert store.citizen(c) is None                           # the forget went through
        assert [p.name for p in waiting(k.data)] == ["office-00000001.json", "office-00000002.json"]
        assert store.citizen(b) is not None                       # 2 waits for 1, in order
        monkeypatch.undo()
        q.next_due = 0
        q.poll()
        assert waiting(k.data) == [] and store.citizen(b) is None


def test_requests_an_older_kiosk_left_in_its_two_folders_join_the_queue(k):
    a, b = enrol(k, 2)
    (k.data / "forget-requests").mkdir()
    (k.data / "forget-requests" / a).write_text(json.dumps({"citizen": a, "at": "2026-11-27T09:00:00"}))
    (k.data / "sync" / "deletions").mkdir(parents=True)
    old = {"office": "ab" * 32, "sequence": 7, "sha256": "ef" * 32, "citizens": [b], "cards": []}
    (k.data / "sync" / "deletions" / "00000007.json").write_text(json.dumps(old))
    receipts: list = []
    with k.store() as store:
        q = queue(k, store, receipts)
        assert sorted(p.name for p in queue_dir(k.data).iterdir()) == [f"forget-{a}.json", "office-00000007.json"]
        assert not list((k.data / "forget-requests").iterdir()) and not list((k.data / "sync" / "deletions").iterdir())
        q.poll()
        assert store.citizen(a) is None and store.citizen(b) is None
    assert [r[0] for r in receipts] == [a]
    assert json.loads((k.data / "sync" / "inbox.json").read_text())["applied"] == ["ef" * 32]
