"""What a person needs to decide on one book: the ``review`` read behind the dashboard's review page.

Title, authors, language, type with the classifier's reasoning and probabilities, every validation check
(failed first), the chapters with their word counts and sample passages from the start, middle and end.
"""

from __future__ import annotations

from typing import Any

#: characters of each sample passage
PASSAGE_CHARS = 700
#: chapters listed at most (a book split into thousands of sections shows the first ones and the count)
MAX_CHAPTERS = 300


def review(app, pipeline_id: int) -> dict[str, Any]:
    from agentic_pipeline.db import library_store

    p = app.pipelines.get(pipeline_id)
    row = p.row
    profile = row.get("book_profile") or {}
    validation = row.get("validation_result") or {}
    with app.db.read() as conn:
        book = library_store.book_for_pipeline(conn, pipeline_id)
        chapters = library_store.load_chapters(conn, book["id"]) if book else []
    checks = [c for c in validation.get("checks") or [] if isinstance(c, dict)]
    checks.sort(key=lambda c: (bool(c.get("passed")), c.get("severity") != "error", c.get("name", "")))
    probabilities = sorted((profile.get("probabilities") or {}).items(), key=lambda kv: -float(kv[1] or 0))
    return {
        "id": p.id, "state": p.state.value, "title": row.get("title") or (book or {}).get("title"),
        "source_path": p.source_path, "authors": list((book or {}).get("authors") or profile.get("authors") or []),
        "language": (book or {}).get("language") or profile.get("language"),
        "format": profile.get("format"), "book_type": row.get("book_type"), "confidence": row.get("confidence"),
        "reasoning": profile.get("reasoning"), "probabilities": probabilities, "signals": profile.get("signals"),
        "validation_passed": validation.get("passed"), "checks": checks,
        "warnings": list(validation.get("warnings") or []) + list(profile.get("warnings") or []),
        "word_count": (book or {}).get("word_count") or profile.get("word_count"),
        "chapter_count": len(chapters),
        "chapters": [{"index": c["chapter_index"], "title": c["title"], "words": len(c["text"].split())}
                     for c in chapters[:MAX_CHAPTERS]],
        "passages": passages(chapters),
        "priority": p.priority, "created_at": p.created_at, "seconds_in_state": p.seconds_in_state(app.clock.now()),
    }


def passages(chapters: list[dict[str, Any]], width: int = PASSAGE_CHARS) -> list[dict[str, str]]:
    """Samples from the start, middle and end of the book's text (pure)."""
    text = "\n\n".join(c["text"] for c in chapters).strip()
    if not text:
        return []
    if len(text) <= 3 * width:
        return [{"where": "whole text", "text": text}]
    mid = len(text) // 2 - width // 2
    return [{"where": "start", "text": _words(text[:width])}, {"where": "middle", "text": _words(text[mid:mid + width])},
            {"where": "end", "text": _words(text[-width:])}]


def _words(piece: str) -> str:
    """Trim a cut word at either end of ``piece``."""
    piece = piece.strip()
    first, _, rest = piece.partition(" ")
    body, _, _last = rest.rpartition(" ")
    return f"… {body} …" if body else piece


SORTS = ("age", "confidence", "type", "title", "priority", "id")


def inbox(app, filt, *, sort: str = "age", descending: bool = False, limit: int = 50,
          offset: int = 0) -> dict[str, Any]:
    """A page of the books waiting for approval that ``filt`` (a BatchFilter on PENDING_APPROVAL) matches."""
    from agentic_pipeline import errors
    from agentic_pipeline.db import dashboard_store
    from agentic_pipeline.health import dashboard

    if sort not in SORTS:
        raise errors.InputError(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
    limit, offset = dashboard.page_args(limit, offset)
    now = app.clock.now()
    with app.db.read() as conn:
        rows, total = dashboard_store.matching_page(conn, filt, order=sort, descending=descending, limit=limit,
                                                    offset=offset)
    for r in rows:
        v = r.pop("validation_result") or {}
        checks = [c for c in v.get("checks") or [] if isinstance(c, dict)]
        r["checks_failed"] = sum(1 for c in checks if not c.get("passed"))
        r["checks_total"] = len(checks)
        r["waiting_seconds"] = (now - r["state_entered_at"]).total_seconds()
    return {"rows": rows, "total": total, "sort": sort, "descending": descending, "limit": limit, "offset": offset}
