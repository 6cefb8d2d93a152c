"""Shared by the counter tests: an office database with the kiosk registered, and the page served on loopback."""
import contextlib
import threading
import urllib.parse
import urllib.request
from datetime import datetime

from nacl.signing import SigningKey

from kiosk.office.counter_page import CounterServer
from kiosk.office.db import Database
from kiosk.office.kiosks import add_kiosk
from test_ticketcode import KIOSK, OFFICE

TOKEN = "test-token"
NOW = datetime(2026, 11, 27, 9, 42)


def office_db(url, *, visits=()):
    """Register kiosk-01 and add earlier visits (kiosk id, visit id, ticket, category, issued, citizen)."""
    with Database.open(url) as db:
        add_kiosk(db, "kiosk-01", KIOSK.verify_key.encode().hex(), now=NOW)
        add_kiosk(db, "kiosk-02", SigningKey(bytes([7] * 32)).verify_key.encode().hex(), now=NOW)
        for kiosk, visit, ticket, category, issued, citizen in visits:
            db.execute("INSERT INTO visits (kiosk_id, visit_id, ticket, number, category, issued_at, service_day, "
                       "citizen, bundle_sequence) VALUES (?, ?, ?, 1, ?, ?, ?, ?, 1)",
                       (kiosk, visit, ticket, category, issued, issued[:10], citizen))
    return url


@contextlib.contextmanager
def served(url, *, now=lambda: NOW):
    """The counter page on 127.0.0.1 (a free port) for as long as the block runs, as `kiosk-office counter`
    serves it: its base URL."""
    page = CounterServer(("127.0.0.1", 0), url, OFFICE, token=TOKEN, now=now)
    thread = threading.Thread(target=page.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{page.server_port}"
    finally:
        page.shutdown()
        thread.join(30)
        page.server_close()


def post(base, path, headers=None, **form):
    """POST a form; (status, body text)."""
    data = urllib.parse.urlencode({"token": TOKEN, **form}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers or {}),
                                    timeout=30) as answer:
            assert answer.headers["Cache-Control"] == "no-store"
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
