"""The kiosk-office command line, end to end with the kiosk's own commands (keys, export, import)."""
import io
import os
import stat
import tomllib

import pytest

from kiosk import bundle as B
from kiosk.__main__ import main as kiosk_main
from kiosk.config import load_config
from kiosk.office.cli import run
from kiosk.office.db import Database
from kiosk.office.keys import PASSPHRASE_ENV, read_keys
from kiosk.store import Store
from officekit import db_url, pg_server  # noqa: F401  (fixtures)
from synckit import enrol, make_kiosk

PASSPHRASE = "correct horse battery staple"


def office(*args):
    out = io.StringIO()
    code = run([str(a) for a in args], out)
    return code, out.getvalue()


@pytest.fixture
def setup(tmp_path, db_url, monkeypatch):
    """An office key made by keygen, given to a kiosk with 'kiosk keys --set-office', the kiosk registered."""
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    key = tmp_path / "office" / "office.key"
    code, out = office("--key", key, "keygen")
    assert code == 0, out
    line = next(w for w in out.split() if w.startswith(B.OFFICE_KEY_PREFIX))
    k = make_kiosk(tmp_path / "kiosk")
    assert kiosk_main(["keys", "--config", str(k.config), "--set-office", line]) == 0
    k.office = read_keys(key, PASSPHRASE)
    code, out = office("--db", db_url, "kiosks", "add", k.kiosk_id, k.keys().kiosk.verify_key.encode().hex())
    assert code == 0, out
    stick = tmp_path / "stick"
    (stick / B.SYNC_DIR).mkdir(parents=True)
    return k, key, stick, ["--key", key, "--db", db_url]


