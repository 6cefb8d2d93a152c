"""The counter (kiosk-office counter, issue 18): a scanned code shows the ticket and the citizen, called and served
are stamped once, and every refusal says why; over SQLite and a real PostgreSQL."""
import subprocess
import sys
from datetime import datetime

import pytest

from counterkit import NOW, TOKEN, office_db, post, served
from kiosk.office.counter import Counter
from kiosk.office.db import Database
from kiosk.office.records import forget
from kiosk.ticketcode import TicketCodeError
from officekit import db_url, pg_server  # noqa: F401  (fixtures)
from test_ticketcode import FIELDS, KIOSK, LINKED, OFFICE, OTHER_OFFICE, UNLINKED, _code

CITIZEN = LINKED.citizen_id
EARLIER = [("kiosk-01", "1111aaaa2222bbbb", "HT-004", "ho-tich", "2026-10-02T08:15:00", CITIZEN),
           ("kiosk-02", "3333cccc4444dddd", "DD-011", "dat-dai", "2026-11-03T10:40:00", CITIZEN),
           ("kiosk-01", "5555eeee6666ffff", "HT-009", "ho-tich", "2026-11-05T09:00:00", "cd" * 16)]


def _reason(call):
    with pytest.raises(TicketCodeError) as err:
        call()
    return err.value.reason


def test_scan_shows_the_citizen_and_history_and_stamps_called_then_served(db_url):
    office_db(db_url, visits=EARLIER)
    clock = iter([datetime(2026, 11, 27, 14, 10), datetime(2026, 11, 27, 14, 25), datetime(2026, 11, 27, 14, 40),
                  datetime(2026, 11, 27, 14, 41), datetime(2026, 11, 27, 14, 50), datetime(2026, 11, 27, 15, 0)])
    with Database.open(db_url) as db:
        counter = Counter(db, OFFICE, now=lambda: next(clock))
        desk = counter.scan(_code())
        assert dict(desk.facts.fields) == FIELDS and desk.called_at is None and desk.served_at is None
        assert [(h.ticket, h.kiosk_id) for h in desk.history] == [("DD-011", "kiosk-02"), ("HT-004", "kiosk-01")]
        assert counter.mark(_code(), "called").called_at == "2026-11-27T14:25:00"
        assert counter.mark(_code(), "called").called_at == "2026-11-27T14:25:00"   # the first press stays
        assert counter.mark(_code(), "served").served_at == "2026-11-27T14:41:00"
        assert _reason(lambda: counter.scan(_code())) == "served"
        assert db.query("SELECT ticket, category, service_name, issued_at, citizen FROM counter") == [
            ("KD-027", "kinh-doanh", "Đăng ký kinh doanh", "2026-11-27T14:05:09", CITIZEN)]
        # nothing personal but the citizen id is written: no name, no card number
        dump = repr([db.query(f"SELECT * FROM {t}") for t in ("counter", "visits", "kiosks")])
        assert FIELDS["name"] not in dump and FIELDS["card_number"] not in dump
        plain = counter.scan(_code(UNLINKED))
        assert plain.facts.citizen_id is None and plain.history == []
        # a later visit of the same citizen lists this one, served
        later = counter.history(CITIZEN, ("kiosk-01", "ffffffffffffffff"))
        assert (later[0].ticket, later[0].service, later[0].served_at) == ("KD-027", "Đăng ký kinh doanh",
                                                                           "2026-11-27T14:41:00")
        forget(db, [CITIZEN], at="2026-11-28T00:00:00", source="test")
        assert db.query("SELECT citizen FROM counter WHERE ticket = 'KD-027'") == [(None,)]


def test_refusals_say_why(db_url):
    office_db(db_url)
    with Database.open(db_url) as db:
        counter = Counter(db, OFFICE, now=lambda: NOW)
        assert _reason(lambda: counter.scan(_code(office=OTHER_OFFICE))) == "other-office"
        assert _reason(lambda: counter.scan("1234567890")) == "not-a-code"
        code = _code()
        broken = code[:40] + ("A" if code[40] != "A" else "B") + code[41:]
        assert _reason(lambda: counter.scan(broken)) == "damaged"
        db.execute("DELETE FROM kiosks")
        assert _reason(lambda: counter.scan(code)) == "unknown-kiosk"
        assert db.integer("SELECT COUNT(*) FROM counter") == 0        # a refused code records nothing


def test_the_page_over_http_answers_refuses_and_checks_its_token(tmp_path):
    url = office_db(str(tmp_path / "office.db"), visits=EARLIER)
    with served(url) as base:
        status, body = post(base, "/scan", code=_code())
        assert status == 200 and "Nguyễn Văn An" in body and "001095001234" in body and "01/02/1995" in body
        assert "DD-011" in body and "autofocus" in body and "<script" not in body
        status, body = post(base, "/mark", code=_code(), action="served")
        assert status == 200 and 'id="served-at" class="done">09:42 27/11/2026' in body
        status, body = post(base, "/scan", code=_code())
        assert "đã được phục vụ" in body and "already served" in body and "Nguyễn" not in body
        status, body = post(base, "/scan", code=_code(office=OTHER_OFFICE))
        assert "văn phòng khác" in body and "another office" in body
        status, body = post(base, "/scan", code=_code().replace("A", "Ă", 1))
        assert "Unikey" in body
        status, _ = post(base, "/mark", code=_code(), action="served", token="forged")
        assert status == 403
        status, _ = post(base, "/scan", code=_code(), headers={"Host": "attacker.example:8780"})
        assert status == 403                                  # a rebound name: nothing answered


def test_the_counter_side_pulls_no_device_library():
    code = ("import sys, kiosk.office.counter_page, kiosk.office.counter, kiosk.ticketcode; "
            "print(sorted({'pygame', 'gpiozero', 'picamera2', 'escpos', 'tinydb', 'face_recognition', 'dlib', "
            "'cv2'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_counter_command_line_refuses_a_busy_port(tmp_path, monkeypatch):
    import io
    import socket

    from kiosk.office.cli import run
    from kiosk.office.keys import PASSPHRASE_ENV, write_keys

    monkeypatch.setenv(PASSPHRASE_ENV, "a passphrase")
    write_keys(tmp_path / "office.key", OFFICE, "a passphrase")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        out = io.StringIO()
        code = run(["--key", str(tmp_path / "office.key"), "--db", str(tmp_path / "o.db"), "counter",
                    "--port", str(busy.getsockname()[1])], out)
    assert code == 2 and out.getvalue().startswith("kiosk-office counter: cannot listen on 127.0.0.1:")
    assert TOKEN and KIOSK  # (shared fixtures imported for the other tests)
