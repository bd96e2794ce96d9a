"""SQL for the priority queue: aging as one set-based UPDATE per level, rendered from ``pipeline.priority``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.pipeline import priority as rules

_COLUMNS = (pp.c.id, pp.c.state, pp.c.priority, pp.c.base_priority, pp.c.aging_level, pp.c.queued_at,
            pp.c.book_id, pp.c.confidence)
_AGING_STATES = sorted(s.value for s in rules.AGING_STATES)


def _clamp(low: Any, value: Any) -> Any:
    """``max(low, value)`` in SQL (``priority.aged_priority``'s clamp)."""
    return sa.case((value < low, low), else_=value)


def aging_candidates(conn: sa.Connection, cuts: dict[int, dt.datetime]) -> list[dict[str, Any]]:
    """Rows waiting in an aging state since before the first cutoff that have not reached the last level.

    Locked until the transaction ends (FOR UPDATE on PostgreSQL; SQLAlchemy renders nothing on
    SQLite, whose write transaction is exclusive), so the values read are the values updated.
    """
    query = (sa.select(*_COLUMNS).where(pp.c.state.in_(_AGING_STATES), pp.c.aging_level < rules.LEVEL_PROMOTED,
                                        pp.c.queued_at < cuts[rules.LEVEL_BOOSTED]).with_for_update())
    return [dict(r._mapping) for r in conn.execute(query)]


def age_waiting(conn: sa.Connection, level: int, cuts: dict[int, dt.datetime], *, boost: int,
                now: dt.datetime) -> list[dict[str, Any]]:
    """Every waiting book that earns ``level`` now goes to it (``priority.level_window``, ``aged_priority``)."""
    low, high, below = rules.level_window(level, cuts)
    conditions = [pp.c.state.in_(_AGING_STATES), pp.c.aging_level < below, pp.c.queued_at < high]
    if low is not None:
        conditions.append(pp.c.queued_at >= low)
    stmt = (pp.update().where(*conditions)
            .values(priority=rules.aged_priority(pp.c.priority, level, boost, clamp=_clamp), aging_level=level,
                    updated_at=now)
            .returning(pp.c.id, pp.c.priority, pp.c.aging_level))
    return [dict(r._mapping) for r in conn.execute(stmt)]
