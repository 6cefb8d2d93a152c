"""Privacy at rest (issue 10): sealed templates and card data, the key outside the data folder, a kiosk without
its key that still issues tickets and touches nothing, deletion that leaves no byte behind."""
from __future__ import annotations

import dataclasses
import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import SIMULATION_CONFIG, ConfigError, load_config, parse_config
from kiosk.datakey import CHECK_FILE, DataKey, KeySource, KeyUnavailable, key_from_board, load_key, make_key_file
from kiosk.identity import IDENTITY_FILE, CardBook
from kiosk.storage import RECORD_SIZE, HEADER
from kiosk.store import TEMPLATES_FILE, Store

NOW = datetime(2026, 12, 1, 9, 0)
NAME = "Nguyễn Văn Thử"      # invented
OTHER = "Trần Thị Khác"


def _faces(seed: int, k: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random((k, 128), dtype=np.float32)


def _folder_bytes(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _key(tmp_path: Path, name: str = "data.key") -> DataKey:
    path = tmp_path / "keys" / name
    make_key_file(path)
    return load_key(KeySource("file", path), tmp_path / "data")


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(b).hexdigest() for p, b in _folder_bytes(folder).items()}


def _store_with_people(data: Path, key: DataKey | None) -> tuple[str, str, np.ndarray, np.ndarray]:
    a, b = _faces(1), _faces(2)
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW, key=key) as store:
        ca = store.enrol(a, now=NOW, consent_text="yes", display_name=NAME).id
        cb = store.enrol(b, now=NOW, consent_text="yes", display_name=OTHER).id
    book = CardBook.open(data, secret=b"s" * 32, key=key)
    try:
        book._db.table("people").insert({"citizen": ca, "card": "ab" * 32, "fields": {"name": NAME},
                                         "created_at": NOW.isoformat(), "last_seen": NOW.isoformat()}) \
            if key is None else book.link("ab" * 32, {"name": NAME}, now=NOW)
    finally:
        book.close()
    return ca, cb, a, b


def _in_clear(folder: Path, needles: list[bytes]) -> list[str]:
    return [f"{p.name}: {n[:12]!r}" for p, data in _folder_bytes(folder).items() for n in needles if n in data]


# ----------------------------------------------------------------------------------------------------- the key
def test_key_file_is_made_0600_and_a_copy_of_the_data_carries_no_key(tmp_path):
    key = _key(tmp_path)
    path = tmp_path / "keys" / "data.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / CHECK_FILE).read_text().strip() == key.check
    assert path.read_text().split(":")[1].strip() not in "".join(p.read_text() for p in (tmp_path / "data").iterdir())
    path.chmod(0o644)
    with pytest.raises(KeyUnavailable, match="readable by others"):
        load_key(KeySource("file", path), tmp_path / "data")


def test_another_key_is_refused_before_any_record_is_read(tmp_path):
    _key(tmp_path)
    with pytest.raises(KeyUnavailable, match="not the one"):
        _key(tmp_path, "other.key")


def test_board_key_comes_from_the_firmware_hmac_and_another_board_is_refused(tmp_path):
    calls = []

    def board(mac: str):
        def run(argv, stdin):
            calls.append((argv[0], stdin))
            return mac.encode() + b"\n"
        return run

    which = lambda name: "/usr/bin/" + name if name == "rpi-fw-crypto" else None  # noqa: E731
    first = key_from_board(board("11" * 32), which)
    assert calls[0] == ("rpi-fw-crypto", b"queue-kiosk data key v1")
    assert key_from_board(board("11" * 32), which).check == first.check
    assert key_from_board(board("22" * 32), which).check != first.check
    load_key(KeySource("board"), tmp_path, run=board("11" * 32), which=which)
    with pytest.raises(KeyUnavailable):            # the SD card in another board
        load_key(KeySource("board"), tmp_path, run=board("22" * 32), which=which)


def test_an_unprogrammed_otp_key_gives_no_key():
    which = lambda name: "/usr/bin/" + name if name == "rpi-otp-private-key" else None  # noqa: E731
    with pytest.raises(KeyUnavailable, match="not programmed"):
        key_from_board(lambda argv, stdin: b"0" * 64 + b"\n", which)
    raw = key_from_board(lambda argv, stdin: b"ab" * 32 + b"\n", which)
    assert raw.check != DataKey(bytes.fromhex("ab" * 32)).check    # derived, never the raw OTP key


