"""Issue 10, items 1, 2 and 5: what the audit log records (card reads, exports, imports, config, technician
commands; never a number, a name or a template), and consent records that outlive their data by the configured
period. Over the real store, card records and services; card payloads invented (kiosk/cardgen.py)."""
from __future__ import annotations

import dataclasses
import json
import os
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from kiosk.audit import verify
from kiosk.auditspool import SPOOL_DIR, SpoolChore, config_digest, note_config, record
from kiosk.cardgen import invent_fields, join_fields
from kiosk.config import SIMULATION_CONFIG, load_config
from kiosk.consentrecords import kept_consents
from kiosk.datakey import KeySource, load_key, make_key_file
from kiosk.identity import CardBook, CardPolicy
from kiosk.index import FaceIndex
from kiosk.printing import PrintQueue
from kiosk.retention import RetentionPolicy, purge
from kiosk.services import KioskServices
from kiosk.store import Store
from kiosk.visit import VisitRequest
from synckit import Office, make_kiosk
from test_services import RecordingPrinter

NOW = datetime(2026, 11, 27, 9, 30)


def _entries(data: Path) -> list[dict]:
    return [json.loads(line.split(" ", 1)[1]) for line in (data / "audit.jsonl").read_text().splitlines()]


def _events(data: Path, name: str) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("seq", "prev", "at")} for e in _entries(data)
            if e["event"] == name]


# ------------------------------------------------------------------------------------------------ card reads
def test_card_reads_are_audited_and_no_file_of_the_folder_holds_a_name_number_or_template(tmp_path):
    data = tmp_path / "data"
    make_key_file(tmp_path / "keys" / "data.key")
    key = load_key(KeySource("file", tmp_path / "keys" / "data.key"), data)
    store = Store.open(data, kiosk_id="k1", clock=lambda: NOW, key=key)
    book = CardBook.open(data, secret=b"s" * 32, key=key)
    index = FaceIndex(*store.templates())
    services = KioskServices(store=store, index=index, printer=PrintQueue(RecordingPrinter(), inline=True),
                             office="UBND", kiosk_id="k1", categories=load_config(SIMULATION_CONFIG).categories,
                             wall=lambda: NOW, book=book, policy=CardPolicy())
    rng = random.Random(2026)
    invented = (invent_fields(rng, today=date(2026, 11, 27)) for _ in range(100))
    people = [p for p in invented if int(p["birth"][4:]) < 2000][:3]     # adults: their faces may be kept
    faces = np.random.default_rng(5).random((3, 3, 128), dtype=np.float32)
    try:
        for person, face in zip(people, faces):
            card = services.read_card(join_fields(person))
            assert card is not None and card.ok
            issued = services.issue(VisitRequest("ho-tich", card=card, encodings=face, consent=True))
            assert issued.enrolled and issued.citizen in index
        again = services.read_card(join_fields(people[0]))                       # a known card record
        assert again is not None and again.citizen_id is not None
        broken = join_fields({**people[1], "birth": "31021990"})                 # no such day: invalid
        assert services.read_card(broken) is not None and not services.read_card(broken).ok
        assert services.read_card("https://example.invalid/pay") is None        # not a card: nothing recorded
    finally:
        book.close()
        store.close()
    reads = _events(data, "card_read")
    assert reads == [{"event": "card_read", "valid": True, "record": "new"}] * 3 + \
        [{"event": "card_read", "valid": True, "record": "known"}] + [{"event": "card_read", "valid": False}] * 2
    assert verify(data / "audit.jsonl").ok
    audit = (data / "audit.jsonl").read_bytes()
    needles = [p[f].encode() for p in people for f in ("number", "name", "address", "old_id") if p[f]]
    assert not [n for n in needles if n in audit]                    # the audit file: never a number or a name
    # every file of the folder, recursively: no name, number or address in clear, no template's float32 bytes
    needles += [row.tobytes() for face in faces for row in face]
    files = [p for p in data.rglob("*") if p.is_file()]
    assert len(files) >= 6
    found = [(p.name, n[:12]) for p in files for raw in (p.read_bytes(),) for n in needles if n in raw]
    assert found == []


# ------------------------------------------------------------------------------- commands beside the store
def test_a_command_logs_at_once_when_the_folder_is_free_and_spools_while_the_kiosk_holds_it(tmp_path):
    data = tmp_path / "data"
    Store.open(data, kiosk_id="k1", clock=lambda: NOW).close()
    assert record(data, "office_key_set", now=NOW, fingerprint="ab12") == "logged"
    assert record(tmp_path / "nowhere", "export", now=NOW) == "skipped"
    ticks = [0.0]
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW) as store:
        root = os.geteuid() == 0
        if root:
            os.chown(data, 4321, 4321)             # the kiosk user's folder, a technician's sudo beside it
        assert record(data, "export", now=NOW, bundle=3, counts={"visits": 2}) == "spooled"
        [spooled] = (data / SPOOL_DIR).iterdir()
        assert _events(data, "export") == []
        if root:                                   # left to the kiosk user, who must remove it once chained
            assert spooled.stat().st_uid == (data / SPOOL_DIR).stat().st_uid == 4321
        chore = SpoolChore(store.drain_audit_spool, clock=lambda: ticks[0])
        assert chore.poll() == 1 and chore.next_due == 5.0            # the running kiosk's idle look
        assert list((data / SPOOL_DIR).iterdir()) == []
        record(data, "import", now=NOW, applied={"delete": 1}, rejected=0, stopped=False)
        ticks[0] = 4.0
        assert chore.poll() == 0 and len(list((data / SPOOL_DIR).iterdir())) == 1   # not due yet
    torn = data / SPOOL_DIR / ".x.json.tmp-1-ab"                     # a command killed mid-write
    torn.write_text("{")
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW):
        pass                                                         # left while it ran: taken at the next start
    assert list((data / SPOOL_DIR).iterdir()) == [] and "spool_unreadable" not in (data / "audit.jsonl").read_text()
    assert _events(data, "office_key_set") == [{"event": "office_key_set", "fingerprint": "ab12"}]
    assert _events(data, "export") == [{"event": "export", "bundle": 3, "counts": {"visits": 2}}]
    assert _events(data, "import") == [{"event": "import", "applied": {"delete": 1}, "rejected": 0,
                                        "stopped": False}]
    assert verify(data / "audit.jsonl").ok and verify(data / "audit.jsonl").chained == len(_entries(data))


