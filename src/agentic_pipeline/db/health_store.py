"""SQL for health monitoring: counts, stuck candidates, workers, throughput, stats and the report cache.

Every query here is an index seek or a short index range on a 1M-pipeline / 8M-history
database: per-state counts of the small (non-terminal) states and the queue by priority come from
``ix_pipelines_state_entered`` (state, priority, state_entered_at since migration 0005);
terminal-state counts come from the tally in ``state_duration_stats`` plus the history rows
written since its watermark (exact as long as every state change writes a history row, which
``PipelineStore.transition`` guarantees and pipelines are never deleted); the oldest waiting
book per state from ``ix_pipelines_state_entered``; history figures from ``ix_history_to_at``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from agentic_pipeline.db.schema import approval_audit, health_metrics
from agentic_pipeline.db.schema import pipeline_state_history as hist
from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.db.schema import state_duration_stats as sds
from agentic_pipeline.db.schema import workers
from agentic_pipeline.pipeline import states
import shutil
from pathlib import Path

S = states.State
WORKING = tuple(s.value for s in states.WORKING)
_CANDIDATE_COLUMNS = (pp.c.id, pp.c.state, pp.c.title, pp.c.state_entered_at, pp.c.lease_owner,
                      pp.c.lease_expires_at, pp.c.retry_count, pp.c.auto_recovery_count, pp.c.next_attempt_at,
                      pp.c.retry_stage)


# ------------------------------------------------------------------ pipelines
def count_states(conn: sa.Connection, names: Iterable[str]) -> dict[str, int]:
    """Exact counts of the given states (index range per state: use for the small states)."""
    names = list(names)
    rows = conn.execute(sa.select(pp.c.state, sa.func.count()).where(pp.c.state.in_(names)).group_by(pp.c.state))
    found = dict(rows.all())
    return {n: int(found.get(n, 0)) for n in names}


def count_all_states(conn: sa.Connection) -> dict[str, int]:
    """Exact counts of every state by a full index scan (the fallback before the first stats refresh)."""
    return {state: int(n) for state, n in conn.execute(sa.select(pp.c.state, sa.func.count()).group_by(pp.c.state))}


def queue_by_priority(conn: sa.Connection) -> dict[int, int]:
    rows = conn.execute(sa.select(pp.c.priority, sa.func.count()).where(pp.c.state == S.DETECTED.value)
                        .group_by(pp.c.priority))
    found = dict(rows.all())
    return {p: int(found.get(p, 0)) for p in range(1, 11)}


def oldest_entered(conn: sa.Connection, names: Iterable[str]) -> dict[str, dt.datetime | None]:
    """The earliest ``state_entered_at`` per state: one seek each on ix_pipelines_state_entered."""
    out = {}
    for name in names:
        out[name] = conn.execute(sa.select(sa.func.min(pp.c.state_entered_at)).where(pp.c.state == name)).scalar()
    return out


def working_rows(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every pipeline in a working state (as many as books in flight, plus orphans)."""
    rows = conn.execute(sa.select(*_CANDIDATE_COLUMNS).where(pp.c.state.in_(WORKING)))
    return [dict(r._mapping) for r in rows]


def due_retries(conn: sa.Connection, now: dt.datetime) -> int:
    """NEEDS_RETRY pipelines whose next attempt is due (a worker would claim them now)."""
    return conn.execute(sa.select(sa.func.count()).select_from(pp).where(
        pp.c.state == S.NEEDS_RETRY.value,
        sa.or_(pp.c.next_attempt_at.is_(None), pp.c.next_attempt_at <= now))).scalar_one()


def waiting_retries(conn: sa.Connection, due_before: dt.datetime) -> list[dict[str, Any]]:
    """NEEDS_RETRY pipelines due before ``due_before`` (overdue candidates; next_attempt_at >= entered)."""
    rows = conn.execute(sa.select(*_CANDIDATE_COLUMNS).where(
        pp.c.state == S.NEEDS_RETRY.value, pp.c.state_entered_at < due_before, pp.c.next_attempt_at < due_before))
    return [dict(r._mapping) for r in rows]