def test_config_refuses_a_key_file_inside_the_data_folder(tmp_path):
    config = load_config(SIMULATION_CONFIG)
    assert not Path(config.privacy.key_file).resolve().is_relative_to(config.data_dir.resolve())
    import tomllib

    raw = tomllib.loads(SIMULATION_CONFIG.read_text(encoding="utf-8"))
    raw["privacy"]["key_file"] = "kiosk-data/data.key"
    with pytest.raises(ConfigError, match="privacy.key_file: must be outside the data folder"):
        parse_config(raw)
    raw["privacy"]["key_source"] = "tpm"
    with pytest.raises(ConfigError, match="privacy.key_source"):
        parse_config(raw)


# -------------------------------------------------------------------------------------------- sealed at rest
def test_sealed_store_holds_no_template_no_name_and_reads_back(tmp_path):
    key = _key(tmp_path)
    data = tmp_path / "data"
    ca, cb, a, b = _store_with_people(data, key)
    leaks = _in_clear(data, [a[0].tobytes(), a[1].tobytes(), b[2].tobytes(), NAME.encode(), OTHER.encode()])
    assert leaks == []
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW, key=key) as store:
        ids, matrix = store.templates()
        assert np.array_equal(matrix, np.concatenate([a, b])) and ids == [ca] * 3 + [cb] * 3
        assert store.citizen(ca).display_name == NAME
    book = CardBook.open(data, secret=None, readonly=True, key=key)
    assert [r.name for r in book.records()] == [NAME]
    book.close()


def test_clear_data_of_an_older_kiosk_is_sealed_at_the_first_start_with_a_key(tmp_path):
    data = tmp_path / "data"
    ca, cb, a, b = _store_with_people(data, None)
    shutil.copy(data / TEMPLATES_FILE, data / f"{TEMPLATES_FILE}.corrupt-20261101T000000")
    shutil.copy(data / IDENTITY_FILE, data / f"{IDENTITY_FILE}.corrupt-20261101T000000")
    needles = [a[0].tobytes(), b[1].tobytes(), NAME.encode(), OTHER.encode()]
    assert len(_in_clear(data, needles)) >= 4                   # in clear before
    key = _key(tmp_path)
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW, key=key) as store:
        ids, matrix = store.templates()
        assert np.array_equal(matrix, np.concatenate([a, b]))
        assert store.citizen(ca).display_name == NAME
        assert any("sealed" in r for r in store.repairs)
    book = CardBook.open(data, secret=None, key=key)
    assert book.record(ca).name == NAME
    book.close()
    assert _in_clear(data, needles) == []
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW, key=key) as store:   # and it stays readable
        assert np.array_equal(store.templates()[1], np.concatenate([a, b]))


def test_a_changed_sealed_record_is_rejected_and_reported_not_a_crash(tmp_path):
    import zlib

    key = _key(tmp_path)
    data = tmp_path / "data"
    ca, cb, a, b = _store_with_people(data, key)
    path = data / TEMPLATES_FILE
    raw = bytearray(path.read_bytes())
    size = (len(raw) - len(HEADER)) // 6
    at = len(HEADER) + 4 * size                                  # cb's second template
    raw[at + 100] ^= 0x01
    raw[at + size - 4:at + size] = np.array([zlib.crc32(bytes(raw[at:at + size - 4]))], "<u4").tobytes()
    path.write_bytes(bytes(raw))
    (data / "templates.sum").unlink()
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW, key=key) as store:
        ids, matrix = store.templates()
        assert len(ids) == 5 and np.array_equal(matrix, np.concatenate([a, b[[0, 2]]]))
        assert any("do not open" in p for p in store.problems)


