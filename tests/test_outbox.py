"""A deletion reaches the bundles waiting in the outbox (kiosk/outbox.py): remade without the citizen, the chain
still whole for the office (its real ingest over SQLite), the deletion receipt in the next bundle."""
from datetime import datetime, timedelta

import numpy as np
import pytest
from synckit import CONSENT, T0, k, stick  # noqa: F401  (fixtures)

from kiosk import bundle as B
from kiosk.datakey import DataKey
from kiosk.identity import CardBook
from kiosk.office.db import Database
from kiosk.office.ingest import ingest
from kiosk.office.kiosks import add_kiosk
from kiosk.store import Store
from kiosk.sync import load_state, office_dir

KEY = DataKey(b"outbox test data key, 32 bytes!")
SECRET = b"s" * 32
NAME = "Trần Thị Bích Ngọc"           # invented
BIRTH = "1987-04-12"


def setup(k, stick):
    """Two citizens with face and card, a visit each, exported once (bundle 1 in the outbox, not acknowledged)."""
    rng = np.random.default_rng(5)
    with Store.open(k.data, kiosk_id=k.kiosk_id, clock=lambda: T0, key=KEY) as s:
        ids = [s.enrol(rng.random((2, 128), dtype=np.float32), now=T0, consent_text=CONSENT).id for _ in range(2)]
        for i, c in enumerate(ids):
            s.issue_ticket("ho-tich", "HT", citizen_id=c, now=T0 + timedelta(minutes=i))
    book = CardBook.open(k.data, secret=SECRET, key=KEY)
    holders = [book.link(book.key(f"00118700000{i}"), {"name": name, "birth_date": born, "sex": "F"}, now=T0)[0]
               for i, (name, born) in enumerate(((NAME, BIRTH), ("Lê Văn Tám", "1990-01-01")))]
    book.close()
    assert k.export(stick, data_key=KEY).new_sequence == 1
    return ids, holders


def forget(k, citizen, holder):
    with Store.open(k.data, kiosk_id=k.kiosk_id, clock=lambda: T0, key=KEY) as s:
        s.forget(citizen, now=T0 + timedelta(hours=1))
    book = CardBook.open(k.data, secret=SECRET, key=KEY)
    assert book.forget(holder)
    book.close()


def opened(k, path):
    return B.read_bundle(path, office_key=k.office, kiosk_verify_keys={k.kiosk_id: k.keys().kiosk.verify_key})


def office_db(k, tmp_path):
    url = str(tmp_path / "office.db")
    with Database.open(url) as db:
        add_kiosk(db, k.kiosk_id, k.keys().kiosk.verify_key.encode().hex(), now=datetime(2026, 12, 1))
    return url


def run(url, k, stick):
    with Database.open(url) as db:
        return ingest(stick, db=db, office=k.office, now=lambda: datetime(2026, 12, 1))


def outbox_bytes(k):
    return b"".join(p.read_bytes() for p in sorted((office_dir(k.data, k.office.public()) / "outbox").iterdir()))


