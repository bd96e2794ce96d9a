"""Applying one chunk of a batch plan inside the caller's write transaction (set-based where it counts).

Each applier reads the chunk's current rows once (locked), keeps the books still in the state the
plan saw (compare-and-set; the others are skipped with the reason), and changes the kept ones
through the pipeline store (``move`` of many for a decision: one set-based compare-and-set with
history and audit in bulk; ``update_many`` per expected state for a priority). The audit and state
result per book is the same as the single-book operation's (``approval.operations.approve`` /
``reject``, ``queue.operations.set_priority``); a test checks it. Entries with equal JSON documents share one object (``Shared``), so the bulk audit append
encodes each distinct document once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable, Sequence

from agentic_pipeline import errors
from agentic_pipeline.approval import decision
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import audit_store, batch_store
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.orchestrator.retries import retry
from agentic_pipeline.approval.operations import rollback


@dataclasses.dataclass
class ChunkResult:
    applied: list[int] = dataclasses.field(default_factory=list)
    skipped: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def split_unchanged(planned: Sequence[dict[str, Any]], current: dict[int, dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(still as planned, skipped with reason): a book whose state moved since the plan is never touched.

    "Moved" includes leaving the state and coming back to it (``state_entered_at`` differs): a book
    rejected, retried and pending again is a new decision, with a new confidence the plan never saw.
    """
    ready, skipped = [], []
    for row in planned:
        now_row = current.get(row["id"])
        if now_row is None:
            skipped.append({"id": row["id"], "reason": "the pipeline no longer exists"})
        elif now_row["state"] != row["state"]:
            skipped.append({"id": row["id"], "reason": f"state changed since the preview: was {row['state']}, "
                                                        f"now {now_row['state']}"})
        elif "state_entered_at" in row and now_row["state_entered_at"] != row["state_entered_at"]:
            skipped.append({"id": row["id"], "reason": f"left {row['state']} and came back since the preview"})
        else:
            ready.append(now_row)
    return ready, skipped


def apply_decision(conn, ctx, planned: Sequence[dict[str, Any]], to: State, action: actions.Action) -> ChunkResult:
    """Approve or reject a chunk of PENDING_APPROVAL books through the store's one writer (a move of many).

    The columns, history detail and audit entries come from ``approval.decision``, as for the
    single-book ``approve`` / ``reject`` (reject also removes the chunk's library rows at once).
    """
    store = ctx.app.pipelines
    current = store.lock_rows(conn, [r["id"] for r in planned])
    ready, skipped = split_unchanged(planned, current)
    reason = ctx.change.get("reason")
    removed: dict[int, dict[str, int]] = {}
    docs = Shared()
    if to is State.REJECTED:
        removed = batch_store.delete_library_books(conn, [r["id"] for r in ready])

    def after(r: dict[str, Any]) -> dict[str, Any]:
        if to is State.APPROVED:
            return docs(("after", to), lambda: decision.after(to))
        gone = removed.get(r["id"], batch_store.NOTHING_REMOVED)
        return docs(("after", to, *sorted(gone.items())), lambda: decision.after(to, removed=dict(gone)))

    audits = {r["id"]: decision.entry(to, actor=ctx.actor, pipeline_id=r["id"], book_id=r.get("book_id"),
                                      reason=reason, confidence=r.get("confidence"), after_state=after(r),
                                      before_state=docs(("before", r["state"]), lambda: decision.before(r["state"])),
                                      filter_used=ctx.filter_used)
              for r in ready}
    moved = set(store.move([r["id"] for r in ready], to, expect=State.PENDING_APPROVAL, actor=ctx.actor, conn=conn,
                           updates=decision.columns(to, actor=ctx.actor, reason=reason, now=ctx.now),
                           detail=decision.detail(to, reason), audits=audits,
                           locked={r["id"]: r for r in ready}, now=ctx.now).ids)
    skipped += [{"id": r["id"], "reason": "changed while applying"} for r in ready if r["id"] not in moved]
    return ChunkResult(sorted(moved), skipped)


class Shared:
    """One object per distinct JSON document (by a key the caller gives): ``docs(key, build)``."""

    def __init__(self) -> None:
        self._docs: dict[Any, Any] = {}

    def __call__(self, key: Any, build: Callable[[], Any]) -> Any:
        doc = self._docs.get(key)
        if doc is None:
            doc = self._docs[key] = build()
        return doc


