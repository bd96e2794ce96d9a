"""SQL for the priority queue: aging as one set-based UPDATE per threshold, and single-book priority."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

import sqlalchemy as sa

from agentic_pipeline.db.schema import processing_pipelines as pp

_COLUMNS = (pp.c.id, pp.c.state, pp.c.priority, pp.c.base_priority, pp.c.aging_level, pp.c.queued_at,
            pp.c.book_id, pp.c.confidence)


def aging_candidates(conn: sa.Connection, states: Iterable[str], first_cutoff: dt.datetime) -> list[dict[str, Any]]:
    """Rows waiting in ``states`` since before ``first_cutoff`` that have not reached the last level.

    Locked on PostgreSQL until the transaction ends, so the values read are the values updated.
    """
    query = sa.select(*_COLUMNS).where(pp.c.state.in_(list(states)), pp.c.aging_level < 2,
                                       pp.c.queued_at < first_cutoff)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return [dict(r._mapping) for r in conn.execute(query)]


def boost_waiting(conn: sa.Connection, states: Iterable[str], *, first_cutoff: dt.datetime,
                  second_cutoff: dt.datetime, boost: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Level 0 -> 1: waiting since before ``first_cutoff`` (not yet ``second_cutoff``), ``boost`` more urgent."""
    boosted = sa.case((pp.c.priority - boost < 1, 1), else_=pp.c.priority - boost)
    stmt = (pp.update()
            .where(pp.c.state.in_(list(states)), pp.c.aging_level == 0, pp.c.queued_at < first_cutoff,
                   pp.c.queued_at >= second_cutoff)
            .values(priority=boosted, aging_level=1, updated_at=now)
            .returning(pp.c.id, pp.c.priority, pp.c.aging_level))
    return [dict(r._mapping) for r in conn.execute(stmt)]


def promote_waiting(conn: sa.Connection, states: Iterable[str], *, second_cutoff: dt.datetime,
                    now: dt.datetime) -> list[dict[str, Any]]:
    """Level 0 or 1 -> 2: waiting since before ``second_cutoff``, priority 1."""
    stmt = (pp.update()
            .where(pp.c.state.in_(list(states)), pp.c.aging_level < 2, pp.c.queued_at < second_cutoff)
            .values(priority=1, aging_level=2, updated_at=now)
            .returning(pp.c.id, pp.c.priority, pp.c.aging_level))
    return [dict(r._mapping) for r in conn.execute(stmt)]
