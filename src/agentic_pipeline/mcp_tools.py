"""The MCP tools: each parses, calls one operation as ``mcp:<client>``, and returns its data.

Docstrings and parameter descriptions are what the model reads: they say what the tool is for,
when to use it, and what comes back. Ranges and enums live in the parameter types, so a bad
value is refused before any operation runs. No decisions are made here.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Callable

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from agentic_pipeline.mcp_server import actor_of, allowed_path, call

Result = dict[str, Any]

PipelineId = Annotated[int, Field(ge=1, description="The pipeline id (as shown by other tools, e.g. 'id').")]
Priority = Annotated[int, Field(ge=1, le=10, description="1 = most urgent, 5 = normal, 10 = backfill.")]
Reason = Annotated[str, Field(min_length=1, max_length=1000,
                              description="Why, in a sentence; recorded in the audit trail.")]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def _write(*, destructive: bool, idempotent: bool) -> ToolAnnotations:
    return ToolAnnotations(read_only_hint=False, destructive_hint=destructive, idempotent_hint=idempotent,
                           open_world_hint=False)


@dataclasses.dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Result]
    annotations: ToolAnnotations


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


# --- library --------------------------------------------------------------------------------------

def search_library(
    query: Annotated[str, Field(min_length=1, max_length=500,
                                description="What to look for: words, a phrase, a function name or a question.")],
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=100, description="How many passages to return, best first.")] = 10,
) -> Result:
    """Search the library of completed books (full text and meaning, fused).

    Returns passages with the book title, chapter, a snippet and a score. Only books that were
    approved and embedded are searched.
    """
    from agentic_pipeline.library import search

    return {"query": query, "results": call(ctx, search.search, query, limit=limit)}


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(get_pipeline_status, READ),
    ToolSpec(set_pipeline_priority, _write(destructive=False, idempotent=True)),
    ToolSpec(search_library, READ),
)
