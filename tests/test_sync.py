"""USB sync, kiosk side: keys, export (incremental, acknowledged, idempotent), import (signed inbox)."""
import io
import json
import os
import stat
from datetime import timedelta

import pytest
from nacl.signing import SigningKey
from synckit import (T0, Office, enrol, k, make_kiosk, run_import, stick,  # noqa: F401  (k, stick: fixtures)
                     stored_visits)

from kiosk import bundle as B
from kiosk import syncdoc as D
from kiosk.__main__ import main
from kiosk.config import ConfigError, load_config
from kiosk.store import Store
from kiosk.sync import SyncError, load_state, office_dir
from kiosk.synckeys import (SyncKeyError, keys_command, load_kiosk_key, office_key_file_in_use, read_office_key,
                           rotated_office_key_file, write_office_key)


# -------------------------------------------------------------------------------------------------------- keys
def test_keys_are_created_once_private_and_shown(tmp_path):
    key_file, office_file = tmp_path / "etc" / "kiosk.key", tmp_path / "etc" / "office.pub"
    out = io.StringIO()
    assert keys_command(key_file=key_file, office_key_file=office_file, kiosk_id="k-01", set_office=None,
                        out=out) == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = load_kiosk_key(key_file, create=False).verify_key.encode().hex()
    assert public in out.getvalue() and "office key:  not set" in out.getvalue()
    first = key_file.read_bytes()
    office = B.OfficeKeys.generate().public()
    (tmp_path / "office.txt").write_text(office.to_text() + "\n")
    out = io.StringIO()
    assert keys_command(key_file=key_file, office_key_file=office_file, kiosk_id="k-01",
                        set_office=str(tmp_path / "office.txt"), out=out) == 0
    assert key_file.read_bytes() == first                       # never replaced
    assert read_office_key(office_file) == office and office.fingerprint in out.getvalue()
    out = io.StringIO()
    assert keys_command(key_file=key_file, office_key_file=office_file, kiosk_id="k-01",
                        set_office="kiosk-office-v1:1234", out=out) == 2
    assert "not an office public key" in out.getvalue() and read_office_key(office_file) == office
    os.chmod(key_file, 0o644)
    with pytest.raises(SyncKeyError, match="chmod 600"):
        load_kiosk_key(key_file, create=False)


def test_keys_must_live_outside_the_data_folder(k):
    text = k.config.read_text().replace(f'key_file = "{k.keys_dir}/kiosk-sync.key"',
                                        f'key_file = "{k.data}/kiosk-sync.key"')
    k.config.write_text(text)
    with pytest.raises(ConfigError, match="sync.key_file: must be outside the data folder"):
        load_config(k.config)


def test_kiosk_keys_command_line(k, capsys):
    office = B.OfficeKeys.generate().public()
    assert main(["keys", "--config", str(k.config), "--set-office", office.to_text()]) == 0
    assert office.to_text() in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------ export
def test_export_carries_everything_and_changes_no_kiosk_data(k, stick):
    visits = k.issue(5)
    citizens = enrol(k, 2)
    with k.store() as s:
        s.forget(citizens[1], now=T0)
    before = k.data_fingerprint()
    result = k.export(stick)
    assert result.new_sequence == 1 and result.written == [1] and result.counts["visits"] == 5
    assert k.data_fingerprint() == before
    assert not list((stick / "kiosk-sync" / "k-01").glob("*.tmp"))
    office = Office(k)
    assert office.ingest(stick) == [1]
    assert office.visits == stored_visits(k)
    assert set(office.consents.values().__iter__().__next__()) >= {"citizen", "consent_id", "at", "text"}
    assert [c["citizen"] for c in office.consents.values()] == [citizens[0]]
    assert list(office.tombstones) == [citizens[1]]
    assert {"enrol", "forget"} <= {a["event"] for a in office.audit}
    raw = (stick / "kiosk-sync" / "k-01" / "00000001.bundle").read_bytes()
    for secret in [v.id for v in visits] + citizens + ["HT-001", "ho-tich"]:
        assert secret.encode() not in raw


