"""kiosk.storage: the crash-safe tinydb Storage, record logs, slot file and template file."""
import json
import os
import random

import numpy as np
import pytest
from tinydb import Query, TinyDB
from tinydb.operations import add, increment
from tinydb.storages import MemoryStorage

from kiosk.storage import (
    HEADER,
    RECORD_SIZE,
    JournalStorage,
    RecordLog,
    SlotFile,
    StorageError,
    TemplateFile,
    atomic_write,
    encode_record,
    read_checksum,
    remove_stale_temps,
    scan_records,
    write_checksum,
)


# ------------------------------------------------------------------------------------------- tinydb behaviour
@pytest.fixture(params=["memory", "journal"])
def db(request, tmp_path):
    """The same tinydb suite on tinydb's own MemoryStorage and on ours."""
    if request.param == "memory":
        database = TinyDB(storage=MemoryStorage)
    else:
        database = TinyDB(tmp_path / "db.jsonl", storage=JournalStorage)
    yield database
    database.close()


def test_tinydb_operations_behave_the_same(db):
    t = db.table("people")
    a = t.insert({"name": "An", "age": 30, "tags": ["x"]})
    b = t.insert({"name": "Bình", "age": 41, "tags": []})
    t.update({"age": 31}, doc_ids=[a])
    t.update(add("tags", ["y"]), doc_ids=[a])  # mutates a nested list in place
    t.update(increment("age"), Query().name == "Bình")
    t.upsert({"name": "Chi", "age": 5, "tags": []}, Query().name == "Chi")
    t.remove(doc_ids=[b])
    db.table("other").insert({"k": 1})
    db.drop_table("other")
    assert t.get(doc_id=a) == {"name": "An", "age": 31, "tags": ["x", "y"]}
    assert t.get(doc_id=b) is None
    assert sorted(d["name"] for d in t.all()) == ["An", "Chi"]
    assert db.tables() == {"people"}


def test_journal_reopens_to_the_same_state(tmp_path):
    path = tmp_path / "db.jsonl"
    with TinyDB(path, storage=JournalStorage) as db:
        t = db.table("people")
        ids = t.insert_multiple({"n": i, "l": [i]} for i in range(50))
        t.update(add("l", [99]), doc_ids=ids[:3])
        t.remove(doc_ids=ids[10:20])
        t.update({"n": -1}, doc_ids=[ids[30]])
        expected = {d.doc_id: dict(d) for d in t.all()}
    with TinyDB(path, storage=JournalStorage) as db:
        assert {d.doc_id: dict(d) for d in db.table("people").all()} == expected
        assert db.table("people").get(doc_id=ids[0])["l"] == [0, 99]


def test_each_write_appends_only_the_change(tmp_path):
    path = tmp_path / "db.jsonl"
    storage = JournalStorage(path)
    db = TinyDB(storage=lambda: storage)
    t = db.table("visits")
    t.insert_multiple({"n": i, "pad": "x" * 200} for i in range(200))
    size = path.stat().st_size
    t.update({"n": -5}, doc_ids=[7])
    grown = path.stat().st_size - size
    assert 0 < grown < 400  # one document, not the 200 of the table
    assert path.read_bytes().splitlines()[-1].endswith(b'{"set":{"visits":{"7":{"n":-5,"pad":"' + b"x" * 200 + b'"}}}}')


def test_batch_is_one_record_and_rolls_back_on_error(tmp_path):
    path = tmp_path / "db.jsonl"
    storage = JournalStorage(path)
    db = TinyDB(storage=lambda: storage)
    lines = len(path.read_bytes().splitlines()) if path.exists() else 0
    with storage.batch():
        db.table("visits").insert({"n": 1})
        db.table("counters").insert({"last": 1})
    assert len(path.read_bytes().splitlines()) == lines + 1
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with storage.batch():
            db.table("visits").insert({"n": 2})
            raise RuntimeError("printer caught fire")
    assert path.read_bytes() == before
    assert [d["n"] for d in db.table("visits").all()] == [1]


def test_compaction_rewrites_one_snapshot(tmp_path):
    path = tmp_path / "db.jsonl"
    storage = JournalStorage(path, compact_min_bytes=4096)
    db = TinyDB(storage=lambda: storage)
    t = db.table("t")
    doc = t.insert({"n": 0})
    for i in range(1, 200):
        t.update({"n": i}, doc_ids=[doc])
    assert path.stat().st_size < 4096 + 200  # compacted at least once
    storage.close()
    with TinyDB(path, storage=JournalStorage) as again:
        assert again.table("t").get(doc_id=doc)["n"] == 199