def apply_priority(conn, ctx, planned: Sequence[dict[str, Any]]) -> ChunkResult:
    """Set the priority of a chunk: a manual change (base priority reset, aging level 0, aging clock restarted),
    audited per book."""
    new = ctx.change["priority"]
    store = ctx.app.pipelines
    current = store.lock_rows(conn, [r["id"] for r in planned])
    ready, skipped = split_unchanged(planned, current)
    todo = []
    for r in ready:
        if (r["priority"], r["base_priority"], r["aging_level"]) == (new, new, 0):
            skipped.append({"id": r["id"], "reason": f"already at priority {new}"})
        else:
            todo.append(r)
    moved: set[int] = set()
    for state in sorted({r["state"] for r in todo}):
        ids = [r["id"] for r in todo if r["state"] == state]
        moved.update(store.update_many(conn, ids, State(state), {"priority": new, "base_priority": new,
                                                                 "aging_level": 0, "queued_at": ctx.now}, ctx.now))
    docs, snap = Shared(), {"priority": new, "base_priority": new, "aging_level": 0}
    entries = [chain.AuditEntry(action=actions.Action.PRIORITY_CHANGED, actor=ctx.actor, pipeline_id=r["id"],
                                book_id=r.get("book_id"), after_state=snap, filter_used=ctx.filter_used,
                                before_state=docs((r["priority"], r["base_priority"], r["aging_level"]), lambda: {
                                    "priority": r["priority"], "base_priority": r["base_priority"],
                                    "aging_level": r["aging_level"]}))
               for r in todo if r["id"] in moved]
    audit_store.append_bulk(conn, entries, ctx.now)
    return ChunkResult(sorted(moved), skipped)


def apply_retry(conn, ctx, planned: Sequence[dict[str, Any]]) -> ChunkResult:
    """Retry a chunk through the single-book ``orchestrator.retries.retry`` (no set-based path: no hot loop)."""
    retry = _retry_operation()
    current = ctx.app.pipelines.lock_rows(conn, [r["id"] for r in planned])
    ready, skipped = split_unchanged(planned, current)
    applied = []
    for row in ready:
        try:
            retry(ctx.app, row["id"], actor=ctx.actor, conn=conn, filter_used=ctx.filter_used)
        except (errors.Conflict, errors.InvalidTransition) as exc:
            skipped.append({"id": row["id"], "reason": str(exc)})
            continue
        if ctx.change.get("max_attempts") is not None:  # N more attempts from now, whatever was used before
            used = ctx.app.pipelines.get(row["id"], conn=conn).row.get("retry_count") or 0
            ctx.app.pipelines.update_fields(row["id"], expect=State.NEEDS_RETRY, conn=conn,
                                            values={"max_attempts": used + ctx.change["max_attempts"]})
        applied.append(row["id"])
    return ChunkResult(applied, skipped)


def apply_cancel(conn, ctx, planned: Sequence[dict[str, Any]]) -> ChunkResult:
    """Cancel a chunk of queued books: DETECTED / NEEDS_RETRY -> ARCHIVED (one CAS update per state), audited CANCELLED."""
    current = ctx.app.pipelines.lock_rows(conn, [r["id"] for r in planned])
    ready, skipped = split_unchanged(planned, current)
    leased = [r for r in ready if r.get("lease_owner") and r.get("lease_expires_at") and r["lease_expires_at"] >= ctx.now]
    skipped += [{"id": r["id"], "reason": f"a worker ({r['lease_owner']}) took it since the preview"} for r in leased]
    ready = [r for r in ready if r not in leased]
    reason = ctx.change.get("reason")
    moved: set[int] = set()
    for state in sorted({r["state"] for r in ready}):
        rows = [r for r in ready if r["state"] == state]
        moved.update(ctx.app.pipelines.move([r["id"] for r in rows], State.ARCHIVED, expect=State(state),
                                            actor=ctx.actor, conn=conn, now=ctx.now, locked={r["id"]: r for r in rows},
                                            detail={"reason": reason, "cancelled": True}).ids)
    skipped += [{"id": r["id"], "reason": "changed while applying"} for r in ready if r["id"] not in moved]
    docs = Shared()
    after = {"state": State.ARCHIVED.value, "cancelled": True}
    entries = [chain.AuditEntry(action=actions.Action.CANCELLED, actor=ctx.actor, pipeline_id=r["id"],
                                book_id=r.get("book_id"), reason=reason, filter_used=ctx.filter_used,
                                before_state=docs(("before", r["state"]), lambda: {"state": r["state"]}),
                                after_state=after, confidence_at_decision=r.get("confidence"))
               for r in ready if r["id"] in moved]
    audit_store.append_bulk(conn, entries, ctx.now)
    return ChunkResult(sorted(moved), skipped)


def apply_rollback(conn, ctx, planned: Sequence[dict[str, Any]]) -> ChunkResult:
    """Roll back a chunk through the single-book ``approval.operations.rollback`` (its library rows go too)."""
    current = ctx.app.pipelines.lock_rows(conn, [r["id"] for r in planned])
    ready, skipped = split_unchanged(planned, current)
    applied = []
    for row in ready:
        try:
            rollback(ctx.app, row["id"], actor=ctx.actor, reason=ctx.change["reason"], conn=conn,
                     filter_used=ctx.filter_used)
        except (errors.Conflict, errors.InvalidTransition) as exc:
            skipped.append({"id": row["id"], "reason": str(exc)})
            continue
        applied.append(row["id"])
    return ChunkResult(applied, skipped)


def _retry_operation() -> Callable[..., dict[str, Any]]:
    return retry


@dataclasses.dataclass
class ApplyContext:
    """What every chunk applier needs: who, when, the plan's change and filter."""

    app: Any
    actor: str
    now: dt.datetime
    change: dict[str, Any]
    filter_used: dict[str, Any]
