"""SQL for the dashboard's read-only views: hourly throughput, titles, the waiting queue, failures by cause.

Each query is an index range or seek at 1M pipelines: throughput on ``ix_history_to_at`` (to_state, at) over
24 hours, the queue on ``ix_pipelines_state_entered`` / ``ix_pipelines_queue`` with LIMIT/OFFSET pages, failures
on ``ix_pipelines_state_entered`` over the newest ``limit`` rows of each state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

import sqlalchemy as sa

from agentic_pipeline.db.schema import pipeline_state_history as hist
from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.db import batch_store


def hourly_entered(conn: sa.Connection, names: Iterable[str], since: dt.datetime) -> list[tuple[str, int, int]]:
    """(state, hour index from ``since``, count) of history rows entering ``names`` at or after ``since``."""
    if conn.dialect.name == "postgresql":
        hour = sa.func.floor(sa.extract("epoch", hist.c.at - sa.bindparam("since", since, type_=hist.c.at.type))
                             / 3600)
    else:
        raw = sa.type_coerce(hist.c.at, sa.Float)
        hour = sa.cast((raw - since.timestamp()) / 3600, sa.Integer)
    rows = conn.execute(sa.select(hist.c.to_state, hour.label("h"), sa.func.count())
                        .where(hist.c.to_state.in_(list(names)), hist.c.at >= since)
                        .group_by(hist.c.to_state, hour))
    return [(state, int(h), int(n)) for state, h, n in rows]


def titles(conn: sa.Connection, ids: Iterable[int]) -> dict[int, str | None]:
    ids = sorted({int(i) for i in ids if i is not None})
    if not ids:
        return {}
    return dict(conn.execute(sa.select(pp.c.id, pp.c.title).where(pp.c.id.in_(ids))).all())


_ROW = (pp.c.id, pp.c.title, pp.c.source_path, pp.c.state, pp.c.priority, pp.c.base_priority, pp.c.aging_level,
        pp.c.book_type, pp.c.confidence, pp.c.created_at, pp.c.state_entered_at, pp.c.retry_count, pp.c.error,
        pp.c.error_stage, pp.c.next_attempt_at)


def waiting(conn: sa.Connection, state: str, *, order: str, limit: int, offset: int) -> list[dict[str, Any]]:
    """One page of the books in ``state``: ``order`` "priority" (claim order) or "age" (oldest first)."""
    if order == "priority":
        keys = (pp.c.priority, pp.c.created_at, pp.c.id)
    else:
        keys = (pp.c.state_entered_at, pp.c.id)
    rows = conn.execute(sa.select(*_ROW).where(pp.c.state == state).order_by(*keys).limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows]


def count_in(conn: sa.Connection, state: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(pp).where(pp.c.state == state)).scalar_one())


def newest_in(conn: sa.Connection, state: str, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` books that entered ``state`` last (newest first)."""
    rows = conn.execute(sa.select(*_ROW).where(pp.c.state == state)
                        .order_by(pp.c.state_entered_at.desc(), pp.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]

