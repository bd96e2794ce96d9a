"""SQL for workers: registration and liveness, claiming one given pipeline, what is still in flight,
duplicate lookups, and the maintenance leader rows.

Leader election for periodic maintenance is one ``maintenance_tasks`` row per task: a worker takes
it with a compare-and-set on (holder, lease expiry, last run), which works the same on SQLite
(``BEGIN IMMEDIATE`` serialises writers) and PostgreSQL (the UPDATE's row lock serialises them).
"""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from agentic_pipeline.db.schema import maintenance_tasks as mt
from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.db.schema import workers
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State

#: pipelines that still count as "the book" for duplicate detection and queue dedupe
DEAD = (State.ARCHIVED.value, State.REJECTED.value, State.FAILED.value, State.DUPLICATE.value)
_WORKING = tuple(s.value for s in states.WORKING)


# ----------------------------------------------------------------------- workers
#: engines whose every connection already runs with ``synchronous_commit=off`` (``relax_engine``)
_RELAXED: "weakref.WeakSet[sa.Engine]" = weakref.WeakSet()


#: how long a worker's statement waits for a lock on PostgreSQL before giving up (and backing off)
LOCK_TIMEOUT_MS = 30_000


def relax_engine(engine: sa.Engine) -> None:
    """A worker process's own engine: every PostgreSQL connection starts with ``synchronous_commit=off``.

    Set in the connection's startup packet (libpq ``options``), so it costs no round trip, where
    ``SET LOCAL`` in each transaction cost one per commit. Only ``run_worker`` (and the benchmark
    of it) calls this, on the App it opened itself: interactive commands never get relaxed
    connections. In a relaxed process everything commits this way (worker progress, beats,
    its maintenance runs) except what calls ``strict_commit`` (queueing from the watcher).
    Connections opened before the call are dropped from the pool so none stays strict.
    """
    if engine.dialect.name != "postgresql" or engine in _RELAXED:
        return

    @event.listens_for(engine, "do_connect")
    def _relaxed(_dialect, _record, _cargs, cparams):
        # lock_timeout: a worker waiting on a lock someone holds for long (a LOCK TABLE, a stuck migration)
        # gets a StoreError after 30 s and backs off, instead of sitting deaf to its stop signals
        cparams["options"] = (cparams.get("options", "") + f" -c synchronous_commit=off -c lock_timeout={LOCK_TIMEOUT_MS}").strip()

    engine.dispose()
    _RELAXED.add(engine)


def relax_commit(conn: sa.Connection) -> None:
    """On PostgreSQL, commit this transaction without waiting for its WAL flush (``synchronous_commit=off``).

    Only for a worker's own progress (claims, stage transitions, beats, releases, vectors): the
    same guarantee SQLite gives every transaction here (WAL with ``synchronous=NORMAL``). A
    worker crash loses nothing; a database server crash or power cut may undo the last few
    hundred milliseconds of progress, whole transactions at a time, and those books resume at
    the stage before (stages are idempotent, leases expire). Human decisions and queueing keep
    the default, and any later synchronous commit flushes the WAL written before it. Free on a
    ``relax_engine`` connection (already relaxed); one ``SET LOCAL`` otherwise (``process --wait``).
    """
    if conn.dialect.name == "postgresql" and conn.engine not in _RELAXED:
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def strict_commit(conn: sa.Connection) -> None:
    """This transaction commits durably even on a ``relax_engine`` connection (queueing inside a worker)."""
    if conn.dialect.name == "postgresql" and conn.engine in _RELAXED:
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO ON")


def register(conn: sa.Connection, worker_id: str, *, host: str, pid: int, now: dt.datetime) -> None:
    conn.execute(workers.delete().where(workers.c.id == worker_id))
    conn.execute(workers.insert().values(id=worker_id, host=host, pid=pid, started_at=now, last_seen=now))


# prebuilt (compiled once): these run on every claim, beat and completion
_TS = workers.c.last_seen.type
_TOUCH = workers.update().where(workers.c.id == sa.bindparam("b_id")).values(
    last_seen=sa.bindparam("b_now", type_=_TS))
_TOUCH_CURRENT = workers.update().where(workers.c.id == sa.bindparam("b_id")).values(
    last_seen=sa.bindparam("b_now", type_=_TS), current_pipeline_id=sa.bindparam("b_current"))
_COMPLETED = workers.update().where(workers.c.id == sa.bindparam("b_id")).values(
    completed_count=workers.c.completed_count + 1)


def touch(conn: sa.Connection, worker_id: str, *, now: dt.datetime, current: Any = ...) -> None:
    """Refresh ``last_seen``; also set ``current_pipeline_id`` when ``current`` is given (None clears it)."""
    if current is ...:
        conn.execute(_TOUCH, {"b_id": worker_id, "b_now": now})
    else:
        conn.execute(_TOUCH_CURRENT, {"b_id": worker_id, "b_now": now, "b_current": current})


