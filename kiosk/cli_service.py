"""``kiosk service close|open KEY``: close a service for the day, or reopen it, beside a running kiosk or not.

The request is left in ``<data>/service-requests/`` (kiosk/closures.py). When no kiosk runs, the command opens
the store and applies it itself; when one does (it holds the store), the kiosk applies it as soon as nobody is
at the screen, and the command waits up to ``wait`` seconds to say so. Either way the audit log records it.
"""
from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from kiosk.config import Config
from kiosk.store import Store, StoreError, StoreLocked

SERVICE_WAIT = 30.0     # seconds the command waits for a running kiosk (it looks once a second when idle)


def service_command(config: Config, action: str, key: str, *, now: datetime | None = None,
                    wait: float = SERVICE_WAIT, by: str = "cli") -> int:
    """Exit status: 0 done, 1 unknown service, 2 the request could not be left, 4 queued (the kiosk is busy)."""
    from kiosk.closures import Closures, ServiceRequests
    from kiosk.store_numbers import service_day_of

    now = now or datetime.now()
    names = {c.key: c for c in config.categories}
    if key not in names:
        print(f"kiosk service: no service {key!r} in the config (services: {', '.join(names)})", file=sys.stderr)
        return 1
    said = "closed for today" if action == "close" else "open again"
    try:
        store = Store.open(config.data_dir, kiosk_id=config.kiosk_id, day_start_hour=config.day_start_hour,
                           personal=False)
    except StoreLocked:             # a kiosk runs: it applies the request when nobody is at the screen
        path = _queue(config, action, key, now, by)
        if path is None:
            return 2
        if _taken(path, wait):
            print(f"{key}: {said} (applied by the running kiosk, recorded in the audit log)")
            return 0
        print(f"{key}: the kiosk is busy; the request is queued and applied as soon as nobody is at the screen")
        return 4
    except StoreError as exc:
        print(f"kiosk service: {exc}", file=sys.stderr)
        return 2
    try:
        if _queue(config, action, key, now, by) is None:
            return 2
        closures = Closures(config.data_dir, audit=store.audit_event)
        ServiceRequests(config.data_dir, closures, names,
                        lambda: service_day_of(now, config.day_start_hour)).apply_all()
    finally:
        store.close()
    print(f"{key}: {said} (recorded in the audit log)")
    return 0


def _queue(config: Config, action: str, key: str, now: datetime, by: str) -> Path | None:
    from kiosk.closures import queue_request

    try:
        return queue_request(config.data_dir, action, key, now.isoformat(timespec="seconds"), by)
    except OSError as exc:
        print(f"kiosk service: the request could not be left in {config.data_dir}: {exc}", file=sys.stderr)
        return None


def _taken(path: Path, wait: float) -> bool:
    """Whether the running kiosk took the request file within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while path.exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True
