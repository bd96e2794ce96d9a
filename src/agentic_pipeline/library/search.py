"""The ``search`` operation: hybrid full-text + vector search over completed books.

Full text finds exact terms (function names, error strings); vectors find paraphrases. The two
ranked lists are fused with reciprocal-rank fusion (``ingest.ranking.fuse``; the measured effect
is in docs/embedding.md), then chunks holding the query as written, or all of its words, are put
first (``ranking.boost_exact``): fusion alone let a chunk both lists half-liked beat the very
sentence typed. Vectors are float32 blobs ranked with numpy: no pgvector needed, and a
personal library of hundreds of thousands of chunks ranks in milliseconds.
"""

from __future__ import annotations

import re
from typing import Any


from agentic_pipeline import errors
from agentic_pipeline.db import fulltext, search_store
from agentic_pipeline.ingest import embed, ranking
from agentic_pipeline.db import library_store

MAX_LIMIT = 100
SNIPPET_CHARS = 240


def search(app, query: str, *, pipeline_id: int | None = None, book_id: int | None = None,
           limit: int = 10) -> list[dict[str, Any]]:
    """Best chunks for ``query``: book (its pipeline id first), chapter, snippet and score, best first.

    ``pipeline_id``: only the book of this pipeline (the id users see everywhere). ``book_id``:
    the same by the library's internal row id (kept for internal callers).
    """
    query = (query or "").strip()
    if not query:
        raise errors.InputError("the search query is empty")
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.InputError(f"limit must be between 1 and {MAX_LIMIT} (got {limit})")

    pool = max(limit * 5, 50)
    parsed = fulltext.parse(query)
    with app.db.read() as conn:
        if pipeline_id is not None:
            book_id = resolve_pipeline_book(conn, pipeline_id)
        if book_id is not None and not search_store.is_searchable_book(conn, book_id):
            name = f"pipeline {pipeline_id}" if pipeline_id is not None else f"library book {book_id}"
            raise errors.NotFound(f"{name} is not a searchable book",
                                  hint="search covers completed books; `status` shows where a pipeline is")
        fts_ids = _full_text(conn, parsed, pool, book_id)
    index = app.vector_index
    index.sync(app.db)
    qvec = app.embedder.embed([query])[0]
    with app.db.read() as conn:
        vec_hits = index.search(conn, qvec, pool, book_id=book_id)
    vec_ids = [cid for cid, _score in vec_hits]
    fused = ranking.fuse(fts_ids, vec_ids)  # every candidate: an exact match may sit low in both lists
    with app.db.read() as conn:
        details = search_store.chunk_details(conn, [cid for cid, _ in fused])
    details = {cid: d for cid, d in details.items() if not fulltext.excludes(parsed, d["text"])}
    fused = [(cid, score) for cid, score in fused if cid in details]
    fused = ranking.boost_exact(fused, {cid: d["text"] for cid, d in details.items()}, query)[:limit]
    terms = parsed.terms
    fts = set(fts_ids)
    return [_result(details[cid], score, terms, cid in fts) for cid, score in fused if cid in details]


def _full_text(conn, parsed: fulltext.Query, pool: int, book_id: int | None) -> list[int]:
    """Chunks holding every clause of the query; failing that, any of its content words."""
    hits = search_store.fts_ranked(conn, parsed, limit=pool, book_id=book_id)
    relaxed = parsed.relaxed() if not hits else None
    if relaxed is not None:
        hits = search_store.fts_ranked(conn, relaxed, limit=pool, book_id=book_id, any_of=True)
    return [cid for cid, _score in hits]


def resolve_pipeline_book(conn, pipeline_id: int) -> int:
    """The library row of pipeline ``pipeline_id``'s book; NotFound saying why there is none."""
    book_id = library_store.book_id_of(conn, pipeline_id)
    if book_id is None:
        raise errors.NotFound(f"pipeline {pipeline_id} has no book in the library",
                              hint="search covers completed books; `agentic-pipeline status "
                                   f"{pipeline_id}` shows where it is")
    return book_id


def _result(d: dict[str, Any], score: float, terms: list[str], exact: bool) -> dict[str, Any]:
    return {
        "pipeline_id": d["pipeline_id"], "book_title": d["book_title"], "library_book_id": d["book_id"],
        "chapter_index": d["chapter_index"], "chapter_title": d["chapter_title"], "chunk_id": d["id"],
        "position": d["position"], "score": round(score, 6), "full_text_match": exact,
        "snippet": snippet(d["text"], terms),
    }


def snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """A window of ``text`` around the first query term it contains (or its start)."""
    flat = re.sub(r"\s+", " ", text).strip()
    lower = flat.lower()
    hits = [i for i in (lower.find(t) for t in terms) if i >= 0]
    start = max(0, min(hits) - width // 3) if hits else 0
    piece = flat[start:start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")