def candidate(conn: sa.Connection, pipeline_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(*_CANDIDATE_COLUMNS).where(pp.c.id == pipeline_id)).first()
    return dict(row._mapping) if row is not None else None


def claim_recovery(conn: sa.Connection, seen: dict[str, Any], now: dt.datetime) -> bool:
    """Compare-and-set: bump ``auto_recovery_count`` only if state, lease and attempt are as ``seen``.

    On PostgreSQL the updated row stays locked until the caller's transaction ends, so the
    state transition that follows in the same transaction cannot be raced by the worker.
    """
    def same(col, value):
        return col.is_(None) if value is None else col == value

    result = conn.execute(pp.update().where(
        pp.c.id == seen["id"], pp.c.state == seen["state"], same(pp.c.lease_owner, seen["lease_owner"]),
        same(pp.c.lease_expires_at, seen["lease_expires_at"]), pp.c.retry_count == seen["retry_count"],
        pp.c.auto_recovery_count == seen["auto_recovery_count"], pp.c.state_entered_at == seen["state_entered_at"],
    ).values(auto_recovery_count=pp.c.auto_recovery_count + 1, updated_at=now))
    return result.rowcount == 1


# ------------------------------------------------------------------ workers
def live_workers(conn: sa.Connection, seen_since: dt.datetime) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(workers.c.id, workers.c.host, workers.c.pid, workers.c.last_seen,
                                  workers.c.current_pipeline_id, workers.c.completed_count)
                        .where(workers.c.stopped_at.is_(None), workers.c.last_seen >= seen_since)
                        .order_by(workers.c.id))
    return [dict(r._mapping) for r in rows]


# ------------------------------------------------------------------ history figures
def entered_since(conn: sa.Connection, state: str, since: dt.datetime) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(hist.c.to_state == state, hist.c.at >= since)).scalar())


def last_entered(conn: sa.Connection, names: Iterable[str]) -> dt.datetime | None:
    """The latest time any of ``names`` was entered (one seek per state on ix_history_to_at)."""
    times = [conn.execute(sa.select(sa.func.max(hist.c.at)).where(hist.c.to_state == n)).scalar() for n in names]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def recent_finished(conn: sa.Connection, limit: int = 100) -> tuple[int, int]:
    """(finished, failed) among the last ``limit`` books that reached COMPLETE or FAILED, each by its latest finish.

    A book that failed, was retried and then completed counts once, as completed: the alert is about
    books, not about failure events (which would keep it firing after every failure was mended).
    """
    found: list[tuple[dt.datetime, int, int, str]] = []
    for state in (S.COMPLETE.value, S.FAILED.value):
        rows = conn.execute(sa.select(hist.c.at, hist.c.id, hist.c.pipeline_id).where(hist.c.to_state == state)
                            .order_by(hist.c.at.desc()).limit(limit * 3))
        found += [(at, hid, pid, state) for at, hid, pid in rows]
    latest: dict[int, str] = {}
    for _at, _hid, pid, state in sorted(found, reverse=True):
        if pid not in latest:
            latest[pid] = state
            if len(latest) == limit:
                break
    return len(latest), sum(1 for s in latest.values() if s == S.FAILED.value)