def test_a_kiosk_without_its_key_issues_tickets_says_so_and_touches_no_personal_file(tmp_path):
    from kiosk.app import build_kiosk
    from kiosk.loop import FakeClock
    from kiosk.visit import ButtonPressed

    config = load_config(SIMULATION_CONFIG)
    config = dataclasses.replace(
        config, data_dir=tmp_path / "data", printer=dataclasses.replace(config.printer, out_dir=str(tmp_path / "out")),
        identity=dataclasses.replace(config.identity, secret_file=str(tmp_path / "secret")),
        privacy=dataclasses.replace(config.privacy, key_file=str(tmp_path / "keys" / "data.key")))
    key = load_key(KeySource("file", Path(config.privacy.key_file), create=True), config.data_dir)
    _store_with_people(config.data_dir, key)
    # What a plain ticket and a start legitimately change; every other file must stay byte for byte.
    ticket_files = {"hot.jsonl", "numbers.bin", "kiosk.lock",          # the ticket; the lock holds the writer's pid
                    "audit.jsonl", "audit.head", "audit-config.sha256"}  # the start's audit entries
    before = _hashes(config.data_dir)
    personal = [TEMPLATES_FILE, "templates.sum", IDENTITY_FILE, "citizens"]
    assert len([k for k in before if k.split("/")[0] in personal]) >= 4
    assert len(before) >= 8
    # another key (the SD card in another kiosk), then no key at all
    for change in (lambda p: (p.unlink(), make_key_file(p)), lambda p: p.unlink()):
        change(Path(config.privacy.key_file))
        kiosk = build_kiosk(config, clock=FakeClock(), use_gpio=False, sync=True)
        try:
            kiosk.loop.step()
            assert "Face and card data off" in kiosk.loop.machine.view.notice     # staff see it on screen
            kiosk.loop.events.put(ButtonPressed("ho-tich"))
            for _ in range(5):
                kiosk.loop.step()
            assert any(v.category == "ho-tich" for v in kiosk.store.visits())
        finally:
            kiosk.close()
        after = _hashes(config.data_dir)
        assert set(after) <= set(before) | ticket_files                     # no file of data made
        assert {k: v for k, v in after.items() if k not in ticket_files} == \
            {k: v for k, v in before.items() if k not in ticket_files}
    audit = (config.data_dir / "audit.jsonl").read_text()
    assert audit.count('"event":"config"') == 1          # the config was audited at the first start, not again


# ------------------------------------------------------------------------------------------ deletion, for real
def test_forget_leaves_no_byte_of_the_citizen_in_any_file_even_set_aside_copies(tmp_path):
    """Clear format (the worst case: an older kiosk), so a grep for the template bytes means something."""
    data = tmp_path / "data"
    ca, cb, a, b = _store_with_people(data, None)
    tpl = data / TEMPLATES_FILE
    shutil.copy(tpl, data / f"{TEMPLATES_FILE}.corrupt-20261101T000000")
    orphans = data / f"{TEMPLATES_FILE}.orphans-20261101T000000"     # set aside beside a damaged citizens file
    shutil.copy(tpl, orphans)
    body = tpl.read_bytes()
    (data / f"{TEMPLATES_FILE}.torn-20261101T000000").write_bytes(body[len(HEADER):len(HEADER) + 300])
    shard = next(p for p in (data / "citizens").glob("*.jsonl") if ca.encode() in p.read_bytes())
    shutil.copy(shard, shard.with_name(shard.name + ".corrupt-20261101T000000"))
    shutil.copy(data / IDENTITY_FILE, data / f"{IDENTITY_FILE}.corrupt-20261101T000000")
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW) as store:
        store.touch(ca, NOW)                                     # an older journal line holding the record
        assert store.forget(ca, now=NOW) is True
        assert store.forget(ca, now=NOW) is False               # already forgotten
        ids, matrix = store.templates()
        assert set(ids) == {cb} and np.array_equal(matrix, b)
    book = CardBook.open(data, secret=None)
    assert book.forget(ca) is True
    book.close()
    gone = [a[i].tobytes() for i in range(3)] + [NAME.encode(), bytes.fromhex(ca)]
    assert _in_clear(data, gone) == []
    for p, raw in _folder_bytes(data).items():                   # the id only in the receipt and the audit log
        if ca.encode() in raw:
            assert p.name == "audit.jsonl" or p.parent.name == "citizens" and b'"receipts"' in raw, p
    assert _in_clear(data, [b[0].tobytes(), OTHER.encode()]) != []   # the other citizen is untouched
    assert not list(data.glob(f"{TEMPLATES_FILE}.torn-*"))          # a torn piece of theirs only: gone
    kept = orphans.read_bytes()                                      # the other citizen's rows stay in it
    assert all(row.tobytes() not in kept for row in a) and all(row.tobytes() in kept for row in b)


