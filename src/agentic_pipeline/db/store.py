"""The pipeline store's interface: one Protocol, two adapters (huey's ``BaseStorage`` shape).

Callers speak the domain (``create``, ``move``, ``claim_next``, ``heartbeat``...), never SQL, and
never ask which engine they have: ``open_store`` returns the adapter for the URL.

* ``db.sqlite_store.SqliteStore``: every write is a ``BEGIN IMMEDIATE`` transaction (the busy
  timeout queues writers, no lock upgrade can deadlock) and claims are ``UPDATE ... WHERE id =
  (SELECT ... INDEXED BY the queue index ... LIMIT 1) RETURNING *``; sets of ids travel as one
  JSON parameter (``json_each``), history rows go through the driver's executemany.
* ``db.postgres_store.PostgresStore``: claims pick with ``FOR UPDATE SKIP LOCKED``; a write the
  store can say in one statement (a move without an audit entry, a claim with its stage entry
  and worker row, a heartbeat, ``create``) runs alone in autocommit, CTEs and all (one round
  trip); sets of ids travel as one array, history rows as ``INSERT ... SELECT FROM unnest``.

``move`` is the one writer of ``state``: one book or many, compare-and-set on the expected state
(and the lease), the history rows and audit entries in the same transaction. A single-book move
is a batch of one; the adapter picks the SQL for the size (one row: the row back; many: a
set-based UPDATE ... RETURNING id).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol, Sequence

from agentic_pipeline.db.postgres_store import PostgresStore
from agentic_pipeline.db.sqlite_store import SqliteStore

if TYPE_CHECKING:
    import sqlalchemy as sa

    from agentic_pipeline.audit.chain import AuditEntry
    from agentic_pipeline.clock import Clock
    from agentic_pipeline.db.engine import Database
    from agentic_pipeline.db.pipelines import Moved, Pipeline
    from agentic_pipeline.pipeline.states import State


class PipelineStore(Protocol):
    """The repository both adapters implement (``SqliteStore``, ``PostgresStore``)."""

    db: Database
    clock: Clock
    dialect: str
    autocommit_moves: bool

    # reading
    def get(self, pipeline_id: int, conn: sa.Connection | None = None) -> Pipeline: ...
    def history(self, pipeline_id: int) -> list[dict[str, Any]]: ...
    def count_by_state(self) -> dict[str, int]: ...
    def lock_rows(self, conn: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]: ...

    # creating
    def create(self, *, source_path: str, actor: str, content_hash: str | None = None, priority: int = 5,
               title: str | None = None, conn: sa.Connection | None = None) -> Pipeline: ...
    def create_many(self, conn: sa.Connection, files: Sequence[tuple[str, str]], *, priority: int, actor: str,
                    now: dt.datetime) -> list[int]: ...

    # the one writer of state
    def move(self, ids: Sequence[int], to: State, *, expect: State, actor: str, owner: Any = ...,
             detail: dict[str, Any] | None = None, updates: dict[str, Any] | None = None,
             audits: Mapping[int, AuditEntry] | None = None, entered: Mapping[int, dt.datetime] | None = None,
             conn: sa.Connection | None = None, snapshot: Pipeline | None = None,
             vectors: tuple[int | None, str] | None = None, counted: str | None = None,
             now: dt.datetime | None = None) -> Moved: ...
    def transition(self, pipeline_id: int, to: State, *, expect: State, actor: str, owner: Any = ...,
                   detail: dict[str, Any] | None = None, updates: dict[str, Any] | None = None,
                   audit: AuditEntry | None = None, conn: sa.Connection | None = None,
                   snapshot: Pipeline | None = None, vectors: tuple[int | None, str] | None = None,
                   counted: str | None = None) -> Pipeline: ...

    # other columns
    def update_fields(self, pipeline_id: int, *, expect: State, values: dict[str, Any], owner: Any = ...,
                      audit: AuditEntry | None = None, conn: sa.Connection | None = None) -> Pipeline: ...
    def update_many(self, conn: sa.Connection, ids: Sequence[int], expect: State, values: dict[str, Any],
                    now: dt.datetime) -> list[int]: ...

    # leases
    def claim_next(self, worker_id: str, *, lease_seconds: float, states_: Iterable[State] | None = None,
                   conn: sa.Connection | None = None) -> Pipeline | None: ...
    def claim_and_enter(self, worker_id: str, *, lease_seconds: float, actor: str) -> Pipeline | None: ...
    def heartbeat(self, pipeline_id: int, worker_id: str, *, lease_seconds: float,
                  conn: sa.Connection | None = None, seen: bool = False) -> dt.datetime: ...
    def release(self, pipeline_id: int, worker_id: str, conn: sa.Connection | None = None) -> bool: ...


def open_store(db: Database, clock: Clock | None = None) -> PipelineStore:
    """The adapter for ``db``'s engine."""
    adapter = PostgresStore if db.dialect == "postgresql" else SqliteStore
    return adapter(db, clock)
