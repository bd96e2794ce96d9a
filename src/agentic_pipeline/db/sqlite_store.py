"""The SQLite adapter of the pipeline store: ``BEGIN IMMEDIATE`` write transactions and ``UPDATE ... RETURNING``.

Every write transaction takes the database's write lock when it begins (``db.engine``), so a
read-then-write inside it cannot lose a race and two writers never deadlock on a lock upgrade; the
busy timeout queues them. Claims are one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING *``
walking the queue index. A set of ids travels as one JSON parameter (``json_each``); history rows
go straight to the driver's executemany (no per-row SQLAlchemy parameter processing).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Sequence

import sqlalchemy as sa

from agentic_pipeline.db import schema
from agentic_pipeline.db.pipelines import TS, BaseStore, claim_pick, claim_statement
from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.pipeline import priority

_HISTORY_SQL = ("INSERT INTO pipeline_state_history (pipeline_id, from_state, to_state, at, duration_seconds, actor, "
                "detail) VALUES (?, ?, ?, ?, ?, ?, ?)")


def _queue_pick() -> Any:
    """The claim's SELECT, pinned to the queue index with INDEXED BY.

    Without ANALYZE statistics (a new database) SQLite prefers ix_pipelines_state_entered for the state
    term and then sorts the whole queue on every claim (~150 claims/s at 20,000 queued instead of ~3,700).
    SQLAlchemy cannot render INDEXED BY, so this one subquery is text (its ORDER BY from
    ``priority.CLAIM_ORDER``); the columns are unqualified and resolve to the inner FROM.
    """
    now = sa.bindparam("b_now", type_=TS)
    sql = ("SELECT id FROM processing_pipelines INDEXED BY ix_pipelines_queue WHERE " + schema.CLAIMABLE_SQL
           + " AND (lease_owner IS NULL OR lease_expires_at < :b_now)"
           " AND (state != 'needs_retry' OR next_attempt_at IS NULL OR next_attempt_at <= :b_now)"
           " ORDER BY " + ", ".join(priority.CLAIM_ORDER) + " LIMIT 1")
    pick = sa.text(sql).bindparams(now).columns(pp.c.id).subquery()
    return sa.select(pick.c.id).scalar_subquery()


_CLAIM = claim_statement(_queue_pick())


class SqliteStore(BaseStore):
    """``db.store.PipelineStore`` on SQLite."""

    dialect = "sqlite"

    def id_in(self, ids: Sequence[int]) -> sa.ColumnElement[bool]:
        each = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.bindparam("ids", json.dumps(list(ids)), type_=sa.Text)))
        return pp.c.id.in_(each)

    def insert_history(self, conn: sa.Connection, moves: Sequence[tuple[int, float | None]], *,
                       from_state: str | None, to_state: str, at: dt.datetime, actor: str,
                       detail: dict[str, Any] | None) -> None:
        """One driver executemany, the values converted as ``UTCDateTime`` / ``JSONDoc`` would (epoch, JSON text)."""
        if not moves:
            return
        text = None if detail is None else json.dumps(detail)
        when = at.timestamp()
        conn.exec_driver_sql(_HISTORY_SQL, [(pid, from_state, to_state, when, spent, actor, text)
                                            for pid, spent in moves])

    def _claim(self, only: list[str] | None) -> Any:
        return _CLAIM if only is None else claim_statement(claim_pick(only))
