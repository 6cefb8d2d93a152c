"""kiosk-office ingest over SQLite and PostgreSQL: bundles made by the kiosk's own export from its own store."""
import shutil
from datetime import datetime, timedelta

import pytest
from nacl.signing import SigningKey

from kiosk import bundle as B
from kiosk.office.db import Database, DatabaseError, SCHEMA_VERSION
from kiosk.office.ingest import IngestError, ingest
from kiosk.office.kiosks import KioskError, add_kiosk, kiosk_status
from kiosk.office.records import forget
from kiosk.synckeys import write_office_key
from officekit import count, db_url, pg_server, snapshot  # noqa: F401  (fixtures)
from synckit import T0, enrol, make_kiosk

NOW = datetime(2026, 11, 30, 9, 0)


@pytest.fixture
def k(tmp_path):
    return make_kiosk(tmp_path / "kiosk")


@pytest.fixture
def stick(tmp_path):
    (tmp_path / "stick" / B.SYNC_DIR).mkdir(parents=True)
    return tmp_path / "stick"


def register(url, k):
    with Database.open(url) as db:
        add_kiosk(db, k.kiosk_id, k.keys().kiosk.verify_key.encode().hex(), now=NOW)


def run(url, k, stick, **kw):
    with Database.open(url) as db:
        return ingest(stick, db=db, office=k.office, now=lambda: NOW, **kw)


def bundle_path(stick, k, seq):
    (stick / B.SYNC_DIR / k.kiosk_id).mkdir(parents=True, exist_ok=True)
    return stick / B.SYNC_DIR / k.kiosk_id / B.bundle_name(seq)


def test_schema_is_created_once_and_versioned(db_url):
    with Database.open(db_url) as db:
        assert db.version() == SCHEMA_VERSION == 4
    with Database.open(db_url) as db:                  # opened again: migrated already, nothing to do
        assert db.query("SELECT version FROM schema_version ORDER BY version") == [(1,), (2,), (3,), (4,)]
        db.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(DatabaseError, match="schema version 99 is newer than this tool"):
        Database.open(db_url)


def test_ingest_stores_every_visit_once_and_acknowledges(db_url, k, stick):
    register(db_url, k)
    k.issue(5)
    k.export(stick)
    k.issue(3, start=T0 + timedelta(hours=1))
    k.export(stick)
    result = run(db_url, k, stick)
    assert [line.split(":")[0] for line in result.ingested] == ["k-01 #1", "k-01 #2"]
    assert result.set_aside == [] and count(db_url) == 8
    with Database.open(db_url) as db:
        tickets = sorted(r[0] for r in db.query("SELECT ticket FROM visits WHERE kiosk_id = ?", ("k-01",)))
        assert tickets == [f"HT-{i:03d}" for i in range(1, 9)]
        rows, _ = kiosk_status(db, now=NOW)
        assert rows[0].last_sequence == 2
    assert result.acks == ["k-01: acknowledged up to bundle 2"]
    # the kiosk's next export reads the ack: nothing left to resend
    assert k.export(stick).acknowledged == 2
    assert k.export(stick).written == []


def test_reingesting_everything_adds_nothing(db_url, k, stick):
    register(db_url, k)
    enrol(k)
    k.issue(4)
    k.export(stick)
    run(db_url, k, stick)
    before = snapshot(db_url)
    again = run(db_url, k, stick)
    assert again.ingested == [] and again.already == ["k-01 #1"] and again.set_aside == []
    assert snapshot(db_url) == before


def test_two_kiosks_with_the_same_ticket_numbers_never_collide(db_url, tmp_path, stick):
    a, b = make_kiosk(tmp_path / "a"), make_kiosk(tmp_path / "b")
    b.kiosk_id = "k-02"
    b.office = a.office                                 # one office
    write_office_key(b.office_file, a.office.public())
    for kiosk in (a, b):
        register(db_url, kiosk)
        kiosk.issue(3)
        kiosk.export(stick)
    result = run(db_url, a, stick)
    assert len(result.ingested) == 2 and count(db_url) == 6
    with Database.open(db_url) as db:
        assert db.query("SELECT COUNT(DISTINCT ticket) FROM visits") == [(3,)]     # HT-001..003 on both


