"""The pipeline repository: the only code that writes ``processing_pipelines.state``.

``store.open_store(db, clock)`` returns the adapter for the engine (``SqliteStore`` or
``PostgresStore``, the ``db.store.PipelineStore`` Protocol); this module holds what both share:
the ``Pipeline`` snapshot, the columns a move sets (``transition_values``), the checked
single-row move and the set-based move, the claim statement (its ORDER BY rendered from
``pipeline.priority.CLAIM_ORDER``) and the stage entry (``pipeline.states.entry_stage``).

Every state change is ``move``: a compare-and-set on the expected state (and on the lease owner
when a worker holds one) that writes the history rows, and any audit entries, in the same
transaction. A lost race raises ``StaleState`` or ``LeaseLost`` (one book) or leaves the book out
of the ids that moved (a batch that read its rows first); nothing is ever overwritten silently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.audit import chain
from agentic_pipeline.clock import Clock, SystemClock
from agentic_pipeline.db import audit_store, library_store, schema, workers_store
from agentic_pipeline.db.engine import Database
from agentic_pipeline.db.schema import pipeline_state_history as history
from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.pipeline import priority as priority_rules
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State

#: pass as ``owner`` to skip the lease check (operator actions on waiting books)
ANY_OWNER: Any = object()

# Prebuilt statements: built once, so SQLAlchemy compiles and caches each shape once (the
# transition is the hottest path in the program). Bind names start with b_ to stay clear of columns.
# FOR UPDATE locks the row on PostgreSQL; SQLAlchemy renders nothing on SQLite (its write
# transaction is exclusive).
_CURRENT = (sa.select(pp.c.id, pp.c.state, pp.c.state_entered_at, pp.c.lease_owner, pp.c.lease_expires_at)
            .where(pp.c.id == sa.bindparam("b_pid")).with_for_update())
_UPDATE_CAS = (pp.update().where(pp.c.id == sa.bindparam("b_pid"), pp.c.state == sa.bindparam("b_expect"))
               .returning(*pp.c))
_UPDATE_CAS_OWNED = (pp.update().where(pp.c.id == sa.bindparam("b_pid"), pp.c.state == sa.bindparam("b_expect"),
                                       pp.c.lease_owner == sa.bindparam("b_owner"),
                                       pp.c.lease_expires_at >= sa.bindparam("b_now", type_=pp.c.lease_expires_at.type))
                     .returning(*pp.c))
_HISTORY_INSERT = history.insert()
TS = pp.c.lease_expires_at.type
HISTORY_COLUMNS = ["pipeline_id", "from_state", "to_state", "at", "duration_seconds", "actor", "detail"]
#: the claim's ORDER BY, from the one rule
CLAIM_ORDER_BY = tuple(pp.c[name] for name in priority_rules.CLAIM_ORDER)
HEARTBEAT = (pp.update().where(pp.c.id == sa.bindparam("b_pid"), pp.c.lease_owner == sa.bindparam("b_owner"),
                               pp.c.lease_expires_at >= sa.bindparam("b_now", type_=TS))
             .values(lease_expires_at=sa.bindparam("b_expires", type_=TS), last_heartbeat=sa.bindparam("b_now")))
_RELEASE = (pp.update().where(pp.c.id == sa.bindparam("b_pid"), pp.c.lease_owner == sa.bindparam("b_owner"))
            .values(lease_owner=None, lease_expires_at=None))
_LOCK_COLUMNS = (pp.c.id, pp.c.state, pp.c.state_entered_at, pp.c.priority, pp.c.base_priority, pp.c.aging_level,
                 pp.c.book_id, pp.c.confidence, pp.c.lease_owner, pp.c.lease_expires_at)


def claimable_conditions(now: Any) -> list[Any]:
    """What a claim may take: a claimable row (the partial index's own predicate, verbatim), free, due.

    SQLite uses a partial index only when the query repeats its WHERE term literally (the OR below
    does not imply it), and then walks the queue in claim order instead of sorting every claimable
    row on each claim. Within the claimable states only a NEEDS_RETRY row not yet due is
    unworkable; written this way the planner sees one state condition, the index's.
    """
    free = sa.or_(pp.c.lease_owner.is_(None), pp.c.lease_expires_at < now)
    due = sa.or_(pp.c.state != State.NEEDS_RETRY.value, pp.c.next_attempt_at.is_(None), pp.c.next_attempt_at <= now)
    return [sa.text(schema.CLAIMABLE_SQL), free, due]


def claim_statement(pick: Any) -> Any:
    """UPDATE ... WHERE id = (``pick``: the first workable, free pipeline) RETURNING the row."""
    now = sa.bindparam("b_now", type_=TS)
    return (pp.update().where(pp.c.id == pick)
            .values(lease_owner=sa.bindparam("b_owner"), lease_expires_at=sa.bindparam("b_expires", type_=TS),
                    last_heartbeat=now)
            .returning(*pp.c))


def claim_pick(only: list[str] | None = None, *, skip_locked: bool = False) -> Any:
    """The claim's SELECT of one id, in claim order (``skip_locked``: PostgreSQL's FOR UPDATE SKIP LOCKED)."""
    now = sa.bindparam("b_now", type_=TS)
    conditions = claimable_conditions(now) + ([pp.c.state.in_(only)] if only is not None else [])
    pick = sa.select(pp.c.id).where(*conditions).order_by(*CLAIM_ORDER_BY).limit(1)
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    return pick.scalar_subquery()


@dataclasses.dataclass(frozen=True)
class Moved:
    """What ``move`` changed: the ids that moved (ascending) and, for a batch of one, the new row."""

    ids: list[int]
    row: Pipeline | None = None


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
    def from_row(cls, row: sa.Row | Mapping[str, Any]) -> "Pipeline":
        data = dict(row._mapping) if isinstance(row, sa.Row) else dict(row)
        return cls(
            id=data["id"], source_path=data["source_path"], state=State(data["state"]),
            priority=data["priority"], base_priority=data["base_priority"], created_at=data["created_at"],
            updated_at=data["updated_at"], state_entered_at=data["state_entered_at"], row=data,
        )

    def seconds_in_state(self, now: dt.datetime) -> float:
        return (now - self.state_entered_at).total_seconds()


def transition_values(to: State, now: dt.datetime, updates: Mapping[str, Any] | None,
                      clear_lease: bool = True) -> dict[str, Any]:
    """The columns a move to ``to`` sets, besides ``updates``: one rule for a book and for a set.

    ``clear_lease``: leaving the working states clears the lease; a set-based move whose rows hold
    no lease leaves the lease columns out of its SET (every column named moves the row in each index
    that holds it: measurably slower for 10,000 rows), with the same result.
    """
    values = dict(updates or {})
    values.update(state=to.value, updated_at=now, state_entered_at=now)
    if to not in states.WORKING and clear_lease:
        values.update(lease_owner=None, lease_expires_at=None)
    if to is State.COMPLETE:
        values["completed_at"] = now
    if to in states.CLAIMABLE:
        values.setdefault("queued_at", now)
    return values


def not_found(pipeline_id: int) -> errors.NotFound:
    return errors.NotFound(f"no pipeline with id {pipeline_id}",
                           hint="list them with `agentic-pipeline pending` or `health`")


class BaseStore:
    """What both adapters share; each adds its engine's statements and concurrency primitive."""

    dialect = ""
    #: a move without an audit entry is one autocommitted statement (one round trip), so reading
    #: something first to spare a transaction pays off; False where a transaction costs no round trips
    autocommit_moves = False

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
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise not_found(pipeline_id)
        return Pipeline.from_row(row)

    def history(self, pipeline_id: int) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(history).where(history.c.pipeline_id == pipeline_id).order_by(history.c.id))
            return [dict(r._mapping) for r in rows]

    def count_by_state(self) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(pp.c.state, sa.func.count()).group_by(pp.c.state))
            return {state: n for state, n in rows}

    def id_in(self, ids: Sequence[int]) -> sa.ColumnElement[bool]:
        """``id`` is one of ``ids``, bound as ONE parameter (not thousands of placeholders)."""
        raise NotImplementedError

    def lock_rows(self, conn: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The current rows of ``ids`` (id, state, times, priority, lease...), locked until the transaction ends."""
        query = sa.select(*_LOCK_COLUMNS).where(self.id_in(ids)).order_by(pp.c.id).with_for_update()
        result = conn.execute(query)
        keys = list(result.keys())
        return {row[0]: dict(zip(keys, row)) for row in result.all()}

    # ----------------------------------------------------------------- creating
    def create(self, *, source_path: str, actor: str, content_hash: str | None = None, priority: int = 5,
               title: str | None = None, conn: sa.Connection | None = None) -> Pipeline:
        """Queue a new pipeline in DETECTED, with its first history row."""
        priority_rules.validate_priority(priority)
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

    def create_many(self, conn: sa.Connection, files: Sequence[tuple[str, str]], *, priority: int, actor: str,
                    now: dt.datetime) -> list[int]:
        """Queue many pipelines in DETECTED (``create`` in bulk): their ids, in ``files`` order.

        ``files``: (source path, content hash). One multi-row INSERT ... RETURNING for the pipelines,
        one bulk insert for their first history rows.
        """
        if not files:
            return []
        stmt = pp.insert().returning(pp.c.id, sort_by_parameter_order=True)
        ids = [r.id for r in conn.execute(stmt, [
            {"source_path": path, "content_hash": digest, "state": State.DETECTED.value, "priority": priority,
             "base_priority": priority, "created_at": now, "updated_at": now, "state_entered_at": now,
             "queued_at": now, "title": None} for path, digest in files])]
        self.insert_history(conn, [(pid, None) for pid in ids], from_state=None, to_state=State.DETECTED.value,
                            at=now, actor=actor, detail=None)
        return ids

    def insert_history(self, conn: sa.Connection, moves: Sequence[tuple[int, float | None]], *,
                       from_state: str | None, to_state: str, at: dt.datetime, actor: str,
                       detail: dict[str, Any] | None) -> None:
        """History rows for ``moves`` (pipeline id, seconds spent in ``from_state``) in one round trip."""
        raise NotImplementedError

    # ----------------------------------------------------------------- the one writer of state
    def move(self, ids: Sequence[int], to: State, *, expect: State, actor: str, owner: Any = ANY_OWNER,
             detail: dict[str, Any] | None = None, updates: dict[str, Any] | None = None,
             audits: Mapping[int, chain.AuditEntry] | None = None,
             locked: Mapping[int, Mapping[str, Any]] | None = None, conn: sa.Connection | None = None,
             snapshot: Pipeline | None = None, vectors: tuple[int | None, str] | None = None,
             counted: str | None = None, now: dt.datetime | None = None) -> Moved:
        """Move pipelines ``ids`` from ``expect`` to ``to``: compare-and-set, history and audit in one transaction.

        One book (``locked`` not given): the row comes back in ``Moved.row``, and a lost race
        raises ``StaleState`` / ``LeaseLost`` (``NotFound`` for no such row). ``owner``: the worker
        that must hold a live lease (``ANY_OWNER`` skips the check, for operator actions).
        ``snapshot``: the row as the lease holder last got it; with an ``owner`` it saves the read
        before the write (the owner-and-lease compare-and-set alone decides, and only a failed
        one reads the row to say why). ``vectors``: (book id, model): refuse (``TransientError``)
        while a chunk of the book has no vector for the model. ``counted``: the worker whose
        ``completed_count`` this move adds one to.

        Many books, or ``locked`` (the rows as ``lock_rows`` returned them in the caller's
        transaction): one set-based compare-and-set; a book no longer in ``expect`` is left out of
        ``Moved.ids`` (the caller reports it). ``audits``: the entry per id, appended for the ids
        that moved, in id order. ``updates``: other columns to set, the same for every book.
        ``now``: the moment of a set move (a batch stamps every book, and its own entry, with one).
        """
        to, expect = State(to), State(expect)
        if not states.can_transition(expect, to):
            raise errors.InvalidTransition(f"cannot move a pipeline from {expect.value} to {to.value}",
                                           src=expect, dst=to)
        ids = list(ids)
        if locked is None and len(ids) == 1:  # a batch of one: the row back, or the reason it did not move
            if now is not None:
                raise ValueError("now applies to a set move (a move of one book is stamped by the store)")
            audit = audits.get(ids[0]) if audits else None
            row = self._move_one(ids[0], to, expect, actor, owner, detail, updates, audit, conn, snapshot,
                                 vectors, counted)
            return Moved([row.id], row)
        if owner is not ANY_OWNER or snapshot is not None or vectors is not None or counted is not None:
            raise ValueError("owner, snapshot, vectors and counted apply to a move of one book")
        if conn is None:
            with self.db.write() as c:
                return self.move(ids, to, expect=expect, actor=actor, detail=detail, updates=updates,
                                 audits=audits, locked=locked, conn=c, now=now)
        if locked is None:
            locked = self.lock_rows(conn, ids)
        return Moved(self._move_set(conn, ids, to, expect, actor, detail, updates, audits, locked,
                                    now or self.clock.now()))

    def transition(self, pipeline_id: int, to: State, *, expect: State, actor: str, owner: Any = ANY_OWNER,
                   detail: dict[str, Any] | None = None, updates: dict[str, Any] | None = None,
                   audit: chain.AuditEntry | None = None, conn: sa.Connection | None = None,
                   snapshot: Pipeline | None = None, vectors: tuple[int | None, str] | None = None,
                   counted: str | None = None) -> Pipeline:
        """``move`` of one book, returning its new row (see ``move``)."""
        moved = self.move([pipeline_id], to, expect=expect, actor=actor, owner=owner, detail=detail,
                          updates=updates, audits={pipeline_id: audit} if audit is not None else None, conn=conn,
                          snapshot=snapshot, vectors=vectors, counted=counted)
        assert moved.row is not None
        return moved.row

    def _move_one(self, pipeline_id, to, expect, actor, owner, detail, updates, audit, conn, snapshot,
                  vectors, counted) -> Pipeline:
        """One book in a write transaction (the adapter may first try a cheaper statement)."""
        if conn is None:
            with self.db.write() as c:
                return self._move_checked(c, pipeline_id, to, expect, actor, owner, detail, updates, audit,
                                          snapshot, vectors, counted)
        return self._move_checked(conn, pipeline_id, to, expect, actor, owner, detail, updates, audit, snapshot,
                                  vectors, counted)

    def _move_checked(self, conn, pipeline_id, to, expect, actor, owner, detail, updates, audit,
                      snapshot=None, vectors=None, counted=None) -> Pipeline:
        """The row read (locked) and checked, then the compare-and-set, history and audit."""
        now = self.clock.now()
        values = transition_values(to, now, updates)
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
            current = conn.execute(_CURRENT, {"b_pid": pipeline_id}).first()
            if current is None:
                raise not_found(pipeline_id)
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

    def _move_set(self, conn, ids, to, expect, actor, detail, updates, audits, locked, now) -> list[int]:
        """Many books: one ``UPDATE ... WHERE id IN (ids) AND state = expect RETURNING id``, bulk history and audit."""
        rows = [locked[i] for i in ids if i in locked and locked[i]["state"] == expect.value]
        if not rows:
            return []
        leased = any(r.get("lease_owner") is not None or r.get("lease_expires_at") is not None for r in rows)
        values = transition_values(to, now, updates, clear_lease=leased)
        moved = set(self.update_many(conn, [r["id"] for r in rows], expect, values, now))
        self.insert_history(conn, [(r["id"], max((now - r["state_entered_at"]).total_seconds(), 0.0))
                                   for r in rows if r["id"] in moved],
                            from_state=expect.value, to_state=to.value, at=now, actor=actor, detail=detail)
        if audits:
            audit_store.append_bulk(conn, [audits[i] for i in sorted(moved) if i in audits], now)
        return sorted(moved)

    @staticmethod
    def _check_expected(current: Any, expect: State, owner: Any, now: dt.datetime) -> None:
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

    # ----------------------------------------------------------------- other columns
    def update_fields(self, pipeline_id: int, *, expect: State, values: dict[str, Any], owner: Any = ANY_OWNER,
                      audit: chain.AuditEntry | None = None, conn: sa.Connection | None = None) -> Pipeline:
        """Change non-state columns (priority, results) with the same compare-and-set as ``move``."""
        if "state" in values:
            raise errors.InvalidTransition("use move() to change state")
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

    def update_many(self, conn: sa.Connection, ids: Sequence[int], expect: State, values: dict[str, Any],
                    now: dt.datetime) -> list[int]:
        """``UPDATE ... WHERE id IN (ids) AND state = expect RETURNING id``: the ids actually changed."""
        if not ids:
            return []
        stmt = (pp.update().where(self.id_in(ids), pp.c.state == State(expect).value)
                .values(**{"updated_at": now, **values}).returning(pp.c.id))
        return [r.id for r in conn.execute(stmt)]

    # ----------------------------------------------------------------- leases
    def claim_next(self, worker_id: str, *, lease_seconds: float, states_: Iterable[State] | None = None,
                   conn: sa.Connection | None = None) -> Pipeline | None:
        """Lease the next workable pipeline in ``priority.CLAIM_ORDER``; None when idle.

        Workable: DETECTED or APPROVED, NEEDS_RETRY whose next attempt is due, or a working
        state whose lease is free or expired (released or orphaned work resumes where it was).
        With ``conn`` the claim joins the caller's write transaction.
        """
        if conn is None:
            with self.db.write() as c:
                return self.claim_next(worker_id, lease_seconds=lease_seconds, states_=states_, conn=c)
        now = self.clock.now()
        params = {"b_now": now, "b_owner": worker_id, "b_expires": now + dt.timedelta(seconds=lease_seconds)}
        only = None if states_ is None else [State(s).value for s in states_]
        row = conn.execute(self._claim(only), params).first()
        return Pipeline.from_row(row) if row is not None else None

    def _claim(self, only: list[str] | None) -> Any:
        raise NotImplementedError

    def claim_and_enter(self, worker_id: str, *, lease_seconds: float, actor: str) -> Pipeline | None:
        """``claim_next``, the stage entry (``enter``) and the worker row marked busy, in one transaction.

        No row: nothing to claim, and the worker row still says idle with a fresh ``last_seen``.
        """
        with self.db.write() as conn:
            workers_store.relax_commit(conn)
            p = self.claim_next(worker_id, lease_seconds=lease_seconds, conn=conn)
            if p is not None:
                p = self.enter(p, worker_id, actor=actor, conn=conn)
            workers_store.touch(conn, worker_id, now=self.clock.now(), current=p.id if p is not None else None)
        return p

    def enter(self, p: Pipeline, worker_id: str, *, actor: str, conn: sa.Connection | None = None) -> Pipeline:
        """Move a claimed queue entry into its working stage (``states.entry_stage``); working states stay."""
        target = states.entry_stage(p.state, p.row.get("retry_stage"))
        if target is None:
            return p
        return self.transition(p.id, target, expect=p.state, actor=actor, owner=worker_id, snapshot=p, conn=conn,
                               detail={"resume": True} if p.state is State.NEEDS_RETRY else None)

    def heartbeat(self, pipeline_id: int, worker_id: str, *, lease_seconds: float,
                  conn: sa.Connection | None = None, seen: bool = False) -> dt.datetime:
        """Extend the lease; ``LeaseLost`` when this worker no longer holds it.

        ``seen``: also refresh the worker's ``last_seen`` (the heartbeat thread's beat), in the
        same transaction (one statement where the engine can).
        """
        if conn is None:
            with self.db.one_statement() as c:
                return self.heartbeat(pipeline_id, worker_id, lease_seconds=lease_seconds, conn=c, seen=seen)
        now = self.clock.now()
        expires = now + dt.timedelta(seconds=lease_seconds)
        params = {"b_pid": pipeline_id, "b_owner": worker_id, "b_now": now, "b_expires": expires}
        if not self._heartbeat(conn, params, seen):
            raise errors.LeaseLost(f"worker {worker_id} lost the lease on pipeline {pipeline_id}", pipeline_id=pipeline_id)
        return expires

    def _heartbeat(self, conn: sa.Connection, params: dict[str, Any], seen: bool) -> bool:
        done = conn.execute(HEARTBEAT, params).rowcount
        if seen:
            workers_store.touch(conn, params["b_owner"], now=params["b_now"])
        return bool(done)

    def release(self, pipeline_id: int, worker_id: str, conn: sa.Connection | None = None) -> bool:
        """Give the lease back so another worker can claim the book at once."""
        if conn is None:
            with self.db.write() as c:
                return self.release(pipeline_id, worker_id, conn=c)
        return bool(conn.execute(_RELEASE, {"b_pid": pipeline_id, "b_owner": worker_id}).rowcount)

