"""Deletion requests from the office applied by the RUNNING kiosk (kiosk/deletions.py): the real ``kiosk import``
child hands them over, the loop thread forgets through the store, the card records and the face index."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from synckit import CONSENT, T0, Office, enrol, make_kiosk, run_import

from hardware.printer import SimulatedPrinter
from hardware.usb import FolderSticks, Stick, StickEvent
from kiosk.app import build_kiosk
from kiosk.config import load_config
from kiosk.identity import CardBook
from kiosk.loop import FakeClock
from kiosk.stickwatch import ChildCommand, StickWatch
from kiosk.store import Store
from kiosk.deletions import DeletionQueue, DeletionRequest, card_key, queue_dir, write_request

SECRET = b"an invented office secret, 32 b"
NUMBER = "001090000042"                        # invented


@pytest.fixture
def k(tmp_path):
    k = make_kiosk(tmp_path)
    secret_file = k.keys_dir / "office-secret"
    secret_file.write_bytes(SECRET)
    with open(k.config, "a", encoding="utf-8") as f:
        f.write(f'\n[identity]\nsecret_file = "{secret_file}"\n')
    return k


def card_holder(k, number=NUMBER) -> str:
    """A citizen with a card record and face templates, as a consenting card visit leaves them."""
    k.store().close()
    book = CardBook.open(k.data, secret=SECRET)
    try:
        citizen_id, _ = book.link(book.key(number), {"name": "Đỗ Văn Thử"}, now=T0)
    finally:
        book.close()
    with k.store() as s:
        s.enrol(np.random.default_rng(7).random((2, 128), dtype=np.float32), now=T0, consent_text=CONSENT,
                citizen_id=citizen_id)
    return citizen_id


def running(k, tmp_path, sticks=None):
    config = load_config(k.config)
    clock = FakeClock(T0)
    kiosk = build_kiosk(config, clock=clock, printer=SimulatedPrinter(tmp_path / "out", width_dots=576),
                        use_gpio=False, sync=True, sticks=sticks)
    return kiosk, clock


def import_child(k, stick):
    """The real `kiosk import` in a child process, as the hot-plug path starts it."""
    return subprocess.Popen([sys.executable, "-m", "kiosk", "import", "--from", str(stick), "--config", str(k.config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SDL_VIDEODRIVER": "dummy"})


def drive(kiosk, clock, child, clock_step=1.0, timeout=120.0):
    """Turn the kiosk's loop (the loop thread of a real kiosk) until the child is done; its stdout."""
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(child.communicate(timeout=timeout)[0]))
    reader.start()
    while reader.is_alive():
        clock.advance(clock_step)
        kiosk.loop.step()
        reader.join(0.05)
    return out[0]


def spool_of(kiosk) -> DeletionQueue:
    return next(c for c in kiosk.loop.chores if isinstance(c, DeletionQueue))


def inbox_state(k):
    return json.loads((k.data / "sync" / "inbox.json").read_text())


def test_the_running_kiosk_applies_a_deletion_from_a_stick_once(k, tmp_path):
    by_card = card_holder(k)
    by_id, kept = enrol(k, 2)
    stick = tmp_path / "stick"
    office = Office(k)
    office.signed(stick, "1.signed", {"kind": "delete", "sequence": 1, "citizens": [by_id], "cards": [NUMBER]})
    office.signed(stick, "2.signed", {"kind": "config", "sequence": 2, "toml": '[kiosk]\noffice = "Two"\n'})
    kiosk, clock = running(k, tmp_path)
    try:
        index = spool_of(kiosk).index
        assert by_card in index and by_id in index and kept in index
        child = import_child(k, stick)
        out = drive(kiosk, clock, child)
        assert child.returncode == 0, out
        assert "applied by the running kiosk" in out and "config" in out     # 2 came after 1, in the same import
        assert kiosk.store.citizen(by_card) is None and kiosk.store.citizen(by_id) is None
        assert kiosk.store.citizen(kept) is not None
        assert by_card not in index and by_id not in index and kept in index
        assert kiosk.book.record(by_card) is None
        assert sorted(r["citizen"] for r in kiosk.store.receipts()) == sorted([by_card, by_id])
        assert inbox_state(k)["sequence"] == 2 and len(inbox_state(k)["applied"]) == 2
        assert not list(queue_dir(k.data).iterdir())
        assert NUMBER not in "".join(p.read_text(errors="replace") for p in k.data.rglob("*") if p.is_file())
        before = (kiosk.store.receipts(), inbox_state(k))
        child = import_child(k, stick)                        # the same stick again: a replay
        out = drive(kiosk, clock, child)
        assert child.returncode == 0 and out.count("skipped:") == 2, out
        assert (kiosk.store.receipts(), inbox_state(k)) == before
        assert spool_of(kiosk).applied == 1
    finally:
        kiosk.close()


