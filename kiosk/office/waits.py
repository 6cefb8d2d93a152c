"""Waiting and service times from the counter page's stamps (issue 18), for the office report.

Wait = issued (the ticket's own time, from its sealed code) to called; service = called to served. Per service
and hour of issue, plus one "all hours" row per service: median and 90th percentile, in minutes. Only tickets
scanned at a counter have times; a ticket served without "called" has neither figure (nothing is guessed).
The few thousand stamped tickets of a month are read in one query and ranked here: SQLite has no percentile.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime

from kiosk.office.db import Database

ALL_HOURS = -1


@dataclass(frozen=True)
class ServiceTimes:
    category: str
    service_name: str
    hour: int                       # hour of issue, or ALL_HOURS
    waits: int                      # tickets with a wait (called)
    wait_median: float | None       # minutes
    wait_p90: float | None
    services: int                   # tickets with a service time (called and served)
    service_median: float | None
    service_p90: float | None


def _minutes(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        minutes = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 60
    except ValueError:
        return None
    return minutes if minutes >= 0 else None      # a clock set wrong on the kiosk: no figure rather than a lie


def median_p90(values: list[float]) -> tuple[float | None, float | None]:
    """Median and 90th percentile (linear between ranks, as spreadsheets' PERCENTILE.INC)."""
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    return statistics.median(values), statistics.quantiles(values, n=10, method="inclusive")[-1]


def day_range(since: date | None, until: date | None, day: str) -> tuple[str, list[object]]:
    """`` WHERE <day> >= ? AND <day> <= ?`` (either side left out when not given) and its parameters."""
    where: list[str] = []
    params: list[object] = []
    if since:
        where.append(f"{day} >= ?")
        params.append(since.isoformat())
    if until:
        where.append(f"{day} <= ?")
        params.append(until.isoformat())
    return (" WHERE " + " AND ".join(where)) if where else "", params


def service_times(db: Database, *, since: date | None = None, until: date | None = None) -> list[ServiceTimes]:
    """The rows of the report's table, by service then hour (the "all hours" row first)."""
    clause, params = day_range(since, until, "substr(issued_at, 1, 10)")
    groups: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
    names: dict[str, str] = {}
    for category, name, issued, called, served in db.query(
            f"SELECT category, service_name, issued_at, called_at, served_at FROM counter{clause}", params):
        category, issued = str(category), str(issued)
        names[category] = str(name)
        wait, service = _minutes(issued, called), _minutes(called, served)
        for hour in (ALL_HOURS, int(issued[11:13])):
            waits, services = groups.setdefault((category, hour), ([], []))
            if wait is not None:
                waits.append(wait)
            if service is not None:
                services.append(service)
    rows = []
    for (category, hour), (waits, services) in sorted(groups.items()):
        rows.append(ServiceTimes(category, names[category], hour, len(waits), *median_p90(waits), len(services),
                                 *median_p90(services)))
    return rows
