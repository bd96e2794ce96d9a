"""Approval operations: approve, reject, rollback, list pending (the CLI, MCP and batch skins call these).

Each is one transaction: the state change and its audit entry (APPROVED / REJECTED /
ROLLED_BACK), plus removing the book's library rows on reject and rollback. With ``conn=`` the
operation joins the caller's transaction (batch operations approve many books atomically).
"""

from __future__ import annotations

from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.approval import decision
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import library_store, workers_store
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State

ROLLBACK_FROM = (State.APPROVED, State.COMPLETE)


def approve(app, pipeline_id: int, *, actor: str, reason: str | None = None, conn=None,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """PENDING_APPROVAL -> APPROVED; a worker then embeds it (APPROVED is a queue)."""
    actions.validate_actor(actor)
    if conn is None:
        with app.db.write() as c:
            return approve(app, pipeline_id, actor=actor, reason=reason, conn=c, extra=extra)
    p = app.pipelines.get(pipeline_id, conn=conn)
    _expect(p, (State.PENDING_APPROVAL,), "approve")
    p = _decide(app, p, State.APPROVED, actor=actor, reason=reason, conn=conn, extra=extra)
    return _summary(p)


def reject(app, pipeline_id: int, *, actor: str, reason: str, conn=None) -> dict[str, Any]:
    """Reject a book (waiting, queued or pending), with a reason; its library rows are removed."""
    actions.validate_actor(actor)
    if not (reason or "").strip():
        raise errors.InputError("a rejection needs a reason (--reason)")
    if conn is None:
        with app.db.write() as c:
            return reject(app, pipeline_id, actor=actor, reason=reason, conn=c)
    p = app.pipelines.get(pipeline_id, conn=conn)
    if not states.can_transition(p.state, State.REJECTED):
        hint = ("use `rollback` to take an approved or complete book out of the library"
                if p.state in (State.APPROVED, State.EMBEDDING, State.COMPLETE) else
                "it is already finished" if p.state in states.TERMINAL else "wait until it has left this state")
        raise errors.InvalidTransition(f"pipeline {p.id} is {p.state.value} and cannot be rejected", hint=hint)
    removed = library_store.delete_book(conn, p.id)
    p = _decide(app, p, State.REJECTED, actor=actor, reason=reason, conn=conn, removed=removed)
    return {**_summary(p), "removed": removed}


def _decide(app, p, to: State, *, actor: str, reason: str | None, conn, removed: dict[str, int] | None = None,
            extra: dict[str, Any] | None = None):
    """The decision (``approval.decision``) through the store's one writer: a move of one book."""
    audit = decision.entry(to, actor=actor, pipeline_id=p.id, book_id=p.row.get("book_id"), reason=reason,
                           confidence=p.row.get("confidence"), before_state=decision.before(p.state.value),
                           after_state=decision.after(to, removed=removed, extra=extra))
    return app.pipelines.move([p.id], to, expect=p.state, actor=actor, audits={p.id: audit}, conn=conn,
                              updates=decision.columns(to, actor=actor, reason=reason, now=app.clock.now()),
                              detail=decision.detail(to, reason, extra)).row


def rollback(app, pipeline_id: int, *, actor: str, reason: str, conn=None,
             filter_used: dict[str, Any] | None = None) -> dict[str, Any]:
    """Remove an APPROVED or COMPLETE book's chapters, chunks and vectors from the library; archive it.

    ``filter_used``: the batch filter, recorded on the audit entry when ``batch-rollback`` undoes the book.
    """
    actions.validate_actor(actor)
    if not (reason or "").strip():
        raise errors.InputError("a rollback needs a reason (--reason)")
    if conn is None:
        with app.db.write() as c:
            return rollback(app, pipeline_id, actor=actor, reason=reason, conn=c, filter_used=filter_used)
    p = app.pipelines.get(pipeline_id, conn=conn)
    _expect(p, ROLLBACK_FROM, "roll back")
    removed = library_store.delete_book(conn, p.id)
    audit = chain.AuditEntry(action=actions.Action.ROLLED_BACK, actor=actor, pipeline_id=p.id,
                             book_id=p.row.get("book_id"), reason=reason, confidence_at_decision=p.row.get("confidence"),
                             before_state={"state": p.state.value}, after_state={"state": "archived", "removed": removed},
                             filter_used=filter_used)
    p = app.pipelines.transition(p.id, State.ARCHIVED, expect=p.state, actor=actor, audit=audit, conn=conn,
                                 updates={"book_id": None}, detail={"reason": reason})
    return {**_summary(p), "removed": removed}


def list_pending(app, *, limit: int | None = None, book_type: str | None = None) -> list[dict[str, Any]]:
    """Books waiting for approval, oldest first: id, title, type, confidence, age, validation summary."""
    now = app.clock.now()
    with app.db.read() as conn:  # only the rows asked for are read (158,571 pending: one page, not all of them)
        rows = workers_store.pipelines_in_state(conn, State.PENDING_APPROVAL.value, limit=limit,
                                                book_type=book_type or None)
    out = []
    for r in rows:
        validation = r.get("validation_result") or {}
        out.append({"id": r["id"], "title": r.get("title"), "book_type": r.get("book_type"),
                    "confidence": r.get("confidence"), "age_seconds": (now - r["state_entered_at"]).total_seconds(),
                    "priority": r["priority"], "source_path": r["source_path"],
                    "validation": _validation_summary(validation),
                    "chapters": (r.get("processing_result") or {}).get("chapters"),
                    "chunks": (r.get("processing_result") or {}).get("chunks")})
    return out


def count_pending(app, *, book_type: str | None = None) -> int:
    """How many books wait for approval (of ``book_type``)."""
    with app.db.read() as conn:
        return workers_store.count_in_state(conn, State.PENDING_APPROVAL.value, book_type=book_type or None)


def list_by_state(app, state: State) -> list[dict[str, Any]]:
    """Every pipeline row in ``state``, oldest in state first."""
    with app.db.read() as conn:
        return workers_store.pipelines_in_state(conn, state.value)


def _validation_summary(v: dict[str, Any]) -> str:
    if not v:
        return ""
    checks = v.get("checks") or []
    total = len(checks)
    ok = sum(1 for c in checks if (c.get("passed") if isinstance(c, dict) else False))
    head = "passed" if v.get("passed") else "failed"
    return f"{head} ({ok}/{total} checks)" if total else head


def _expect(p, allowed, verb: str) -> None:
    if p.state not in allowed:
        names = " or ".join(s.value for s in allowed)
        raise errors.InvalidTransition(f"cannot {verb} pipeline {p.id}: it is {p.state.value}, not {names}",
                                       hint="see `agentic-pipeline status " + str(p.id) + "`")


def _summary(p) -> dict[str, Any]:
    return {"id": p.id, "state": p.state.value, "title": p.row.get("title"), "book_type": p.row.get("book_type"),
            "confidence": p.row.get("confidence")}