def test_forget_command_says_unknown_and_already_forgotten_and_exits_non_zero(tmp_path, capsys):
    from kiosk.cli_store import forget

    config = load_config(SIMULATION_CONFIG)
    config = dataclasses.replace(config, data_dir=tmp_path / "data",
                                 printer=dataclasses.replace(config.printer, out_dir=str(tmp_path / "out")),
                                 privacy=dataclasses.replace(config.privacy, key_file=str(tmp_path / "keys" / "data.key")))
    key = load_key(KeySource("file", Path(config.privacy.key_file), create=True), config.data_dir)
    ca, cb, a, b = _store_with_people(config.data_dir, key)
    assert forget(config, ca, print_receipt=False, now=NOW) == 0
    assert "deleted" in capsys.readouterr().out
    assert forget(config, ca, print_receipt=False, now=NOW) == 1
    assert "already forgotten" in capsys.readouterr().err
    assert forget(config, "ab" * 16, print_receipt=False) == 1
    assert "no citizen" in capsys.readouterr().err
    assert forget(config, "not-an-id", print_receipt=False) == 1
    with Store.open(config.data_dir, kiosk_id="k1", clock=lambda: NOW, key=key) as store:
        assert set(store.templates()[0]) == {cb}


def test_record_size_of_the_clear_format_is_unchanged():
    assert RECORD_SIZE == 533


