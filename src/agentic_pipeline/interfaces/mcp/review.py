"""The MCP tools for watching and deciding: health, stuck books, approvals, autonomy.

Each tool calls one operation (``health.monitor``, ``health.recovery``, ``approval.operations``,
``approval.autonomy``, ``books.operations``) with the actor ``mcp:<client>`` and answers with a
typed, bounded model (``answers``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from agentic_pipeline.interfaces.mcp import answers
from agentic_pipeline.interfaces.mcp.answers import BOUND, Breakdown, Closed, DecisionRow, Open
from agentic_pipeline.interfaces.mcp.common import (
    READ, After, FilterArg, PipelineId, Reason, RowLimit, ToolSpec, actor_of, call, write_annotations,
)


# --- health ---------------------------------------------------------------------------------------

class Health(Open):
    status: Literal["healthy", "warning", "critical"]
    generated_at: str
    source: str = Field(description="cache (the report the maintenance worker stores) or fresh.")
    age_seconds: float = Field(description="How old the report is.")
    counts_by_state: dict[str, int]
    stuck_count: int
    stuck: list[dict[str, Any]] = Field(description=f"The first {answers.MAX_ITEMS} stuck books.")
    alerts: list[dict[str, Any]] = Field(description="Each alert with the first ids it is about.")


def get_pipeline_health(
    ctx: Context,
    fresh: Annotated[bool, Field(description=(
        "true: recompute now (a full pass over the table, slower on a large database) instead of reading the "
        "report the maintenance worker refreshes every health_interval seconds (default 30; a report older than "
        "health_stale_seconds, default 90, is recomputed anyway)."))] = False,
) -> Annotated[CallToolResult, Health]:
    """Is everything OK? The overall status (healthy / warning / critical), books per state, stuck
    books (count and the first 20), queue size and estimate, active workers, recent failures and the
    alerts that fired, with how old the report is. Start here when asked how the pipeline is doing.
    """
    from agentic_pipeline.health import monitor

    report = call(ctx, monitor.get_health, fresh=fresh)
    stuck = report.get("stuck") or []
    doc = answers.compact({k: v for k, v in report.items() if k not in ("stuck", "thresholds")})
    model = Health(**doc, stuck_count=len(stuck), stuck=answers.compact(stuck))
    alerts = "; ".join(a.get("message", "") for a in report.get("alerts", [])[:3])
    return answers.answer(model, f"{report['status'].upper()} (report {report.get('age_seconds', 0):.0f} s old): "
                                 f"{report.get('queued', 0)} queued, {report.get('active', 0)} active, "
                                 f"{report.get('pending_approval', 0)} pending approval, {len(stuck)} stuck"
                                 + (f". Alerts: {answers.clip(alerts, 600)}" if alerts else "."))


class StuckRow(Open):
    id: int
    state: str
    minutes_in_state: float
    reason: str
    rule_says: dict[str, Any]


class StuckList(Closed):
    generated_at: str
    count: int
    by_state: dict[str, int]
    by_reason: dict[str, int]
    rows: list[StuckRow]
    next_after: int | None


def get_stuck_pipelines(ctx: Context, limit: RowLimit = answers.DEFAULT_ROWS,
                        after: After = None) -> Annotated[CallToolResult, StuckList]:
    """Books that stay in a working state (or wait for a retry) much longer than usual: the count by
    state and reason, then one page (by id) with how long, what is normal, why they count as stuck,
    and what the automatic recovery rules would do. Recover one with recover_stuck_pipeline.
    """
    from agentic_pipeline.health import monitor, recovery

    def find(app) -> tuple[Any, list[dict[str, Any]]]:
        found = monitor.find_stuck(app)
        rows = sorted(found["stuck"], key=lambda s: s.id)
        page, more = answers.paged([{"id": s.id, "s": s} for s in rows], after, limit)
        out = [{**answers.compact(r["s"].to_dict()), "rule_says": vars(recovery.decide(r["s"], app.settings))}
               for r in page]
        return found, rows, out, more

    found, rows, page, more = call(ctx, find)
    by_state: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    for s in rows:
        by_state[s.state] = by_state.get(s.state, 0) + 1
        by_reason[s.reason] = by_reason.get(s.reason, 0) + 1

    def build(part):
        return StuckList(generated_at=found["generated_at"].isoformat(), count=len(rows), by_state=by_state,
                         by_reason=by_reason, rows=part,
                         next_after=part[-1]["id"] if part and (more or len(part) < len(page)) else None)

    model, shown = answers.fit_rows(build, page)
    return answers.answer(model, f"{len(rows)} stuck" + (f" (by state: {answers.count_line(by_state)})" if rows else "")
                          + (f"; showing {shown}" if rows else "") + ".")


class Recovered(Open):
    id: int
    action: str


def recover_stuck_pipeline(
    pipeline_id: PipelineId,
    ctx: Context,
    action: Annotated[Literal["retry", "reject", "reset"], Field(description=(
        "retry: due for a retry now, resuming at the stage it was in; reject: give up on it (it stays "
        "rejected until retried); reset: start it over from the beginning."))] = "retry",
    reason: Annotated[str | None, Field(max_length=1000, description=(
        "Why; required for reject and reset (kept in the audit trail)."))] = None,
) -> Annotated[CallToolResult, Recovered]:
    """Recover one stuck book (a working state or waiting for a retry) by hand; audited as STUCK_RECOVERED.

    Refused for a book that is not stuck while its worker holds a live lease (it is being worked on).
    A second call finds the book no longer stuck in the same way and is refused or acts again: not idempotent.
    """
    from agentic_pipeline.health import recovery

    done = call(ctx, recovery.recover_one, pipeline_id, action, actor=actor_of(ctx), reason=reason)
    model = Recovered(**answers.compact({"action": action, **done}))
    return answers.answer(model, f"Pipeline {pipeline_id}: {action} done"
                                 + (f", now {done['state']}" if done.get("state") else "") + ".")


# --- approvals ------------------------------------------------------------------------------------

class BookRow(DecisionRow):
    seconds_in_state: float | None = None


class BookPage(Closed):
    total: int = Field(description="How many books match in all.")
    filter: dict[str, Any] = Field(description="The filter as understood.")
    breakdown: Breakdown
    sort: str
    rows: list[BookRow]
    next_after: int | None = Field(description="Pass as after= for the next page; null on the last page.")


def book_page(app, filt, *, sort: str, limit: int, after: int | None) -> BookPage:
    """One page of ``books.operations.list_books`` as a bounded model (counts cover the whole set)."""
    from agentic_pipeline.books import operations as books

    data = books.list_books(app, filt, sort=sort, limit=limit, after=after)
    confidence = books.confidence_bands(app, filt)

    def build(part):
        rows = [BookRow(**answers.decision_row(r).model_dump(), seconds_in_state=r.get("seconds_in_state"))
                for r in part]
        more = data["next_after"] is not None or len(part) < len(data["rows"])
        return BookPage(total=data["total"], filter=data["filter"], sort=data["sort"], rows=rows,
                        breakdown=Breakdown(by_state=data["counts"]["state"],
                                            by_type={k or "unclassified": v for k, v in data["counts"]["book_type"].items()},
                                            by_confidence=confidence or {}),
                        next_after=part[-1]["id"] if part and more else None)

    return answers.fit_rows(build, data["rows"])[0]


def page_text(page: BookPage, what: str) -> str:
    text = f"{page.total} {what}"
    if page.total:
        text += (f"; by state: {answers.count_line(page.breakdown.by_state)}; by type: "
                 f"{answers.count_line(page.breakdown.by_type)}. Showing {len(page.rows)}")
        text += f"; next page: after={page.next_after}." if page.next_after else "."
    return text + ("" if page.total else ".")


def list_pending_approvals(
    ctx: Context,
    book_type: FilterArg("book_type") = None,
    min_confidence: FilterArg("min_confidence") = None,
    max_confidence: FilterArg("max_confidence") = None,
    limit: RowLimit = answers.DEFAULT_ROWS,
    after: After = None,
) -> Annotated[CallToolResult, BookPage]:
    """Books processed and validated, waiting for a decision: how many in all (by type and confidence
    band), then one page, oldest first (id, title, type, confidence, seconds waiting).

    Decide with approve_book / reject_book, or many at once with batch_approve / batch_reject
    (same filter). Details of one book: show_book. The answer is at most 20 KB.
    """
    from agentic_pipeline.batch import filters

    def run(app):
        filt = filters.make_filter(state="pending_approval", book_type=book_type, min_confidence=min_confidence,
                                   max_confidence=max_confidence)
        return book_page(app, filt, sort="id", limit=limit, after=after)

    page = call(ctx, run)
    return answers.answer(page, page_text(page, "books waiting for approval"))


class Decided(Open):
    id: int
    state: str
    title: str | None = None


def _decided(done: dict[str, Any], verb: str) -> CallToolResult:
    model = Decided(**answers.compact(done))
    return answers.answer(model, f"Pipeline {done['id']} ({answers.clip(done.get('title') or '', 120)}) {verb}: "
                                 f"now {done['state']}.")


def approve_book(
    pipeline_id: PipelineId,
    ctx: Context,
    reason: Annotated[str | None, Field(max_length=1000, description="Why (optional; kept in the audit trail).")] = None,
) -> Annotated[CallToolResult, Decided]:
    """Approve one book waiting for approval; a worker then embeds it into the searchable library.

    Only books in pending_approval can be approved: a second call is refused (the book is approved
    already). Audited as APPROVED.
    """
    from agentic_pipeline.approval import operations

    return _decided(call(ctx, operations.approve, pipeline_id, actor=actor_of(ctx), reason=reason), "approved")


def reject_book(pipeline_id: PipelineId, reason: Reason, ctx: Context) -> Annotated[CallToolResult, Decided]:
    """Reject one book that is waiting (queued, for a retry, or for approval), with a reason.

    Anything it had in the library is removed. Audited as REJECTED; a second call is refused (it is
    rejected already). For approved or complete books use rollback_book.
    """
    from agentic_pipeline.approval import operations

    return _decided(call(ctx, operations.reject, pipeline_id, actor=actor_of(ctx), reason=reason), "rejected")


def rollback_book(pipeline_id: PipelineId, reason: Reason, ctx: Context) -> Annotated[CallToolResult, Decided]:
    """Take an approved or complete book back out of the library (chapters, chunks, vectors) and archive it.

    Use it when a book should not have been approved. Audited as ROLLED_BACK; a second call is
    refused (it is archived already).
    """
    from agentic_pipeline.approval import operations

    return _decided(call(ctx, operations.rollback, pipeline_id, actor=actor_of(ctx), reason=reason), "rolled back")


class Autonomy(Open):
    mode: str
    escape_hatch: bool
    daily_cap: int | None = None
    auto_approvals_today: int | None = None


def get_autonomy_status(ctx: Context) -> Annotated[CallToolResult, Autonomy]:
    """How much is approved without a person: the mode (supervised, partial, confident), the
    confidence thresholds, the daily cap and today's automatic approvals, and whether the escape
    hatch (all automatic approvals stopped) is on. Read-only: changing it is the user's decision.
    """
    from agentic_pipeline.approval import autonomy

    data = call(ctx, autonomy.status)
    return answers.answer(Autonomy(**answers.compact(data)),
                          f"Mode {data['mode']}" + (", escape hatch ON (no automatic approvals)"
                                                    if data.get("escape_hatch") else "")
                          + f"; {data.get('auto_approvals_today', 0)} automatic approvals today.")


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(get_pipeline_health, READ),
    ToolSpec(get_stuck_pipelines, READ),
    ToolSpec(recover_stuck_pipeline, write_annotations(destructive=True, idempotent=False)),
    ToolSpec(list_pending_approvals, READ),
    ToolSpec(approve_book, write_annotations(destructive=False, idempotent=False)),
    ToolSpec(reject_book, write_annotations(destructive=True, idempotent=False)),
    ToolSpec(rollback_book, write_annotations(destructive=True, idempotent=False)),
    ToolSpec(get_autonomy_status, READ),
)