def test_a_request_left_by_a_crash_is_applied_at_start_and_again_changes_nothing(k, tmp_path):
    (cid,) = enrol(k)
    office_hex = k.office.public().sign.encode().hex()
    request = DeletionRequest(office_hex, 4, "ab" * 32, (cid,), (card_key(SECRET, NUMBER),))
    write_request(k.data, request)                # handed over, then the kiosk died before applying it
    kiosk, clock = running(k, tmp_path)
    try:
        kiosk.loop.step()
        assert kiosk.store.citizen(cid) is None and inbox_state(k)["sequence"] == 4
        receipts = kiosk.store.receipts()
        write_request(k.data, request)            # died after forgetting, before the spool file went
        clock.advance(2)
        kiosk.loop.step()
        assert kiosk.store.receipts() == receipts and inbox_state(k)["sequence"] == 4
        assert inbox_state(k)["applied"] == ["ab" * 32]
        assert not list(queue_dir(k.data).iterdir())
    finally:
        kiosk.close()


def test_deletion_by_card_number_with_the_service_stopped(k, tmp_path):
    cid = card_holder(k)
    stick = tmp_path / "stick"
    Office(k).signed(stick, "1.signed", {"kind": "delete", "sequence": 1, "cards": [NUMBER, "001090000043"]})
    result = run_import(k, stick, secret=SECRET)
    assert "1 citizen(s) forgotten here (0 id(s), 2 card(s) asked)" in result.applied[0]
    book = CardBook.open(k.data, secret=None, readonly=True)
    assert book.record(cid) is None
    book.close()
    with Store.open_readonly(k.data) as s:
        assert s.citizen(cid) is None
    Office(k).signed(stick, "2.signed", {"kind": "delete", "sequence": 2, "cards": ["12345"]})
    assert "12-digit" in run_import(k, stick, secret=SECRET).rejected[0]


def test_the_hot_plug_path_exports_then_has_the_running_kiosk_apply_the_deletion(k, tmp_path):
    """Through StickWatch, as `kiosk run` does it: export and import children, the loop applies the deletion."""
    (cid,) = enrol(k)
    stick = tmp_path / "sticks" / "s1"
    Office(k).signed(stick, "1.signed", {"kind": "delete", "sequence": 1, "citizens": [cid]})
    watch = StickWatch(FolderSticks(stick.parent, lambda e: None), ChildCommand.kiosk("--config", str(k.config)),
                       clock=FakeClock(T0))
    kiosk, clock = running(k, tmp_path, sticks=watch)
    try:
        watch.event(StickEvent("added", Stick(str(stick))))
        for _ in range(2400):
            if watch.wait_finished(1, 0.05):
                break
            clock.advance(1.0)
            kiosk.loop.step()                          # the loop thread: tickets, screen, and the office's chores
        banner = watch.poll()
        assert banner is not None and banner.stage == "done", banner
        assert kiosk.store.citizen(cid) is None and cid not in spool_of(kiosk).index
        assert inbox_state(k)["sequence"] == 1 and spool_of(kiosk).applied == 1
        assert list((stick / "kiosk-sync" / "k-01").glob("*.bundle"))       # the export ran first
    finally:
        kiosk.close()
