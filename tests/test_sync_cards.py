"""The bundle's cards part (kiosk/synccards.py): what the office learns of the card records, and when."""
from datetime import timedelta

from kiosk import bundle as B
from kiosk.identity import CardBook
from kiosk.sync import load_state
from tests.synckit import T0, k, stick  # noqa: F401  (fixtures)

SECRET = b"an invented office secret, 32 b"
KEEP = ("name", "birth_date", "sex")      # [identity] keep of this office: no address
FIELDS = {"name": "Lê Văn Thử", "birth_date": "1985-02-03", "sex": "Nam", "address": "Số 1 Đường Giả"}


def cards_of(k, stick) -> list[list[dict]]:
    """The cards part of every bundle on the stick, bundle by bundle (the office's view)."""
    registered = {k.kiosk_id: k.keys().kiosk.verify_key}
    return [B.read_bundle(p, office_key=k.office, kiosk_verify_keys=registered).parts["cards"]
            for p in sorted((stick / B.SYNC_DIR / k.kiosk_id).glob("*.bundle"))]


def link(k, number: str, fields=FIELDS, now=T0) -> tuple[str, str]:
    k.store().close()                        # a kiosk has its store before any card
    book = CardBook.open(k.data, secret=SECRET)
    try:
        key = book.key(number)
        return book.link(key, fields, now=now)[0], key
    finally:
        book.close()


def test_card_records_go_out_once_changes_again_and_deletions_as_tombstones(k, stick):
    one, key1 = link(k, "001085000001")
    two, key2 = link(k, "001085000002", {**FIELDS, "name": "Phạm Thị Giả"})
    first = k.export(stick, card_fields=KEEP)
    assert first.counts["cards"] == 2
    (part,) = cards_of(k, stick)
    assert {r["citizen"]: r["card"] for r in part} == {one: key1, two: key2}
    rec = next(r for r in part if r["citizen"] == one)
    assert rec["fields"] == {"name": "Lê Văn Thử", "birth_date": "1985-02-03", "sex": "Nam"}   # no address
    assert rec["created_at"] == rec["last_seen"] == T0.isoformat()
    raw = (stick / B.SYNC_DIR / k.kiosk_id / "00000001.bundle").read_bytes()
    for secret in ["Lê Văn Thử", "Thử", "1985-02-03", key1[:16], one, "001085000001"]:
        assert secret.encode() not in raw and secret.encode("utf-16-le") not in raw

    assert k.export(stick, card_fields=KEEP).new_sequence is None        # nothing changed: no bundle
    later = T0 + timedelta(days=1)
    assert link(k, "001085000001", now=later)[0] == one                      # seen again: last_seen moves
    second = k.export(stick, now=later, card_fields=KEEP)
    assert second.counts["cards"] == 1
    assert [[r["citizen"] for r in p] for p in cards_of(k, stick)][1] == [one]
    assert cards_of(k, stick)[1][0]["last_seen"] == later.isoformat()

    book = CardBook.open(k.data, secret=None)
    assert book.forget(two)
    book.close()
    third = k.export(stick, now=later, card_fields=KEEP)
    assert third.counts["cards"] == 1
    assert cards_of(k, stick)[2] == [{"citizen": two, "card": key2, "deleted": True}]
    assert set(load_state(k.data, k.office.public()).cards) == {one}
    assert k.export(stick, now=later, card_fields=KEEP).new_sequence is None   # the tombstone went once


def test_without_card_fields_given_every_kept_field_goes(k, stick):
    one, _ = link(k, "001085000003")
    k.export(stick)
    assert cards_of(k, stick)[0][0]["fields"] == FIELDS and cards_of(k, stick)[0][0]["citizen"] == one


def test_a_kiosk_without_card_records_sends_an_empty_part(k, stick):
    k.issue(1)
    result = k.export(stick)
    assert result.counts["cards"] == 0 and cards_of(k, stick) == [[]]
    assert not (k.data / "identity.jsonl").exists()                          # an export writes no kiosk data


def test_the_cards_benchmark_runs_end_to_end():
    """benchmarks/export_cards.py on a small store (its full-size numbers come from running it by hand)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "export_cards.py"), "--cards", "300",
                           "--visits", "500", "--citizens", "50", "--returning", "7"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "with 300 card records" in done.stdout and "7 card records sent" in done.stdout