UPDATE = """[kiosk]
office = "UBND Phường Ba"

[[categories]]
key = "dat-dai"
prefix = "DD"
name_vi = "Đất đai"
name_en = "Land"
"""


def test_export_import_and_keys_commands_are_audited(tmp_path, capsys):
    from kiosk.__main__ import main

    k = make_kiosk(tmp_path)
    stick = tmp_path / "stick"
    stick.mkdir()
    k.issue(2)
    assert main(["export", "--config", str(k.config), "--to", str(stick)]) == 0
    [export] = _events(k.data, "export")
    assert export["bundle"] == 1 and export["counts"]["visits"] == 2 and export["written"] == [1]
    Office(k).signed(stick, "00000001-config.signed", {"kind": "config", "sequence": 1, "toml": UPDATE})
    assert main(["import", "--config", str(k.config), "--from", str(stick)]) == 0
    assert _events(k.data, "import") == [{"event": "import", "applied": {"config": 1}, "rejected": 0,
                                          "stopped": False}]
    assert main(["import", "--config", str(k.config), "--from", str(stick)]) == 0   # nothing new: no entry
    assert len(_events(k.data, "import")) == 1
    office = k.office_file.read_text().strip()
    assert main(["keys", "--config", str(k.config), "--set-office", office]) == 0
    assert [e["event"] for e in _entries(k.data)][-1] == "office_key_set"
    assert verify(k.data / "audit.jsonl").ok
    capsys.readouterr()


def test_a_changed_config_is_audited_at_start_once(tmp_path):
    data = tmp_path / "data"
    config = load_config(SIMULATION_CONFIG)
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW) as store:
        assert note_config(data, config_digest(config), store, now=NOW) is True       # the first start
        assert note_config(data, config_digest(config), store, now=NOW) is False      # the same again
        changed = dataclasses.replace(config, office="UBND Phường Khác")
        assert config_digest(changed) != config_digest(config)
        assert note_config(data, config_digest(changed), store, now=NOW) is True
    first, second = _events(data, "config")
    assert first == {"event": "config", "sha256": config_digest(config), "previous": None}
    assert second == {"event": "config", "sha256": config_digest(changed), "previous": config_digest(config)}


# --------------------------------------------------------------------------------------------- consent records
def test_consent_records_outlive_the_templates_by_the_configured_period_then_go(tmp_path):
    data = tmp_path / "data"
    t0 = datetime(2025, 1, 10, 9, 0)
    policy = RetentionPolicy(templates_months=12, records_extra_months=6)
    face = np.random.default_rng(3).random((2, 128), dtype=np.float32)
    with Store.open(data, kiosk_id="k1", clock=lambda: t0) as store:
        cid = store.enrol(face, now=t0, consent_text="Tôi đồng ý / I agree").id
        [live] = kept_consents(store)
        assert live["citizen"] == cid and live["data_deleted"] is None
        purged_at = t0 + timedelta(days=400)                         # 13 months on: the templates go
        assert purge(store, None, policy, purged_at).citizens == (cid,)
        assert store.templates()[0] == [] and store.consents() == []
        [kept] = kept_consents(store)                                # the consent record stays
        assert {k: kept[k] for k in ("citizen", "consent_id", "at", "text_version")} == \
            {k: live[k] for k in ("citizen", "consent_id", "at", "text_version")}
        assert kept["data_deleted"] == purged_at.isoformat()
        assert purge(store, None, policy, purged_at + timedelta(days=170)).receipts == 0   # < 6 months later
        assert len(kept_consents(store)) == 1
        assert purge(store, None, policy, purged_at + timedelta(days=190)).receipts == 1   # > 6 months: gone
        assert kept_consents(store) == []
    raw = b"".join(p.read_bytes() for p in (data / "citizens").rglob("*") if p.is_file())
    assert live["consent_id"].encode() not in raw


def test_the_forget_command_is_audited_as_the_technicians_before_the_deletion_it_makes(tmp_path, capsys):
    from kiosk.cli_store import forget

    config = load_config(SIMULATION_CONFIG)
    config = dataclasses.replace(config, data_dir=tmp_path / "data", privacy=dataclasses.replace(
        config.privacy, key_file=str(tmp_path / "keys" / "data.key")))
    with Store.open(config.data_dir, kiosk_id="k1", clock=lambda: NOW) as store:
        cid = store.enrol(np.ones((1, 128), np.float32), now=NOW, consent_text="yes").id
    assert forget(config, cid, print_receipt=False, now=NOW) == 0
    tail = [{k: e.get(k) for k in ("event", "command", "citizen", "reason")} for e in _entries(config.data_dir)][-3:]
    assert tail == [{"event": "command", "command": "forget", "citizen": cid, "reason": None},
                    {"event": "open", "command": None, "citizen": None, "reason": None},     # the command's store
                    {"event": "forget", "command": None, "citizen": cid, "reason": "request"}]
    assert verify(config.data_dir / "audit.jsonl").ok
    capsys.readouterr()
