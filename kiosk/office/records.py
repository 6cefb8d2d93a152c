"""Writing one decrypted bundle into the office database, and forgetting a citizen there.

Called inside the transaction of :func:`kiosk.office.ingest.ingest`: a bundle is in the database whole or not
at all. Every insert goes against a UNIQUE key, so a record sent twice (a visit whose printer answer came
later, an audit log sent whole again after the kiosk set it aside) is stored once.
"""
from __future__ import annotations

from typing import Any, Iterable

from kiosk.bundle import Bundle, canonical_json, sha256_hex
from kiosk.office.db import Database

BATCH = 20000
VISIT_COLUMNS = ("kiosk_id", "visit_id", "ticket", "number", "category", "issued_at", "service_day", "citizen",
                 "printed", "identified_by", "bundle_sequence")


def _printed(value: Any) -> int | None:
    return None if value is None else int(bool(value))


def write_bundle(db: Database, bundle: Bundle, *, ingested_at: str, size: int) -> int:
    """Insert every part of ``bundle``; the number of visit rows added or changed."""
    h, kiosk = bundle.header, bundle.header.kiosk
    db.execute("INSERT INTO bundles (kiosk_id, sequence, sha256, prev, created, ingested_at, bytes, visits) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (kiosk, h.sequence, h.sha256, h.prev, h.created, ingested_at, size, len(bundle.visits)))
    changed = 0
    visits = bundle.visits
    gone = _forgotten(db, {v["citizen"] for v in visits if v.get("citizen")} |
                      {str(c["citizen"]) for c in bundle.parts["cards"] if c.get("citizen")})
    for start in range(0, len(visits), BATCH):
        changed += db.upsert(
            "visits", VISIT_COLUMNS, ("kiosk_id", "visit_id"),
            ((kiosk, str(v["id"]), str(v["ticket"]), int(v["number"]), str(v["category"]), str(v["time"]),
              str(v["service_day"]), None if v.get("citizen") in gone else v.get("citizen"),
              _printed(v.get("printed")), v.get("identified_by"), h.sequence) for v in visits[start:start + BATCH]),
            "DO UPDATE SET printed = excluded.printed, bundle_sequence = excluded.bundle_sequence")
    db.executemany("INSERT INTO consents (kiosk_id, consent_id, citizen, at, text_version, text) "
                   "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kiosk_id, consent_id) DO NOTHING",
                   ((kiosk, str(c["consent_id"]), c.get("citizen"), c.get("at"), c.get("text_version"),
                     c.get("text")) for c in bundle.parts["consents"]))
    db.executemany("INSERT INTO audit (kiosk_id, sha256, at, event, record) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT (kiosk_id, sha256) DO NOTHING",
                   _audit_rows(kiosk, bundle.parts["audit"]))
    db.executemany("INSERT INTO counters (kiosk_id, day, category, last) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (kiosk_id, day, category) DO UPDATE SET last = "
                   "CASE WHEN excluded.last > counters.last THEN excluded.last ELSE counters.last END",
                   ((kiosk, str(c["day"]), str(c["category"]), int(c["last"]))
                    for c in bundle.parts["counters"] if "category" in c))
    _write_cards(db, kiosk, bundle.parts["cards"], gone)
    db.executemany("INSERT INTO ratings (kiosk_id, rating_id, rating, at, service_day, visit_id, category) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kiosk_id, rating_id) DO NOTHING",
                   ((kiosk, str(r["id"]), _rating(r["rating"]), str(r["at"]), str(r["service_day"]), r.get("visit"),
                     r.get("category")) for r in bundle.parts.get("ratings", ())))
    tombstones = bundle.parts["tombstones"]
    db.executemany("INSERT INTO tombstones (kiosk_id, citizen, at, consent_id, templates_deleted) "
                   "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kiosk_id, citizen) DO NOTHING",
                   ((kiosk, str(t["citizen"]), t.get("at"), t.get("consent_id"), t.get("templates_deleted"))
                    for t in tombstones))
    forget(db, [str(t["citizen"]) for t in tombstones], at=ingested_at, source=f"kiosk {kiosk}")
    db.execute("UPDATE kiosks SET last_sequence = ?, last_hash = ?, last_created = ?, last_ingested = ?, "
               "inbox_sequence = ? WHERE kiosk_id = ?",
               (h.sequence, h.sha256, h.created, ingested_at, int(bundle.manifest.get("inbox_sequence") or 0),
                kiosk))
    return changed


def _rating(value: object) -> str:
    """A rating as the kiosks send it; anything else makes the bundle malformed (nothing of it stored)."""
    if value not in ("good", "ok", "bad"):
        raise ValueError(f"rating {str(value)[:20]!r} is not good, ok or bad")
    return str(value)


def _write_cards(db: Database, kiosk: str, records: list[dict], gone: set[str]) -> None:
    """One row per citizen, the latest record (by ``last_seen``; a tie goes to the bundle read last); a record
    marked ``deleted`` removes the row; a forgotten citizen's record is never stored again."""
    for rec in records:
        citizen = str(rec["citizen"])
        if rec.get("deleted"):
            db.execute("DELETE FROM cards WHERE citizen = ?", (citizen,))
        elif citizen not in gone:
            db.execute("INSERT INTO cards (citizen, card, kiosk_id, last_seen, record) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (citizen) DO UPDATE SET card = excluded.card, kiosk_id = excluded.kiosk_id, "
                       "last_seen = excluded.last_seen, record = excluded.record "
                       "WHERE cards.last_seen IS NULL OR excluded.last_seen >= cards.last_seen",
                       (citizen, str(rec["card"]), kiosk, rec.get("last_seen"), canonical_json(rec).decode()))


def _forgotten(db: Database, citizens: set[str]) -> set[str]:
    """Which of ``citizens`` were forgotten earlier (here or at another kiosk): late visits arrive without them."""
    found: set[str] = set()
    ids = sorted(citizens)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        found |= {str(r[0]) for r in db.query(f"SELECT citizen FROM forgotten WHERE citizen IN ({marks})", chunk)}
    return found


def _audit_rows(kiosk: str, records: Iterable[Any]) -> Iterable[tuple]:
    for rec in records:
        raw = canonical_json(rec)
        at = rec.get("at") if isinstance(rec, dict) else None
        event = rec.get("event") if isinstance(rec, dict) else None
        yield kiosk, sha256_hex(raw), at, event, raw.decode()


def forget(db: Database, citizens: list[str], *, at: str, source: str) -> int:
    """Delete what the office holds of each citizen: visits stay (counted) without the citizen id; consents and
    card records go. The id is kept in ``forgotten`` only so late visits are stripped too. Rows changed."""
    changed = 0
    for citizen in citizens:
        db.execute("INSERT INTO forgotten (citizen, at, source) VALUES (?, ?, ?) ON CONFLICT (citizen) DO NOTHING",
                   (citizen, at, source))
        changed += db.execute("UPDATE visits SET citizen = NULL WHERE citizen = ?", (citizen,))
        changed += db.execute("UPDATE counter SET citizen = NULL WHERE citizen = ?", (citizen,))
        changed += db.execute("DELETE FROM consents WHERE citizen = ?", (citizen,))
        changed += db.execute("DELETE FROM cards WHERE citizen = ?", (citizen,))
    return changed
