"""The database server's clock (``clock.DatabaseClock`` reads it).

PostgreSQL: ``clock_timestamp()``, the server's wall clock at the moment the statement runs (not
``now()``, which is frozen at the start of the transaction). SQLite runs in this process, so its
clock is this host's: ``julianday('now')``, for completeness and tests.
"""

from __future__ import annotations

import datetime as dt
import time

import sqlalchemy as sa

UTC = dt.timezone.utc


def read(db) -> dt.datetime:
    """The server's current time, aware UTC."""
    with db.one_statement(write=False) as conn:
        return now(conn)


def read_timed(db) -> tuple[dt.datetime, float]:
    """The server's time and the ``time.monotonic()`` instant it belongs to: the middle of the query alone,
    not of the connection set-up before it (a first connection takes tens of milliseconds)."""
    with db.one_statement(write=False) as conn:
        before = time.monotonic()
        server = now(conn)
        after = time.monotonic()
    return server, (before + after) / 2


def now(conn: sa.Connection) -> dt.datetime:
    if conn.dialect.name == "postgresql":
        return conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one().astimezone(UTC)
    epoch = conn.exec_driver_sql("SELECT (julianday('now') - 2440587.5) * 86400.0").scalar_one()
    return dt.datetime.fromtimestamp(epoch, UTC)