def test_export_is_incremental_until_acknowledged_and_idempotent(k, stick):
    k.issue(3)
    assert k.export(stick).new_sequence == 1
    again = k.export(stick)                                # nothing new, nothing acknowledged
    assert (again.new_sequence, again.written, again.already) == (None, [], [1])
    later = T0 + timedelta(days=3)
    k.issue(2, start=later)
    second = k.export(stick, now=later)
    assert (second.new_sequence, second.counts["visits"], second.written, second.already) == (2, 2, [2], [1])
    office = Office(k)
    assert office.ingest(stick) == [1, 2] and office.ingest(stick) == []     # a second ingest adds nothing
    assert office.visits == stored_visits(k)
    office.ack(stick)
    k.issue(1, start=later + timedelta(hours=1))
    third = k.export(stick, now=later)
    assert (third.new_sequence, third.written, third.already, third.acknowledged) == (3, [3], [], 2)
    assert sorted(p.name for p in (office_dir(k.data, k.office.public()) / "outbox").iterdir()) == ["00000003.bundle"]
    assert office.ingest(stick) == [3] and len(office.visits) == 6


def test_a_lost_stick_gets_the_same_bytes_again(k, tmp_path):
    k.issue(2)
    first, second = tmp_path / "taxi", tmp_path / "new-stick"
    first.mkdir(), second.mkdir()
    k.export(first)
    lost = (first / "kiosk-sync" / "k-01" / "00000001.bundle").read_bytes()
    assert k.export(second).written == [1]
    assert (second / "kiosk-sync" / "k-01" / "00000001.bundle").read_bytes() == lost   # same sequence and hash
    (second / "kiosk-sync" / "k-01" / "00000001.bundle").write_bytes(lost[:-10])       # damaged on the stick
    assert k.export(second).written == [1]
    assert Office(k).ingest(second) == [1]


def test_a_printer_answer_after_an_export_is_sent_again(k, stick):
    (visit,) = k.issue(1)
    k.export(stick)
    with k.store() as s:
        s.mark_printed(visit.id, False)
    result = k.export(stick)
    assert result.new_sequence == 2 and result.counts["visits"] == 1
    office = Office(k)
    office.ingest(stick)
    assert office.visits[visit.id]["printed"] is False


def test_a_forged_or_foreign_ack_drops_nothing(k, stick):
    k.issue(2)
    k.export(stick)
    digest = load_state(k.data, k.office.public()).last_hash
    D.write_ack(stick, D.make_ack(kiosk_id="k-01", sequence=1, bundle_sha256=digest, created="x",
                                  key=SigningKey.generate()), "k-01")
    result = k.export(stick)
    assert result.acknowledged == 0 and result.already == [1] and "unknown key" in result.notes[0]
    D.write_ack(stick, D.make_ack(kiosk_id="k-01", sequence=1, bundle_sha256="00" * 32, created="x",
                                  key=k.office.sign), "k-01")
    result = k.export(stick)
    assert result.acknowledged == 0 and "never made" in result.notes[0]
    assert (office_dir(k.data, k.office.public()) / "outbox" / "00000001.bundle").exists()


def test_export_runs_beside_the_running_kiosk(k, stick):
    """The running kiosk holds the store's lock; the export only reads."""
    with k.store() as running:
        running.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0)
        assert k.export(stick).counts["visits"] == 1
        running.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0 + timedelta(minutes=1))
    assert k.export(stick).counts["visits"] == 1


def test_export_refusals(k, stick, tmp_path):
    k.issue(1)
    (k.office_file).unlink()
    with pytest.raises(SyncError, match="no office key set"):
        k.export(stick)
    k2 = make_kiosk(tmp_path / "other")
    with pytest.raises(SyncError, match="no kiosk-sync/ folder"):
        k2.export(stick, create_root=False)
    with pytest.raises(SyncError, match="cannot open the stick folder"):
        k2.export(tmp_path / "not-mounted")