def test_a_bundle_waiting_for_the_office_is_remade_without_the_deleted_citizen(k, stick, tmp_path):
    (gone, stays), (gone_card, _) = setup(k, stick)
    outbox = office_dir(k.data, k.office.public()) / "outbox"
    first = opened(k, outbox / B.bundle_name(1))
    assert NAME in str(first.parts["cards"]) and gone in str(first.parts["consents"])     # it was there
    sha_before = load_state(k.data, k.office.public()).pending[0]["sha256"]
    forget(k, gone, gone_card)
    assert not (outbox / B.bundle_name(1)).exists()           # the sealed copy that had them is gone at once
    kept = KEY.open((outbox / "00000001.kept").read_bytes(), f"outbox {outbox.parent.name} 1".encode())
    assert NAME.encode() not in kept and gone.encode() not in kept and gone_card.encode() not in kept
    assert gone not in (outbox / "00000001.who").read_text()

    result = k.export(stick, data_key=KEY, now=T0 + timedelta(hours=2))
    assert result.new_sequence == 2 and result.written == [1, 2]
    state = load_state(k.data, k.office.public())
    assert state.pending[0]["replaced"] == [sha_before] and state.pending[1]["prev"] == state.pending[0]["sha256"]
    remade = opened(k, stick / B.SYNC_DIR / k.kiosk_id / B.bundle_name(1))
    personal = {n: remade.parts[n] for n in ("visits", "consents", "cards")}  # audit keeps ids, as the log does
    for raw in (str(personal), outbox_bytes(k).decode("latin-1")):
        assert NAME not in raw and BIRTH not in raw and gone not in raw and gone_card not in raw
    assert [c["citizen"] for c in remade.parts["consents"]] == [stays]
    assert [v["citizen"] for v in remade.visits] == [None, stays]     # the visit stays, anonymous
    assert remade.header.created == first.header.created and remade.header.prev is None
    second = opened(k, stick / B.SYNC_DIR / k.kiosk_id / B.bundle_name(2))
    assert [t["citizen"] for t in second.parts["tombstones"]] == [gone]
    assert {"citizen": gone_card, "card": second.parts["cards"][0]["card"], "deleted": True} \
        in second.parts["cards"]

    url = office_db(k, tmp_path)
    done = run(url, k, stick)
    assert not done.set_aside and len(done.ingested) == 2
    result = k.export(stick, data_key=KEY, now=T0 + timedelta(hours=3))
    assert result.acknowledged == 2 and not list(outbox.iterdir())     # acknowledged: nothing kept any more


def test_an_office_holding_the_first_version_keeps_its_chain(k, stick, tmp_path):
    (gone, _), (gone_card, _) = setup(k, stick)
    url = office_db(k, tmp_path)
    other = tmp_path / "stick2"
    other.mkdir()
    assert len(run(url, k, stick).ingested) == 1            # the office has bundle 1 as first made; ack on `stick`
    forget(k, gone, gone_card)
    k.export(other, data_key=KEY, now=T0 + timedelta(hours=2))      # another stick: bundle 1 remade, and 2
    done = run(url, k, other)
    assert len(done.set_aside) == 2 and "fork" in done.set_aside[0]   # the office keeps the one it has
    result = k.export(other, data_key=KEY, now=T0 + timedelta(hours=3))
    assert result.acknowledged == 1 and result.written == [2]      # its ack of the first version counts
    done = run(url, k, other)
    assert not done.set_aside and len(done.ingested) == 1 and "1 tombstones" in done.ingested[0]
    with Database.open(url) as db:
        assert db.scalar("SELECT COUNT(*) FROM tombstones") == 1


def test_a_deletion_during_an_export_waits_for_it_then_applies(k, stick):
    from kiosk.outbox import drop, locked

    (gone, _), _ = setup(k, stick)
    folder = office_dir(k.data, k.office.public())
    with locked(folder):                                    # an export in another process holds the office
        assert drop(k.data, [gone], KEY) == 0
        assert (folder / "outbox" / B.bundle_name(1)).exists() and list(folder.glob("drop-*.json"))
    k.export(stick, data_key=KEY, now=T0 + timedelta(hours=2))       # applies it first, then remakes bundle 1
    assert not list(folder.glob("drop-*.json"))
    assert gone not in str(opened(k, stick / B.SYNC_DIR / k.kiosk_id / B.bundle_name(1)).parts["consents"])


def test_without_a_kept_copy_the_export_says_so_in_one_line(k, stick):
    from kiosk.sync import SyncError

    setup(k, stick)
    outbox = office_dir(k.data, k.office.public()) / "outbox"
    (outbox / B.bundle_name(1)).unlink()
    (outbox / "00000001.kept").unlink()
    with pytest.raises(SyncError, match="kept copy of bundle 1 unusable"):
        k.export(stick, data_key=KEY)
