"""The MCP tools about books: one book (status, show, edit, priority, process, retry), lists of books,
the rejected books by cause, the audit trail and the library.

Docstrings and parameter descriptions are what the model reads: they say what the tool is for,
when to use it, what comes back and how large it can be. Ranges and enums live in the parameter
types, so a bad value is refused before any operation runs. No decisions are made here.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from agentic_pipeline.audit.actions import Action
from agentic_pipeline.interfaces.mcp import answers
from agentic_pipeline.interfaces.mcp.answers import Closed, Open
from agentic_pipeline.interfaces.mcp.common import (
    MAX_ID, READ, After, FilterArg, PipelineId, Priority, RowLimit, ToolSpec, actor_of, allowed_path, call,
    roots_of, state_of, write_annotations,
)
from agentic_pipeline.interfaces.mcp.review import BookPage, book_page, page_text

# --- one book -------------------------------------------------------------------------------------

class Status(Open):
    id: int
    state: str
    title: str | None = None
    history: list[dict[str, Any]] = Field(description="The latest stage changes, oldest first (history_total: all).")


def get_pipeline_status(pipeline_id: PipelineId, ctx: Context) -> Annotated[CallToolResult, Status]:
    """One book's pipeline: state, time in state, priority, type and confidence, last error, lease
    holder, next retry, validation, and its latest 20 stage changes with who moved it.

    For everything a decision needs (authors, classifier's reasoning, failed checks first, who
    rejected it and why, chapters) use show_book. The answer is at most 20 KB.
    """
    from agentic_pipeline.pipeline import status

    data = call(ctx, status.describe, pipeline_id)
    history = data.get("history") or []
    doc = answers.compact({**data, "history": history[-answers.MAX_ITEMS:]})
    if len(history) > answers.MAX_ITEMS:
        doc["history_total"] = len(history)
    return answers.answer(Status(**doc), f"Pipeline {pipeline_id} ({answers.clip(data.get('title') or '', 120)}): "
                                         f"{data['state']}" + (f"; error: {answers.clip(data['error'], 300)}"
                                                               if data.get("error") else "") + ".")


class BookDetail(Open):
    id: int
    title: str | None
    authors: list[str]
    language: str | None
    state: str
    classification: dict[str, Any]
    validation: dict[str, Any] | None
    error: dict[str, Any] | None
    chapters: list[dict[str, Any]]
    history: list[dict[str, Any]]
    audit: list[dict[str, Any]]


def show_book(pipeline_id: PipelineId, ctx: Context) -> Annotated[CallToolResult, BookDetail]:
    """Everything needed to decide about one book: title, authors, language, file, state, type with
    the classifier's reasoning and probabilities, validation checks (failed first), the first 20
    chapters with word counts, the error with its hint and who rejected it and why, the latest state
    changes and audit entries (``*_total`` fields say how many there are in all).

    Use it to answer "why was this book rejected?" or before approving one. The answer is at most 20 KB.
    """
    from agentic_pipeline.books import operations as books

    data = call(ctx, books.show, pipeline_id)
    doc = answers.compact({**data, "history": data["history"][-answers.MAX_ITEMS:],
                           "audit": data["audit"][:answers.MAX_ITEMS]}, string=300)
    for key in ("history", "audit", "chapters"):
        if len(data[key]) > answers.MAX_ITEMS:
            doc[f"{key}_total"] = len(data[key])
    model, _ = answers.fit_rows(lambda audit: BookDetail(**{**doc, "audit": audit}), doc["audit"])
    err = data.get("error") or {}
    why = f"; {err.get('actor')}: {answers.clip(err.get('reason') or err.get('message') or '', 300)}" if err else ""
    cls = data["classification"]
    return answers.answer(model, f"Pipeline {data['id']}: {answers.clip(data['title'] or '(no title yet)', 120)}, "
                                 f"{data['state']}, {cls.get('book_type') or 'unclassified'}"
                                 + (f" ({cls['confidence']:.2f})" if cls.get("confidence") is not None else "") + why + ".")


class Edited(Closed):
    id: int
    state: str
    changed: dict[str, dict[str, Any]] = Field(description="field -> {old, new}; empty when nothing changed.")
    label_id: int | None = Field(description="The human label kept for the classifier when the type changed.")


def edit_book(
    pipeline_id: PipelineId,
    ctx: Context,
    title: Annotated[str | None, Field(min_length=1, max_length=500, description="The correct title.")] = None,
    authors: Annotated[list[Annotated[str, Field(min_length=1, max_length=300)]] | None, Field(
        max_length=50, description="The correct authors (replaces the list; [] clears it).")] = None,
    language: Annotated[str | None, Field(min_length=2, max_length=35, description=(
        "ISO 639 language code (en, de, pt-BR: the primary subtag is kept)."))] = None,
    book_type: FilterArg("book_type") = None,
    reason: Annotated[str | None, Field(max_length=1000, description="Why (kept in the audit trail).")] = None,
) -> Annotated[CallToolResult, Edited]:
    """Correct a book's title, authors, language or type (audited METADATA_CHANGED, old -> new); a
    type correction is also kept as a label the classifier learns from.

    Allowed once the worker is done deriving them (pending approval, approved, complete, rejected,
    failed, duplicate, archived). Giving the current values changes and records nothing, so a
    repeat is a no-op.
    """
    from agentic_pipeline.books import operations as books

    done = call(ctx, books.edit, pipeline_id, title=title, authors=authors, language=language, book_type=book_type,
                actor=actor_of(ctx), reason=reason)
    model = Edited(**answers.compact(done))
    return answers.answer(model, f"Pipeline {done['id']}: " + (", ".join(done["changed"]) + " changed"
                                                               if done["changed"] else "nothing changed") + ".")


class PriorityChange(Closed):
    id: int
    state: str
    old: dict[str, int]
    new: dict[str, int]
    changed: bool


def set_pipeline_priority(pipeline_id: PipelineId, priority: Priority,
                          ctx: Context) -> Annotated[CallToolResult, PriorityChange]:
    """Change one queued book's priority (1 = most urgent .. 10 = backfill).

    Workers take the lowest number first. Returns the old and new values; audited as PRIORITY_CHANGED.
    Setting the priority it already has changes nothing (changed=false), so a repeat is a no-op.
    Books that already finished (complete, rejected, archived) are refused.
    """
    from agentic_pipeline.queue import operations

    done = call(ctx, operations.set_priority, pipeline_id, priority, actor=actor_of(ctx))
    return answers.answer(PriorityChange(**done), f"Pipeline {done['id']}: priority {done['old']['priority']} -> "
                                                  f"{done['new']['priority']}" + ("" if done["changed"] else
                                                                                  " (unchanged)") + ".")


class Processed(Open):
    id: int
    created: bool
    state: str


def process_book(
    path: Annotated[str, Field(min_length=1, max_length=4096, description=(
        "The book file (EPUB, PDF, text, Markdown, HTML) under the allowed roots; a relative path is taken "
        "from the first root."))],
    ctx: Context,
    priority: Priority = 5,
    wait: Annotated[bool, Field(description=(
        "false (default): queue it for the workers and return at once. true: process it now, before "
        "returning (seconds for a small book, minutes for a large one)."))] = False,
) -> Annotated[CallToolResult, Processed]:
    """Queue one book for processing (hash, classify, chunk, validate), or process it right away with wait=true.

    Queueing the same file again returns the existing pipeline (created=false) and queues nothing,
    so a repeat is a no-op. Returns the pipeline id; with wait=true also the state it reached
    (usually pending_approval), its type and confidence.
    """
    from agentic_pipeline.orchestrator import process

    book = allowed_path(ctx, path)
    done = call(ctx, process.process_one, str(book), priority=priority, actor=actor_of(ctx), wait=wait)
    return answers.answer(Processed(**answers.compact(done)),
                          f"Pipeline {done['id']} ({'queued' if done['created'] else 'already known'}): {done['state']}.")


class Retried(Open):
    id: int
    state: str


def retry_book(pipeline_id: PipelineId, ctx: Context) -> Annotated[CallToolResult, Retried]:
    """Retry one book now: a book waiting for a retry becomes due at once; a failed or rejected one is
    queued again from where it failed (rejected books start over).

    Use batch_retry for many books at once.
    """
    from agentic_pipeline.orchestrator import retries

    done = call(ctx, retries.retry, pipeline_id, actor=actor_of(ctx))
    return answers.answer(Retried(**answers.compact(done)), f"Pipeline {done['id']}: {done.get('from')} -> "
                                                            f"{done['state']}, due now.")


# --- lists ----------------------------------------------------------------------------------------

def list_books(
    ctx: Context,
    book_type: FilterArg("book_type") = None,
    min_confidence: FilterArg("min_confidence") = None,
    max_confidence: FilterArg("max_confidence") = None,
    state: FilterArg("state") = None,
    created_after: FilterArg("created_after") = None,
    created_before: FilterArg("created_before") = None,
    source_path_pattern: FilterArg("source_path_pattern") = None,
    sort: Annotated[str, Field(max_length=20, description=(
        "Order by id, created, updated, state, title, type, confidence or priority; -key for descending."))] = "id",
    limit: RowLimit = answers.DEFAULT_ROWS,
    after: After = None,
) -> Annotated[CallToolResult, BookPage]:
    """List the books (every pipeline, any state) matching the batch filter (no filter: all books):
    how many in all, by state, type and confidence band, then one page of rows (id, title, type,
    confidence, state). Page on with after=next_after. The answer is at most 20 KB.
    """
    from agentic_pipeline.batch import filters

    roots = roots_of(state_of(ctx).settings)

    def run(app):
        filt = filters.make_filter(book_type=book_type, min_confidence=min_confidence, max_confidence=max_confidence,
                                   state=state, created_after=created_after, created_before=created_before,
                                   source_path_pattern=source_path_pattern, now=app.clock.now(),
                                   base=str(roots[0]) if roots else None)
        return book_page(app, filt, sort=sort, limit=limit, after=after)

    page = call(ctx, run)
    return answers.answer(page, page_text(page, "books"))


class Cause(Closed):
    cause: str = Field(description="The error with its numbers as N.")
    stage: str | None
    count: int
    example_ids: list[int]
    example: str | None


class RejectedCauses(Closed):
    total: int
    causes: list[Cause] = Field(description="Largest first (causes_total: how many causes in all).")
    causes_total: int


def list_rejected_books(
    ctx: Context,
    book_type: FilterArg("book_type") = None,
    created_after: FilterArg("created_after") = None,
    created_before: FilterArg("created_before") = None,
    source_path_pattern: FilterArg("source_path_pattern") = None,
    limit: Annotated[int, Field(ge=1, le=50, strict=True, description="How many causes to show.")] = 10,
) -> Annotated[CallToolResult, RejectedCauses]:
    """The rejected books grouped by why (validator or person, and the reason), largest group first,
    each with a count and example pipeline ids. Details of one: show_book; retry them: batch_retry
    with state=rejected. The answer is at most 20 KB.
    """
    from agentic_pipeline.batch import filters
    from agentic_pipeline.books import operations as books

    roots = roots_of(state_of(ctx).settings)

    def run(app):
        filt = filters.make_filter(state="rejected", book_type=book_type, created_after=created_after,
                                   created_before=created_before, source_path_pattern=source_path_pattern,
                                   now=app.clock.now(), base=str(roots[0]) if roots else None)
        return books.rejected_causes(app, filt)

    data = call(ctx, run)
    causes = [Cause(**{**c, "cause": answers.clip(c["cause"], 200), "example": answers.clip(c["example"], 300)})
              for c in data["causes"][:limit]]
    model, _ = answers.fit_rows(lambda part: RejectedCauses(total=data["total"], causes=part,
                                                            causes_total=len(data["causes"])), causes)
    top = "; ".join(f"{c.count} x {answers.clip(c.cause, 80)}" for c in model.causes[:3])
    return answers.answer(model, f"{data['total']} rejected books, {len(data['causes'])} causes" + (f": {top}"
                                                                                                  if top else "") + ".")


# --- audit ----------------------------------------------------------------------------------------

class AuditPage(Closed):
    count: int = Field(description="Entries on this page.")
    entries: list[dict[str, Any]] = Field(description="Newest first; long lists inside are cut (…_total says how many).")
    next_before: int | None = Field(description="Pass as before_id= for older entries; null when there are none.")


def get_audit_log(
    ctx: Context,
    book_id: Annotated[int | None, Field(ge=1, le=MAX_ID, strict=True, description="Only entries about this library book id.")] = None,
    actor: Annotated[str | None, Field(min_length=1, max_length=130, description=(
        "Only entries by this actor, exact or a glob: human:alice, mcp:*, batch:*, auto:*, system:*."))] = None,
    action: Annotated[Action | None, Field(description="Only entries of this action.")] = None,
    pipeline_id: Annotated[int | None, Field(ge=1, le=MAX_ID, strict=True, description="Only entries about this pipeline id.")] = None,
    last_days: Annotated[float, Field(gt=0, le=3650, description="How many days back to look.")] = 7,
    limit: RowLimit = answers.DEFAULT_ROWS,
    before_id: Annotated[int | None, Field(ge=1, le=MAX_ID, strict=True, description=(
        "Only entries older than this entry id: the next_before of the previous page."))] = None,
) -> Annotated[CallToolResult, AuditPage]:
    """Who decided what, when and why: approvals, rejections, rollbacks, priority changes, batch
    operations, recoveries and autonomy changes, newest first, one page at a time (limit, default 20;
    older with before_id=next_before). The answer is at most 20 KB.

    Use it to answer "what did the batch approval change?"; for one book's story use show_book.
    """
    from agentic_pipeline.audit import trail

    entries = call(ctx, trail.query, actor=actor, action=action.value if action else None, book_id=book_id,
                   pipeline_id=pipeline_id, last_days=last_days, limit=limit + 1, before_id=before_id)
    more = len(entries) > limit
    entries = [answers.compact(e, string=300) for e in entries[:limit]]

    def build(part):
        return AuditPage(count=len(part), entries=part,
                         next_before=part[-1]["id"] if part and (more or len(part) < len(entries)) else None)

    model, shown = answers.fit_rows(build, entries)
    return answers.answer(model, f"{shown} audit entries" + (f"; older: before_id={model.next_before}"
                                                             if model.next_before else "") + ".")


class Verified(Open):
    ok: bool
    count: int


def verify_audit_trail(ctx: Context) -> Annotated[CallToolResult, Verified]:
    """Check that the audit trail is intact: every entry's hash chains to the one before (reads the
    whole trail: seconds on a large one).

    Returns ok, the number of entries checked, and the first entry that does not verify if any
    (a sign of tampering: tell the user).
    """
    from agentic_pipeline.audit import trail

    done = call(ctx, trail.verify)
    return answers.answer(Verified(**answers.compact(done)),
                          f"Audit trail {'intact' if done['ok'] else 'BROKEN'}: {done['count']} entries checked.")


# --- library --------------------------------------------------------------------------------------

class Passage(Open):
    pipeline_id: int | None = Field(description="The book's pipeline id: what show_book and the other tools take.")
    book_title: str | None = None
    chapter_title: str | None = None
    snippet: str | None = None
    score: float | None = None


class SearchResults(Closed):
    query: str
    count: int
    results: list[Passage]
    message: str | None = Field(default=None, description="Set when nothing matches: say so, do not retry blindly.")


def search_library(
    query: Annotated[str, Field(min_length=1, max_length=500,
                                description="What to look for: words, a phrase, a function name or a question.")],
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=50, strict=True, description="How many passages to return, best first.")] = 10,
) -> Annotated[CallToolResult, SearchResults]:
    """Search the library of completed books (full text and meaning, fused).

    Returns passages led by the book's pipeline id (what show_book, rollback_book and the other tools
    take), with the title, the chapter path, the PDF pages, a snippet and a score. Only books that were
    approved and embedded are searched. Quote a phrase ("like this"); a leading minus excludes a word.
    An empty result carries a message: no passage matches, an answer rather than an error. The
    answer is at most 20 KB.
    """
    from agentic_pipeline.library import search

    found = [answers.compact(r, string=500) for r in call(ctx, search.search, query, limit=limit)]
    if not found:
        message = f"{search.NO_MATCH} {query!r} in the completed books"
        return answers.answer(SearchResults(query=query, count=0, results=[], message=message),
                              message[0].upper() + message[1:] + ".")
    model, shown = answers.fit_rows(lambda part: SearchResults(query=query, count=len(part), results=part), found)
    top = "; ".join(f"{p.book_title} (pipeline {p.pipeline_id})" for p in model.results[:3])
    return answers.answer(model, f"{shown} passages" + (f", best: {answers.clip(top, 400)}" if top else "") + ".")


class Strategies(Closed):
    strategies: list[dict[str, Any]]


def list_strategies(ctx: Context) -> Annotated[CallToolResult, Strategies]:
    """The processing strategies, one per book type: chunk size, overlap, chapter splitting and the
    validation thresholds a processed book must meet."""
    from agentic_pipeline.ingest import strategies

    found = call(ctx, lambda _app: [s.to_json() for s in strategies.load_strategies().values()])
    return answers.answer(Strategies(strategies=answers.compact(found)),
                          f"{len(found)} strategies: " + ", ".join(str(s.get("name", "?")) for s in found) + ".")


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(get_pipeline_status, READ),
    ToolSpec(show_book, READ),
    ToolSpec(list_books, READ),
    ToolSpec(list_rejected_books, READ),
    ToolSpec(edit_book, write_annotations(destructive=False, idempotent=True)),
    ToolSpec(process_book, write_annotations(destructive=False, idempotent=True)),
    ToolSpec(set_pipeline_priority, write_annotations(destructive=False, idempotent=True)),
    ToolSpec(retry_book, write_annotations(destructive=False, idempotent=False)),
    ToolSpec(get_audit_log, READ),
    ToolSpec(verify_audit_trail, READ),
    ToolSpec(search_library, READ),
    ToolSpec(list_strategies, READ),
)
