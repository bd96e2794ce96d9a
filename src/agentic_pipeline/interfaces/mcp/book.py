"""The MCP tools: each parses, calls one operation as ``mcp:<client>``, and returns its data.

Docstrings and parameter descriptions are what the model reads: they say what the tool is for,
when to use it, and what comes back. Ranges and enums live in the parameter types, so a bad
value is refused before any operation runs. No decisions are made here.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from agentic_pipeline.audit.actions import Action
from agentic_pipeline.interfaces.mcp.common import (
    MAX_ID, READ, PipelineId, Priority, Result, ToolSpec, actor_of, allowed_path, call, write_annotations,
)

# --- one book -------------------------------------------------------------------------------------

def get_pipeline_status(pipeline_id: PipelineId, ctx: Context) -> Result:
    """Everything about one book's pipeline: state, time in state, priority, type and confidence,
    last error, lease holder, next retry, and the full stage history with who moved it.

    Use it to answer "what happened to this book?" or "why was it rejected?".
    """
    from agentic_pipeline.pipeline import status

    return call(ctx, status.describe, pipeline_id)


def set_pipeline_priority(pipeline_id: PipelineId, priority: Priority, ctx: Context) -> Result:
    """Change one queued book's priority (1 = most urgent .. 10 = backfill).

    Workers take the lowest number first. Returns the old and new values; audited as PRIORITY_CHANGED.
    Books that already finished (complete, rejected, archived) are refused.
    """
    from agentic_pipeline.queue import operations

    return call(ctx, operations.set_priority, pipeline_id, priority, actor=actor_of(ctx))


def process_book(
    path: Annotated[str, Field(min_length=1, max_length=4096, description=(
        "The book file (EPUB, PDF, text, Markdown, HTML) under the allowed roots; a relative path is taken "
        "from the first root."))],
    ctx: Context,
    priority: Priority = 5,
    wait: Annotated[bool, Field(description=(
        "false (default): queue it for the workers and return at once. true: process it now, before "
        "returning (seconds for a small book, minutes for a large one)."))] = False,
) -> Result:
    """Queue one book for processing (hash, classify, chunk, validate), or process it right away with wait=true.

    Queueing the same file again returns the existing pipeline. Returns the pipeline id; with
    wait=true also the state it reached (usually pending_approval), its type and confidence.
    """
    from agentic_pipeline.orchestrator import process

    book = allowed_path(ctx, path)
    return call(ctx, process.process_one, str(book), priority=priority, actor=actor_of(ctx), wait=wait)


def retry_book(pipeline_id: PipelineId, ctx: Context) -> Result:
    """Retry one book now: a book waiting for a retry becomes due at once; a failed or rejected one is
    queued again from where it failed (rejected books start over).

    Use batch_retry for many books at once.
    """
    from agentic_pipeline.orchestrator import retries

    return call(ctx, retries.retry, pipeline_id, actor=actor_of(ctx))


# --- audit ----------------------------------------------------------------------------------------

def get_audit_log(
    ctx: Context,
    book_id: Annotated[int | None, Field(ge=1, le=MAX_ID, strict=True, description="Only entries about this library book id.")] = None,
    actor: Annotated[str | None, Field(min_length=1, max_length=130, description=(
        "Only entries by this actor, exact or a glob: human:alice, mcp:*, batch:*, auto:*, system:*."))] = None,
    action: Annotated[Action | None, Field(description="Only entries of this action.")] = None,
    pipeline_id: Annotated[int | None, Field(ge=1, le=MAX_ID, strict=True, description="Only entries about this pipeline id.")] = None,
    last_days: Annotated[float, Field(gt=0, le=3650, description="How many days back to look.")] = 7,
    limit: Annotated[int, Field(ge=1, le=1000, strict=True, description="At most this many entries, newest first.")] = 100,
) -> Result:
    """Who decided what, when and why: approvals, rejections, rollbacks, priority changes, batch
    operations, recoveries and autonomy changes, newest first.

    Use it to answer "why was this book rejected?" or "what did the batch approval change?".
    """
    from agentic_pipeline.audit import trail

    entries = call(ctx, trail.query, actor=actor, action=action.value if action else None, book_id=book_id,
                   pipeline_id=pipeline_id, last_days=last_days, limit=limit)
    return {"count": len(entries), "entries": entries}


def verify_audit_trail(ctx: Context) -> Result:
    """Check that the audit trail is intact: every entry's hash chains to the one before.

    Returns ok, the number of entries checked, and the first entry that does not verify if any
    (a sign of tampering: tell the user).
    """
    from agentic_pipeline.audit import trail

    return call(ctx, trail.verify)


# --- library --------------------------------------------------------------------------------------

def search_library(
    query: Annotated[str, Field(min_length=1, max_length=500,
                                description="What to look for: words, a phrase, a function name or a question.")],
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=100, strict=True, description="How many passages to return, best first.")] = 10,
) -> Result:
    """Search the library of completed books (full text and meaning, fused).

    Returns passages with the book title, chapter, a snippet and a score. Only books that were
    approved and embedded are searched.
    """
    from agentic_pipeline.library import search

    return {"query": query, "results": call(ctx, search.search, query, limit=limit)}


def list_strategies(ctx: Context) -> Result:
    """The processing strategies, one per book type: chunk size, overlap, chapter splitting and the
    validation thresholds a processed book must meet."""
    from agentic_pipeline.ingest import strategies

    return {"strategies": call(ctx, lambda _app: [s.to_json() for s in strategies.load_strategies().values()])}


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(get_pipeline_status, READ),
    ToolSpec(process_book, write_annotations(destructive=False, idempotent=True)),
    ToolSpec(set_pipeline_priority, write_annotations(destructive=False, idempotent=True)),
    ToolSpec(retry_book, write_annotations(destructive=False, idempotent=False)),
    ToolSpec(get_audit_log, READ),
    ToolSpec(verify_audit_trail, READ),
    ToolSpec(search_library, READ),
    ToolSpec(list_strategies, READ),
)