def test_keygen_protects_the_private_key_with_the_passphrase(tmp_path, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    key = tmp_path / "office.key"
    code, out = office("--key", key, "keygen")
    assert code == 0 and "kiosk keys --set-office kiosk-office-v1:" in out
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    public = (tmp_path / "office.key.pub").read_text().strip()
    assert public in out and B.OfficePublicKey.from_text(public)
    keys = read_keys(key, PASSPHRASE)
    assert keys.public().to_text() == public
    assert bytes(keys.sign).hex() not in key.read_text() and bytes(keys.box).hex() not in key.read_text()
    assert office("--key", key, "keygen") == (2, f"kiosk-office keygen: {key}: exists already; a new key makes "
                                                 f"every kiosk's bundles unreadable here (rotate instead, or remove "
                                                 f"the file yourself)\n")
    monkeypatch.setenv(PASSPHRASE_ENV, "not the passphrase")
    code, out = office("--key", key, "--db", tmp_path / "o.db", "ingest", tmp_path)
    assert code == 2 and out == f"kiosk-office ingest: {key}: wrong passphrase\n"


def test_ingest_kiosks_and_exit_codes(setup):
    k, key, stick, common = setup
    k.issue(4)
    assert kiosk_main(["export", "--config", str(k.config), "--to", str(stick)]) == 0
    code, out = office(*common, "ingest", stick)
    assert code == 0, out
    assert "[1/1] k-01 #1 (00000001.bundle): ingested: 4 visits" in out and "acknowledged up to bundle 1" in out
    code, out = office(*common, "ingest", stick)
    assert code == 0 and "1 already there" in out
    code, out = office(*common, "kiosks")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["k-01", k.keys().kiosk.verify_key.encode().hex()[:16]]
    path = stick / B.SYNC_DIR / "k-01" / "00000001.bundle"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    code, out = office(*common, "ingest", stick)
    assert code == 1 and "SET ASIDE: k-01 #1 (00000001.bundle): bundle 1 of kiosk 'k-01': bad signature" in out


def test_a_config_update_round_trips_through_kiosk_import(setup, tmp_path):
    k, key, stick, common = setup
    update = tmp_path / "update.toml"
    update.write_text('[kiosk]\noffice = "UBND Phường Hai"\n', encoding="utf-8")
    code, out = office(*common, "sign-config", update, "--to", stick)
    assert code == 0, out
    assert kiosk_main(["import", "--config", str(k.config), "--from", str(stick)]) == 0
    assert load_config(k.config).office == "UBND Phường Hai"       # layered from the kiosk's data folder
    assert tomllib.loads(k.config.read_text(encoding="utf-8"))["kiosk"]["office"] != "UBND Phường Hai"
    bad = tmp_path / "bad.toml"
    bad.write_text("[kiosk\n", encoding="utf-8")
    code, out = office(*common, "sign-config", bad, "--to", stick)
    assert code == 2 and "not valid TOML" in out


def test_a_deletion_at_the_office_reaches_every_kiosk(setup, db_url):
    k, key, stick, common = setup
    [cid] = enrol(k)
    k.issue(2, citizen=cid)
    assert kiosk_main(["export", "--config", str(k.config), "--to", str(stick)]) == 0
    assert office(*common, "ingest", stick)[0] == 0
    code, out = office(*common, "delete", cid, "--to", stick)
    assert code == 0 and "forgotten in the office database (3 row(s) changed" in out, out
    with Database.open(db_url) as db:
        assert db.query("SELECT COUNT(*) FROM visits WHERE citizen IS NOT NULL") == [(0,)]
        assert db.query("SELECT COUNT(*) FROM consents") == [(0,)]
    code, out = office(*common, "kiosks")
    assert out.splitlines()[1].endswith("0/1 behind")
    with Store.open_readonly(k.data) as s:
        assert s.citizen(cid) is not None
    assert kiosk_main(["import", "--config", str(k.config), "--from", str(stick)]) == 0
    with Store.open_readonly(k.data) as s:
        assert s.citizen(cid) is None
    # the kiosk's next bundle says it applied inbox file 1 and carries the deletion receipt
    assert kiosk_main(["export", "--config", str(k.config), "--to", str(stick)]) == 0
    assert office(*common, "ingest", stick)[0] == 0
    code, out = office(*common, "kiosks")
    assert out.splitlines()[1].endswith("1/1")
    code, out = office(*common, "delete", "not-an-id", "--to", stick)
    assert code == 2 and "not a citizen id" in out


def test_a_card_number_deleted_at_the_office_travels_as_its_card_key_only(setup, tmp_path):
    """`kiosk-office delete 001203001234 --secret FILE`: the kiosks get the HMAC of the number, never the number."""
    from kiosk.identity import CardBook

    k, key, stick, common = setup
    number = "001203001234"                                      # invented
    secret_file = tmp_path / "office-secret"
    secret_file.write_text("ab" * 32 + "\n")
    [cid] = enrol(k)                                             # the kiosk's data folder exists with a citizen
    book = CardBook.open(k.data, secret=("ab" * 32).encode())
    card = book.key(number)
    book._db.table("people").insert({"citizen": cid, "card": card, "fields": {"name": "Nguyễn Văn An"},
                                     "created_at": "2026-11-30T09:00:00", "last_seen": "2026-11-30T09:00:00"})
    book.close()
    code, out = office(*common, "delete", number, "--to", stick)
    assert code == 2 and "needs the office secret" in out
    code, out = office(*common, "delete", number, "--secret", secret_file, "--to", stick)
    assert code == 0, out
    [inbox_file] = (stick / B.SYNC_DIR / B.INBOX_DIR).iterdir()
    raw = inbox_file.read_bytes()
    assert number.encode() not in raw and card.encode() in raw
    with Store.open_readonly(k.data) as s:
        assert s.citizen(cid) is not None
    assert kiosk_main(["import", "--config", str(k.config), "--from", str(stick)]) == 0
    book = CardBook.open(k.data, secret=None, readonly=True)
    try:
        assert book.record(cid) is None
    finally:
        book.close()
    with Store.open_readonly(k.data) as s:
        assert s.citizen(cid) is None                            # found by its card: face and record went too
