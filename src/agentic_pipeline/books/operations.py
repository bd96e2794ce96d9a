"""The book operations: list books by filter, show one book in full, correct its metadata.

Each is one operation the CLI (``books``, ``show``, ``edit``), the MCP server and the web dashboard
call; each returns plain JSON-able dicts. The book is named by its pipeline id everywhere; the
library row id appears only as ``library_book_id``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.batch import filters
from agentic_pipeline.db import books_store
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.audit import trail
from agentic_pipeline.pipeline import status

DEFAULT_LIMIT = 50
MAX_LIMIT = 10_000
SORTS = tuple(books_store.SORT_KEYS)
#: states whose metadata a person may correct: the worker is done with the book (or has not started
#: re-deriving it); a book in a queue or a working stage would have its title and type overwritten
EDITABLE = frozenset({State.PENDING_APPROVAL, State.APPROVED, State.COMPLETE, State.REJECTED, State.FAILED,
                      State.DUPLICATE, State.ARCHIVED})
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_TITLE = 500
MAX_AUTHORS = 50


# ----------------------------------------------------------------------- list
def parse_sort(sort: str | None) -> tuple[str, bool]:
    """``"created"`` or ``"-created"`` (newest first) -> (key, descending); InputError names the valid keys."""
    raw = (sort or "id").strip().lower()
    descending = raw.startswith("-")
    key = raw.lstrip("-")
    if key not in books_store.SORT_KEYS:
        raise errors.InputError(f"unknown sort {sort!r}; sort by one of {', '.join(SORTS)} "
                                "(prefix with - for descending, e.g. -created)")
    return key, descending


def list_books(app, filt: filters.BatchFilter | None = None, *, sort: str = "id", limit: int = DEFAULT_LIMIT,
               after: int | None = None) -> dict[str, Any]:
    """Pipelines matching ``filt`` (all when empty), sorted, one page at a time.

    Returns ``{"total", "counts": {"state": {...}, "book_type": {...}}, "rows": [...],
    "next_after"}``: ``total`` and ``counts`` cover the whole filtered set, ``rows`` at most
    ``limit`` of them after pipeline ``after`` in the chosen order; pass ``next_after`` back as
    ``after`` for the next page (None on the last page).
    """
    key, descending = parse_sort(sort)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise errors.InputError(f"limit must be between 1 and {MAX_LIMIT} (got {limit!r})")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 1):
        raise errors.InputError(f"after must be a pipeline id (got {after!r})")
    filt = filt if filt is not None else filters.BatchFilter(all=True)
    if filt.is_empty and not filt.all:
        filt = dataclasses.replace(filt, all=True)
    now = app.clock.now()
    with app.db.read() as conn:
        summary = books_store.summary(conn, filt)
        try:
            rows = books_store.page(conn, filt, sort=key, descending=descending, limit=limit + 1, after=after)
        except LookupError:
            raise errors.NotFound(f"no pipeline with id {after} to continue after",
                                  hint="pass the next_after value of the previous page") from None
    more = len(rows) > limit
    rows = rows[:limit]
    total = sum(summary["state"].values())
    return {"total": total, "counts": summary, "sort": ("-" if descending else "") + key,
            "filter": filt.criteria(), "rows": [_list_row(r, now) for r in rows],
            "next_after": rows[-1]["id"] if more and rows else None}


def _list_row(r: dict[str, Any], now) -> dict[str, Any]:
    return {"id": r["id"], "title": r["title"], "state": r["state"], "book_type": r["book_type"],
            "confidence": r["confidence"], "authors": list(r["authors"] or []), "language": r["language"],
            "source_path": r["source_path"], "priority": r["priority"], "created_at": r["created_at"],
            "updated_at": r["updated_at"],
            "seconds_in_state": round((now - r["state_entered_at"]).total_seconds(), 3),
            "error": r["error"], "duplicate_of": r["duplicate_of"]}


#: confidence bands (upper bound, label) for breakdowns; the last takes the rest
CONFIDENCE_BANDS = ((0.5, "<0.5"), (0.7, "0.5-0.7"), (0.9, "0.7-0.9"), (0.95, "0.9-0.95"), (float("inf"), ">=0.95"))


def confidence_bands(app, filt: filters.BatchFilter) -> dict[str, int]:
    """The books matching ``filt`` counted by classification confidence band (``none``: not classified)."""
    if filt.is_empty and not filt.all:
        filt = dataclasses.replace(filt, all=True)
    with app.db.read() as conn:
        return books_store.confidence_bands(conn, filt, CONFIDENCE_BANDS)


_NUMBERS = re.compile(r"\d+(?:[.,]\d+)*")


def rejected_causes(app, filt: filters.BatchFilter | None = None, *, examples: int = 5) -> dict[str, Any]:
    """The rejected books matching ``filt`` grouped by cause, largest group first.

    A cause is the rejection's error with its numbers replaced by ``N`` (so "holds 97% of the words"
    and "holds 88% of the words" are one cause) and the stage it failed at. Returns
    ``{"total", "causes": [{"cause", "stage", "count", "example_ids", "example"}]}``.
    """
    filt = filt if filt is not None else filters.BatchFilter(all=True)
    if filt.is_empty and not filt.all:
        filt = dataclasses.replace(filt, all=True)
    with app.db.read() as conn:
        rows = books_store.rejected_errors(conn, filt)
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    for pid, error, stage in rows:
        cause = _NUMBERS.sub("N", " ".join((error or "no reason recorded").split()))[:200]
        group = groups.setdefault((cause, stage), {"cause": cause, "stage": stage, "count": 0, "example_ids": [],
                                                   "example": error})
        group["count"] += 1
        if len(group["example_ids"]) < examples:
            group["example_ids"].append(pid)
    causes = sorted(groups.values(), key=lambda g: (-g["count"], g["cause"]))
    return {"total": len(rows), "causes": causes}


# ----------------------------------------------------------------------- show
def show(app, pipeline_id: int) -> dict[str, Any]:
    """Everything a person needs to decide about one book.

    Title, authors, language, type with the classifier's reasoning and probabilities (and a human
    label when someone corrected it), validation checks (failed first), chapters with word counts,
    the error with its hint and who rejected it and why, the state history and the audit entries.
    """
    info = status.describe(app, pipeline_id)
    p = app.pipelines.get(pipeline_id)
    row = p.row
    profile = row.get("book_profile") or {}
    edited = profile.get("edited") or {}
    with app.db.read() as conn:
        lib = books_store.library_book(conn, pipeline_id)
        chapters = books_store.chapter_list(conn, lib["id"]) if lib else []
        label = books_store.current_label(conn, pipeline_id)
    authors = (lib or {}).get("authors") or edited.get("authors") or profile.get("authors") or []
    language = (lib or {}).get("language") or edited.get("language") or profile.get("language")
    probabilities = profile.get("probabilities") or {}
    audit = trail.query(app, pipeline_id=pipeline_id, limit=100)
    return {
        "id": p.id,
        "title": row.get("title"),
        "authors": list(authors),
        "language": language,
        "source_path": p.source_path,
        "format": profile.get("format") or ((lib or {}).get("metadata") or {}).get("format"),
        "state": p.state.value,
        "seconds_in_state": info["seconds_in_state"],
        "priority": p.priority,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "content_hash": row.get("content_hash"),
        "duplicate_of": row.get("duplicate_of"),
        "library_book_id": (lib or {}).get("id"),
        "classification": {
            "book_type": row.get("book_type"),
            "confidence": row.get("confidence"),
            "reasoning": profile.get("reasoning"),
            "probabilities": dict(sorted(probabilities.items(), key=lambda kv: -kv[1])),
            "human_label": _label(label),
        },
        "strategy": (row.get("strategy") or {}).get("name") or (row.get("strategy") or {}).get("book_type"),
        "words": (lib or {}).get("word_count") or profile.get("word_count"),
        "pages": profile.get("page_count"),
        "validation": _validation(row.get("validation_result")),
        "chapters": chapters,
        "error": _error(row, info["history"], audit),
        "retry_count": row.get("retry_count"),
        "next_attempt_at": info["next_attempt_at"],
        "lease_owner": row.get("lease_owner"),
        "stuck": info.get("stuck"),
        "history": info["history"],
        "audit": audit,
        "warnings": list(profile.get("warnings") or []),
    }


def _label(label: dict[str, Any] | None) -> dict[str, Any] | None:
    if label is None:
        return None
    return {"book_type": label["book_type"], "previous_type": label["previous_type"], "actor": label["actor"],
            "reason": label["reason"], "labelled_at": label["labelled_at"]}


def _validation(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """The validation report with its checks ordered failed errors, failed warnings, then passed."""
    if not v:
        return None
    rank = {(False, "error"): 0, (False, "warning"): 1}
    checks = sorted(v.get("checks") or [], key=lambda c: rank.get((bool(c.get("passed")), c.get("severity", "error")), 2))
    failed = [c["name"] for c in checks if not c.get("passed") and c.get("severity", "error") == "error"]
    return {"passed": bool(v.get("passed")), "failed": failed, "reasons": list(v.get("reasons") or []),
            "warnings": list(v.get("warnings") or []), "checks": checks,
            "overridden": v.get("overridden")}


def _error(row: dict[str, Any], history: list[dict[str, Any]], audit: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last error with its hint, the stage, and who put the book in its failed state and why.

    For a rejection the actor is the one the audit trail names (``system:validator`` or a person),
    else the one that moved the book into its state (a worker).
    """
    message = row.get("error")
    state = row.get("state")
    if not message and state not in (State.REJECTED.value, State.FAILED.value, State.NEEDS_RETRY.value):
        return None
    entered = next((h for h in reversed(history) if h["to"] == state), None) or {}
    detail = entered.get("detail") or {}
    decided = next((a for a in audit if a["action"] == "REJECTED"), None) if state == State.REJECTED.value else None
    hint = detail.get("hint")
    if hint and message and message.endswith(f" ({hint})"):
        message = message[: -len(hint) - 3]
    return {"message": message, "hint": hint, "stage": row.get("error_stage"),
            "actor": (decided or {}).get("actor") or entered.get("actor"),
            "reason": (decided or {}).get("reason") or detail.get("reason") or detail.get("error") or message,
            "at": (decided or {}).get("performed_at") or entered.get("at")}


