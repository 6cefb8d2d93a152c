"""Shared by the office tests: a real PostgreSQL server for the session, and one fresh database per test.

The server is Debian's ``postgresql`` package started by ``initdb`` + ``pg_ctl`` in a temporary folder, as an
unprivileged user when the tests run as root (PostgreSQL refuses root), listening only on a Unix socket in
that folder. Where PostgreSQL is absent the PostgreSQL half of each test is skipped with a message.
"""
import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from kiosk.office.db import Database

_counter = itertools.count(1)


def _pg_bin(name):
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    return found if isinstance(found, str) else (found[0] if found else None)


def _as_user(cmd):
    if os.getuid() != 0:
        return cmd
    return [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "nobody", "--", *cmd]


class NoPostgres(Exception):
    """PostgreSQL is not installed here."""


@contextlib.contextmanager
def temporary_server(*, durable=False):
    """A PostgreSQL server in a temporary folder for as long as the block runs: {host, user}. Tests run it
    with fsync off (a throw-away cluster); the benchmark with ``durable`` (PostgreSQL's defaults)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise NoPostgres("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="office-pg-"))
    data = root / "data"
    os.chmod(root, 0o755)
    if os.getuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
    user = "nobody" if os.getuid() == 0 else None
    try:
        subprocess.run(_as_user([initdb, "-D", str(data), "-A", "trust", "-E", "UTF8", "--no-locale",
                                 *(["-U", user] if user else [])]),
                       check=True, capture_output=True, timeout=120)
        subprocess.run(_as_user([pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
                                 f"-k {root} -c listen_addresses=''" + ("" if durable else " -c fsync=off"), "start"]),
                       check=True, capture_output=True, timeout=90)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = (root / "log").read_text(errors="replace")[-800:] if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc} {getattr(exc, 'stderr', b'')!r} {log}") from None
    try:
        yield {"host": str(root), "user": user or os.environ.get("USER") or "postgres"}
    finally:
        subprocess.run(_as_user([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    try:
        with temporary_server() as server:
            yield server
    except NoPostgres as exc:
        pytest.skip(f"{exc}; PostgreSQL tests skipped")


def pg_url(server, name):
    return f"postgresql://{server['user']}@/{name}?host={server['host']}"


def new_pg_database(server):
    name = f"office_{os.getpid()}_{next(_counter)}"
    with Database.open(pg_url(server, "postgres"), migrate=False) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return pg_url(server, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same test over SQLite and over PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "office.db")
    return new_pg_database(request.getfixturevalue("pg_server"))


TABLES = ("kiosks", "bundles", "visits", "consents", "tombstones", "forgotten", "audit", "counters", "cards",
          "inbox_files", "counter")


def snapshot(url):
    """Every row of every table, sorted: 'the database did not change'."""
    with Database.open(url) as db:
        return {t: sorted(map(repr, db.query(f"SELECT * FROM {t}"))) for t in TABLES}


def count(url, table="visits"):
    with Database.open(url) as db:
        return db.scalar(f"SELECT COUNT(*) FROM {table}")
