"""The ``reprocess`` operation: start a book over from HASHING, optionally with its own OCR mode.

Why it exists: a scanned PDF rejected with "no text layer" while OCR was off, or a scan whose OCR
should cover every page (``--ocr force``: a text layer that is itself bad), must be read again
without re-adding the file. The book keeps its id; its library rows are removed and every stage
runs again. A book waiting for approval is first rejected (its reviewer asked for this), then
retried, in one transaction. Approved, embedding and complete books are refused: take them out of
the library with ``rollback`` first, so search never serves half a book.
"""

from __future__ import annotations

from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import library_store
from agentic_pipeline.pipeline.states import State

#: states a book can be reprocessed from
REPROCESS_FROM = frozenset({State.DETECTED, State.NEEDS_RETRY, State.FAILED, State.REJECTED, State.PENDING_APPROVAL})


def reprocess(app, pipeline_id: int, *, actor: str, ocr: str | None = None, conn=None) -> dict[str, Any]:
    """Queue the book to be read again from the start; ``ocr`` (auto/force/off) becomes its own OCR mode."""
    from agentic_pipeline.ingest.extract import ocr as ocr_mod  # lazy: the OCR module (and its engine) only when a reprocess asks for OCR

    actions.validate_actor(actor)
    try:
        mode = ocr_mod.check_mode(ocr) if ocr is not None else None
    except ValueError as exc:
        raise errors.InputError(str(exc)) from exc
    if conn is None:
        with app.db.write() as c:
            return reprocess(app, pipeline_id, actor=actor, ocr=ocr, conn=c)
    p = app.pipelines.get(pipeline_id, conn=conn)
    if p.state not in REPROCESS_FROM:
        hint = ("use `rollback` first to take it out of the library" if p.state in
                (State.APPROVED, State.EMBEDDING, State.COMPLETE) else "wait until it has left this state")
        raise errors.InvalidTransition(f"pipeline {p.id} is {p.state.value} and cannot be reprocessed", hint=hint)
    now = app.clock.now()
    ocr_mode = mode if mode is not None else p.row.get("ocr_mode")
    reason = f"reprocess (ocr={ocr_mode or 'setting'})"
    start = p.state
    if p.state is State.DETECTED:
        app.pipelines.update_fields(p.id, expect=State.DETECTED, values={"ocr_mode": ocr_mode}, conn=conn)
        return {"id": p.id, "from": start.value, "state": State.DETECTED.value, "ocr_mode": ocr_mode}
    removed = library_store.delete_book(conn, p.id)
    if p.state is State.PENDING_APPROVAL:
        p = app.pipelines.transition(p.id, State.REJECTED, expect=p.state, actor=actor, conn=conn,
                                     updates={"book_id": None}, detail={"reason": reason})
    values = {"ocr_mode": ocr_mode, "retry_stage": State.HASHING.value, "retry_count": 0, "next_attempt_at": now,
              "book_id": None, "error": None, "error_stage": None}
    audit = chain.AuditEntry(action=actions.Action.RETRIED, actor=actor, pipeline_id=p.id, reason=reason,
                             before_state={"state": start.value, "ocr_mode": p.row.get("ocr_mode")},
                             after_state={"state": State.NEEDS_RETRY.value, "ocr_mode": ocr_mode, "removed": removed})
    if p.state is State.NEEDS_RETRY:
        app.pipelines.update_fields(p.id, expect=State.NEEDS_RETRY, values=values, audit=audit, conn=conn)
    else:
        app.pipelines.transition(p.id, State.NEEDS_RETRY, expect=p.state, actor=actor, audit=audit, conn=conn,
                                 updates=values, detail={"reason": reason})
    return {"id": p.id, "from": start.value, "state": State.NEEDS_RETRY.value, "ocr_mode": ocr_mode,
            "removed": removed}
