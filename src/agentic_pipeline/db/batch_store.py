"""SQL for batch operations: the filter as a WHERE clause over the whole table, and set-based changes.

``list_matching`` / ``count_matching`` evaluate ``batch.filters.BatchFilter`` in the database (never
"fetch rows, then filter in Python"). The change primitives work on a chunk of ids at once:
``lock_rows`` reads the chunk (row locks on PostgreSQL; SQLite's write transaction is exclusive),
``transition_many`` is ``PipelineStore.transition`` for many rows (compare-and-set on the expected
state, ``RETURNING id``, bulk history insert), ``update_many`` the same for non-state columns
(the chunk's audit rows go through ``audit_store.append_bulk``, which owns the chain head). A chunk's ids travel as ONE parameter
(``json_each`` on SQLite, an array on PostgreSQL), not as thousands of placeholders.

Speed notes (10,000 of 1,000,000 rows, bench/bench_batch.py): every column named in an UPDATE's
SET moves the row in each index holding that column, so the lease columns are only cleared when
some row has a lease; the history rows go through the driver's executemany on SQLite (no per-row
SQLAlchemy parameter processing).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State

#: the columns a plan shows and an apply needs
PLAN_COLUMNS = (pp.c.id, pp.c.title, pp.c.source_path, pp.c.book_type, pp.c.confidence, pp.c.state,
                pp.c.state_entered_at, pp.c.created_at, pp.c.priority, pp.c.base_priority, pp.c.aging_level,
                pp.c.book_id)
_LOCK_COLUMNS = (pp.c.id, pp.c.state, pp.c.state_entered_at, pp.c.priority, pp.c.base_priority, pp.c.aging_level,
                 pp.c.book_id, pp.c.confidence, pp.c.lease_owner, pp.c.lease_expires_at)


def id_in(conn: sa.Connection, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """``id`` is one of ``ids``, bound as a single parameter (a JSON array on SQLite, an array on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        return pp.c.id == sa.any_(sa.bindparam("ids", list(ids), type_=postgresql.ARRAY(sa.BigInteger)))
    each = sa.select(sa.column("value")).select_from(
        sa.func.json_each(sa.bindparam("ids", json.dumps(list(ids)), type_=sa.Text)))
    return pp.c.id.in_(each)


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


def lock_rows(conn: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The current rows of ``ids``, locked until the transaction ends (PostgreSQL; SQLite holds the write lock)."""
    query = sa.select(*_LOCK_COLUMNS).where(id_in(conn, ids)).order_by(pp.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {r["id"]: r for r in _dicts(conn.execute(query))}


def transition_many(conn: sa.Connection, rows: Sequence[dict[str, Any]], to: State, *, expect: State, actor: str,
                    now: dt.datetime, values: dict[str, Any] | None = None,
                    detail: dict[str, Any] | None = None) -> list[int]:
    """Move ``rows`` (current rows, all in ``expect``) to ``to``: one compare-and-set UPDATE, bulk history.

    Returns the ids that moved (a row no longer in ``expect`` is left alone). The same columns and
    history as ``PipelineStore.transition`` with ``owner=ANY_OWNER``.
    """
    if not rows:
        return []
    if not states.can_transition(expect, to):
        from agentic_pipeline import errors

        raise errors.InvalidTransition(f"cannot move a pipeline from {expect.value} to {to.value}")
    leased = any(r.get("lease_owner") is not None or r.get("lease_expires_at") is not None for r in rows)
    moved = set(update_many(conn, [r["id"] for r in rows], expect, _transition_values(to, now, values, leased), now))
    insert_history(conn, [(r["id"], max((now - r["state_entered_at"]).total_seconds(), 0.0))
                          for r in rows if r["id"] in moved],
                   from_state=expect.value, to_state=to.value, at=now, actor=actor, detail=detail)
    return sorted(moved)


_HISTORY_PG = ("INSERT INTO pipeline_state_history (pipeline_id, from_state, to_state, at, duration_seconds, actor, "
               "detail) SELECT m.pid, %(from_state)s::varchar, %(to_state)s::varchar, %(at)s::timestamptz, m.spent, "
               "%(actor)s::varchar, %(detail)s::jsonb "
               "FROM unnest(%(ids)s::bigint[], %(spent)s::float8[]) WITH ORDINALITY AS m(pid, spent, ord) ORDER BY m.ord")
_HISTORY_SQL = ("INSERT INTO pipeline_state_history (pipeline_id, from_state, to_state, at, duration_seconds, actor, "
                "detail) VALUES (?, ?, ?, ?, ?, ?, ?)")


def insert_history(conn: sa.Connection, moves: Sequence[tuple[int, float]], *, from_state: str | None, to_state: str,
                   at: dt.datetime, actor: str, detail: dict[str, Any] | None) -> None:
    """History rows for ``moves`` (pipeline id, seconds spent in ``from_state``): one executemany.

    SQLite goes straight to the driver (the values converted as ``UTCDateTime`` / ``JSONDoc`` would:
    epoch seconds, JSON text); PostgreSQL gets the ids and durations as two arrays in one
    ``INSERT ... SELECT FROM unnest(...)`` (one round trip; SQLAlchemy's multi-row INSERT took 0.24 s
    for 10,000 rows, this 0.04 s).
    """
    if not moves:
        return
    text = None if detail is None else json.dumps(detail)
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(_HISTORY_PG, {"ids": [pid for pid, _ in moves], "spent": [spent for _, spent in moves],
                                           "from_state": from_state, "to_state": to_state, "at": at, "actor": actor,
                                           "detail": text})
        return
    when = at.timestamp()
    conn.exec_driver_sql(_HISTORY_SQL, [(pid, from_state, to_state, when, spent, actor, text) for pid, spent in moves])


def update_many(conn: sa.Connection, ids: Sequence[int], expect: State, values: dict[str, Any],
                now: dt.datetime) -> list[int]:
    """``UPDATE ... WHERE id IN (ids) AND state = expect RETURNING id``: the ids actually changed."""
    if not ids:
        return []
    stmt = (pp.update().where(id_in(conn, ids), pp.c.state == State(expect).value)
            .values(**{"updated_at": now, **values}).returning(pp.c.id))
    return [r.id for r in conn.execute(stmt)]


def _transition_values(to: State, now: dt.datetime, values: dict[str, Any] | None, leased: bool = True) -> dict[str, Any]:
    """The columns a transition sets; the lease is cleared only if some row holds one (``leased``)."""
    out = dict(values or {})
    out.update(state=to.value, state_entered_at=now)
    if to not in states.WORKING and leased:
        out.update(lease_owner=None, lease_expires_at=None)
    if to is State.COMPLETE:
        out["completed_at"] = now
    if to in states.CLAIMABLE:
        out.setdefault("queued_at", now)
    return out


def existing_hashes(conn: sa.Connection, hashes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Which content hashes are already queued or in the library: hash -> {pipeline_id, state, where}."""
    from agentic_pipeline.db.schema import books

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


def create_pipelines(conn: sa.Connection, files: Sequence[tuple[str, str]], *, priority: int, actor: str,
                     now: dt.datetime) -> list[int]:
    """Queue many pipelines in DETECTED (``PipelineStore.create`` in bulk): their ids, in ``files`` order.

    ``files``: (source path, content hash). One multi-row INSERT ... RETURNING for the pipelines,
    one executemany for their first history rows.
    """
    if not files:
        return []
    stmt = pp.insert().returning(pp.c.id, sort_by_parameter_order=True)
    ids = [r.id for r in conn.execute(stmt, [
        {"source_path": path, "content_hash": digest, "state": State.DETECTED.value, "priority": priority,
         "base_priority": priority, "created_at": now, "updated_at": now, "state_entered_at": now, "queued_at": now,
         "title": None} for path, digest in files])]
    insert_history(conn, [(pid, None) for pid in ids], from_state=None, to_state=State.DETECTED.value, at=now,
                   actor=actor, detail=None)
    return ids


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
    from agentic_pipeline.db.schema import books, chapters, chunks, vector_log

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
