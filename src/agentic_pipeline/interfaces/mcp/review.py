"""The MCP tools for watching and deciding: health, stuck books, approvals, autonomy.

Each tool calls one operation (``health.monitor``, ``health.recovery``, ``approval.operations``,
``approval.autonomy``) with the actor ``mcp:<client>`` and returns its data unchanged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from agentic_pipeline.interfaces.mcp.common import (
    READ, AnyBookType, PipelineId, Reason, Result, ToolSpec, actor_of, call, write_annotations,
)


# --- health ---------------------------------------------------------------------------------------

def get_pipeline_health(
    ctx: Context,
    fresh: Annotated[bool, Field(description=(
        "true: recompute now instead of using the report the workers refresh every few seconds."))] = False,
) -> Result:
    """Is everything OK? The overall status (healthy / warning / critical), books per state, stuck
    books, queue size and estimate, active workers, recent failures and the alerts that fired.

    Start here when asked how the pipeline is doing.
    """
    from agentic_pipeline.health import monitor

    return call(ctx, monitor.get_health, fresh=fresh)


def get_stuck_pipelines(ctx: Context) -> Result:
    """Books that stay in a working state (or wait for a retry) much longer than usual, with how long,
    what is normal, why they count as stuck, and what the automatic recovery rules would do.

    Recover one with recover_stuck_pipeline.
    """
    from agentic_pipeline.health import monitor, recovery

    def find(app) -> Result:
        found = monitor.find_stuck(app)
        return {"generated_at": found["generated_at"],
                "stuck": [{**s.to_dict(), "rule_says": vars(recovery.decide(s, app.settings))}
                          for s in found["stuck"]]}

    return call(ctx, find)


def recover_stuck_pipeline(
    pipeline_id: PipelineId,
    ctx: Context,
    action: Annotated[Literal["retry", "reject", "reset"], Field(description=(
        "retry: due for a retry now, resuming at the stage it was in; reject: give up on it (it stays "
        "rejected until retried); reset: start it over from the beginning."))] = "retry",
    reason: Annotated[str | None, Field(max_length=1000, description=(
        "Why; required for reject and reset (kept in the audit trail)."))] = None,
) -> Result:
    """Recover one stuck book (a working state or waiting for a retry) by hand; audited as STUCK_RECOVERED.

    Refused for a book that is not stuck while its worker holds a live lease (it is being worked on).
    """
    from agentic_pipeline.health import recovery

    return call(ctx, recovery.recover_one, pipeline_id, action, actor=actor_of(ctx), reason=reason)


# --- approvals ------------------------------------------------------------------------------------

def list_pending_approvals(
    ctx: Context,
    book_type: AnyBookType = None,
    limit: Annotated[int, Field(ge=1, le=500, strict=True, description="At most this many books, oldest first.")] = 50,
) -> Result:
    """Books processed and validated, waiting for a decision: id, title, type, classification
    confidence, how long they have waited, chapters and chunks, and the validation summary.

    Decide with approve_book / reject_book, or many at once with batch_approve / batch_reject.
    """
    from agentic_pipeline.approval import operations

    books = call(ctx, operations.list_pending, limit=limit, book_type=book_type)
    return {"count": len(books), "pending": books}


def approve_book(
    pipeline_id: PipelineId,
    ctx: Context,
    reason: Annotated[str | None, Field(max_length=1000, description="Why (optional; kept in the audit trail).")] = None,
) -> Result:
    """Approve one book waiting for approval; a worker then embeds it into the searchable library.

    Only books in pending_approval can be approved. Audited as APPROVED.
    """
    from agentic_pipeline.approval import operations

    return call(ctx, operations.approve, pipeline_id, actor=actor_of(ctx), reason=reason)


def reject_book(pipeline_id: PipelineId, reason: Reason, ctx: Context) -> Result:
    """Reject one book that is waiting (queued, for a retry, or for approval), with a reason.

    Anything it had in the library is removed. Audited as REJECTED. For approved or complete
    books use rollback_book.
    """
    from agentic_pipeline.approval import operations

    return call(ctx, operations.reject, pipeline_id, actor=actor_of(ctx), reason=reason)


def rollback_book(pipeline_id: PipelineId, reason: Reason, ctx: Context) -> Result:
    """Take an approved or complete book back out of the library (chapters, chunks, vectors) and archive it.

    Use it when a book should not have been approved. Audited as ROLLED_BACK.
    """
    from agentic_pipeline.approval import operations

    return call(ctx, operations.rollback, pipeline_id, actor=actor_of(ctx), reason=reason)


def get_autonomy_status(ctx: Context) -> Result:
    """How much is approved without a person: the mode (supervised, partial, confident), the
    confidence thresholds, the daily cap and today's automatic approvals, and whether the escape
    hatch (all automatic approvals stopped) is on. Read-only: changing it is the user's decision.
    """
    from agentic_pipeline.approval import autonomy

    return call(ctx, autonomy.status)


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(get_pipeline_health, READ),
    ToolSpec(get_stuck_pipelines, READ),
    ToolSpec(recover_stuck_pipeline, write_annotations(destructive=True, idempotent=False)),
    ToolSpec(list_pending_approvals, READ),
    ToolSpec(approve_book, write_annotations(destructive=False, idempotent=True)),
    ToolSpec(reject_book, write_annotations(destructive=True, idempotent=True)),
    ToolSpec(rollback_book, write_annotations(destructive=True, idempotent=True)),
    ToolSpec(get_autonomy_status, READ),
)
