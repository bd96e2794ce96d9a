"""SQL for batch operations: the filter as a WHERE clause over the whole table, and set-based changes.

``list_matching`` / ``count_matching`` evaluate ``batch.filters.BatchFilter`` in the database (never
"fetch rows, then filter in Python"). Changing the matched books is the pipeline store's
(``store.PipelineStore``: ``lock_rows``, ``move`` of many, ``update_many``, ``create_many``): the
one writer of state, whose adapters send a chunk's ids as ONE parameter.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import sqlalchemy as sa

from agentic_pipeline.db.schema import books, chapters, chunks, vector_log
from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.pipeline.states import State

#: the columns a plan shows and an apply needs
PLAN_COLUMNS = (pp.c.id, pp.c.title, pp.c.source_path, pp.c.book_type, pp.c.confidence, pp.c.state,
                pp.c.state_entered_at, pp.c.created_at, pp.c.priority, pp.c.base_priority, pp.c.aging_level,
                pp.c.book_id)


def glob_condition(column: sa.ColumnElement, pattern: str, dialect: str) -> sa.ColumnElement[bool]:
    """``*`` any run, ``?`` one character, all else literal; case-sensitive on both engines.

    SQLite: GLOB (case-sensitive; ``[`` is escaped as ``[[]``). PostgreSQL: LIKE with ``\\`` escaping
    ``%``, ``_`` and itself (LIKE is case-sensitive there; SQLite's LIKE is not, hence GLOB).
    """
    if dialect == "sqlite":
        return column.op("GLOB")(pattern.replace("[", "[[]"))
    like = "".join("%" if ch == "*" else "_" if ch == "?" else "\\" + ch if ch in "%_\\" else ch for ch in pattern)
    return column.like(like, escape="\\")


def where(f, dialect: str, eligible: Iterable[State] | None = None) -> list[sa.ColumnElement[bool]]:
    """The filter's conditions (``sa.false()`` for an empty filter without ``all``), plus ``state IN eligible``."""
    if f.is_empty and not f.all:
        return [sa.false()]
    conds: list[sa.ColumnElement[bool]] = []
    if f.book_type is not None:
        conds.append(pp.c.book_type == f.book_type)
    if f.min_confidence is not None:
        conds.append(pp.c.confidence >= f.min_confidence)
    if f.max_confidence is not None:
        conds.append(pp.c.confidence <= f.max_confidence)
    if f.state is not None:
        conds.append(pp.c.state == f.state.value)
    if f.created_before is not None:
        conds.append(pp.c.created_at < f.created_before)
    if f.created_after is not None:
        conds.append(pp.c.created_at >= f.created_after)
    if f.source_path_pattern is not None:
        conds.append(glob_condition(pp.c.source_path, f.source_path_pattern, dialect))
    if eligible is not None:
        conds.append(pp.c.state.in_(sorted(State(s).value for s in eligible)))
    return conds


def count_matching(conn: sa.Connection, f, eligible: Iterable[State] | None = None) -> int:
    """How many pipelines match, counted by the database over the whole table."""
    return conn.execute(sa.select(sa.func.count()).select_from(pp).where(*where(f, conn.dialect.name, eligible))).scalar_one()


def list_matching(conn: sa.Connection, f, limit: int | None, eligible: Iterable[State] | None = None) -> list[dict[str, Any]]:
    """The matching pipelines in id order (at most ``limit``), with the columns a plan shows."""
    query = sa.select(*PLAN_COLUMNS).where(*where(f, conn.dialect.name, eligible)).order_by(pp.c.id)
    if limit is not None:
        query = query.limit(limit)
    return _dicts(conn.execute(query))


def _dicts(result: sa.CursorResult) -> list[dict[str, Any]]:
    """All rows as dicts, fetched at once (iterating a result fetches row by row: slow for 10,000)."""
    keys = list(result.keys())
    return [dict(zip(keys, row)) for row in result.all()]


def existing_hashes(conn: sa.Connection, hashes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Which content hashes are already queued or in the library: hash -> {pipeline_id, state, where}."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(hashes), 500):
        part = list(hashes[start:start + 500])
        for r in conn.execute(sa.select(books.c.content_hash, books.c.pipeline_id).where(books.c.content_hash.in_(part))):
            found.setdefault(r.content_hash, {"pipeline_id": r.pipeline_id, "state": None, "where": "library"})
        query = (sa.select(pp.c.content_hash, pp.c.id, pp.c.state)
                 .where(pp.c.content_hash.in_(part), pp.c.state != State.ARCHIVED.value).order_by(pp.c.id))
        for r in conn.execute(query):
            found.setdefault(r.content_hash, {"pipeline_id": r.id, "state": r.state, "where": "queue"})
    return found


#: PostgreSQL advisory lock key serialising batch-queue runs (SQLite: the write transaction)
QUEUE_LOCK_KEY = 7261005


def lock_queueing(conn: sa.Connection) -> None:
    """Serialise "is this content new? then queue it" between concurrent batch-queue runs."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(QUEUE_LOCK_KEY)))


NOTHING_REMOVED = {"books": 0, "chapters": 0, "chunks": 0}


def delete_library_books(conn: sa.Connection, pipeline_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Remove the library rows (book, chapters, chunks) of many pipelines at once; what went, per pipeline.

    The set-based form of ``library_store.delete_book`` (same counts), for batch reject.
    """
    if not pipeline_ids:
        return {}
    owners = {r.id: r.pipeline_id for r in conn.execute(
        sa.select(books.c.id, books.c.pipeline_id).where(books.c.pipeline_id.in_(list(pipeline_ids))))}
    if not owners:
        return {}
    out = {pid: {"books": 0, "chapters": 0, "chunks": 0} for pid in set(owners.values())}
    for book_id, pid in owners.items():
        out[pid]["books"] += 1
    for table, key in ((chapters, "chapters"), (chunks, "chunks")):
        counts = conn.execute(sa.select(table.c.book_id, sa.func.count()).where(table.c.book_id.in_(list(owners)))
                              .group_by(table.c.book_id))
        for book_id, n in counts:
            out[owners[book_id]][key] += n
    conn.execute(chunks.delete().where(chunks.c.book_id.in_(list(owners))))
    conn.execute(chapters.delete().where(chapters.c.book_id.in_(list(owners))))
    conn.execute(books.delete().where(books.c.id.in_(list(owners))))
    conn.execute(vector_log.insert(), [{"book_id": b, "action": "remove"} for b in owners])  # the vector index forgets
    return out
