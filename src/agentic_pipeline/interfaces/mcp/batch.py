"""The MCP batch tools: preview first, act only with the preview's confirmation token.

Every batch tool runs ``batch.operations``: with ``execute=false`` it returns the plan (every
matching book and the change) and a confirmation token this server issued for it
(``batch.confirmations``: random, single use, 10 minutes); with ``execute=true`` and that token,
``execute_confirmed`` re-plans and applies only if the token is good and was issued for exactly the
books that match now, else refuses with a fresh preview and a new token.
``batch_queue_folder`` only adds new pipelines (duplicates are skipped), so it acts at once,
but only on a folder under the allowed roots.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from agentic_pipeline.interfaces.mcp.common import (
    AnyBookType, Confirmation, Execute, MaxCount, Priority, Reason, Result, SourcePattern, ToolSpec, actor_of,
    allowed_folder, call, confirmations_of, roots_of, state_of, write_annotations,
)

NEXT_STEP = ("Show this preview to the user. To act on exactly these books, call the same tool with the same "
             "arguments plus execute=true and confirmation=<confirmation_token>.")


def run_batch_tool(ctx: Context, operation: str, filter_args: dict[str, Any], *, execute: bool,
                   confirmation: str | None, **change: Any) -> Result:
    """Preview (no token needed) or execute a confirmed plan: the two halves of every batch tool."""
    from agentic_pipeline import errors
    from agentic_pipeline.batch import operations as batch

    actor = actor_of(ctx)
    confirmations = confirmations_of(ctx)

    def run(app) -> Result:
        filt = batch.make_filter(**filter_args)
        if not execute:
            shown = batch.preview(app, operation, filt, confirmations, **change)
            return {"executed": False, "preview": shown, "confirmation_token": shown["confirmation_token"],
                    "next_step": NEXT_STEP}
        if not confirmation:
            raise errors.InputError("execute=true needs the confirmation token: call this tool with execute=false "
                                    "first, show the preview to the user, then pass its confirmation_token")
        return batch.execute_confirmed(app, operation, filt, confirmation, confirmations=confirmations, actor=actor,
                                       **change)

    return call(ctx, run)


def batch_approve(
    ctx: Context,
    min_confidence: Annotated[float, Field(ge=0, le=1, description=(
        "Only books whose classification confidence is at least this (0..1, e.g. 0.9)."))],
    book_type: AnyBookType = None,
    max_count: MaxCount = 50,
    execute: Execute = False,
    confirmation: Confirmation = None,
) -> Result:
    """Approve every book waiting for approval that matches the filter, so workers embed them into the library.

    Two steps: first call with execute=false to preview the matching books and get a confirmation
    token; then, after the user agrees, call again with execute=true and that token. If the
    matching books changed in between, nothing happens and a fresh preview comes back.
    """
    return run_batch_tool(ctx, "approve", {"min_confidence": min_confidence, "book_type": book_type,
                                           "max_count": max_count}, execute=execute, confirmation=confirmation)


def batch_reject(
    ctx: Context,
    reason: Reason,
    book_type: AnyBookType = None,
    max_confidence: Annotated[float | None, Field(ge=0, le=1, description=(
        "Only books whose classification confidence is at most this (0..1)."))] = None,
    max_count: MaxCount = 50,
    execute: Execute = False,
    confirmation: Confirmation = None,
) -> Result:
    """Reject every book waiting for approval that matches the filter, with a reason (kept in the audit trail).

    Give book_type and/or max_confidence; an empty filter matches nothing. Two steps, like
    batch_approve: preview with execute=false, then execute=true with the confirmation token.
    """
    return run_batch_tool(ctx, "reject", {"book_type": book_type, "max_confidence": max_confidence,
                                          "max_count": max_count},
                          execute=execute, confirmation=confirmation, reason=reason)


def batch_retry(
    ctx: Context,
    state: Annotated[Literal["needs_retry", "failed", "rejected"] | None, Field(description=(
        "Only books in this state (omit for all three retryable states)."))] = None,
    book_type: AnyBookType = None,
    source_pattern: SourcePattern = None,
    max_count: MaxCount = 50,
    execute: Execute = False,
    confirmation: Confirmation = None,
) -> Result:
    """Retry now the books that failed, were rejected, or wait for a retry, matching the filter.

    Give at least one of state, book_type, source_pattern. Two steps, like batch_approve.
    """
    return run_batch_tool(ctx, "retry", {"state": state, "book_type": book_type, "source_pattern": source_pattern,
                                         "max_count": max_count}, execute=execute, confirmation=confirmation)


def batch_set_priority(
    ctx: Context,
    priority: Priority,
    state: Annotated[str | None, Field(max_length=40, description=(
        "Only books in this state, e.g. detected (queued), needs_retry, approved."))] = None,
    book_type: AnyBookType = None,
    source_pattern: SourcePattern = None,
    max_count: MaxCount = 50,
    execute: Execute = False,
    confirmation: Confirmation = None,
) -> Result:
    """Set the priority of every unfinished book matching the filter (1 = most urgent .. 10 = backfill).

    Give at least one of state, book_type, source_pattern. Two steps, like batch_approve.
    """
    return run_batch_tool(ctx, "priority", {"state": state, "book_type": book_type, "source_pattern": source_pattern,
                                            "max_count": max_count},
                          execute=execute, confirmation=confirmation, priority=priority)


def batch_queue_folder(
    path: Annotated[str, Field(min_length=1, max_length=4096, description=(
        "A folder (or one file) under the allowed roots; a relative path is taken from the first root."))],
    ctx: Context,
    priority: Priority = 5,
    pattern: Annotated[str, Field(min_length=1, max_length=200, description=(
        "Only files whose name matches this glob, e.g. *.pdf (default: every supported file)."))] = "*",
    recursive: Annotated[bool, Field(description="Also look in subfolders.")] = False,
) -> Result:
    """Queue every book in a folder for processing (EPUB, PDF, text, Markdown, HTML).

    Files are hashed; content already queued or in the library is reported as a duplicate and not
    queued again, so calling it twice is harmless. Returns what was queued (with pipeline ids),
    duplicates, unsupported and unreadable files. Only folders under the allowed roots can be read
    (a folder with links to files outside them is refused).
    """
    from agentic_pipeline.batch import operations as batch

    folder = allowed_folder(ctx, path, recursive=recursive)
    return call(ctx, batch.batch_queue, folder, pattern=pattern, recursive=recursive, priority=priority,
                actor=actor_of(ctx), roots=roots_of(state_of(ctx).settings))


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(batch_queue_folder, write_annotations(destructive=False, idempotent=True)),
    ToolSpec(batch_approve, write_annotations(destructive=False, idempotent=False)),
    ToolSpec(batch_reject, write_annotations(destructive=True, idempotent=False)),
    ToolSpec(batch_retry, write_annotations(destructive=False, idempotent=False)),
    ToolSpec(batch_set_priority, write_annotations(destructive=False, idempotent=True)),
)
