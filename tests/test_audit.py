"""The tamper-evident audit log (issue 10, item 5): `kiosk audit verify` names the first break."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from kiosk.__main__ import main
from kiosk.audit import AuditLog, verify
from kiosk.store import AUDIT_FILE, Store

T0 = datetime(2026, 11, 2, 8, 0)


@pytest.fixture
def logged(tmp_path):
    """A real store's audit log: opens, enrolments, a deletion (ten chained entries or so)."""
    data = tmp_path / "data"
    for day in range(3):
        now = T0 + timedelta(days=day)
        with Store.open(data, kiosk_id="k1", clock=lambda: now) as store:
            c = store.enrol(np.random.default_rng(day).random((2, 128), dtype=np.float32), now=now,
                            consent_text="yes")
            if day == 2:
                store.forget(c.id, now=now)
    path = data / AUDIT_FILE
    assert verify(path).ok and verify(path).chained >= 7
    return data, path


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_intact_log_verifies_and_the_command_says_so(logged, capsys):
    data, path = logged
    assert main(["audit", "verify", "--data", str(data)]) == 0
    assert "intact" in capsys.readouterr().out
    text = path.read_text()
    assert '"seq": 1' in text.replace('"seq":1', '"seq": 1') and "templates" in text


def test_one_changed_byte_is_found(logged, capsys):
    data, path = logged
    raw = bytearray(path.read_bytes())
    at = raw.index(b'"enrol"') + 2
    raw[at] ^= 0x20                                       # "enrol" -> "Enrol", checksum now fails
    path.write_bytes(bytes(raw))
    assert main(["audit", "verify", "--data", str(data)]) == 1
    assert "was changed" in capsys.readouterr().out


def test_an_edited_line_with_its_checksum_redone_is_found(logged):
    import json
    import zlib

    data, path = logged
    lines = _lines(path)
    rec = json.loads(lines[2][9:])
    rec["templates"] = 99
    body = json.dumps(rec, separators=(",", ":"), ensure_ascii=False).encode()
    lines[2] = b"%08x " % zlib.crc32(body) + body + b"\n"
    path.write_bytes(b"".join(lines))
    problem = verify(path).problem
    assert problem and "entry 3 was edited" in problem


def test_a_removed_line_is_found(logged):
    data, path = logged
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:3] + lines[4:]))
    assert "entry 4 was removed" in verify(path).problem


def test_two_swapped_lines_are_found(logged):
    data, path = logged
    lines = _lines(path)
    lines[3], lines[4] = lines[4], lines[3]
    path.write_bytes(b"".join(lines))
    assert "reordered (entry 5 where entry 4 belongs)" in verify(path).problem


def test_a_cut_tail_is_found(logged):
    data, path = logged
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:-2]))
    problem = verify(path).problem
    assert problem and "cut" in problem and f"{len(lines) - 1}-{len(lines)}" in problem


def test_a_broken_chain_is_on_the_staff_notice_at_the_next_start(logged):
    data, path = logged
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))
    with Store.open(data, kiosk_id="k1", clock=lambda: T0 + timedelta(days=5)) as store:
        assert any("audit log tampered" in p for p in store.problems)


def test_an_older_unchained_log_is_accepted_and_the_chain_starts_after_it(tmp_path):
    from kiosk.storage import RecordLog

    path = tmp_path / AUDIT_FILE
    old = RecordLog(path)
    old.append([{"event": "open"}, {"event": "enrol"}])
    old.close()
    log = AuditLog(path)
    log.append([{"event": "open"}])
    log.close()
    check = verify(path)
    assert check.ok and check.entries == 3 and check.chained == 1


def test_the_kiosk_checks_the_chain_after_ready_as_it_was_at_open(logged):
    """check_archives=False (kiosk run): opening skips the chain; check_audit() finds a break made before the
    open, and entries appended since (the open itself, a visit) are no part of what it checks."""
    data, path = logged
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:3] + lines[4:]))             # an entry removed before this start
    store = Store.open(data, kiosk_id="k1", clock=lambda: T0 + timedelta(days=5), check_archives=False)
    try:
        assert not any("audit" in p for p in store.problems)      # not read yet
        store.enrol(np.ones((1, 128), np.float32), now=T0 + timedelta(days=5), consent_text="yes")
        found = store.check_audit()
        assert len(found) == 1 and "removed" in found[0] and found[0] in store.problems
    finally:
        store.close()


def test_a_check_of_the_log_as_it_was_ignores_what_was_appended_since(logged):
    from kiosk.audit import state

    data, path = logged
    before = state(path)
    with Store.open(data, kiosk_id="k1", clock=lambda: T0 + timedelta(days=6)) as store:
        store.enrol(np.ones((1, 128), np.float32), now=T0 + timedelta(days=6), consent_text="yes")
    with open(path, "ab") as f:
        f.write(b"half a line, as a write in progress would leave")
    assert not verify(path).ok                                    # the whole file, as it is now
    check = verify(path, before)
    assert check.ok and check.entries == len(path.read_bytes()[:before.size].splitlines())