def count_stale_writes(conn: sa.Connection, worker_id: str, n: int = 1) -> None:
    """``n`` more writes of this worker were refused: the book was no longer its own."""
    conn.execute(workers.update().where(workers.c.id == worker_id)
                 .values(stale_writes=workers.c.stale_writes + n))


def completed(conn: sa.Connection, worker_id: str) -> None:
    conn.execute(_COMPLETED, {"b_id": worker_id})


def stop(conn: sa.Connection, worker_id: str, *, now: dt.datetime) -> None:
    conn.execute(workers.update().where(workers.c.id == worker_id)
                 .values(stopped_at=now, last_seen=now, current_pipeline_id=None))


def get(conn: sa.Connection, worker_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(workers).where(workers.c.id == worker_id)).first()
    return dict(row._mapping) if row else None


# ----------------------------------------------------------------------- pipelines
def claim_pipeline(conn: sa.Connection, pipeline_id: int, worker_id: str, *, now: dt.datetime,
                   lease_seconds: float) -> bool:
    """Lease this one pipeline if its lease is free, expired or already ours (``process --wait``)."""
    free = sa.or_(pp.c.lease_owner.is_(None), pp.c.lease_owner == worker_id, pp.c.lease_expires_at < now)
    return bool(conn.execute(
        pp.update().where(pp.c.id == pipeline_id, free)
        .values(lease_owner=worker_id, lease_expires_at=now + dt.timedelta(seconds=lease_seconds), last_heartbeat=now)
    ).rowcount)


def outstanding(conn: sa.Connection, now: dt.datetime) -> dict[str, int]:
    """What a draining worker still waits for: queued books, retries, and stages leased by a live worker."""
    queued = conn.execute(sa.select(sa.func.count()).select_from(pp).where(
        pp.c.state.in_((State.DETECTED.value, State.APPROVED.value, State.NEEDS_RETRY.value)))).scalar_one()
    working = conn.execute(sa.select(sa.func.count()).select_from(pp).where(pp.c.state.in_(_WORKING))).scalar_one()
    return {"queued": queued, "working": working}


def live_duplicate_of(conn: sa.Connection, pipeline_id: int, content_hash: str) -> int | None:
    """The lowest-id other live pipeline with the same content hash, if it has a lower id than ours."""
    return conn.execute(
        sa.select(sa.func.min(pp.c.id)).where(pp.c.content_hash == content_hash, pp.c.id < pipeline_id,
                                              pp.c.state.not_in(DEAD))
    ).scalar()


def live_pipeline_for_file(conn: sa.Connection, source_path: str, content_hash: str) -> int | None:
    """A live pipeline already queued for this exact file and content (queueing twice is a no-op)."""
    return conn.execute(
        sa.select(sa.func.min(pp.c.id)).where(pp.c.source_path == source_path, pp.c.content_hash == content_hash,
                                              pp.c.state.not_in(DEAD))
    ).scalar()


def lock_key(conn: sa.Connection, key: int) -> None:
    """Serialise a decision on PostgreSQL (transaction advisory lock); SQLite's writer lock already does."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


# ----------------------------------------------------------------------- maintenance leader rows
def take_task(conn: sa.Connection, name: str, holder: str, *, now: dt.datetime, interval: float,
              lease_seconds: float) -> bool:
    """Become the one runner of task ``name`` if it is due and nobody live holds it."""
    if conn.execute(sa.select(mt.c.name).where(mt.c.name == name)).first() is None:
        try:
            with conn.begin_nested():
                conn.execute(mt.insert().values(name=name))
        except sa.exc.IntegrityError:
            pass
    free = sa.or_(mt.c.holder.is_(None), mt.c.holder == holder, mt.c.lease_expires_at < now)
    due = sa.or_(mt.c.last_run_at.is_(None), mt.c.last_run_at <= now - dt.timedelta(seconds=interval))
    return bool(conn.execute(
        mt.update().where(mt.c.name == name, free, due)
        .values(holder=holder, lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
    ).rowcount)


def finish_task(conn: sa.Connection, name: str, holder: str, *, now: dt.datetime, result: dict[str, Any]) -> None:
    conn.execute(mt.update().where(mt.c.name == name, mt.c.holder == holder)
                 .values(holder=None, lease_expires_at=None, last_run_at=now, last_result=result))


def tasks(conn: sa.Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(sa.select(mt).order_by(mt.c.name))]


def pipelines_in_state(conn: sa.Connection, state: str, *, limit: int | None = None,
                       book_type: str | None = None) -> list[dict[str, Any]]:
    """Rows in ``state``, oldest in state first (at most ``limit``: one index range scan, not the whole state)."""
    query = sa.select(pp).where(pp.c.state == state)
    if book_type is not None:
        query = query.where(pp.c.book_type == book_type)
    query = query.order_by(pp.c.state_entered_at, pp.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [dict(m) for m in conn.execute(query).mappings().all()]


def count_in_state(conn: sa.Connection, state: str, *, book_type: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(pp).where(pp.c.state == state)
    if book_type is not None:
        query = query.where(pp.c.book_type == book_type)
    return conn.execute(query).scalar_one()