def test_privacy_report_lists_classes_counts_retention_and_deletions_without_names(tmp_path, capsys):
    from kiosk.__main__ import main
    from kiosk.retention import purge, RetentionPolicy

    data = tmp_path / "data"
    ca, cb, a, b = _store_with_people(data, None)
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW) as store:
        store.forget(ca, now=NOW)
        store.issue_ticket("ho-tich", "HT", citizen_id=cb, now=NOW)
        purge(store, None, RetentionPolicy(), NOW)        # nothing due: no purge recorded
    args = ["privacy-report", "--config", str(SIMULATION_CONFIG), "--data", str(data)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "face templates (sensitive): 3" in text and "12 months after the last visit" in text
    assert "deletion receipts: 1" in text and "visits linked to a citizen: 1" in text
    assert "audit log: intact" in text and NAME not in text and OTHER not in text
    assert main(args + ["--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["deletions"]["count"] == 1 and len(report["consent_versions"]) == 1


def test_privacy_key_command_makes_the_key_once(tmp_path, capsys):
    from kiosk.cli_privacy import privacy_key

    config = load_config(SIMULATION_CONFIG)
    config = dataclasses.replace(config, data_dir=tmp_path / "data",
                                 privacy=dataclasses.replace(config.privacy, key_file=str(tmp_path / "k" / "data.key")))
    assert privacy_key(config) == 0 and "made" in capsys.readouterr().out
    assert privacy_key(config) == 0 and "already there" in capsys.readouterr().out
    assert (tmp_path / "k" / "data.key").stat().st_mode & 0o777 == 0o600


def test_a_torn_piece_of_a_sealed_file_is_left_as_it_is_at_later_starts(tmp_path):
    key = _key(tmp_path)
    data = tmp_path / "data"
    _store_with_people(data, key)
    piece = data / f"{TEMPLATES_FILE}.torn-20261201T000000"
    piece.write_bytes((data / TEMPLATES_FILE).read_bytes()[16:16 + 300])
    before = piece.read_bytes()
    for _ in range(2):
        Store.open(data, kiosk_id="k1", clock=lambda: NOW, key=key).close()
    assert piece.read_bytes() == before


def test_privacy_benchmark_runs_end_to_end_small(tmp_path):
    """benchmarks/privacy.py at a small size: sealed start-up against the clear baseline, a purge, a ticket."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "privacy.py"), "--citizens", "2000",
                           "--purge", "200", "--runs", "1"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "a clear template in the sealed file: no" in out and "x the baseline" in out
    assert "retention purge of 200 citizens" in out and "5,400 left" in out


def _kiosk_config_with_people(tmp_path: Path):
    """The simulation's config in ``tmp_path`` (sealed data, key file, printer folder), two enrolled citizens and
    the first one's face templates."""
    config = load_config(SIMULATION_CONFIG)
    config = dataclasses.replace(
        config, data_dir=tmp_path / "data", printer=dataclasses.replace(config.printer, out_dir=str(tmp_path / "out")),
        identity=dataclasses.replace(config.identity, secret_file=str(tmp_path / "secret")),
        privacy=dataclasses.replace(config.privacy, key_file=str(tmp_path / "keys" / "data.key")))
    key = load_key(KeySource("file", Path(config.privacy.key_file), create=True), config.data_dir)
    ca, cb, a, _ = _store_with_people(config.data_dir, key)
    return config, ca, cb, a


def test_forget_while_the_kiosk_runs_is_queued_and_done_by_the_kiosk_when_the_screen_is_free(tmp_path, capsys):
    from kiosk.app import build_kiosk
    from kiosk.cli_store import forget
    from kiosk.loop import FakeClock
    from kiosk.visit import ButtonPressed

    config, ca, cb, a = _kiosk_config_with_people(tmp_path)
    clock = FakeClock()
    kiosk = build_kiosk(config, clock=clock, use_gpio=False, sync=True)
    try:
        assert forget(config, ca, print_receipt=False, now=NOW, wait=0) == 0  # the lock is held: queued
        assert "queued" in capsys.readouterr().out
        assert forget(config, "ab" * 16, print_receipt=False, now=NOW) == 1   # unknown: said at once
        kiosk.loop.events.put(ButtonPressed("ho-tich"))                       # a citizen at the screen: not now
        kiosk.loop.step()
        assert kiosk.store.citizen(ca) is not None
        for _ in range(10):                                                   # the ticket screen times out
            clock.advance(config.timing.done_seconds)
            kiosk.loop.step()
        assert kiosk.store.citizen(ca) is None and kiosk.store.citizen(cb) is not None
        assert list((tmp_path / "out").glob(f"deleted-{ca}*.png"))              # the receipt, printed by the kiosk
        assert not list((config.data_dir / "deletions").iterdir())
    finally:
        kiosk.close()
    assert _in_clear(config.data_dir, [a[0].tobytes()]) == []
    assert forget(config, ca, print_receipt=False, now=NOW) == 1
    assert "already forgotten" in capsys.readouterr().err


def test_an_office_deletion_beside_the_running_kiosk_is_handed_to_it_card_record_included(tmp_path):
    from kiosk.deletions import DeletionRequest
    from kiosk.syncinbox import ApplyError, StoreForgetter

    data = tmp_path / "data"
    ca, cb, a, b = _store_with_people(data, None)
    running = Store.open(data, kiosk_id="k1", clock=lambda: NOW)          # the kiosk holds the lock
    try:
        forgetter = StoreForgetter(data, kiosk_id="k1", day_start_hour=0, now=NOW, wait=0.1)
        with pytest.raises(ApplyError, match="handed to the running kiosk"):   # it applies it when idle
            forgetter.delete(DeletionRequest("office", 1, "0" * 64, (ca,), ()))
        forgetter.close()
        assert [p.name for p in (data / "deletions").iterdir()] == ["office-00000001.json"]
    finally:
        running.close()
    forgetter = StoreForgetter(data, kiosk_id="k1", day_start_hour=0, now=NOW)   # from a shell, kiosk stopped
    assert "2 citizen(s) forgotten" in forgetter.delete(DeletionRequest("office", 2, "1" * 64, (ca, cb), ()))
    forgetter.close()
    assert CardBook.open(data, secret=None, readonly=True).record(ca) is None      # the card record went too
    with Store.open(data, kiosk_id="k1", clock=lambda: NOW) as store:
        assert store.citizen(ca) is None and store.citizen(cb) is None


def test_forget_beside_an_idle_kiosk_waits_and_says_the_deletion_is_done(tmp_path, capsys):
    import threading
    import time

    from kiosk.app import build_kiosk
    from kiosk.cli_store import forget
    from kiosk.loop import FakeClock
    from kiosk.deletions import pending_forgets

    config, ca, cb, a = _kiosk_config_with_people(tmp_path)
    clock = FakeClock()
    kiosk = build_kiosk(config, clock=clock, use_gpio=False, sync=True)
    stop = threading.Event()

    def the_kiosk():                     # the service's loop thread, idle: it looks for requests once a second
        while not stop.is_set():
            clock.advance(0.5)
            kiosk.loop.step()
            time.sleep(0.02)

    loop = threading.Thread(target=the_kiosk)
    loop.start()
    try:
        assert forget(config, ca, print_receipt=False, now=NOW, wait=20) == 0
    finally:
        stop.set()
        loop.join()
    try:
        assert "deleted by the running kiosk" in capsys.readouterr().out
        assert pending_forgets(config.data_dir) == [] and kiosk.store.citizen(ca) is None
        assert list((tmp_path / "out").glob(f"deleted-{ca}*.png"))
    finally:
        kiosk.close()
