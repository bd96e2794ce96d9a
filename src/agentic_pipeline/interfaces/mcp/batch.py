"""The MCP batch tools: preview first, act only with the preview's confirmation token.

Every batch tool takes the CLI's filter, generated from ``batch.filters.FIELDS``/``LIMITS`` (same
names, schema, and the same ``make_filter`` validation and messages). With ``execute=false`` it
plans over the whole table and answers with a summary of every matching book (count, breakdown by
state, type and confidence band, the filter as understood), one page of rows (``limit``, paged with
``after``/``next_after``) and a confirmation token bound to the plan's digest, i.e. to the exact
full set of matching books, not to the rows shown (``batch.confirmations``: random, single use, 10
minutes). With ``execute=true`` and that token, ``execute_confirmed`` re-plans and applies to the
whole set only if it still has that digest, else refuses with the new count and a new token.
``batch_queue_folder`` only adds new pipelines (duplicates are skipped), so it acts at once, but
only on a folder under the allowed roots.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Callable

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from agentic_pipeline.batch import filters
from agentic_pipeline.interfaces.mcp import answers
from agentic_pipeline.interfaces.mcp.answers import BOUND, Breakdown, Closed, DecisionRow
from agentic_pipeline.interfaces.mcp.common import (
    After, Confirmation, Execute, FilterArg, Priority, Reason, RowLimit, ToolSpec, actor_of, allowed_folder, call,
    confirmations_of, roots_of, state_of, write_annotations,
)

NEXT_STEP = ("Show this summary to the user. To act on every matching book (all {matched}, not only the rows "
             "shown), call the same tool with the same arguments plus execute=true and "
             "confirmation=<confirmation_token>.")
SHOWN_IDS = 100


class BatchPreview(Closed):
    operation: str
    would: str = Field(description="The change, in words.")
    change: dict[str, Any]
    filter: dict[str, Any] = Field(description="The filter as understood: relative dates and patterns resolved.")
    matched: int = Field(description="How many books match in all (the confirmation covers every one).")
    max_count: int
    breakdown: Breakdown
    rows: list[DecisionRow] = Field(description="One page of the matching books, by id.")
    next_after: int | None = Field(description="Pass as after= to see the next page; null on the last page.")
    note: str | None = None


class BatchResult(Closed):
    operation: str
    actor: str
    filter_id: str
    matched: int
    applied: int
    applied_ids: list[int] = Field(description=f"The first {SHOWN_IDS} ids changed (applied says how many in all).")
    skipped: int
    skipped_details: list[dict[str, Any]] = Field(description="The first few books skipped, with why.")


class BatchAnswer(Closed):
    executed: bool
    preview: BatchPreview | None = None
    confirmation_token: str | None = None
    next_step: str | None = None
    result: BatchResult | None = None


def filter_parameters() -> list[inspect.Parameter]:
    """The MCP arguments of the batch filter, one per ``filters.FIELDS``/``LIMITS`` entry.

    Typed ``Any`` with the field's JSON schema: the model reads the enums and ranges, and the
    values reach ``make_filter`` as given, so a bad one gets the CLI's message.
    """
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=FilterArg(f.name))
            for f in filters.FIELDS + filters.LIMITS]


def with_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``fn(ctx, ..., **filter_args)`` the filter's arguments in its signature (what the server reads)."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keyword = [p for p in own if p.kind is inspect.Parameter.KEYWORD_ONLY]
    fn.__signature__ = sig.replace(parameters=positional + filter_parameters() + keyword)  # type: ignore[attr-defined]
    return fn


def run_batch_tool(ctx: Context, operation: str, filter_args: dict[str, Any], *, execute: bool,
                   confirmation: str | None, limit: int, after: int | None, **change: Any) -> CallToolResult:
    """Preview (no token needed) or execute a confirmed plan: the two halves of every batch tool."""
    from agentic_pipeline import errors
    from agentic_pipeline.batch import operations as batch

    actor = actor_of(ctx)
    confirmations = confirmations_of(ctx)
    roots = roots_of(state_of(ctx).settings)

    def run(app) -> CallToolResult:
        now = app.clock.now()
        filt = filters.make_filter(**filter_args, now=now, base=str(roots[0]) if roots else None)
        if not execute:
            plan = batch.plan_batch(app, operation, filt, **change)
            token = confirmations.issue(plan.digest, now) if plan.matched else None
            return preview_answer(plan, token, limit=limit, after=after)
        if not confirmation:
            raise errors.InputError("execute=true needs the confirmation token: call this tool with execute=false "
                                    "first, show the preview to the user, then pass its confirmation_token")
        done = batch.execute_confirmed(app, operation, filt, confirmation, confirmations=confirmations, actor=actor,
                                       **change)
        res = done["result"]
        result = BatchResult(**{**res, "applied_ids": res["applied_ids"][:SHOWN_IDS],
                                "skipped_details": [answers.compact(s) for s in res["skipped_details"][:10]]})
        return answers.answer(BatchAnswer(executed=True, result=result),
                              f"{operation}: applied to {res['applied']} of {res['matched']} books as {res['actor']}; "
                              f"skipped {res['skipped']}.")

    return call(ctx, run)


def preview_answer(plan, token: str | None, *, limit: int, after: int | None) -> CallToolResult:
    """The compact preview of ``plan``: summary of every match, one page of decision rows, the token."""
    rows, more = answers.paged(plan.rows, after, limit)
    summary = answers.breakdown(plan.rows)
    note = None if plan.matched or not plan.filter.is_empty or plan.filter.all else filters.EMPTY_FILTER

    def build(page: list[dict[str, Any]]) -> BatchAnswer:
        has_more = more or len(page) < len(rows)
        return BatchAnswer(
            executed=False, confirmation_token=token,
            next_step=NEXT_STEP.format(matched=plan.matched) if token else None,
            preview=BatchPreview(operation=plan.operation, would=batch_verb(plan.operation),
                                 change=answers.compact(plan.change), filter=plan.filter.to_dict(),
                                 matched=plan.matched, max_count=plan.max_count, breakdown=summary,
                                 rows=[answers.decision_row(r) for r in page],
                                 next_after=page[-1]["id"] if has_more and page else None, note=note))

    model, shown = answers.fit_rows(build, rows)
    text = (f"{plan.matched} books match (would {batch_verb(plan.operation)}); by state: "
            f"{answers.count_line(summary.by_state)}; by type: {answers.count_line(summary.by_type)}. "
            f"Showing {shown}" + (f" after id {after}" if after else "")
            + (f"; next page: after={model.preview.next_after}" if model.preview.next_after else "") + ".")
    if note:
        text = note[0].upper() + note[1:] + "."
    elif token:
        text += " Confirm with execute=true and the confirmation_token to apply to all of them."
    return answers.answer(model, text)


def batch_verb(operation: str) -> str:
    from agentic_pipeline.batch.operations import OPERATIONS

    return OPERATIONS[operation].verb


_TWO_STEPS = (" Two steps: call with execute=false for a summary of every matching book (count, breakdown by "
              "state, type and confidence, the filter as understood), the first rows (limit, default 20; page with "
              "after) and a confirmation token; then, after the user agrees, call again with the same arguments plus "
              "execute=true and that token: it acts on the whole matched set, not only the rows shown. If the "
              "matching books changed in between, nothing happens and a new token comes back. An empty filter "
              "matches nothing (all=true to act on every eligible book); more matches than max_count is refused. "
              f"{BOUND}.")


@with_filter
def batch_approve(
    ctx: Context,
    reason: Annotated[str | None, Field(max_length=1000, description="Why (optional; kept in the audit trail).")] = None,
    execute: Execute = False,
    confirmation: Confirmation = None,
    limit: RowLimit = answers.DEFAULT_ROWS,
    after: After = None,
    **filter_args: Any,
) -> Annotated[CallToolResult, BatchAnswer]:
    """Approve every book waiting for approval (pending_approval) that matches the filter; workers then embed them."""
    return run_batch_tool(ctx, "approve", filter_args, execute=execute, confirmation=confirmation, limit=limit,
                          after=after, reason=reason)


@with_filter
def batch_reject(
    ctx: Context,
    reason: Reason,
    execute: Execute = False,
    confirmation: Confirmation = None,
    limit: RowLimit = answers.DEFAULT_ROWS,
    after: After = None,
    **filter_args: Any,
) -> Annotated[CallToolResult, BatchAnswer]:
    """Reject every book waiting for approval that matches the filter, with a reason (kept in the audit trail);
    their library rows are removed."""
    return run_batch_tool(ctx, "reject", filter_args, execute=execute, confirmation=confirmation, limit=limit,
                          after=after, reason=reason)


@with_filter
def batch_retry(
    ctx: Context,
    max_attempts: Annotated[int | None, Field(ge=1, le=100, strict=True, description=(
        "Also allow this many attempts from now on (default: the attempts left)."))] = None,
    execute: Execute = False,
    confirmation: Confirmation = None,
    limit: RowLimit = answers.DEFAULT_ROWS,
    after: After = None,
    **filter_args: Any,
) -> Annotated[CallToolResult, BatchAnswer]:
    """Retry now the books that failed, were rejected, or wait for a retry (needs_retry, failed, rejected),
    matching the filter."""
    return run_batch_tool(ctx, "retry", filter_args, execute=execute, confirmation=confirmation, limit=limit,
                          after=after, max_attempts=max_attempts)


@with_filter
def batch_set_priority(
    ctx: Context,
    priority: Priority,
    execute: Execute = False,
    confirmation: Confirmation = None,
    limit: RowLimit = answers.DEFAULT_ROWS,
    after: After = None,
    **filter_args: Any,
) -> Annotated[CallToolResult, BatchAnswer]:
    """Set the priority (1 = most urgent .. 10 = backfill) of every unfinished book matching the filter; a manual
    change also resets the original priority and the aging level."""
    return run_batch_tool(ctx, "priority", filter_args, execute=execute, confirmation=confirmation, limit=limit,
                          after=after, priority=priority)


for _tool in (batch_approve, batch_reject, batch_retry, batch_set_priority):
    _tool.__doc__ = (_tool.__doc__ or "") + "\n\n" + _TWO_STEPS.strip()


class QueueItem(Closed):
    path: str
    id: int | None = None
    reason: str | None = None


class QueueAnswer(Closed):
    path: str
    pattern: str
    recursive: bool
    priority: int
    queued_count: int
    duplicates_count: int
    unsupported_count: int
    unreadable_count: int
    refused_count: int = 0
    queued: list[QueueItem] = Field(description=f"The first {answers.MAX_ITEMS} queued (queued_count says how many).")
    duplicates: list[QueueItem]
    unsupported: list[QueueItem]
    unreadable: list[QueueItem]
    refused: list[QueueItem] = []


def batch_queue_folder(
    path: Annotated[str, Field(min_length=1, max_length=4096, description=(
        "A folder (or one file) under the allowed roots; a relative path is taken from the first root."))],
    ctx: Context,
    priority: Priority = 5,
    pattern: Annotated[str, Field(min_length=1, max_length=200, description=(
        "Only files whose name matches this glob, e.g. *.pdf (default: every supported file)."))] = "*",
    recursive: Annotated[bool, Field(description="Also look in subfolders.")] = False,
) -> Annotated[CallToolResult, QueueAnswer]:
    """Queue every book in a folder for processing (EPUB, PDF, text, Markdown, HTML); acts at once.

    Files are hashed (a large folder takes a while); content already queued or in the library is
    reported as a duplicate and not queued again, so a second call queues nothing new. Returns the
    counts and the first 20 of each list (queued with pipeline ids, duplicates, unsupported,
    unreadable). Only folders under the allowed roots can be read (a folder with links to files
    outside them is refused). The answer is at most 20 KB.
    """
    from agentic_pipeline import intake

    folder = allowed_folder(ctx, path, recursive=recursive)
    done = call(ctx, intake.batch_queue, folder, pattern=pattern, recursive=recursive, priority=priority,
                actor=actor_of(ctx), roots=roots_of(state_of(ctx).settings))

    def items(kind: str) -> list[QueueItem]:
        return [QueueItem(path=answers.clip(i["path"], 300), id=i.get("id"), reason=answers.clip(i.get("reason"), 200))
                for i in done.get(kind, [])[:answers.MAX_ITEMS]]

    model = QueueAnswer(**{k: done[k] for k in ("path", "pattern", "recursive", "priority", "queued_count",
                                                "duplicates_count", "unsupported_count", "unreadable_count")},
                        refused_count=done.get("refused_count", 0), queued=items("queued"),
                        duplicates=items("duplicates"), unsupported=items("unsupported"),
                        unreadable=items("unreadable"), refused=items("refused"))
    return answers.answer(model, f"Queued {done['queued_count']}, duplicates {done['duplicates_count']}, unsupported "
                                 f"{done['unsupported_count']}, unreadable {done['unreadable_count']} "
                                 f"(from {done['path']}).")


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(batch_queue_folder, write_annotations(destructive=False, idempotent=True)),
    ToolSpec(batch_approve, write_annotations(destructive=False, idempotent=False)),
    ToolSpec(batch_reject, write_annotations(destructive=True, idempotent=False)),
    ToolSpec(batch_retry, write_annotations(destructive=False, idempotent=False)),
    ToolSpec(batch_set_priority, write_annotations(destructive=False, idempotent=False)),
)