# ----------------------------------------------------------------------- edit
def edit(app, pipeline_id: int, *, title: str | None = None, authors: list[str] | None = None,
         language: str | None = None, book_type: str | None = None, actor: str,
         reason: str | None = None) -> dict[str, Any]:
    """Correct a book's title, authors, language or type; audited METADATA_CHANGED with old -> new.

    A type correction is also kept as a human label (``book_labels``) for the classifier to learn
    from. Only the fields given change; giving the current value changes nothing (and records
    nothing). Returns ``{"id", "changed": {field: {"old", "new"}}, "label_id"}``.
    """
    actions.validate_actor(actor)
    new = _validated(title=title, authors=authors, language=language, book_type=book_type)
    if not new:
        raise errors.InputError("nothing to change: give at least one of title, authors, language, book_type")
    with app.db.write() as conn:
        p = app.pipelines.get(pipeline_id, conn=conn)
        if p.state not in EDITABLE:
            raise errors.InvalidTransition(
                f"pipeline {p.id} is {p.state.value}: a worker is still deriving its metadata",
                hint="edit it once it is pending approval (or later); see `agentic-pipeline status " f"{p.id}`")
        lib = books_store.library_book(conn, p.id)
        profile = dict(p.row.get("book_profile") or {})
        edited = dict(profile.get("edited") or {})
        old = {"title": p.row.get("title"),
               "authors": list((lib or {}).get("authors") or edited.get("authors") or profile.get("authors") or []),
               "language": (lib or {}).get("language") or edited.get("language") or profile.get("language"),
               "book_type": p.row.get("book_type")}
        changed = {k: {"old": old[k], "new": v} for k, v in new.items() if old[k] != v}
        if not changed:
            return {"id": p.id, "changed": {}, "label_id": None, "state": p.state.value}
        now = app.clock.now()
        edited.update({k: c["new"] for k, c in changed.items() if k != "book_type"})
        values: dict[str, Any] = {"book_profile": {**profile, "edited": edited}}
        if "title" in changed:
            values["title"] = changed["title"]["new"]
        if "book_type" in changed:
            values["book_type"] = changed["book_type"]["new"]
        audit = chain.AuditEntry(action=actions.Action.METADATA_CHANGED, actor=actor, pipeline_id=p.id,
                                 book_id=p.row.get("book_id"), reason=reason,
                                 confidence_at_decision=p.row.get("confidence"),
                                 before_state={k: c["old"] for k, c in changed.items()},
                                 after_state={k: c["new"] for k, c in changed.items()})
        app.pipelines.update_fields(p.id, expect=p.state, values=values, audit=audit, conn=conn)
        books_store.update_library_book(conn, p.id, {k: c["new"] for k, c in changed.items()})
        label_id = None
        if "book_type" in changed:
            label_id = books_store.add_label(conn, pipeline_id=p.id, content_hash=p.row.get("content_hash"),
                                             book_type=changed["book_type"]["new"],
                                             previous_type=changed["book_type"]["old"],
                                             previous_confidence=p.row.get("confidence"), actor=actor,
                                             reason=reason, now=now)
    return {"id": p.id, "changed": changed, "label_id": label_id, "state": p.state.value}


