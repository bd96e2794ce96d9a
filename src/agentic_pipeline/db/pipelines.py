"""The pipeline repository: the only code that writes ``processing_pipelines.state``.

Every state change is ``transition``: a compare-and-set on the expected state (and on the lease
owner when a worker holds one) that writes the history row, and any audit entry, in the same
transaction. A lost race raises ``StaleState`` or ``LeaseLost``; nothing is ever overwritten
silently. ``claim_next`` hands out work in priority order with each engine's own primitive.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Iterable

import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.audit import chain
from agentic_pipeline.clock import Clock, SystemClock
from agentic_pipeline.db import audit_store, library_store, schema, workers_store
from agentic_pipeline.db.engine import Database
from agentic_pipeline.db.schema import pipeline_state_history as history
from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.db.schema import workers
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State

#: pass as ``owner`` to skip the lease check (operator actions on waiting books)
ANY_OWNER = object()
_QUEUES = (State.DETECTED.value, State.APPROVED.value)
_WORKING = tuple(s.value for s in states.WORKING)


# Prebuilt statements: built once, so SQLAlchemy compiles and caches each shape once (the
# transition is the hottest path in the program). Bind names start with b_ to stay clear of columns.
_CURRENT = sa.select(pp.c.id, pp.c.state, pp.c.state_entered_at, pp.c.lease_owner, pp.c.lease_expires_at).where(
    pp.c.id == sa.bindparam("b_pid"))
_CURRENT_FOR_UPDATE = _CURRENT.with_for_update()
_UPDATE_CAS = (pp.update().where(pp.c.id == sa.bindparam("b_pid"), pp.c.state == sa.bindparam("b_expect"))
               .returning(*pp.c))
_UPDATE_CAS_OWNED = (pp.update().where(pp.c.id == sa.bindparam("b_pid"), pp.c.state == sa.bindparam("b_expect"),
                                       pp.c.lease_owner == sa.bindparam("b_owner"),
                                       pp.c.lease_expires_at >= sa.bindparam("b_now", type_=pp.c.lease_expires_at.type))
                     .returning(*pp.c))
_HISTORY_INSERT = history.insert()
_TS = pp.c.lease_expires_at.type
_HISTORY_COLUMNS = ["pipeline_id", "from_state", "to_state", "at", "duration_seconds", "actor", "detail"]
_ONE_STATEMENT: dict[tuple[tuple[str, ...], bool, bool, bool], Any] = {}


def _one_statement_transition(columns: tuple[str, ...], owned: bool, vectors: bool = False,
                              counted: bool = False):
    """PostgreSQL: lock, compare-and-set, history row and the new row back in one statement (one round trip).

    ``WITH o AS (SELECT .. FOR UPDATE), u AS (UPDATE .. FROM o WHERE state = :expect [AND lease
    owner and expiry] RETURNING *, o.state_entered_at), h AS (INSERT INTO history SELECT .. FROM u)
    SELECT .. FROM u``: the seconds spent in the left state come from the locked row's
    ``state_entered_at``. Zero rows: nothing was written (the caller reads the row to say why).
    Built once per set of SET columns (a handful: one per stage outcome) and cached.
    ``vectors``: also require that no chunk of book ``b_book`` lacks a vector for model ``b_model``
    (COMPLETE; ``library_store.count_without_vectors`` in the compare-and-set). ``counted``: also
    add one to worker ``b_counter``'s ``completed_count`` when the row moved (a CTE).
    """
    from agentic_pipeline.db.schema import chunks

    key = (columns, owned, vectors, counted)
    stmt = _ONE_STATEMENT.get(key)
    if stmt is not None:
        return stmt
    now = sa.bindparam("b_now", type_=_TS)
    old = sa.select(pp.c.id, pp.c.state_entered_at).where(pp.c.id == sa.bindparam("b_pid")).with_for_update().cte("o")
    conditions = [pp.c.id == old.c.id, pp.c.state == sa.bindparam("b_expect", type_=pp.c.state.type)]
    if owned:
        conditions += [pp.c.lease_owner == sa.bindparam("b_owner", type_=pp.c.lease_owner.type),
                       pp.c.lease_expires_at >= now]
    if vectors:
        conditions.append(~sa.exists().where(
            chunks.c.book_id == sa.bindparam("b_book", type_=chunks.c.book_id.type),
            sa.or_(chunks.c.embedding.is_(None), chunks.c.embedding_model.is_(None),
                   chunks.c.embedding_model != sa.bindparam("b_model", type_=chunks.c.embedding_model.type))))
    moved = (pp.update().where(*conditions)
             .values({c: sa.bindparam(f"v_{c}", type_=pp.c[c].type) for c in columns})
             .returning(*pp.c, old.c.state_entered_at.label("b_old_entered")).cte("u"))
    spent = sa.func.greatest(sa.cast(sa.extract("epoch", now - moved.c.b_old_entered), sa.Float), 0.0)
    row = sa.select(moved.c.id, sa.bindparam("b_expect", type_=history.c.from_state.type),
                    sa.bindparam("b_to", type_=history.c.to_state.type), now, spent,
                    sa.bindparam("b_actor", type_=history.c.actor.type),
                    sa.bindparam("b_detail", type_=history.c.detail.type))
    written = history.insert().from_select(_HISTORY_COLUMNS, row).cte("h")
    stmt = sa.select(*[moved.c[c.name] for c in pp.c]).add_cte(written)
    if counted:
        stmt = stmt.add_cte(workers.update().where(workers.c.id == sa.bindparam("b_counter", type_=workers.c.id.type),
                                                   sa.exists().select_from(moved))
                            .values(completed_count=workers.c.completed_count + 1).cte("c"))
    _ONE_STATEMENT[key] = stmt
    return stmt


def _sqlite_queue_pick(now):
    """The claim's SELECT on SQLite, pinned to the queue index with INDEXED BY.

    Without ANALYZE statistics (a new database) SQLite prefers ix_pipelines_state_entered for the state
    term and then sorts the whole queue on every claim (~150 claims/s at 20,000 queued instead of ~3,700).
    SQLAlchemy cannot render INDEXED BY, so this one subquery is text; the columns are unqualified and
    resolve to the inner FROM.
    """
    sql = ("SELECT id FROM processing_pipelines INDEXED BY ix_pipelines_queue WHERE " + schema.CLAIMABLE_SQL
           + " AND (lease_owner IS NULL OR lease_expires_at < :b_now)"
           " AND (state != 'needs_retry' OR next_attempt_at IS NULL OR next_attempt_at <= :b_now)"
           " ORDER BY priority, created_at, id LIMIT 1")
    return sa.text(sql).bindparams(now).columns(pp.c.id).subquery()


def _claim_statement(postgres: bool, only: list[str] | None = None):
    """UPDATE ... WHERE id = (the first workable, free pipeline) RETURNING the row, with b_now/b_owner/b_expires."""
    now = sa.bindparam("b_now", type_=_TS)
    free = sa.or_(pp.c.lease_owner.is_(None), pp.c.lease_expires_at < now)
    # within the claimable states (the partial index predicate below), only a NEEDS_RETRY row that is
    # not yet due is unworkable; written this way the planner sees one state condition, the index's
    due = sa.or_(pp.c.state != State.NEEDS_RETRY.value, pp.c.next_attempt_at.is_(None), pp.c.next_attempt_at <= now)
    # the partial index's own predicate, verbatim: SQLite uses a partial index only when the query
    # repeats its WHERE term literally (the OR below does not imply it), and then walks the queue in
    # claim order instead of sorting every claimable row on each claim
    conditions = [sa.text(schema.CLAIMABLE_SQL), free, due] + ([pp.c.state.in_(only)] if only is not None else [])
    pick = sa.select(pp.c.id).where(*conditions).order_by(pp.c.priority, pp.c.created_at, pp.c.id).limit(1)
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    elif only is None:
        pick = _sqlite_queue_pick(now)
    pick_id = sa.select(pick.c.id).scalar_subquery() if isinstance(pick, sa.Subquery) else pick.scalar_subquery()
    return (pp.update().where(pp.c.id == pick_id)
            .values(lease_owner=sa.bindparam("b_owner"), lease_expires_at=sa.bindparam("b_expires", type_=_TS),
                    last_heartbeat=now)
            .returning(*pp.c))


_CLAIM, _CLAIM_PG = _claim_statement(False), _claim_statement(True)


def _claim_enter_statement():
    """PostgreSQL: claim the next book, move it into its stage (history row) and mark the worker busy: one statement.

    ``WITH o AS (SELECT id, state, state_entered_at .. FOR UPDATE SKIP LOCKED LIMIT 1), u AS
    (UPDATE .. FROM o SET lease, state = the stage it enters RETURNING *, o.state, o.state_entered_at),
    h AS (INSERT INTO history SELECT .. FROM u WHERE it left a queue), w AS (UPDATE workers SET
    last_seen, current_pipeline_id = (SELECT id FROM u)) SELECT .. FROM u``. The stage a book enters
    is ``process.enter``'s: DETECTED -> HASHING, APPROVED -> EMBEDDING, NEEDS_RETRY -> its
    ``retry_stage`` when that is a working state (else HASHING, with ``{"resume": true}`` in the
    history detail); a working state (an expired lease) stays where it was. No row: nothing to
    claim, and the worker row still says idle with a fresh ``last_seen``.
    """
    now = sa.bindparam("b_now", type_=_TS)
    free = sa.or_(pp.c.lease_owner.is_(None), pp.c.lease_expires_at < now)
    due = sa.or_(pp.c.state != State.NEEDS_RETRY.value, pp.c.next_attempt_at.is_(None), pp.c.next_attempt_at <= now)
    old = (sa.select(pp.c.id, pp.c.state.label("b_old_state"), pp.c.state_entered_at.label("b_old_entered"))
           .where(sa.text(schema.CLAIMABLE_SQL), free, due).order_by(pp.c.priority, pp.c.created_at, pp.c.id)
           .limit(1).with_for_update(skip_locked=True).cte("o"))
    queued = old.c.b_old_state.in_(_QUEUES + (State.NEEDS_RETRY.value,))
    resume = sa.case((pp.c.retry_stage.in_(_WORKING), pp.c.retry_stage), else_=State.HASHING.value)
    target = sa.case((old.c.b_old_state == State.DETECTED.value, State.HASHING.value),
                     (old.c.b_old_state == State.APPROVED.value, State.EMBEDDING.value),
                     (old.c.b_old_state == State.NEEDS_RETRY.value, resume), else_=old.c.b_old_state)
    moved = (pp.update().where(pp.c.id == old.c.id)
             .values(state=target, updated_at=sa.case((queued, now), else_=pp.c.updated_at),
                     state_entered_at=sa.case((queued, now), else_=pp.c.state_entered_at),
                     lease_owner=sa.bindparam("b_owner", type_=pp.c.lease_owner.type),
                     lease_expires_at=sa.bindparam("b_expires", type_=_TS), last_heartbeat=now)
             .returning(*pp.c, old.c.b_old_state, old.c.b_old_entered).cte("u"))
    spent = sa.func.greatest(sa.cast(sa.extract("epoch", now - moved.c.b_old_entered), sa.Float), 0.0)
    detail = sa.case((moved.c.b_old_state == State.NEEDS_RETRY.value,
                      sa.bindparam("b_resume", type_=history.c.detail.type)), else_=sa.null())
    row = (sa.select(moved.c.id, moved.c.b_old_state, moved.c.state, now, spent,
                     sa.bindparam("b_actor", type_=history.c.actor.type), detail)
           .where(moved.c.b_old_state.in_(_QUEUES + (State.NEEDS_RETRY.value,))))
    written = history.insert().from_select(_HISTORY_COLUMNS, row).cte("h")
    busy = (workers.update().where(workers.c.id == sa.bindparam("b_owner"))
            .values(last_seen=now, current_pipeline_id=sa.select(moved.c.id).scalar_subquery()).cte("w"))
    return sa.select(*[moved.c[c.name] for c in pp.c]).add_cte(written).add_cte(busy)


_CLAIM_ENTER_PG = _claim_enter_statement()
_HEARTBEAT = (pp.update().where(pp.c.id == sa.bindparam("b_pid"), pp.c.lease_owner == sa.bindparam("b_owner"),
                                pp.c.lease_expires_at >= sa.bindparam("b_now", type_=_TS))
              .values(lease_expires_at=sa.bindparam("b_expires", type_=_TS), last_heartbeat=sa.bindparam("b_now")))
_HEARTBEAT_SEEN_PG = _HEARTBEAT.add_cte(
    workers.update().where(workers.c.id == sa.bindparam("b_owner")).values(last_seen=sa.bindparam("b_now"))
    .cte("w"))


def _create_statement():
    """PostgreSQL: insert a DETECTED pipeline and its first history row in one statement (``create``)."""
    now = sa.bindparam("b_now", type_=_TS)
    priority = sa.bindparam("b_priority", type_=pp.c.priority.type)
    new = (pp.insert().values(source_path=sa.bindparam("b_path", type_=pp.c.source_path.type),
                              content_hash=sa.bindparam("b_hash", type_=pp.c.content_hash.type),
                              state=State.DETECTED.value, priority=priority, base_priority=priority, created_at=now,
                              updated_at=now, state_entered_at=now, queued_at=now,
                              title=sa.bindparam("b_title", type_=pp.c.title.type))
           .returning(*pp.c).cte("n"))
    row = sa.select(new.c.id, sa.null(), sa.literal(State.DETECTED.value, history.c.to_state.type), now, sa.null(),
                    sa.bindparam("b_actor", type_=history.c.actor.type), sa.null())
    written = history.insert().from_select(_HISTORY_COLUMNS, row).cte("h")
    return sa.select(*[new.c[c.name] for c in pp.c]).add_cte(written)


_CREATE_PG = _create_statement()
_RELEASE = (pp.update().where(pp.c.id == sa.bindparam("b_pid"), pp.c.lease_owner == sa.bindparam("b_owner"))
            .values(lease_owner=None, lease_expires_at=None))


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A snapshot of one ``processing_pipelines`` row."""

    id: int
    source_path: str
    state: State
    priority: int
    base_priority: int
    created_at: dt.datetime
    updated_at: dt.datetime
    state_entered_at: dt.datetime
    row: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["row"][name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def from_row(cls, row: sa.Row | dict[str, Any]) -> "Pipeline":
        data = dict(row._mapping) if isinstance(row, sa.Row) else dict(row)
        return cls(
            id=data["id"], source_path=data["source_path"], state=State(data["state"]),
            priority=data["priority"], base_priority=data["base_priority"], created_at=data["created_at"],
            updated_at=data["updated_at"], state_entered_at=data["state_entered_at"], row=data,
        )

    def seconds_in_state(self, now: dt.datetime) -> float:
        return (now - self.state_entered_at).total_seconds()


def validate_priority(priority: int) -> int:
    """Priority is an integer 1 (urgent) .. 10 (backfill); 5 is normal."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 10:
        raise errors.InputError(f"priority must be between 1 and 10 (got {priority!r})")
    return priority


class PipelineStore:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    # ----------------------------------------------------------------- reading
    def get(self, pipeline_id: int, conn: sa.Connection | None = None) -> Pipeline:
        if conn is not None:
            return self._get(conn, pipeline_id)
        with self.db.read() as c:
            return self._get(c, pipeline_id)

    def _get(self, conn: sa.Connection, pipeline_id: int, *, lock: bool = False) -> Pipeline:
        query = sa.select(pp).where(pp.c.id == pipeline_id)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise self._not_found(pipeline_id)
        return Pipeline.from_row(row)

    def history(self, pipeline_id: int) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(history).where(history.c.pipeline_id == pipeline_id).order_by(history.c.id))
            return [dict(r._mapping) for r in rows]

    def count_by_state(self) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(pp.c.state, sa.func.count()).group_by(pp.c.state))
            return {state: n for state, n in rows}

    # ----------------------------------------------------------------- creating
    def create(self, *, source_path: str, actor: str, content_hash: str | None = None, priority: int = 5,
               title: str | None = None, conn: sa.Connection | None = None) -> Pipeline:
        """Queue a new pipeline in DETECTED, with its first history row."""
        validate_priority(priority)
        if conn is None and self.db.is_postgres:  # row and history in one statement, its own transaction
            now = self.clock.now()
            with self.db.one_statement() as c:
                row = c.execute(_CREATE_PG, {"b_path": source_path, "b_hash": content_hash, "b_priority": priority,
                                             "b_now": now, "b_title": title, "b_actor": actor}).one()
            return Pipeline.from_row(row)
        if conn is None:
            with self.db.write() as c:
                return self.create(source_path=source_path, actor=actor, content_hash=content_hash,
                                   priority=priority, title=title, conn=c)
        now = self.clock.now()
        row = conn.execute(
            pp.insert().values(
                source_path=source_path, content_hash=content_hash, state=State.DETECTED.value, priority=priority,
                base_priority=priority, created_at=now, updated_at=now, state_entered_at=now, queued_at=now,
                title=title,
            ).returning(*pp.c)
        ).one()
        conn.execute(history.insert().values(pipeline_id=row.id, from_state=None, to_state=State.DETECTED.value,
                                             at=now, duration_seconds=None, actor=actor))
        return Pipeline.from_row(row)

    # ----------------------------------------------------------------- transitions
    def transition(self, pipeline_id: int, to: State, *, expect: State, actor: str, owner: Any = ANY_OWNER,
                   detail: dict[str, Any] | None = None, updates: dict[str, Any] | None = None,
                   audit: chain.AuditEntry | None = None, conn: sa.Connection | None = None,
                   snapshot: Pipeline | None = None, vectors: tuple[int | None, str] | None = None,
                   counted: str | None = None) -> Pipeline:
        """Move ``pipeline_id`` from ``expect`` to ``to``; compare-and-set, history (and audit) in one transaction.

        ``owner``: the worker that must hold a live lease (``ANY_OWNER`` skips the check, for
        operator actions). ``updates``: other columns to set in the same statement.
        ``snapshot``: the row as the lease holder last got it (from ``claim_next`` or its previous
        transition); with an ``owner`` it saves the read before the write (one round trip on
        PostgreSQL): the owner-and-lease compare-and-set alone decides, and only a failed one
        reads the row to say why (same errors as without it). On PostgreSQL every transition first
        tries one statement (``_one_statement_transition``: lock, compare-and-set, history row), so
        the snapshot is not needed there; only a failed one takes the checked path.
        ``vectors``: (book id, model): refuse (``TransientError``) while a chunk of the book has
        no vector for the model. ``counted``: the worker whose ``completed_count`` this move adds
        one to. Both are part of the one statement on PostgreSQL (COMPLETE costs one round trip).
        """
        to, expect = State(to), State(expect)
        if not states.can_transition(expect, to):
            raise errors.InvalidTransition(f"cannot move a pipeline from {expect.value} to {to.value}",
                                           src=expect, dst=to)
        if conn is None:
            if self.db.is_postgres and audit is None:  # the one statement alone, without BEGIN/COMMIT round trips
                now = self.clock.now()
                with self.db.one_statement() as c:
                    row = self._transition_pg(c, pipeline_id, to, expect, actor, owner, detail,
                                              self._values(to, now, updates), now, vectors, counted)
                if row is not None:
                    return Pipeline.from_row(row)
            with self.db.write() as c:  # SQLite, an audit entry, or nothing matched (the checked path says why)
                return self._transition(c, pipeline_id, to, expect, actor, owner, detail, updates, audit, snapshot,
                                        vectors, counted)
        return self._transition(conn, pipeline_id, to, expect, actor, owner, detail, updates, audit, snapshot,
                                vectors, counted)

    def _transition(self, conn, pipeline_id, to, expect, actor, owner, detail, updates, audit,
                    snapshot=None, vectors=None, counted=None) -> Pipeline:
        now = self.clock.now()
        values = self._values(to, now, updates)
        if conn.dialect.name == "postgresql":
            row = self._transition_pg(conn, pipeline_id, to, expect, actor, owner, detail, values, now, vectors,
                                      counted)
            if row is not None:
                if audit is not None:
                    audit_store.append(conn, audit, now)
                return Pipeline.from_row(row)
            snapshot = None  # nothing written: the checked path below says why (or wins a race that just ended)
        if vectors is not None:
            missing = library_store.count_without_vectors(conn, vectors[0], vectors[1])
            if missing:
                raise errors.TransientError(f"{missing} chunks of pipeline {pipeline_id} still have no vector")
        values.update(b_pid=pipeline_id, b_expect=expect.value)
        row = None
        if snapshot is not None and owner is not ANY_OWNER and snapshot.id == pipeline_id and snapshot.state is expect:
            row = conn.execute(_UPDATE_CAS_OWNED, {**values, "b_owner": owner, "b_now": now}).first()
            entered = snapshot.state_entered_at
        if row is None:  # no snapshot, or its compare-and-set failed: read the row to check (and explain)
            select = _CURRENT_FOR_UPDATE if conn.dialect.name == "postgresql" else _CURRENT
            current = conn.execute(select, {"b_pid": pipeline_id}).first()
            if current is None:
                raise self._not_found(pipeline_id)
            self._check_expected(current, expect, owner, now)
            entered = current.state_entered_at
            if owner is ANY_OWNER:
                row = conn.execute(_UPDATE_CAS, values).first()
            else:
                row = conn.execute(_UPDATE_CAS_OWNED, {**values, "b_owner": owner, "b_now": now}).first()
        if row is None:  # changed between our read and our write (SQLite cannot get here: IMMEDIATE)
            raise errors.StaleState(f"pipeline {pipeline_id} changed while moving it to {to.value}; try again")
        spent = (now - entered).total_seconds()
        conn.execute(_HISTORY_INSERT, {"pipeline_id": pipeline_id, "from_state": expect.value, "to_state": to.value,
                                       "at": now, "duration_seconds": max(spent, 0.0), "actor": actor, "detail": detail})
        if counted is not None:
            workers_store.completed(conn, counted)
        if audit is not None:
            audit_store.append(conn, audit, now)
        return Pipeline.from_row(row)

    @staticmethod
    def _transition_pg(conn, pipeline_id, to, expect, actor, owner, detail, values, now, vectors=None,
                       counted=None) -> sa.Row | None:
        """The one-statement transition (see ``_one_statement_transition``); None when nothing matched."""
        owned = owner is not ANY_OWNER
        stmt = _one_statement_transition(tuple(sorted(values)), owned, vectors is not None, counted is not None)
        params = {f"v_{k}": v for k, v in values.items()}
        params.update(b_pid=pipeline_id, b_expect=expect.value, b_to=to.value, b_now=now, b_actor=actor,
                      b_detail=detail)
        if owned:
            params["b_owner"] = owner
        if vectors is not None:
            params.update(b_book=vectors[0], b_model=vectors[1])
        if counted is not None:
            params["b_counter"] = counted
        return conn.execute(stmt, params).first()

    @staticmethod
    def _values(to: State, now: dt.datetime, updates: dict[str, Any] | None) -> dict[str, Any]:
        values = dict(updates or {})
        values.update(state=to.value, updated_at=now, state_entered_at=now)
        if to not in states.WORKING:
            values.update(lease_owner=None, lease_expires_at=None)
        if to is State.COMPLETE:
            values["completed_at"] = now
        if to in states.CLAIMABLE:
            values.setdefault("queued_at", now)
        return values

    @staticmethod
    def _not_found(pipeline_id: int) -> errors.NotFound:
        return errors.NotFound(f"no pipeline with id {pipeline_id}",
                               hint="list them with `agentic-pipeline pending` or `health`")

    def _check_expected(self, current: Any, expect: State, owner: Any, now: dt.datetime) -> None:
        """``current``: a Pipeline or a row with id, state, lease_owner, lease_expires_at."""
        actual = State(current.state)
        if actual is not expect:
            raise errors.StaleState(
                f"pipeline {current.id} is {actual.value}, not {expect.value}; it changed since you looked",
                pipeline_id=current.id, actual=actual, expected=expect,
            )
        if owner is ANY_OWNER:
            return
        lease_owner, expires = current.lease_owner, current.lease_expires_at
        if lease_owner != owner or expires is None or expires < now:
            holder = lease_owner or "nobody"
            raise errors.LeaseLost(f"worker {owner} no longer holds the lease on pipeline {current.id} "
                                   f"(held by {holder})", pipeline_id=current.id, holder=lease_owner)

    def update_fields(self, pipeline_id: int, *, expect: State, values: dict[str, Any], owner: Any = ANY_OWNER,
                      audit: chain.AuditEntry | None = None, conn: sa.Connection | None = None) -> Pipeline:
        """Change non-state columns (priority, results) with the same compare-and-set as ``transition``."""
        if "state" in values:
            raise errors.InvalidTransition("use transition() to change state")
        if conn is None:
            with self.db.write() as c:
                return self.update_fields(pipeline_id, expect=expect, values=values, owner=owner, audit=audit, conn=c)
        now = self.clock.now()
        current = self._get(conn, pipeline_id, lock=True)
        self._check_expected(current, State(expect), owner, now)
        row = conn.execute(pp.update().where(pp.c.id == pipeline_id, pp.c.state == State(expect).value)
                           .values(updated_at=now, **values).returning(*pp.c)).one()
        if audit is not None:
            audit_store.append(conn, audit, now)
        return Pipeline.from_row(row)

    # ----------------------------------------------------------------- leases
    def claim_next(self, worker_id: str, *, lease_seconds: float, states_: Iterable[State] | None = None,
                   conn: sa.Connection | None = None) -> Pipeline | None:
        """Lease the next workable pipeline: priority ASC, created_at ASC, id ASC; None when idle.

        Workable: DETECTED or APPROVED, NEEDS_RETRY whose next attempt is due, or a working
        state whose lease is free or expired (released or orphaned work resumes where it was).
        With ``conn`` the claim joins the caller's write transaction (a worker claims, enters the
        stage and marks itself busy in one commit).
        """
        if conn is None:
            with self.db.write() as c:
                return self.claim_next(worker_id, lease_seconds=lease_seconds, states_=states_, conn=c)
        now = self.clock.now()
        params = {"b_now": now, "b_owner": worker_id, "b_expires": now + dt.timedelta(seconds=lease_seconds)}
        if states_ is None:
            stmt = _CLAIM_PG if conn.dialect.name == "postgresql" else _CLAIM
        else:
            stmt = _claim_statement(conn.dialect.name == "postgresql", [State(s).value for s in states_])
        row = conn.execute(stmt, params).first()
        return Pipeline.from_row(row) if row is not None else None

    def claim_and_enter(self, worker_id: str, *, lease_seconds: float, actor: str,
                        conn: sa.Connection | None = None) -> Pipeline | None:
        """PostgreSQL only: ``claim_next``, the stage entry and the worker row in one statement.

        See ``_claim_enter_statement``; the same result as ``claim_next`` followed by
        ``process.enter`` and ``workers_store.touch(current=...)`` in one transaction. Without
        ``conn`` the statement is its own transaction (one round trip).
        """
        if conn is None:
            with self.db.one_statement() as c:
                return self.claim_and_enter(worker_id, lease_seconds=lease_seconds, actor=actor, conn=c)
        now = self.clock.now()
        row = conn.execute(_CLAIM_ENTER_PG, {"b_now": now, "b_owner": worker_id, "b_actor": actor,
                                             "b_expires": now + dt.timedelta(seconds=lease_seconds),
                                             "b_resume": {"resume": True}}).first()
        return Pipeline.from_row(row) if row is not None else None

    def heartbeat(self, pipeline_id: int, worker_id: str, *, lease_seconds: float,
                  conn: sa.Connection | None = None, seen: bool = False) -> dt.datetime:
        """Extend the lease; ``LeaseLost`` when this worker no longer holds it.

        ``seen``: also refresh the worker's ``last_seen`` (the heartbeat thread's beat), in the
        same transaction; on PostgreSQL both are one statement (one round trip without ``conn``).
        """
        if conn is None:
            with (self.db.one_statement() if self.db.is_postgres else self.db.write()) as c:
                return self.heartbeat(pipeline_id, worker_id, lease_seconds=lease_seconds, conn=c, seen=seen)
        now = self.clock.now()
        expires = now + dt.timedelta(seconds=lease_seconds)
        params = {"b_pid": pipeline_id, "b_owner": worker_id, "b_now": now, "b_expires": expires}
        if seen and conn.dialect.name == "postgresql":
            done = conn.execute(_HEARTBEAT_SEEN_PG, params).rowcount
        else:
            done = conn.execute(_HEARTBEAT, params).rowcount
            if seen:
                workers_store.touch(conn, worker_id, now=now)
        if not done:
            raise errors.LeaseLost(f"worker {worker_id} lost the lease on pipeline {pipeline_id}", pipeline_id=pipeline_id)
        return expires

    def release(self, pipeline_id: int, worker_id: str, conn: sa.Connection | None = None) -> bool:
        """Give the lease back so another worker can claim the book at once."""
        if conn is None:
            with self.db.write() as c:
                return self.release(pipeline_id, worker_id, conn=c)
        return bool(conn.execute(_RELEASE, {"b_pid": pipeline_id, "b_owner": worker_id}).rowcount)
