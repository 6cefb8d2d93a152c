"""Ratings outside the kiosk (issue 13): `kiosk ratings`, the bundle's ratings part, the office's table and report."""
import io
import json
from datetime import timedelta

from kiosk import bundle as B
from kiosk import cli_ratings, store_ratings
from kiosk.cli_ratings import print_ratings
from kiosk.office.db import Database
from kiosk.office.ingest import ingest
from kiosk.office.kiosks import add_kiosk
from kiosk.office.report import collect
from kiosk.office.report_page import write_report
from officekit import db_url, pg_server  # noqa: F401  (fixtures)
from synckit import T0, Office, make_kiosk

LATER = T0 + timedelta(hours=2)


def rated_kiosk(tmp_path):
    """Three visits (two civil status, one land), three of them rated, plus one anonymous rating."""
    k = make_kiosk(tmp_path / "kiosk")
    k.issue(1, citizen="c1")
    k.issue(1, citizen="c2", start=T0 + timedelta(minutes=1))
    k.issue(1, citizen="c3", start=T0 + timedelta(minutes=2), category=("dat-dai", "DD"))
    with k.store() as s:
        for citizen, rating in [("c1", "good"), ("c2", "bad"), ("c3", "good"), (None, "ok"), ("c1", "bad")]:
            s.rate(rating, citizen_id=citizen, now=LATER)
    return k


def test_kiosk_ratings_counts_by_service(tmp_path):
    k = rated_kiosk(tmp_path)
    out = io.StringIO()
    assert print_ratings(k.data, None, False, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["service", "good", "ok", "bad", "total", "satisfied"]
    assert lines[1].split() == ["dat-dai", "1", "0", "0", "1", "100", "%"]
    assert lines[2].split() == ["ho-tich", "1", "0", "1", "2", "50", "%"]
    assert lines[3].split() == ["(anonymous)", "0", "1", "0", "1", "0", "%"]
    assert lines[4].split() == ["total", "2", "1", "1", "4", "50", "%"]
    out = io.StringIO()
    print_ratings(k.data, None, True, out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows[-1] == {"service": None, "good": 0, "ok": 1, "bad": 0, "total": 1}
    assert cli_ratings.RATINGS == store_ratings.RATINGS


def test_kiosk_ratings_on_a_folder_without_kiosk_data_is_one_line(tmp_path, capsys):
    assert print_ratings(tmp_path, None, False, io.StringIO()) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_ratings_go_in_the_export_once(tmp_path):
    k = rated_kiosk(tmp_path)
    stick = tmp_path / "stick"
    stick.mkdir()
    office = Office(k)
    k.export(stick, now=LATER)
    registered = {k.kiosk_id: k.keys().kiosk.verify_key}
    first = B.read_bundle(stick / B.SYNC_DIR / k.kiosk_id / B.bundle_name(1), office_key=k.office,
                          kiosk_verify_keys=registered)
    assert sorted((r["category"] or "-", r["rating"]) for r in first.parts["ratings"]) == [
        ("-", "ok"), ("dat-dai", "good"), ("ho-tich", "bad"), ("ho-tich", "good")]
    assert first.manifest["counts"]["ratings"] == 4 and all("citizen" not in r for r in first.parts["ratings"])
    office.ingest(stick)
    office.ack(stick)
    with k.store() as s:
        s.rate("ok", citizen_id=None, now=LATER + timedelta(minutes=1))
    k.export(stick, now=LATER + timedelta(minutes=2))
    second = B.read_bundle(stick / B.SYNC_DIR / k.kiosk_id / B.bundle_name(2), office_key=k.office,
                           kiosk_verify_keys=registered)
    assert [r["rating"] for r in second.parts["ratings"]] == ["ok"]       # only the new one


def test_a_bundle_of_an_older_kiosk_without_a_ratings_part_still_opens(monkeypatch):
    from nacl.signing import SigningKey

    kiosk, office = SigningKey.generate(), B.OfficeKeys.generate()
    old_parts = tuple(p for p in B.PARTS if p != "ratings")
    with monkeypatch.context() as m:
        m.setattr(B, "PARTS", old_parts)          # made as a kiosk of before the ratings part
        data = B.make_bundle(kiosk_id="k-old", sequence=1, prev=None, created=T0.isoformat(), signing_key=kiosk,
                             office=office.public(), parts={})
    bundle = B.open_bundle(data, office_key=office, kiosk_verify_keys={"k-old": kiosk.verify_key},
                           max_bytes=B.MAX_BUNDLE_BYTES, max_part_bytes=B.MAX_PART_BYTES)
    assert "ratings" not in bundle.manifest["counts"]         # not in the file ...
    assert bundle.parts["ratings"] == [] and set(old_parts) < set(bundle.parts)    # ... read as empty


def test_the_office_counts_ratings_by_service_once(db_url, tmp_path):
    k = rated_kiosk(tmp_path)
    stick = tmp_path / "stick"
    (stick / B.SYNC_DIR).mkdir(parents=True)
    k.export(stick, now=LATER)
    with Database.open(db_url) as db:
        add_kiosk(db, k.kiosk_id, k.keys().kiosk.verify_key.encode().hex(), now=T0)
        ingest(stick, db=db, office=k.office, now=lambda: LATER)
        ingest(stick, db=db, office=k.office, now=lambda: LATER)          # read twice: counted once
        d = collect(db)
        assert db.integer("SELECT COUNT(*) FROM ratings") == 4
        page, _ = write_report(db, tmp_path / "report")
    assert d.ratings_by_service == [("dat-dai", 1, 0, 0, 1), ("ho-tich", 1, 0, 1, 2), ("(anonymous)", 0, 1, 0, 1)]
    assert (tmp_path / "report" / "ratings_per_service.csv").read_text(encoding="utf-8").splitlines()[1:] == [
        "dat-dai,1,0,0,1", "ho-tich,1,0,1,2", "(anonymous),0,1,0,1"]
    assert "Satisfaction by service" in page.read_text(encoding="utf-8")
