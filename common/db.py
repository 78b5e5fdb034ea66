"""PostgreSQL adapter: a connection pool, short transactions and numbered migrations (SPEC §8)."""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import psycopg2
import psycopg2.extras
import psycopg2.pool

from common.config import ROOT, host_port, secret_from

logger = logging.getLogger(__name__)
MIGRATIONS_DIR = ROOT / "sql"
MIGRATION_LOCK = 727_001
POOL_WAIT_S = 10.0  # advisory lock id: one migrator at a time


def dsn_from(db_arg: Optional[str]) -> dict:
    """Connection settings from a 'host:port' argument and EVC_DB_* environment."""
    host, port = host_port(db_arg or f"{os.environ.get('EVC_DB_HOST', '127.0.0.1')}:{os.environ.get('EVC_DB_PORT', '5432')}", 5432)
    return {
        "host": host,
        "port": port,
        "dbname": os.environ.get("EVC_DB_NAME", "evc"),
        "user": os.environ.get("EVC_DB_USER", "evc"),
        "password": secret_from("EVC_DB_PASSWORD") or "",
        "connect_timeout": 5,
        "application_name": os.environ.get("EVC_COMPONENT", "evc"),
    }


class Database:
    """A threaded connection pool with a transaction() context manager that survives server restarts."""

    def __init__(self, dsn: dict, minconn: int = 1, maxconn: int = 8):
        self.dsn = dsn
        self._pool = psycopg2.pool.ThreadedConnectionPool(minconn, maxconn, **dsn)
        self._slots = threading.BoundedSemaphore(maxconn)  # wait for a free connection instead of PoolError

    @classmethod
    def connect(cls, dsn: dict, attempts: int = 30, delay_s: float = 1.0) -> "Database":
        """Open the pool, retrying while the server is not up yet (bounded)."""
        for attempt in range(1, attempts + 1):
            try:
                return cls(dsn)
            except psycopg2.OperationalError as exc:
                if attempt == attempts:
                    raise
                logger.warning("PostgreSQL at %s:%s not reachable (%s); retry %d/%d",
                               dsn["host"], dsn["port"], str(exc).strip(), attempt, attempts)
                time.sleep(delay_s)
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[psycopg2.extras.RealDictCursor]:
        """A cursor inside one short transaction: committed on success, rolled back on error."""
        if not self._slots.acquire(timeout=POOL_WAIT_S):
            raise psycopg2.OperationalError(f"no database connection free within {POOL_WAIT_S} s")
        try:
            conn = self._pool.getconn()
            broken = False
            try:
                with conn:
                    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                        yield cur
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                broken = True
                raise
            finally:
                self._pool.putconn(conn, close=broken or conn.closed != 0)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.closeall()


def migration_files(folder: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """Numbered migrations NNN_name.sql, in order."""
    found = []
    for path in folder.glob("*.sql"):
        match = re.match(r"^(\d+)_", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def migrate(db: Database, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet recorded, idempotently; returns those applied."""
    applied = []
    with db.transaction() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        cur.execute("SELECT version FROM schema_migrations")
        done = {row["version"] for row in cur.fetchall()}
        for version, path in migration_files(folder):
            if version in done:
                continue
            cur.execute(path.read_text())
            cur.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, path.name))
            applied.append(path.name)
    if applied:
        logger.info("applied migrations: %s", ", ".join(applied))
    return applied
