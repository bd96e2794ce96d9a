"""Applying one chunk of a batch plan inside the caller's write transaction (set-based where it counts).

Each applier reads the chunk's current rows once (locked), keeps the books still in the state the
plan saw (compare-and-set; the others are skipped with the reason), changes the kept ones with one
``UPDATE ... WHERE id IN (...) AND state = :expected RETURNING id`` per expected state, and writes
history and audit rows in bulk. The audit and state result per book is the same as the single-book
operation's (``approval.operations.approve`` / ``reject``, ``queue.operations.set_priority``); a test
checks it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable, Sequence

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import audit_store, batch_store
from agentic_pipeline.pipeline.states import State


@dataclasses.dataclass
class ChunkResult:
    applied: list[int] = dataclasses.field(default_factory=list)
    skipped: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def split_unchanged(planned: Sequence[dict[str, Any]], current: dict[int, dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(still as planned, skipped with reason): a book whose state moved since the plan is never touched."""
    ready, skipped = [], []
    for row in planned:
        now_row = current.get(row["id"])
        if now_row is None:
            skipped.append({"id": row["id"], "reason": "the pipeline no longer exists"})
        elif now_row["state"] != row["state"]:
            skipped.append({"id": row["id"], "reason": f"state changed since the preview: was {row['state']}, "
                                                        f"now {now_row['state']}"})
        else:
            ready.append(now_row)
    return ready, skipped


def apply_decision(conn, ctx, planned: Sequence[dict[str, Any]], to: State, action: actions.Action) -> ChunkResult:
    """Approve or reject a chunk of PENDING_APPROVAL books: one CAS update, bulk history, bulk audit.

    Mirrors ``approval.operations.approve`` / ``reject`` column for column (approve: approved_by/at;
    reject: error = reason, the book's library rows removed, book_id cleared).
    """
    current = batch_store.lock_rows(conn, [r["id"] for r in planned])
    ready, skipped = split_unchanged(planned, current)
    reason = ctx.change.get("reason")
    removed: dict[int, dict[str, int]] = {}
    if to is State.APPROVED:
        values = {"approved_by": ctx.actor, "approved_at": ctx.now}
    else:
        values = {"error": reason, "book_id": None}
        removed = batch_store.delete_library_books(conn, [r["id"] for r in ready])
    moved = set(batch_store.transition_many(conn, ready, to, expect=State.PENDING_APPROVAL, actor=ctx.actor,
                                            now=ctx.now, values=values,
                                            detail={"reason": reason} if reason else None))
    skipped += [{"id": r["id"], "reason": "changed while applying"} for r in ready if r["id"] not in moved]
    def extra(r: dict[str, Any]) -> dict[str, Any]:
        return {} if to is State.APPROVED else {"removed": dict(removed.get(r["id"], batch_store.NOTHING_REMOVED))}

    entries = [decision_entry(action, ctx.actor, r, to, reason=reason, filter_used=ctx.filter_used, after=extra(r))
               for r in ready if r["id"] in moved]
    audit_store.append_many(conn, entries, ctx.now)
    return ChunkResult(sorted(moved), skipped)


def decision_entry(action, actor: str, row: dict[str, Any], to: State, *, reason: str | None,
                   filter_used: Any = None, after: dict[str, Any] | None = None) -> chain.AuditEntry:
    """The audit entry of an approve/reject decision on one book, as the single-book operation writes it."""
    return chain.AuditEntry(action=action, actor=actor, pipeline_id=row["id"], book_id=row.get("book_id"),
                            reason=reason, before_state={"state": row["state"]},
                            after_state={"state": to.value, **(after or {})},
                            filter_used=filter_used, confidence_at_decision=row.get("confidence"))


def apply_priority(conn, ctx, planned: Sequence[dict[str, Any]]) -> ChunkResult:
    """Set the priority of a chunk: a manual change (base priority reset, aging level 0), audited per book."""
    new = ctx.change["priority"]
    current = batch_store.lock_rows(conn, [r["id"] for r in planned])
    ready, skipped = split_unchanged(planned, current)
    same = [r for r in ready if (r["priority"], r["base_priority"], r["aging_level"]) == (new, new, 0)]
    skipped += [{"id": r["id"], "reason": f"already at priority {new}"} for r in same]
    todo = [r for r in ready if r not in same]
    moved: set[int] = set()
    for state in sorted({r["state"] for r in todo}):
        ids = [r["id"] for r in todo if r["state"] == state]
        moved.update(batch_store.update_many(conn, ids, State(state), {"priority": new, "base_priority": new,
                                                                       "aging_level": 0}, ctx.now))
    entries = [priority_entry(ctx.actor, r, new, filter_used=ctx.filter_used) for r in todo if r["id"] in moved]
    audit_store.append_many(conn, entries, ctx.now)
    return ChunkResult(sorted(moved), skipped)


def priority_entry(actor: str, row: dict[str, Any], new: int, *, filter_used: Any = None) -> chain.AuditEntry:
    snap = {"priority": new, "base_priority": new, "aging_level": 0}
    old = {"priority": row["priority"], "base_priority": row["base_priority"], "aging_level": row["aging_level"]}
    return chain.AuditEntry(action=actions.Action.PRIORITY_CHANGED, actor=actor, pipeline_id=row["id"],
                            book_id=row.get("book_id"), before_state=old, after_state=snap, filter_used=filter_used)


def apply_retry(conn, ctx, planned: Sequence[dict[str, Any]]) -> ChunkResult:
    """Retry a chunk through the single-book ``orchestrator.retries.retry`` (no set-based path: no hot loop)."""
    retry = _retry_operation()
    current = batch_store.lock_rows(conn, [r["id"] for r in planned])
    ready, skipped = split_unchanged(planned, current)
    applied = []
    for row in ready:
        try:
            retry(ctx.app, row["id"], actor=ctx.actor, conn=conn)
        except (errors.Conflict, errors.InvalidTransition) as exc:
            skipped.append({"id": row["id"], "reason": str(exc)})
            continue
        if ctx.change.get("max_attempts") is not None:
            ctx.app.pipelines.update_fields(row["id"], expect=State.NEEDS_RETRY, conn=conn,
                                            values={"max_attempts": ctx.change["max_attempts"]})
        applied.append(row["id"])
    return ChunkResult(applied, skipped)


def _retry_operation() -> Callable[..., dict[str, Any]]:
    from agentic_pipeline.orchestrator.retries import retry

    return retry


@dataclasses.dataclass
class ApplyContext:
    """What every chunk applier needs: who, when, the plan's change and filter."""

    app: Any
    actor: str
    now: dt.datetime
    change: dict[str, Any]
    filter_used: dict[str, Any]