def _states_after_each_write(path):
    """Write a journal and remember the durable state after each write."""
    storage = JournalStorage(path)
    db = TinyDB(storage=lambda: storage)
    states = [{}]
    t = db.table("t")
    for i in range(40):
        if i % 7 == 6:
            t.remove(doc_ids=[i - 3])
        else:
            t.insert({"i": i, "text": "hồ sơ " * (i % 5)})
        states.append({k: dict(v) for k, v in storage.read()["t"].items()})
    storage.close()
    return states


def test_truncation_at_any_offset_restores_an_earlier_state(tmp_path):
    path = tmp_path / "db.jsonl"
    states = _states_after_each_write(path)
    original = path.read_bytes()
    rng = random.Random(4)
    for cut in sorted(rng.sample(range(len(original)), 60)) + [len(original) - 1]:
        path.write_bytes(original[:cut])
        storage = JournalStorage(path)
        recovered = storage.read().get("t", {})
        assert recovered in states, f"cut at {cut}: not a state that was ever durable"
        torn = scan_records(original[:cut]).torn
        assert bool(storage.problems) == torn
        storage.close()
        for kept in tmp_path.glob("db.jsonl.torn-*"):
            assert original[:cut].endswith(kept.read_bytes())  # the cut-off bytes are kept, not deleted
            kept.unlink()
        assert scan_records(path.read_bytes()).good_end == path.stat().st_size  # clean for appending


def test_zero_filled_tail_after_a_power_cut_is_cut_off(tmp_path):
    """ext4 can leave the new length of a file with zeros where an unsynced append was."""
    path = tmp_path / "db.jsonl"
    states = _states_after_each_write(path)
    path.write_bytes(path.read_bytes() + b"\0" * 4096)
    storage = JournalStorage(path)
    assert storage.read()["t"] == states[-1] and not storage.damaged
    assert "incomplete last record" in storage.problems[0]
    assert list(tmp_path.glob("db.jsonl.torn-*"))[0].read_bytes() == b"\0" * 4096


