"""Batch operations by filter: plan (what would change), then apply exactly that plan.

``plan_batch`` is the dry run and the first half of every execution: the CLI prints it without
``--execute`` and applies it with; the MCP server returns it with a confirmation token it issued
(``batch.confirmations``) and ``execute_confirmed`` applies only if that token is good and a fresh
plan still has the digest it was issued for. More matches than
``max_count`` is a refusal (``MaxCountExceeded``), never a truncation.

``apply_plan`` works in chunks of ``CHUNK_SIZE`` ids, one write transaction per chunk, compare-and-set
per book: a book that changed since the plan is skipped and reported. Audit: one row per affected
book (the single-book action; actor ``batch:<filter id>`` unless a person is named, the filter in
``filter_used``) plus one BATCH_* row with the filter, the count and the affected ids, written in the
last chunk's transaction. On SQLite the last chunk's commit leaves the WAL checkpoint to the next
writer (``engine.defer_wal_checkpoint``): earlier chunks' copies are part of the batch, the last one
is not on the caller's path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.batch import apply as appliers
from agentic_pipeline.batch.filters import BatchFilter, canonical_json, make_filter  # noqa: F401 - re-exported
from agentic_pipeline.db import audit_store, batch_store, engine
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.pipeline.priority import validate_priority

#: ids per write transaction: a whole 10,000-book batch in one (each page and index page written once)
CHUNK_SIZE = 10_000


@dataclasses.dataclass(frozen=True)
class Operation:
    name: str
    eligible: frozenset[State]
    batch_action: actions.Action
    verb: str


OPERATIONS = {
    "approve": Operation("approve", frozenset({State.PENDING_APPROVAL}), actions.Action.BATCH_APPROVED,
                         "approve (pending_approval -> approved)"),
    "reject": Operation("reject", frozenset({State.PENDING_APPROVAL}), actions.Action.BATCH_REJECTED,
                        "reject (pending_approval -> rejected)"),
    "retry": Operation("retry", frozenset({State.NEEDS_RETRY, State.FAILED, State.REJECTED}),
                       actions.Action.BATCH_RETRIED, "retry now (-> needs_retry, due at once)"),
    "priority": Operation("priority", frozenset(set(State) - states.TERMINAL), actions.Action.BATCH_PRIORITY_CHANGED,
                          "set priority"),
    # bulk cancel: books queued by mistake leave the queue (archived, nothing processed); bulk undo: completed
    # or approved books leave the library (the single-book rollback, per book)
    "cancel": Operation("cancel", frozenset({State.DETECTED, State.NEEDS_RETRY}), actions.Action.BATCH_CANCELLED,
                        "cancel (detected / needs_retry -> archived)"),
    "rollback": Operation("rollback", frozenset({State.COMPLETE, State.APPROVED}), actions.Action.BATCH_ROLLED_BACK,
                          "roll back (complete / approved -> archived, removed from the library)"),
}


@dataclasses.dataclass
class BatchPlan:
    """What a batch operation would do: the matches (all of them, at most max_count) and the change."""

    operation: str
    filter: BatchFilter
    change: dict[str, Any]
    max_count: int
    rows: list[dict[str, Any]]
    planned_at: dt.datetime
    digest: str

    @property
    def matched(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> list[int]:
        return [r["id"] for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "would": OPERATIONS[self.operation].verb, "change": self.change,
                "filter": self.filter.to_dict(), "max_count": self.max_count, "matched": self.matched,
                "rows": self.rows, "planned_at": self.planned_at}


def plan_batch(app, operation: str, filt: BatchFilter, **change: Any) -> BatchPlan:
    """The dry run: which books match (in SQL, over the whole table) and what would change; changes nothing."""
    op = _operation(operation)
    change = _validate_change(op, filt, change)
    max_count = filt.max_count or app.settings.batch_max_count
    now = app.clock.now()
    with app.db.read() as conn:
        rows = batch_store.list_matching(conn, filt, max_count + 1, op.eligible)
        if len(rows) > max_count:
            _refuse(batch_store.count_matching(conn, filt, op.eligible), max_count)
    for row in rows:
        row["age_seconds"] = round((now - row["created_at"]).total_seconds(), 3)
        row["title"] = row["title"] or row["source_path"].rsplit("/", 1)[-1]
    digest = plan_digest(op.name, filt, rows, change)
    return BatchPlan(op.name, filt, change, max_count, rows, now, digest)


def apply_plan(app, plan: BatchPlan, *, actor: str | None = None, chunk_size: int = CHUNK_SIZE) -> dict[str, Any]:
    """Apply exactly ``plan``: chunked transactions, compare-and-set per book, audited; returns applied/skipped."""
    actor = actions.validate_actor(actor or actions.batch_actor(plan.filter.filter_id))
    applier = _applier(plan.operation)
    applied: list[int] = []
    skipped: list[dict[str, Any]] = []
    chunks = [plan.rows[i:i + chunk_size] for i in range(0, len(plan.rows), chunk_size)]
    for index, chunk in enumerate(chunks):
        with app.db.write() as conn:
            ctx = _context(app, plan, actor)
            result = applier(conn, ctx, chunk)
            applied += result.applied
            skipped += result.skipped
            if index == len(chunks) - 1:
                if applied:
                    audit_store.append(conn, _batch_entry(plan, actor, applied, skipped), ctx.now)
                engine.defer_wal_checkpoint(conn)  # the WAL copy (0.2-0.4 s) goes to the next writer
    return {"operation": plan.operation, "filter_id": plan.filter.filter_id, "actor": actor,
            "matched": plan.matched, "applied": len(applied), "applied_ids": applied,
            "skipped": len(skipped), "skipped_details": skipped}




def run_batch(app, operation: str, filt: BatchFilter, *, execute: bool = False, actor: str | None = None,
              **change: Any) -> dict[str, Any]:
    """Plan, and with ``execute`` apply that same plan: the one code path behind every skin."""
    plan = plan_batch(app, operation, filt, **change)
    out = {"plan": plan.to_dict(), "executed": execute}
    if execute:
        out["result"] = apply_plan(app, plan, actor=actor)
    return out


def batch_approve(app, filt: BatchFilter, *, actor: str | None = None, reason: str | None = None,
                  execute: bool = False) -> dict[str, Any]:
    return run_batch(app, "approve", filt, execute=execute, actor=actor, reason=reason)


def batch_reject(app, filt: BatchFilter, *, reason: str, actor: str | None = None, execute: bool = False) -> dict[str, Any]:
    return run_batch(app, "reject", filt, execute=execute, actor=actor, reason=reason)


def batch_retry(app, filt: BatchFilter, *, actor: str | None = None, max_attempts: int | None = None,
                execute: bool = False) -> dict[str, Any]:
    return run_batch(app, "retry", filt, execute=execute, actor=actor, max_attempts=max_attempts)


def batch_priority(app, filt: BatchFilter, priority: int, *, actor: str | None = None,
                   execute: bool = False) -> dict[str, Any]:
    return run_batch(app, "priority", filt, execute=execute, actor=actor, priority=priority)


def batch_cancel(app, filt: BatchFilter, *, reason: str, actor: str | None = None, execute: bool = False) -> dict[str, Any]:
    """Cancel queued books (DETECTED, NEEDS_RETRY) matching the filter: archived before any work, audited CANCELLED."""
    return run_batch(app, "cancel", filt, execute=execute, actor=actor, reason=reason)


def batch_rollback(app, filt: BatchFilter, *, reason: str, actor: str | None = None,
                   execute: bool = False) -> dict[str, Any]:
    """Undo approvals in bulk: COMPLETE or APPROVED books matching the filter leave the library (ROLLED_BACK each)."""
    return run_batch(app, "rollback", filt, execute=execute, actor=actor, reason=reason)


def plan_digest(operation: str, filt: BatchFilter, rows: list[dict[str, Any]], change: dict[str, Any]) -> str:
    """What a confirmation is bound to: the operation, the filter, the change and the exact matching books.

    A book is its id and when it entered its state: one that left and came back since the preview
    (rejected, retried, pending again with another confidence) is not the book that was confirmed.
    """
    books = sorted((r["id"], str(r.get("state_entered_at"))) for r in rows)
    doc = {"operation": operation, "filter": filt.criteria(), "books": books, "change": change}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()[:32]


def preview(app, operation: str, filt: BatchFilter, confirmations, **change: Any) -> dict[str, Any]:
    """The MCP first step: the plan, with a confirmation token ``confirmations`` issued for exactly it."""
    plan = plan_batch(app, operation, filt, **change)
    return {**plan.to_dict(), "confirmation_token": confirmations.issue(plan.digest, app.clock.now())}


def execute_confirmed(app, operation: str, filt: BatchFilter, token: str, *, confirmations,
                      actor: str | None = None, **change: Any) -> dict[str, Any]:
    """The MCP second step: re-plan; apply only with a good token issued for exactly these matches.

    ``confirmations``: the issuing server's ``batch.confirmations.Confirmations``; the token is
    spent either way. Raises ``StaleConfirmation`` (unknown, used, expired, or the matches
    changed) with a fresh preview and its new token in ``.preview``.
    """
    plan = plan_batch(app, operation, filt, **change)
    now = app.clock.now()
    try:
        confirmations.redeem(token, plan.digest, now)
    except errors.StaleConfirmation as exc:
        fresh = {**plan.to_dict(), "confirmation_token": confirmations.issue(plan.digest, now)}
        raise errors.StaleConfirmation(f"{exc} ({plan.matched} books match now)",
                                       hint="review the new preview and confirm with its token", preview=fresh) from None
    return {"plan": plan.to_dict(), "executed": True, "result": apply_plan(app, plan, actor=actor)}


# ----------------------------------------------------------------------- helpers
def _operation(name: str) -> Operation:
    if name not in OPERATIONS:
        raise errors.InputError(f"unknown batch operation {name!r}; valid: {', '.join(OPERATIONS)}")
    return OPERATIONS[name]


def _validate_change(op: Operation, filt: BatchFilter, change: dict[str, Any]) -> dict[str, Any]:
    if filt.state is not None and filt.state not in op.eligible:
        valid = ", ".join(sorted(s.value for s in op.eligible))
        other = next((o for o in OPERATIONS.values() if o.name in ("cancel", "rollback") and filt.state in o.eligible), None)
        raise errors.InputError(f"batch {op.name} acts only on books in: {valid} (the filter asks for {filt.state.value})",
                                hint=f"batch-{other.name} {other.verb.split(' (')[0]}s books in {filt.state.value}"
                                if other is not None and op.name == "reject" else None)
    change = {k: v for k, v in change.items() if v is not None}
    if op.name in ("reject", "cancel", "rollback") and not (change.get("reason") or "").strip():
        raise errors.InputError(f"batch {op.name} needs a reason (--reason TEXT)")
    if op.name == "priority":
        validate_priority(change.get("priority"))
    if op.name == "retry" and "max_attempts" in change:
        value = change["max_attempts"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise errors.InputError(f"max_attempts must be a whole number of at least 1 (got {value!r})")
    return change


def _refuse(count: int, max_count: int) -> None:
    raise errors.MaxCountExceeded(
        f"{count} books match, more than the maximum of {max_count}; nothing was changed",
        hint=f"narrow the filter, or raise the maximum to {count} (--max-count, or max_count for an assistant)",
        count=count, max_count=max_count)


def _applier(operation: str):
    if operation == "approve":
        return lambda conn, ctx, rows: appliers.apply_decision(conn, ctx, rows, State.APPROVED, actions.Action.APPROVED)
    if operation == "reject":
        return lambda conn, ctx, rows: appliers.apply_decision(conn, ctx, rows, State.REJECTED, actions.Action.REJECTED)
    if operation == "retry":
        return appliers.apply_retry
    if operation == "cancel":
        return appliers.apply_cancel
    if operation == "rollback":
        return appliers.apply_rollback
    return appliers.apply_priority


def _context(app, plan: BatchPlan, actor: str) -> appliers.ApplyContext:
    return appliers.ApplyContext(app=app, actor=actor, now=app.clock.now(), change=plan.change,
                                 filter_used=plan.filter.to_dict())


def _batch_entry(plan: BatchPlan, actor: str, applied: list[int], skipped: list[dict[str, Any]]) -> chain.AuditEntry:
    return chain.AuditEntry(
        action=OPERATIONS[plan.operation].batch_action, actor=actor, reason=plan.change.get("reason"),
        filter_used=plan.filter.to_dict(),
        after_state={"count": len(applied), "pipeline_ids": applied, "skipped": len(skipped),
                     "matched": plan.matched, "change": plan.change},
    )
