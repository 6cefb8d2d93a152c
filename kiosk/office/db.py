"""The office database: one schema on SQLite (default, ``office.db``) or PostgreSQL (``postgresql://…``).

The SQL is written once, in the dialect both share (``INSERT … ON CONFLICT``, ``substr`` on ISO text times);
the differences abstracted are the placeholder (``?`` here, ``%s`` for psycopg) and, for speed, how many rows
go in at once (:meth:`Database.upsert`: executemany on SQLite, COPY on PostgreSQL). Double counting is made
impossible by the keys, not by the code: a visit is (kiosk, visit id), a bundle is (kiosk, sequence), so many
kiosks never collide on ticket numbers and a bundle or visit read twice is stored once.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

Row = tuple
Params = Sequence[object]


class DatabaseError(Exception):
    """The database cannot be opened or used; one line."""


# Each entry migrates from the version before it; the tool applies those above the stored version, in order.
MIGRATIONS: list[list[str]] = [
    [  # version 1
        """CREATE TABLE kiosks (
            kiosk_id TEXT PRIMARY KEY,
            pubkey TEXT NOT NULL,
            added_at TEXT NOT NULL,
            last_sequence INTEGER NOT NULL DEFAULT 0,
            last_hash TEXT,
            last_created TEXT,
            last_ingested TEXT,
            inbox_sequence INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE bundles (
            kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
            sequence INTEGER NOT NULL,
            sha256 TEXT NOT NULL UNIQUE,
            prev TEXT,
            created TEXT NOT NULL,
            ingested_at TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            visits INTEGER NOT NULL,
            UNIQUE (kiosk_id, sequence))""",
        """CREATE TABLE visits (
            kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
            visit_id TEXT NOT NULL,
            ticket TEXT NOT NULL,
            number INTEGER NOT NULL,
            category TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            service_day TEXT NOT NULL,
            citizen TEXT,
            printed SMALLINT,
            identified_by TEXT,
            bundle_sequence INTEGER NOT NULL,
            UNIQUE (kiosk_id, visit_id))""",
        "CREATE INDEX visits_day ON visits (service_day)",
        "CREATE INDEX visits_citizen ON visits (citizen)",
        """CREATE TABLE consents (
            kiosk_id TEXT NOT NULL,
            consent_id TEXT NOT NULL,
            citizen TEXT,
            at TEXT,
            text_version TEXT,
            text TEXT,
            UNIQUE (kiosk_id, consent_id))""",
        "CREATE INDEX consents_citizen ON consents (citizen)",
        """CREATE TABLE tombstones (
            kiosk_id TEXT NOT NULL,
            citizen TEXT NOT NULL,
            at TEXT,
            consent_id TEXT,
            templates_deleted INTEGER,
            UNIQUE (kiosk_id, citizen))""",
        """CREATE TABLE forgotten (
            citizen TEXT PRIMARY KEY,
            at TEXT NOT NULL,
            source TEXT NOT NULL)""",
        """CREATE TABLE audit (
            kiosk_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            at TEXT,
            event TEXT,
            record TEXT NOT NULL,
            UNIQUE (kiosk_id, sha256))""",
        """CREATE TABLE counters (
            kiosk_id TEXT NOT NULL,
            day TEXT NOT NULL,
            category TEXT NOT NULL,
            last INTEGER NOT NULL,
            UNIQUE (kiosk_id, day, category))""",
        """CREATE TABLE cards (
            kiosk_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            citizen TEXT,
            record TEXT NOT NULL,
            UNIQUE (kiosk_id, sha256))""",
        """CREATE TABLE inbox_files (
            sequence INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            kiosk TEXT NOT NULL,
            created TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            body TEXT NOT NULL)""",
    ],
    [  # version 2: one card record per citizen, as the kiosks' cards part sends it (kiosk/synccards.py), kept
       # current (a newer record replaces the older, a deleted one goes): never every version of a person's data
        "DROP TABLE cards",
        """CREATE TABLE cards (
            citizen TEXT PRIMARY KEY,
            card TEXT NOT NULL,
            kiosk_id TEXT NOT NULL,
            last_seen TEXT,
            record TEXT NOT NULL)""",
    ],
    [  # version 3: satisfaction ratings (issue 13; kiosk/syncratings.py), one row per rating a kiosk made;
       # visit_id and category are NULL for an anonymous rating. Never a citizen: the visit row has the link.
        """CREATE TABLE ratings (
            kiosk_id TEXT NOT NULL,
            rating_id TEXT NOT NULL,
            rating TEXT NOT NULL,
            at TEXT NOT NULL,
            service_day TEXT NOT NULL,
            visit_id TEXT,
            category TEXT,
            UNIQUE (kiosk_id, rating_id))""",
        "CREATE INDEX ratings_day ON ratings (service_day)",
    ],
    [  # version 4: the counter page (kiosk-office counter, issue 18): each scanned ticket, when it was called and
       # served; the ticket's own facts come from its sealed code, so this works before the kiosk's bundle is here
        """CREATE TABLE counter (
            kiosk_id TEXT NOT NULL,
            visit_id TEXT NOT NULL,
            ticket TEXT NOT NULL,
            category TEXT NOT NULL,
            service_name TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            citizen TEXT,
            scanned_at TEXT NOT NULL,
            called_at TEXT,
            served_at TEXT,
            PRIMARY KEY (kiosk_id, visit_id))""",
        "CREATE INDEX counter_issued ON counter (issued_at)",
        "CREATE INDEX counter_citizen ON counter (citizen)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class Connection(Protocol):
    """What both drivers' connections give us (sqlite3 and psycopg)."""

    def execute(self, sql: str, params: Params = ...) -> object: ...

    def close(self) -> None: ...


@dataclass
class Database:
    """A connection plus the one dialect difference; commands run in ``transaction()`` blocks."""
    url: str
    kind: str              # "sqlite" | "postgresql"
    conn: object

    # ------------------------------------------------------------------------------------------------ open
    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> "Database":
        url = url or "office.db"
        if url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
                conn: object = psycopg.connect(url, autocommit=True)
            except ImportError:  # pragma: no cover - a requirement
                raise DatabaseError("PostgreSQL needs psycopg: pip install 'psycopg[binary]'") from None
            except Exception as exc:  # psycopg.Error and its OperationalError
                raise DatabaseError(f"cannot connect to {_safe(url)}: {str(exc).splitlines()[0]}") from None
            db = cls(url, "postgresql", conn)
        else:
            path = Path(url[len("sqlite:///"):] if url.startswith("sqlite:///") else url)
            try:
                sconn = sqlite3.connect(path, isolation_level=None, timeout=30)
                sconn.execute("PRAGMA foreign_keys = ON")
                sconn.execute("PRAGMA journal_mode = WAL")
                sconn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise DatabaseError(f"cannot open {path}: {exc}") from None
            db = cls(str(path), "sqlite", sconn)
        if migrate:
            db.migrate()
        return db

    def close(self) -> None:
        self.conn.close()  # type: ignore[attr-defined]

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------- SQL
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.kind == "postgresql" else sql

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        try:
            cur = self.conn.execute(self._sql(sql), tuple(params))  # type: ignore[attr-defined]
        except Exception as exc:
            raise self._error(exc, sql) from None
        return max(cur.rowcount, 0)

    def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        rows = [tuple(r) for r in rows]
        if not rows:
            return 0
        try:
            if self.kind == "sqlite":
                cur = self.conn.executemany(sql, rows)  # type: ignore[attr-defined]
            else:
                cur = self.conn.cursor()  # type: ignore[attr-defined]
                cur.executemany(self._sql(sql), rows)
        except Exception as exc:
            raise self._error(exc, sql) from None
        return max(cur.rowcount, 0)

    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str], rows: Iterable[Params],
               on_conflict: str) -> int:
        """``INSERT INTO table (columns) … ON CONFLICT (key) <on_conflict>`` for many rows; rows changed.

        SQLite: executemany. PostgreSQL: COPY into a temporary table, then one INSERT … SELECT (psycopg's
        executemany sends a statement per row; COPY streams). A key twice in ``rows`` counts once (the last).
        """
        rows = [tuple(r) for r in rows]
        if not rows:
            return 0
        cols, keys = ", ".join(columns), ", ".join(key)
        if self.kind == "sqlite":
            return self.executemany(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))}) "
                                    f"ON CONFLICT ({keys}) {on_conflict}", rows)
        temp = f"upsert_{table}"
        try:
            self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} (n BIGSERIAL, "  # type: ignore[attr-defined]
                              f"LIKE {table})")
            cur = self.conn.cursor()  # type: ignore[attr-defined]
            with cur.copy(f"COPY {temp} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM {temp} "
                        f"ORDER BY {keys}, n DESC ON CONFLICT ({keys}) {on_conflict}")
            changed = cur.rowcount
            self.conn.execute(f"TRUNCATE {temp}")  # type: ignore[attr-defined]
        except Exception as exc:
            raise self._error(exc, f"upsert into {table}") from None
        return max(changed, 0)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            cur = self.conn.execute(self._sql(sql), tuple(params))  # type: ignore[attr-defined]
            return list(cur.fetchall())
        except Exception as exc:
            raise self._error(exc, sql) from None

    def scalar(self, sql: str, params: Params = ()) -> object:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def integer(self, sql: str, params: Params = ()) -> int:
        """The first column of the first row as an int (0 for NULL or no row): counts, maxima."""
        value = self.scalar(sql, params)
        return int(value) if value is not None else 0  # type: ignore[call-overload]

    def _error(self, exc: Exception, sql: str) -> DatabaseError:
        first = " ".join(sql.split())[:60]
        return DatabaseError(f"{self.kind}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__} "
                             f"(in: {first}…)")

    @contextmanager
    def transaction(self) -> Iterator["Database"]:
        """All or nothing: an exception inside rolls every statement back."""
        if self.kind == "postgresql":
            with self.conn.transaction():  # type: ignore[attr-defined]
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")  # type: ignore[attr-defined]
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")  # type: ignore[attr-defined]
            raise
        self.conn.execute("COMMIT")  # type: ignore[attr-defined]

    # ------------------------------------------------------------------------------------------- migration
    def version(self) -> int:
        if self.kind == "sqlite":
            exists = self.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
        else:
            exists = self.query("SELECT tablename FROM pg_tables WHERE tablename = 'schema_version' "
                                "AND schemaname = current_schema()")
        if not exists:
            return 0
        return self.integer("SELECT MAX(version) FROM schema_version")

    def migrate(self) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION`; each step in its own transaction. The new version."""
        current = self.version()
        if current > SCHEMA_VERSION:
            raise DatabaseError(f"{_safe(self.url)}: schema version {current} is newer than this tool "
                                f"({SCHEMA_VERSION}); update kiosk-office")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                if version == 1:
                    self.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
                for statement in MIGRATIONS[version - 1]:
                    self.execute(statement)
                self.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, CURRENT_TIMESTAMP)",
                             (version,))
        return SCHEMA_VERSION

    def size_bytes(self) -> int:
        """The database's size on disk (benchmarks)."""
        if self.kind == "postgresql":
            return self.integer("SELECT pg_database_size(current_database())")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
        return Path(self.url).stat().st_size


def _safe(url: str) -> str:
    """A URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url