def test_export_and_import_command_line(k, stick, capsys):
    k.issue(2)
    assert main(["export", "--config", str(k.config), "--to", str(stick)]) == 0
    out = capsys.readouterr().out
    assert "... bundle 1 made: 2 visits" in out and "... writing bundle 1 (" in out
    assert "... bundle 1 written, read back and verified" in out and "bundle 1 made (2 visits" in out
    assert main(["import", "--config", str(k.config), "--from", str(stick)]) == 0
    assert "the inbox is empty" in capsys.readouterr().out
    assert main(["export", "--config", str(k.config), "--to", str(stick / "missing")]) == 2
    assert capsys.readouterr().out.startswith("kiosk export: ")


# ------------------------------------------------------------------------------------------------------ import
UPDATE = """[kiosk]
office = "UBND Phường Hai"

[[categories]]
key = "dat-dai"
prefix = "DD"
name_vi = "Đất đai"
name_en = "Land"

[[categories]]
key = "chung-thuc"
prefix = "CT"
name_vi = "Chứng thực"
name_en = "Certification"
"""


def test_a_signed_config_update_is_layered_validated_and_kept_for_rollback(k, stick):
    old = k.config.read_bytes()
    office = Office(k)
    office.signed(stick, "00000001-config.signed", {"kind": "config", "sequence": 1, "toml": UPDATE})
    result = run_import(k, stick)
    assert result.applied and result.restart_needed and not result.rejected
    assert k.config.read_bytes() == old                                # /etc/kiosk is never written
    override = k.data / "office-config.toml"
    config = load_config(k.config)
    assert config.office == "UBND Phường Hai"
    assert [(c.key, c.pin) for c in config.categories] == [("dat-dai", 6), ("chung-thuc", 5)]
    assert load_config(k.config, office_override=False).office == "UBND Phường Một"
    assert not (k.data / "office-config.toml.previous").exists()
    first = override.read_bytes()
    office.signed(stick, "00000002-config.signed", {"kind": "config", "sequence": 2,
                                                    "toml": '[kiosk]\noffice = "UBND Phường Ba"\n'})
    assert run_import(k, stick).applied
    config = load_config(k.config)                                   # the categories of 1 stay
    assert config.office == "UBND Phường Ba" and [c.key for c in config.categories] == ["dat-dai", "chung-thuc"]
    assert (k.data / "office-config.toml.previous").read_bytes() == first       # rollback: copy it back
    again = run_import(k, stick)                                     # the same files left on the stick
    assert len(again.already) == 2 and not again.applied


def test_config_updates_the_schema_refuses_change_nothing(k, stick):
    office = Office(k)
    office.signed(stick, "1.signed", {"kind": "config", "sequence": 1, "toml": "[printer]\nconnection = 'usb'\n"})
    office.signed(stick, "2.signed", {"kind": "config", "sequence": 2,
                                      "toml": UPDATE.replace('prefix = "CT"', 'prefix = "DD"')})
    office.signed(stick, "3.signed", {"kind": "config", "sequence": 3, "toml": "[kiosk\n"})
    office.signed(stick, "4.signed", {"kind": "config", "sequence": 4,
                                      "toml": UPDATE.replace('prefix = "CT"', 'prefix = "CT"\npin = 27')})
    result = run_import(k, stick)
    assert not result.applied and len(result.rejected) == 4
    text = "\n".join(result.rejected)
    assert "printer cannot be changed" in text and "'DD' is used twice" in text and "not valid TOML" in text
    assert "pins belong to this kiosk" in text
    assert not list(k.data.glob("office-config.toml*"))