def recent_completed(conn: sa.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The last ``limit`` completions: created, completed, seconds waiting for approval, seconds of work."""
    recent = conn.execute(sa.select(hist.c.pipeline_id, hist.c.at).where(hist.c.to_state == S.COMPLETE.value)
                          .order_by(hist.c.at.desc()).limit(limit)).all()
    if not recent:
        return []
    ids = [r.pipeline_id for r in recent]
    created = dict(conn.execute(sa.select(pp.c.id, pp.c.created_at).where(pp.c.id.in_(ids))).all())
    spent: dict[int, dict[str, float]] = {}
    rows = conn.execute(sa.select(hist.c.pipeline_id, hist.c.from_state, sa.func.sum(hist.c.duration_seconds))
                        .where(hist.c.pipeline_id.in_(ids), hist.c.from_state.is_not(None))
                        .group_by(hist.c.pipeline_id, hist.c.from_state))
    for pid, state, seconds in rows:
        spent.setdefault(pid, {})[state] = float(seconds or 0.0)
    return [{"id": r.pipeline_id, "completed_at": r.at, "created_at": created.get(r.pipeline_id),
             "approval_seconds": spent.get(r.pipeline_id, {}).get(S.PENDING_APPROVAL.value, 0.0),
             "work_seconds": sum(v for k, v in spent.get(r.pipeline_id, {}).items() if k in WORKING)}
            for r in recent if created.get(r.pipeline_id) is not None]


def count_audit(conn: sa.Connection, action: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(approval_audit.c.action == action)).scalar())


# ------------------------------------------------------------------ stats
#: PostgreSQL: history rows younger than this are left for the next refresh, so a transaction that
#: took an id earlier but committed later is not skipped by the watermark (SQLite: writers take turns)
WATERMARK_LAG_SECONDS = 10.0


def watermark_lag(conn: sa.Connection) -> float:
    """Seconds of history the stats watermark stays behind (``WATERMARK_LAG_SECONDS`` on PostgreSQL, 0 on SQLite)."""
    return WATERMARK_LAG_SECONDS if conn.dialect.name == "postgresql" else 0.0


def _bucket_sql(conn: sa.Connection, growth: float, min_seconds: float):
    """``floor(ln(max(duration, min_seconds)) / ln(growth))``: the log bucket, as ``stats.bucket_of``."""
    clamp = (sa.func.greatest if conn.dialect.name == "postgresql" else sa.func.max)(
        hist.c.duration_seconds, min_seconds)
    return sa.cast(sa.func.floor(sa.func.ln(clamp) / math.log(growth)), sa.Integer)


def history_groups(conn: sa.Connection, after_id: int, upto_id: int, *, growth: float,
                   min_seconds: float) -> list[tuple]:
    """History rows ``after_id < id <= upto_id`` aggregated as (from, to, bucket, n, max seconds).

    ``growth``: the bucket width (bucket ``i`` is ``[growth**i, growth**(i+1))`` seconds); shorter
    than ``min_seconds`` counts as ``min_seconds``. The caller owns both numbers (``health.stats``).
    """
    bucket = sa.case((hist.c.duration_seconds.is_(None), None),
                     else_=_bucket_sql(conn, growth, min_seconds)).label("bucket")
    query = (sa.select(hist.c.from_state, hist.c.to_state, bucket, sa.func.count(), sa.func.max(hist.c.duration_seconds))
             .where(hist.c.id > after_id, hist.c.id <= upto_id)
             .group_by(hist.c.from_state, hist.c.to_state, bucket))
    return [tuple(r) for r in conn.execute(query)]


def history_delta(conn: sa.Connection, after_id: int, upto_id: int | None = None) -> list[tuple[str | None, str, int]]:
    """(from, to, n) of the history rows after the watermark: the change in counts since it."""
    where = [hist.c.id > after_id] + ([hist.c.id <= upto_id] if upto_id is not None else [])
    rows = conn.execute(sa.select(hist.c.from_state, hist.c.to_state, sa.func.count())
                        .where(*where).group_by(hist.c.from_state, hist.c.to_state))
    return [tuple(r) for r in rows]


def settled_before(conn: sa.Connection, now: dt.datetime, lag_seconds: float) -> dt.datetime:
    """History rows written before this moment are all committed (or rolled back) by now.

    ``now - lag`` on its own assumes no transaction stays open longer than the lag. On
    PostgreSQL the moment also goes back to the start of the oldest transaction still open that
    has written anything (``pg_stat_activity``, minus the lag for clock differences): its history
    rows have ids below rows already visible, and a watermark past them would skip them for good.
    """
    cutoff = now - dt.timedelta(seconds=lag_seconds)
    if conn.dialect.name == "postgresql":
        oldest = conn.execute(sa.text(
            "SELECT min(xact_start) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
            "AND pid <> pg_backend_pid() AND datname = current_database()")).scalar()
        if oldest is not None:
            cutoff = min(cutoff, oldest - dt.timedelta(seconds=lag_seconds))
    return cutoff


def history_upto(conn: sa.Connection, after_id: int, now: dt.datetime, lag_seconds: float) -> int:
    """The new watermark: the last history id, stopping before rows that may not all be committed yet."""
    top = conn.execute(sa.select(sa.func.max(hist.c.id))).scalar() or 0
    if lag_seconds <= 0 or top <= after_id:
        return max(top, after_id)
    young = conn.execute(sa.select(sa.func.min(hist.c.id)).where(
        hist.c.id > after_id, hist.c.at >= settled_before(conn, now, lag_seconds))).scalar()
    return top if young is None else max(after_id, young - 1)


def counts_and_watermark(conn: sa.Connection, now: dt.datetime, lag_seconds: float) -> tuple[dict[str, int], int]:
    """Exact counts per state and the history id they correspond to (one statement: one snapshot).

    With a lag (PostgreSQL), history rows younger than it are left after the watermark and
    their moves are taken back out of the counts, so the next refresh adds them exactly once.
    """
    top_q = sa.select(sa.func.max(hist.c.id)).scalar_subquery()
    rows = conn.execute(sa.select(pp.c.state, sa.func.count(), top_q).group_by(pp.c.state)).all()
    counts = {state: int(n) for state, n, _ in rows}
    top = (rows[0][2] if rows else None) or 0
    if lag_seconds <= 0 or not top:
        return counts, top
    first_young = conn.execute(sa.select(sa.func.min(hist.c.id)).where(
        hist.c.id <= top, hist.c.at >= settled_before(conn, now, lag_seconds))).scalar()
    if first_young is None:
        return counts, top
    upto = first_young - 1
    for src, dst, n in history_delta(conn, upto, top):
        counts[dst] = counts.get(dst, 0) - n
        if src is not None:
            counts[src] = counts.get(src, 0) + n
    return counts, upto


def load_stats(conn: sa.Connection, *, lock: bool = False) -> dict[str, dict[str, Any]]:
    query = sa.select(sds)
    if lock:  # PostgreSQL row locks; SQLAlchemy renders nothing on SQLite (the write transaction is exclusive)
        query = query.with_for_update()
    return {r.state: dict(r._mapping) for r in conn.execute(query)}


def save_stats(conn: sa.Connection, rows: dict[str, dict[str, Any]], upto: int, now: dt.datetime) -> None:
    """Upsert one row per state (its summary columns and sketch document) with the new watermark."""
    for state, row in rows.items():
        values = dict(row, last_history_id=upto, updated_at=now)
        _upsert(conn, sds, {"state": state, **values}, ["state"], values)


# ------------------------------------------------------------------ report cache
def read_report(conn: sa.Connection, name: str = "report") -> tuple[dict[str, Any], dt.datetime] | None:
    row = conn.execute(sa.select(health_metrics.c.report, health_metrics.c.generated_at)
                       .where(health_metrics.c.name == name)).first()
    return (row.report, row.generated_at) if row is not None else None


def write_report(conn: sa.Connection, report: dict[str, Any], generated_at: dt.datetime, name: str = "report") -> None:
    values = {"report": report, "generated_at": generated_at}
    _upsert(conn, health_metrics, {"name": name, **values}, ["name"], values)


def _upsert(conn: sa.Connection, table: sa.Table, row: dict, keys: list[str], update: dict) -> None:
    insert = (pg_dialect.insert if conn.dialect.name == "postgresql" else sqlite_dialect.insert)(table).values(**row)
    conn.execute(insert.on_conflict_do_update(index_elements=keys, set_=update))


def disk_free_bytes(db_url: str) -> int | None:
    """Free bytes where the SQLite database lives; None on PostgreSQL or an in-memory database."""
    url = sa.engine.make_url(db_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return shutil.disk_usage(Path(url.database).resolve().parent).free