def test_a_bundle_with_one_byte_changed_is_set_aside(db_url, k, stick):
    register(db_url, k)
    k.issue(3)
    k.export(stick)
    path = bundle_path(stick, k, 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    before = snapshot(db_url)
    result = run(db_url, k, stick)
    assert len(result.set_aside) == 1 and "bad signature (changed or damaged on the way)" in result.set_aside[0]
    assert snapshot(db_url) == before
    assert not (stick / B.SYNC_DIR / k.kiosk_id / B.ACK_NAME).exists()


def test_a_bundle_signed_by_an_unknown_key_is_set_aside(db_url, k, stick):
    register(db_url, k)
    forged = B.make_bundle(kiosk_id=k.kiosk_id, sequence=1, prev=None, created=T0.isoformat(),
                           parts={"visits": [{"id": "f" * 16, "ticket": "HT-999"}]}, signing_key=SigningKey.generate(),
                           office=k.office.public())
    B.write_bundle(bundle_path(stick, k, 1), forged)
    before = snapshot(db_url)
    result = run(db_url, k, stick)
    assert len(result.set_aside) == 1 and "signed by an unknown key" in result.set_aside[0]
    assert snapshot(db_url) == before


def test_a_kiosk_that_is_not_registered_is_refused(db_url, k, stick):
    k.issue(2)
    k.export(stick)
    before = snapshot(db_url)
    result = run(db_url, k, stick)
    assert "which is not registered here" in result.set_aside[0]
    assert snapshot(db_url) == before


def test_a_replayed_old_bundle_adds_nothing(db_url, k, stick):
    register(db_url, k)
    k.issue(2)
    k.export(stick)
    run(db_url, k, stick)
    old = bundle_path(stick, k, 1).read_bytes()
    k.issue(2, start=T0 + timedelta(hours=1))
    k.export(stick)
    run(db_url, k, stick)
    before = snapshot(db_url)
    # the old bundle 1 copied under the name of bundle 3: refused by its signed header
    B.write_bundle(bundle_path(stick, k, 3), old)
    result = run(db_url, k, stick)
    assert len(result.set_aside) == 1 and "holds bundle 1" in result.set_aside[0] and "replayed" in result.set_aside[0]
    assert result.already == ["k-01 #1", "k-01 #2"]
    assert snapshot(db_url) == before


def test_a_gap_in_the_chain_is_set_aside_until_the_missing_bundle_comes(db_url, k, stick, tmp_path):
    register(db_url, k)
    k.issue(2)
    k.export(stick)
    k.issue(2, start=T0 + timedelta(hours=1))
    k.export(stick)
    first = tmp_path / "first.bundle"
    shutil.move(bundle_path(stick, k, 1), first)
    before = snapshot(db_url)
    result = run(db_url, k, stick)
    assert len(result.set_aside) == 1
    assert "gap: the last bundle ingested from 'k-01' is 0; bundle(s) 1..1 must come first" in result.set_aside[0]
    assert snapshot(db_url) == before
    shutil.move(first, bundle_path(stick, k, 1))
    result = run(db_url, k, stick)
    assert len(result.ingested) == 2 and count(db_url) == 4


def test_a_bundle_is_stored_whole_or_not_at_all(db_url, k, stick):
    """The kiosk's key signed it, but its last visit lacks a field: the visits before it are rolled back."""
    register(db_url, k)
    good = [{"id": f"{i:016x}", "ticket": f"HT-{i:03d}", "number": i, "category": "ho-tich",
             "time": "2026-11-27T08:00:00", "service_day": "2026-11-27", "citizen": None, "printed": True}
            for i in range(1, 4)]
    data = B.make_bundle(kiosk_id=k.kiosk_id, sequence=1, prev=None, created=T0.isoformat(),
                         parts={"visits": [*good, {"id": "f" * 16}]}, signing_key=k.keys().kiosk,
                         office=k.office.public())
    B.write_bundle(bundle_path(stick, k, 1), data)
    before = snapshot(db_url)
    result = run(db_url, k, stick)
    assert "a record is malformed (KeyError: 'ticket'); nothing of it stored" in result.set_aside[0]
    assert snapshot(db_url) == before


def test_a_visit_sent_again_with_its_printer_answer_is_updated_not_added(db_url, k, stick):
    register(db_url, k)
    [v] = k.issue(1)
    k.export(stick)                                       # printer answer not there yet: printed None
    with k.store() as s:
        s.mark_printed(v.id, False)
    k.issue(1, start=T0 + timedelta(hours=1))
    k.export(stick)                                       # the same visit again, now "failed", and a new one
    run(db_url, k, stick)
    with Database.open(db_url) as db:
        assert sorted(db.query("SELECT visit_id, printed, bundle_sequence FROM visits")) == sorted(
            [(v.id, 0, 2), (db.scalar("SELECT visit_id FROM visits WHERE visit_id <> ?", (v.id,)), None, 2)])


def test_a_fork_is_set_aside(db_url, k, tmp_path, stick):
    register(db_url, k)
    k.issue(2)
    k.export(stick)
    run(db_url, k, stick)
    before = snapshot(db_url)
    other = B.make_bundle(kiosk_id=k.kiosk_id, sequence=1, prev=None, created=T0.isoformat(), parts={},
                          signing_key=k.keys().kiosk, office=k.office.public())
    B.write_bundle(bundle_path(stick, k, 1), other)     # same kiosk key, another history
    result = run(db_url, k, stick)
    assert "fork: bundle 1 differs from the bundle 1 ingested before" in result.set_aside[0]
    assert snapshot(db_url) == before


def test_kiosk_tombstones_forget_the_citizen_in_the_office_database(db_url, k, stick):
    register(db_url, k)
    [cid] = enrol(k)
    k.issue(2, citizen=cid)
    k.export(stick)
    run(db_url, k, stick)
    with Database.open(db_url) as db:
        assert db.query("SELECT COUNT(*) FROM visits WHERE citizen = ?", (cid,)) == [(2,)]
        assert db.query("SELECT COUNT(*) FROM consents WHERE citizen = ?", (cid,)) == [(1,)]
    with k.store() as s:
        s.forget(cid, now=T0 + timedelta(hours=2))
    k.export(stick)
    run(db_url, k, stick)
    with Database.open(db_url) as db:
        assert db.query("SELECT COUNT(*) FROM visits WHERE citizen = ?", (cid,)) == [(0,)]
        assert db.query("SELECT COUNT(*) FROM visits") == [(2,)]               # still counted, anonymously
        assert db.query("SELECT COUNT(*) FROM consents WHERE citizen = ?", (cid,)) == [(0,)]
        assert db.query("SELECT citizen FROM tombstones") == [(cid,)]


def test_a_citizen_forgotten_at_the_office_stays_forgotten_in_visits_that_arrive_later(db_url, k, stick):
    register(db_url, k)
    [cid] = enrol(k)
    k.issue(2, citizen=cid)
    k.issue(1)
    k.export(stick)
    with Database.open(db_url) as db, db.transaction():
        forget(db, [cid], at=NOW.isoformat(), source="office")
    run(db_url, k, stick)
    with Database.open(db_url) as db:
        assert db.query("SELECT COUNT(*), COUNT(citizen) FROM visits") == [(3, 0)]


def test_double_counting_is_impossible_in_the_schema_itself(db_url):
    with Database.open(db_url) as db:
        db.execute("INSERT INTO kiosks (kiosk_id, pubkey, added_at) VALUES ('k-01', 'x', 'now')")
        row = ("k-01", "v1", "HT-001", 1, "ho-tich", "2026-11-27T08:00:00", "2026-11-27", None, 1, None, 1)
        sql = ("INSERT INTO visits (kiosk_id, visit_id, ticket, number, category, issued_at, service_day, citizen, "
               "printed, identified_by, bundle_sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        db.execute(sql, row)
        with pytest.raises(DatabaseError, match="(?i)unique"):
            db.execute(sql, row)
        bundle = ("INSERT INTO bundles (kiosk_id, sequence, sha256, created, ingested_at, bytes, visits) "
                  "VALUES ('k-01', 1, ?, 'c', 'i', 1, 1)")
        db.execute(bundle, ("a" * 64,))
        with pytest.raises(DatabaseError, match="(?i)unique"):
            db.execute(bundle, ("b" * 64,))


def test_registering_another_key_for_a_known_kiosk_is_refused(db_url):
    with Database.open(db_url) as db:
        add_kiosk(db, "k-01", "ab" * 32, now=NOW)
        add_kiosk(db, "k-01", "AB" * 32, now=NOW)          # the same key again: fine
        with pytest.raises(KioskError, match="registered with another key"):
            add_kiosk(db, "k-01", "cd" * 32, now=NOW)
        with pytest.raises(KioskError, match="64 hex digits"):
            add_kiosk(db, "k-02", "not a key", now=NOW)


def test_a_link_named_like_a_bundle_is_never_followed(db_url, k, stick, tmp_path):
    register(db_url, k)
    k.issue(2)
    k.export(stick)
    outside = tmp_path / "outside.bundle"
    shutil.copy(bundle_path(stick, k, 1), outside)
    bundle_path(stick, k, 2).symlink_to(outside)
    result = run(db_url, k, stick)
    assert result.ignored == ["k-01/00000002.bundle: not a regular file (a link?): not read"]
    assert len(result.ingested) == 1 and count(db_url) == 2


def test_a_folder_without_kiosk_sync_is_not_a_stick(db_url, k, tmp_path):
    with pytest.raises(IngestError, match="not a kiosk stick"):
        run(db_url, k, tmp_path / "empty")


def test_card_records_are_kept_one_per_citizen_the_latest_and_a_deleted_one_goes(db_url, k, stick):
    """The cards part (kiosk/synccards.py): a citizen's record replaced by a newer one, removed when deleted."""
    register(db_url, k)
    a, b = "a" * 32, "b" * 32

    def card(citizen, name, seen, **extra):
        return {"citizen": citizen, "card": citizen[0] * 64, "fields": {"name": name}, "created_at": T0.isoformat(),
                "last_seen": seen.isoformat(), **extra}

    first = B.make_bundle(kiosk_id=k.kiosk_id, sequence=1, prev=None, created=T0.isoformat(),
                          parts={"cards": [card(a, "Nguyễn Văn An", T0), card(b, "Trần Thị Bình", T0)]},
                          signing_key=k.keys().kiosk, office=k.office.public())
    B.write_bundle(bundle_path(stick, k, 1), first)
    later = T0 + timedelta(days=1)
    second = B.make_bundle(kiosk_id=k.kiosk_id, sequence=2, prev=B.sha256_hex(first), created=later.isoformat(),
                           parts={"cards": [card(a, "Nguyễn Văn Anh", later),
                                            {"citizen": b, "card": "b" * 64, "deleted": True}]},
                           signing_key=k.keys().kiosk, office=k.office.public())
    B.write_bundle(bundle_path(stick, k, 2), second)
    result = run(db_url, k, stick)
    assert not result.set_aside, result.set_aside
    with Database.open(db_url) as db:
        rows = db.query("SELECT citizen, card, last_seen, record FROM cards")
    assert [(r[0], r[1], r[2]) for r in rows] == [(a, "a" * 64, later.isoformat())]
    assert "Nguyễn Văn Anh" in rows[0][3] and "Nguyễn Văn An\"" not in rows[0][3]     # no older version kept