def _validated(*, title, authors, language, book_type) -> dict[str, Any]:
    """The fields to set, normalised; InputError for a blank title, a bad language tag or an unknown type."""
    out: dict[str, Any] = {}
    if title is not None:
        title = " ".join(str(title).split())
        if not title or len(title) > MAX_TITLE:
            raise errors.InputError(f"a title must be 1 to {MAX_TITLE} characters (got {len(title)})")
        out["title"] = title
    if authors is not None:
        names = [" ".join(str(a).split()) for a in authors]
        if any(not n or len(n) > MAX_TITLE for n in names) or len(names) > MAX_AUTHORS:
            raise errors.InputError(f"authors must be 0 to {MAX_AUTHORS} non-empty names")
        out["authors"] = names
    if language is not None:
        tag = language.strip()
        if not _LANGUAGE.match(tag.replace("_", "-").lower()):
            raise errors.InputError(f"language must be an ISO 639 code such as en, de or pt-BR (got {language!r})")
        out["language"] = tag.replace("_", "-").split("-")[0].lower()  # the library keeps the primary subtag
    if book_type is not None:
        bt = book_type.strip().lower()
        if bt not in filters.BOOK_TYPES:
            raise errors.InputError(f"unknown book type {book_type!r}; valid types: {', '.join(filters.BOOK_TYPES)}")
        out["book_type"] = bt
    return out


def label_rows(app, *, since_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """Human type labels after ``since_id``, oldest first (the classifier's learning input)."""
    with app.db.read() as conn:
        return books_store.labels(conn, since_id=since_id, limit=limit)

