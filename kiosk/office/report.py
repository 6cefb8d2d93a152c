"""What the office report shows, read from the database (``kiosk-office report``); drawing is report_page.py.

Everything is counted in SQL (GROUP BY over the ``service_day`` index), so a year of ten kiosks is a few
queries, never millions of rows in Python. A figure the kiosks do not export is reported as missing, never
guessed: today's visits say nothing about HOW a citizen was identified (card or face), only whether the visit
is linked to a citizen.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from kiosk.office.db import Database
from kiosk.office.waits import ServiceTimes, day_range, service_times


@dataclass
class ExportDelay:
    kiosk: str
    bundles: int
    mean_hours: float
    max_hours: float
    last_bundle: str | None


@dataclass
class ReportData:
    since: date | None
    until: date | None
    per_day: list[tuple[str, str, int]]            # service day, category, tickets
    per_hour: list[tuple[int, str, int]]           # hour of the day, category, tickets
    per_kiosk: list[tuple[str, int]]
    total: int
    linked: int                                    # visits linked to a citizen
    citizens: int                                  # distinct citizens in the period
    returning: int                                 # of those, citizens with two visits or more
    identified_by: dict[str, int]                  # "card" / "face" / … -> visits; empty when not exported
    printer: list[tuple[str, int, int, int]]       # day, tickets, printer failed, printer answer unknown
    delays: list[ExportDelay]
    notes: list[str] = field(default_factory=list)
    ratings: list[tuple[str | None, str, int]] = field(default_factory=list)   # service (None: anonymous), rating, n
    times: list[ServiceTimes] = field(default_factory=list)   # waiting and service times (the counter page)

    @property
    def categories(self) -> list[str]:
        return sorted({c for _, c, _ in self.per_day})

    @property
    def returning_share(self) -> float | None:
        return self.returning / self.citizens if self.citizens else None

    @property
    def linked_share(self) -> float | None:
        return self.linked / self.total if self.total else None

    @property
    def ratings_by_service(self) -> list[tuple[str, int, int, int, int]]:
        """(service, good, ok, bad, total) per service, anonymous ratings last as "(anonymous)"."""
        per: dict[str | None, dict[str, int]] = {}
        for service, rating, n in self.ratings:
            per.setdefault(service, {"good": 0, "ok": 0, "bad": 0})[rating] = n
        order = sorted(per, key=lambda c: (c is None, c or ""))
        return [(c or "(anonymous)", per[c]["good"], per[c]["ok"], per[c]["bad"], sum(per[c].values()))
                for c in order]

    @property
    def printer_failed(self) -> int:
        return sum(f for _, _, f, _ in self.printer)


def collect(db: Database, *, since: date | None = None, until: date | None = None) -> ReportData:
    """Read every figure of the report for service days ``since``..``until`` (both included)."""
    where, p = day_range(since, until, "service_day")
    and_ = " AND " if where else " WHERE "
    per_day = [(str(d), str(c), int(n)) for d, c, n in db.query(
        f"SELECT service_day, category, COUNT(*) FROM visits{where} GROUP BY service_day, category "
        f"ORDER BY service_day, category", p)]
    per_hour = [(int(h), str(c), int(n)) for h, c, n in db.query(
        f"SELECT substr(issued_at, 12, 2), category, COUNT(*) FROM visits{where} "
        f"GROUP BY substr(issued_at, 12, 2), category ORDER BY 1, 2", p)]
    per_kiosk = [(str(k), int(n)) for k, n in db.query(
        f"SELECT kiosk_id, COUNT(*) FROM visits{where} GROUP BY kiosk_id ORDER BY kiosk_id", p)]
    total = sum(n for _, n in per_kiosk)
    citizens, returning = db.query(
        f"SELECT COUNT(*), SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END) FROM (SELECT citizen, COUNT(*) AS n FROM visits"
        f"{where}{and_}citizen IS NOT NULL GROUP BY citizen) AS per_citizen", p)[0]
    linked = db.integer(f"SELECT COUNT(*) FROM visits{where}{and_}citizen IS NOT NULL", p)
    ident = {str(k): int(n) for k, n in db.query(
        f"SELECT identified_by, COUNT(*) FROM visits{where}{and_}identified_by IS NOT NULL "
        f"GROUP BY identified_by", p)}
    printer = [(str(d), int(n), int(f or 0), int(u or 0)) for d, n, f, u in db.query(
        f"SELECT service_day, COUNT(*), SUM(CASE WHEN printed = 0 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN printed IS NULL THEN 1 ELSE 0 END) FROM visits{where} GROUP BY service_day "
        f"ORDER BY service_day", p)]
    data = ReportData(since, until, per_day, per_hour, per_kiosk, total, linked, int(citizens or 0),
                      int(returning or 0), ident, printer, _delays(db, since, until))
    data.ratings = [(None if c is None else str(c), str(r), int(n)) for c, r, n in db.query(
        f"SELECT category, rating, COUNT(*) FROM ratings{where} GROUP BY category, rating ORDER BY 1, 2", p)]
    if total and not ident:
        data.notes.append("identified by card or face: the kiosks' visits carry no 'identified_by' field yet, "
                          "so this report cannot tell card from face; it shows only the share of visits linked "
                          "to a citizen (by either)")
    data.times = service_times(db, since=since, until=until)
    if total and not data.times:
        data.notes.append("waiting and service times: no ticket of this period was scanned at a counter page "
                          "(kiosk-office counter)")
    if not total:
        data.notes.append("no visit in this period")
    return data


def _hours(start: str, end: str) -> float | None:
    try:
        a = datetime.fromisoformat(start).replace(tzinfo=None)
        b = datetime.fromisoformat(end).replace(tzinfo=None)
    except ValueError:
        return None
    return (b - a).total_seconds() / 3600


def _delays(db: Database, since: date | None, until: date | None) -> list[ExportDelay]:
    """Per kiosk: hours from a bundle's making on the kiosk to its ingest here (bundles made in the period)."""
    where, params = [], []
    if since:
        where.append("created >= ?")
        params.append(since.isoformat())
    if until:
        where.append("created < ?")
        params.append(until.isoformat() + "T99")      # the whole last day
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    per: dict[str, list[float]] = {}
    last: dict[str, str] = {}
    for kiosk, created, ingested in db.query(f"SELECT kiosk_id, created, ingested_at FROM bundles{clause} "
                                             f"ORDER BY kiosk_id, sequence", params):
        hours = _hours(str(created), str(ingested))
        if hours is not None:
            per.setdefault(str(kiosk), []).append(hours)
        last[str(kiosk)] = str(created)
    return [ExportDelay(k, len(v), sum(v) / len(v), max(v), last.get(k)) for k, v in sorted(per.items())]