def test_an_unusable_office_override_is_ignored_and_said(k, caplog):
    k.store().close()
    (k.data / "office-config.toml").write_text("[printer]\nconnection = 'usb'\n")
    assert load_config(k.config).office == "UBND Phường Một"
    assert "office config override not used" in caplog.text and "printer cannot be changed" in caplog.text
    (k.data / "office-config.toml").write_text('[[categories]]\nkey = "x"\nprefix = "X"\nname_vi = "X"\n'
                                               'name_en = "X"\n[[categories]]\nkey = "y"\nprefix = "Y"\n'
                                               'name_vi = "Y"\nname_en = "Y"\n[[categories]]\nkey = "z"\n'
                                               'prefix = "Z"\nname_vi = "Z"\nname_en = "Z"\n')
    config = load_config(k.config)        # simulate = true: a third category without a pin is allowed here
    assert [(c.key, c.pin) for c in config.categories] == [("x", 5), ("y", 6), ("z", None)]


def test_unsigned_badly_signed_foreign_and_replayed_files_change_nothing(k, stick):
    office = Office(k)
    office.signed(stick, "5.signed", {"kind": "config", "sequence": 5, "toml": '[kiosk]\noffice = "Five"\n'})
    assert run_import(k, stick).applied
    applied = k.config.read_bytes()
    inbox = stick / "kiosk-sync" / "inbox"
    (inbox / "5.signed").unlink()
    office.signed(stick, "4.signed", {"kind": "config", "sequence": 4, "toml": '[kiosk]\noffice = "Old"\n'})
    office.signed(stick, "6.signed", {"kind": "config", "sequence": 6, "toml": '[kiosk]\noffice = "Evil"\n'},
                  key=SigningKey.generate())
    office.signed(stick, "7.signed", {"kind": "config", "kiosk": "k-99", "sequence": 7,
                                      "toml": '[kiosk]\noffice = "Other"\n'})
    (inbox / "8.signed").write_text('{"kind": "config", "sequence": 8, "toml": "[kiosk]"}')
    bad = bytearray(D.sign_document({"kind": "config", "kiosk": "*", "sequence": 9,
                                     "toml": '[kiosk]\noffice = "Flip"\n'}, k.office.sign))
    bad[-5] ^= 1
    (inbox / "9.signed").write_bytes(bytes(bad))
    (inbox / "..signed").write_text("x")
    result = run_import(k, stick)
    assert not result.applied and k.config.read_bytes() == applied
    why = dict(line.split(": ", 1) for line in result.rejected)
    assert "replayed or old" in why["4.signed"] and "unknown key" in why["6.signed"]
    assert "k-99" in why["7.signed"] and "unsigned" in why["8.signed"] and "bad signature" in why["9.signed"]
    assert "..signed" not in why


def test_a_deletion_request_forgets_through_the_store(k, stick):
    keep, gone = enrol(k, 2)
    k.issue(1, citizen=gone)
    Office(k).signed(stick, "1.signed", {"kind": "delete", "sequence": 1, "citizens": [gone, "ab" * 16]})
    result = run_import(k, stick)
    assert "1 citizen(s) forgotten here (2 id(s), 0 card(s) asked)" in result.applied[0]
    with Store.open_readonly(k.data) as s:
        assert s.citizen(gone) is None and s.citizen(keep) is not None
        assert [r["citizen"] for r in s.receipts()] == [gone]
    Office(k).signed(stick, "2.signed", {"kind": "delete", "sequence": 2, "citizens": ["../../etc/passwd"]})
    assert "32-hex" in run_import(k, stick).rejected[0]


def test_a_deletion_the_running_kiosk_does_not_take_in_time_waits_in_its_spool(k, stick):
    (cid,) = enrol(k)
    office = Office(k)
    office.signed(stick, "1.signed", {"kind": "delete", "sequence": 1, "citizens": [cid]})
    office.signed(stick, "2.signed", {"kind": "config", "sequence": 2, "toml": '[kiosk]\noffice = "Two"\n'})
    with k.store():                                   # a kiosk that holds the store but is busy
        result = run_import(k, stick, wait=0.1)
    assert "handed to the running kiosk" in result.stopped and not result.applied
    assert load_config(k.config).office == "UBND Phường Một"          # 2 did not jump ahead of 1
    assert [p.name for p in (k.data / "deletions").iterdir()] == ["office-00000001.json"]
    result = run_import(k, stick)                     # the service stopped: the import applies both itself
    assert len(result.applied) == 2 and load_config(k.config).office == "Two"
    with Store.open_readonly(k.data) as s:
        assert s.citizen(cid) is None


