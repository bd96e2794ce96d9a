"""SQL for ``doctor``: the server's version and clock, what waits for a worker, the workers, the search index.

Every query is cheap on a large library: counts over the small (non-terminal) states use
``ix_pipelines_state_entered``; the FTS5 integrity check reads the index once (SQLite).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.db.schema import workers
from agentic_pipeline.pipeline.states import State


def server(conn: sa.Connection) -> dict[str, Any]:
    """The engine's version and, on PostgreSQL, the server's clock (``now()`` at this statement)."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(sa.select(sa.func.version(), sa.func.clock_timestamp())).one()
        return {"version": str(row[0]).split(" on ")[0].split(",")[0], "now": row[1]}
    version = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
    return {"version": f"SQLite {version}", "now": None}


def waiting_work(conn: sa.Connection, now: dt.datetime) -> int:
    """Books a worker would claim now: queued, approved, and retries that are due."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(pp).where(
        sa.or_(pp.c.state.in_((State.DETECTED.value, State.APPROVED.value)),
               sa.and_(pp.c.state == State.NEEDS_RETRY.value,
                       sa.or_(pp.c.next_attempt_at.is_(None), pp.c.next_attempt_at <= now))))).scalar_one())


def worker_rows(conn: sa.Connection) -> list[dict[str, Any]]:
    """Workers that have not said they stopped (live ones and ones that died without saying so)."""
    rows = conn.execute(sa.select(workers.c.id, workers.c.host, workers.c.pid, workers.c.last_seen)
                        .where(workers.c.stopped_at.is_(None)).order_by(workers.c.host, workers.c.id))
    return [dict(r._mapping) for r in rows]


def fts_problem(conn: sa.Connection) -> str | None:
    """SQLite: FTS5's own integrity check of ``chunks_fts`` against ``chunks`` (None when in step).

    PostgreSQL's full-text index is an expression index over ``chunks.text``: it cannot drift.
    """
    if conn.dialect.name != "sqlite":
        return None
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
    except sa.exc.DatabaseError as exc:
        return str(exc.orig).splitlines()[0] if exc.orig else str(exc)
    return None


def indexes(conn: sa.Connection, table: str) -> set[str]:
    return {ix["name"] for ix in sa.inspect(conn).get_indexes(table)}