def test_garbage_in_the_middle_is_set_aside_and_good_records_kept(tmp_path):
    path = tmp_path / "db.jsonl"
    states = _states_after_each_write(path)
    original = path.read_bytes()
    lines = original.split(b"\n")
    lost = set(json.loads(lines[5][9:]).get("set", {}).get("t", {}))  # what the damaged record wrote
    lines[5] = os.urandom(len(lines[5])).replace(b"\n", b"?")
    damaged = b"\n".join(lines)
    path.write_bytes(damaged)
    storage = JournalStorage(path)
    assert storage.damaged
    assert "set aside" in storage.problems[0]
    aside = list(tmp_path.glob("db.jsonl.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    recovered = storage.read()["t"]
    assert lost and recovered.keys() >= states[-1].keys() - lost  # only what the lost record wrote can miss
    db = TinyDB(storage=lambda: storage)
    db.table("t").insert({"after": True})  # keeps working
    storage.close()
    assert JournalStorage(path).read()["t"] == {**recovered, str(max(map(int, recovered)) + 1): {"after": True}}


@pytest.mark.parametrize("size", [1, 100, 5000])
def test_a_file_full_of_garbage_opens_empty_and_is_kept(tmp_path, size):
    path = tmp_path / "db.jsonl"
    junk = random.Random(size).randbytes(size)
    path.write_bytes(junk)
    storage = JournalStorage(path)
    assert storage.read() == {}
    assert storage.damaged and storage.problems
    kept = list(tmp_path.glob("db.jsonl.*-*"))
    assert len(kept) == 1 and junk.endswith(kept[0].read_bytes())


def test_readonly_never_touches_the_file(tmp_path):
    path = tmp_path / "db.jsonl"
    _states_after_each_write(path)
    damaged = path.read_bytes() + b"0000 torn"
    path.write_bytes(damaged)
    storage = JournalStorage(path, readonly=True)
    assert storage.read()["t"]
    with pytest.raises(StorageError, match="read-only"):
        storage.write({})
    assert path.read_bytes() == damaged
    assert list(tmp_path.iterdir()) == [path]


# ------------------------------------------------------------------------------------------- small pieces
def test_atomic_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "f.json"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert list(tmp_path.iterdir()) == [target]
    (tmp_path / ".f.json.tmp-1-abcd").write_bytes(b"half")  # left by a crash
    assert remove_stale_temps(tmp_path) == [tmp_path / ".f.json.tmp-1-abcd"]


def test_atomic_write_names_the_file_on_error(tmp_path):
    with pytest.raises(StorageError, match="missing"):
        atomic_write(tmp_path / "missing" / "f.json", b"x")


def test_record_log_cuts_a_torn_tail_and_keeps_it(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = RecordLog(path)
    log.append([{"n": 1}, {"n": 2}])
    log.close()
    with open(path, "ab") as f:
        f.write(encode_record({"n": 3})[:-7])
    records, problems = RecordLog.load(path, repair=True)
    assert records == [{"n": 1}, {"n": 2}] and "incomplete last record" in problems[0]
    RecordLog(path).append([{"n": 4}])
    assert RecordLog.load(path, repair=False)[0] == [{"n": 1}, {"n": 2}, {"n": 4}]


def test_record_log_checksum_sidecar_follows_appends(tmp_path):
    import zlib

    path = tmp_path / "2026-11.jsonl"
    log = RecordLog(path, checksum=True)
    log.append([{"n": 1}])
    log.append([{"n": 2}, {"n": 3}])
    assert _size_crc(path) == {"size": path.stat().st_size, "crc": zlib.crc32(path.read_bytes())}
    with open(path, "ab") as f:  # appended behind the sum's back (a crash before the sum was rewritten)
        f.write(encode_record({"n": 4}))
    assert RecordLog.load(path, repair=True, decode=False, checksum=True)[1] == []
    assert read_checksum(path)["size"] == path.stat().st_size
    data = bytearray(path.read_bytes())
    data[12] ^= 1  # one flipped bit in the first record
    path.write_bytes(bytes(data))
    _, problems = RecordLog.load(path, repair=True, decode=False, checksum=True)
    assert "set aside" in problems[0]
    assert RecordLog.load(path, repair=False)[0] == [{"n": 2}, {"n": 3}, {"n": 4}]


def test_slot_file_survives_a_torn_write(tmp_path):
    path = tmp_path / "numbers.bin"
    slots = SlotFile(path)
    for n in range(1, 6):
        slots.write({"last": n})
    slots.close()
    assert SlotFile(path).read() == ({"last": 5, "seq": 5}, False)
    data = bytearray(path.read_bytes())
    data[SlotFile.SLOT + 20:SlotFile.SLOT + 40] = b"\xff" * 20  # the newest slot (seq 5) is torn
    path.write_bytes(bytes(data))
    again = SlotFile(path)
    record, damaged = again.read()
    assert record == {"last": 4, "seq": 4} and damaged
    again.write({"last": 5})  # overwrites the torn slot, not the good one
    assert SlotFile(path).read() == ({"last": 5, "seq": 5}, False)


def _size_crc(path):
    known = read_checksum(path)
    return {"size": known["size"], "crc": known["crc"]}


# ------------------------------------------------------------------------------------------- templates
def _templates(tmp_path, n=5):
    tf = TemplateFile(tmp_path / "templates.bin")
    rng = np.random.default_rng(0)
    ids = [bytes([i]) * 16 for i in range(n)]
    vecs = [rng.random((3, 128), dtype=np.float32) for _ in ids]
    rows = [tf.append(cid, v) for cid, v in zip(ids, vecs)]
    return tf, ids, vecs, rows


def test_templates_round_trip(tmp_path):
    tf, ids, vecs, _ = _templates(tmp_path)
    check = tf.check(repair=True)
    assert not check.problems and len(check.rows) == 15
    hex_ids, matrix = tf.load(check.rows)
    assert hex_ids == [cid.hex() for cid in ids for _ in range(3)]
    assert matrix.dtype == np.float32 and np.array_equal(matrix, np.concatenate(vecs))


def test_crc32_after_an_overwrite_follows_from_the_change_alone():
    import zlib

    from kiosk.storage.records import crc32_overwritten
    rng = random.Random(1)
    for _ in range(200):
        data = bytearray(rng.randbytes(rng.randint(1, 5000)))
        crc, changes = zlib.crc32(data), []
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            new = rng.randbytes(rng.randint(1, len(data) - at))
            changes.append((at, bytes(data[at:at + len(new)]), new))
            data[at:at + len(new)] = new
        assert crc32_overwritten(crc, len(data), changes) == zlib.crc32(data)


def test_wipe_keeps_the_whole_file_checksum_without_reading_the_file(tmp_path):
    import zlib

    from kiosk.storage import read_checksum, write_checksum
    tf, ids, vecs, rows = _templates(tmp_path)
    write_checksum(tf.path)
    tf.wipe([int(r) for r in rows[1]] + [int(rows[4][2])])
    data = tf.path.read_bytes()
    assert read_checksum(tf.path) == {"size": len(data), "crc": zlib.crc32(data)}
    with open(tf.path, "r+b") as f:       # a byte changed on the card before a deletion stays found after it
        f.seek(40)
        f.write(bytes([data[40] ^ 1]))
    tf.wipe(rows[2])
    assert read_checksum(tf.path)["crc"] != zlib.crc32(tf.path.read_bytes())
    assert tf.check(repair=False).bad == 1     # (was trusted whole when the wipe recomputed the sum over it)


def test_wipe_removes_the_template_bytes(tmp_path):
    tf, ids, vecs, rows = _templates(tmp_path)
    tf.wipe(rows[2])
    raw = tf.path.read_bytes()
    assert vecs[2][0].tobytes() not in raw and ids[2] not in raw
    assert vecs[3][0].tobytes() in raw
    check = tf.check(repair=True)
    assert ids[2] not in set(check.ids.tolist()) and len(check.rows) == 12 and not check.problems


def test_template_checksum_follows_appends_and_wipes(tmp_path):
    import zlib

    tf, ids, vecs, rows = _templates(tmp_path)
    whole = lambda: {"size": tf.path.stat().st_size, "crc": zlib.crc32(tf.path.read_bytes())}  # noqa: E731
    assert _size_crc(tf.path) == whole()
    tf.wipe(rows[1])
    assert _size_crc(tf.path) == whole()
    fast = tf.check(repair=True, collect=True)  # trusted through the whole-file checksum
    (tmp_path / "templates.sum").unlink()
    slow = tf.check(repair=True, collect=True)  # record by record, then the checksum is written again
    assert np.array_equal(fast.rows, slow.rows) and np.array_equal(fast.matrix, slow.matrix)
    assert _size_crc(tf.path) == whole()


def test_torn_last_template_is_dropped_and_kept_aside(tmp_path):
    tf, ids, vecs, _ = _templates(tmp_path)
    tf.close()
    with open(tf.path, "r+b") as f:
        f.truncate(len(HEADER) + 14 * RECORD_SIZE + 100)
    write_checksum(tf.path, len(HEADER) + 14 * RECORD_SIZE, 0, 0)  # the sum as it was before the torn append
    check = tf.check(repair=True)
    assert len(check.rows) == 14 and "incomplete last template" in check.problems[0]
    assert tf.path.stat().st_size == len(HEADER) + 14 * RECORD_SIZE
    assert len(list(tmp_path.glob("templates.bin.torn-*"))) == 1


def test_damaged_template_record_is_dropped_and_file_set_aside(tmp_path):
    tf, ids, vecs, _ = _templates(tmp_path)
    tf.close()
    original = tf.path.read_bytes()
    with open(tf.path, "r+b") as f:
        f.seek(len(HEADER) + 4 * RECORD_SIZE + 50)
        f.write(b"garbage!")
    check = tf.check(repair=True)
    assert len(check.rows) == 14 and "set aside" in check.problems[0]
    aside = list(tmp_path.glob("templates.bin.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes()[:100] == original[:100]
    hex_ids, matrix = tf.load(check.rows)
    assert len(hex_ids) == 14 and not np.isin(vecs[1][1], matrix).all()
    assert tf.check(repair=True).problems == []  # the rewritten file is clean


def test_apply_appends_one_record_of_the_change_readable_like_a_tinydb_write(tmp_path):
    path = tmp_path / "hot.jsonl"
    with TinyDB(path, storage=JournalStorage) as db:
        db.table("visits").insert_multiple({"n": i} for i in range(100))
    storage = JournalStorage(path)
    table = storage.peek()["visits"]
    assert storage.new_id("visits") == 101 and storage.new_id("visits") == 102
    size = path.stat().st_size
    storage.apply({"visits": {"101": {"n": 100, "tags": ["a"]}, "3": {"n": -3}}}, dels={"visits": ["7"]})
    assert storage.peek()["visits"] is table            # changed in place: nothing else copied
    assert path.stat().st_size - size < 200
    storage.apply({}, dels={"visits": []})              # nothing to say: nothing written
    assert path.stat().st_size - size < 200
    storage.close()
    with TinyDB(path, storage=JournalStorage) as db:    # tinydb reads it back, and goes on writing
        docs = {doc.doc_id: doc for doc in db.table("visits").all()}
        assert docs[101] == {"n": 100, "tags": ["a"]} and docs[3] == {"n": -3} and 7 not in docs
        assert db.table("visits").insert({"n": "next"}) == 102
    with pytest.raises(StorageError, match="read-only"):
        JournalStorage(path, readonly=True).apply({"visits": {"1": {}}})
    storage = JournalStorage(path)
    with pytest.raises(RuntimeError, match="batch"), storage.batch():
        storage.apply({"visits": {"1": {}}})


def test_owners_found_by_binary_search_are_those_isin_finds():
    from kiosk.roster import owned_by
    rng = random.Random(3)
    owners = np.array([rng.randbytes(16) for _ in range(2000)] + [b"\x01" * 8 + bytes(8), b""], "S16")
    for i in range(40):
        ids = set(rng.sample(owners.tolist(), 30)) | {rng.randbytes(16)} | ({b""} if i % 2 else set())
        if i % 5 == 0:
            ids.add(b"\x01" * 8 + b"\x02" * 8)      # alike in the first 8 bytes: the plain way
        assert (owned_by(owners, ids) == np.isin(owners, np.array(sorted(ids), "S16"))).all()