def test_office_key_rotation_signed_by_the_old_key(k, stick):
    k.issue(1)
    k.export(stick)
    old_dir = office_dir(k.data, k.office.public())
    new = B.OfficeKeys.generate()
    office = Office(k)
    office.signed(stick, "1.signed", {"kind": "office-key", "sequence": 1, "new_key": new.public().to_text()})
    office.signed(stick, "2.signed", {"kind": "config", "sequence": 2, "toml": '[kiosk]\noffice = "New"\n'},
                  key=new.sign)
    stranger = B.OfficeKeys.generate()
    office.signed(stick, "3.signed", {"kind": "office-key", "sequence": 3, "new_key": stranger.public().to_text()},
                  key=stranger.sign)
    result = run_import(k, stick)
    assert len(result.applied) == 2 and "unknown key" in result.rejected[0]
    assert load_config(k.config).office == "New"
    # the new key goes to the data folder (the service may not write /etc/kiosk) and is the one used from now on
    assert read_office_key(office_key_file_in_use(k.office_file, k.data)) == new.public()
    assert read_office_key(k.office_file) == k.office.public()              # the configured file is left as it was
    assert not old_dir.exists() and load_state(k.data, new.public()).last_sequence == 1   # the chain goes on
    k.office = new
    k.issue(1, start=T0 + timedelta(minutes=5))
    assert k.export(stick).new_sequence == 2


def test_a_technician_setting_the_office_key_replaces_a_rotated_one(k, tmp_path):
    rotated = B.OfficeKeys.generate().public()
    write_office_key(rotated_office_key_file(k.data), rotated)
    assert read_office_key(office_key_file_in_use(k.office_file, k.data)) == rotated
    chosen = B.OfficeKeys.generate().public()
    out = io.StringIO()
    assert keys_command(key_file=k.key_file, office_key_file=k.office_file, kiosk_id="k-01",
                        set_office=chosen.to_text(), out=out, data_dir=k.data) == 0
    assert read_office_key(office_key_file_in_use(k.office_file, k.data)) == chosen
    assert chosen.fingerprint in out.getvalue() and not rotated_office_key_file(k.data).exists()


def test_import_and_state_files_are_json(k, stick):
    Office(k).signed(stick, "1.signed", {"kind": "delete", "sequence": 1, "citizens": []})
    run_import(k, stick)
    state = json.loads((k.data / "sync" / "inbox.json").read_text())
    assert state["sequence"] == 1 and len(state["applied"]) == 1
    k.issue(1)
    k.export(stick)
    b = B.read_bundle(stick / "kiosk-sync" / "k-01" / "00000001.bundle", office_key=k.office,
                      kiosk_verify_keys={"k-01": k.keys().kiosk.verify_key})
    assert b.manifest["inbox_sequence"] == 1                          # the office learns what was applied


def test_visits_after_a_clock_accepted_back_are_still_exported(k, stick):
    """A clock that jumped to 2099 moved the watermark there; after 'kiosk clock --accept-now' today's visits
    are older than it, and must go out all the same."""
    future = T0.replace(year=2099)
    with Store.open(k.data, kiosk_id="k-01", clock=lambda: future) as s:
        s.issue_ticket("ho-tich", "HT", citizen_id=None, now=future)
    k.export(stick)
    assert load_state(k.data, k.office.public()).visits_from.startswith("2099-")
    with Store.open(k.data, kiosk_id="k-01", clock=lambda: T0) as s:
        assert s.accept_clock(T0) is not None
        s.issue_ticket("ho-tich", "HT", citizen_id=None, now=T0)
    result = k.export(stick)
    assert result.counts["visits"] == 1
    office = Office(k)
    office.ingest(stick)
    assert office.visits == stored_visits(k) and len(office.visits) == 2
    assert k.export(stick).new_sequence is None                    # and nothing is sent twice
