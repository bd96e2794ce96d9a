"""The ``search`` operation: hybrid full-text + vector search over completed books.

Full text: ``db.fulltext`` (all words, then any content word; phrases, exclusions, CJK grams).
Vectors: ``library.vector_index`` (an HNSW index, candidates re-ranked with exact vectors).
Relevance: ``library.relevance`` (the no-match floor, front matter last, the query's script).

Full text finds exact terms (function names, error strings); vectors find paraphrases. The two
ranked lists are fused with reciprocal-rank fusion (``ingest.ranking.fuse``; the measured effect
is in docs/embedding.md), then chunks holding the query as written, or all of its words, are put
first (``ranking.boost_exact``): fusion alone let a chunk both lists half-liked beat the very
sentence typed.
"""

from __future__ import annotations

import re
from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.db import fulltext, library_store, search_store
from agentic_pipeline.ingest import ranking
from agentic_pipeline.library import relevance

MAX_LIMIT = 100
SNIPPET_CHARS = 240
#: what every skin says when the result is empty
NO_MATCH = "no passage matches"


def search(app, query: str, *, pipeline_id: int | None = None, book_id: int | None = None,
           limit: int = 10) -> list[dict[str, Any]]:
    """Best chunks for ``query``: pipeline id first, book, chapter path, pages, snippet and score, best first.

    ``pipeline_id``: only the book of this pipeline (the id users see everywhere). ``book_id``:
    the same by the library's internal row id (kept for internal callers). An empty list means no
    passage matches (relevance.nothing_matches), not an error.
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
    if relevance.nothing_matches(len(fts_ids), vec_hits[0][1] if vec_hits else None):
        return []
    fused = ranking.fuse(fts_ids, [cid for cid, _score in vec_hits])  # every candidate: an exact match may sit low
    with app.db.read() as conn:
        details = search_store.chunk_details(conn, [cid for cid, _ in fused])
    fts = set(fts_ids)
    script = relevance.script_family(query)
    details = {cid: d for cid, d in details.items() if not fulltext.excludes(parsed, d["text"])
               and (cid in fts or relevance.keep_vector_hit(script, d["text"]))}
    fused = [(cid, score) for cid, score in fused if cid in details]
    fused = ranking.boost_exact(fused, {cid: d["text"] for cid, d in details.items()}, query)
    front = {cid for cid, _ in fused if relevance.is_front_matter(details[cid]["text"], details[cid]["chapter_title"])}
    fused = sorted(fused, key=lambda pair: pair[0] in front)[:limit]  # stable: front matter after the rest
    return [_result(details[cid], score, parsed.terms, cid in fts) for cid, score in fused]


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
    """One hit, led by the pipeline id (the id users act on); the library's own ids come last."""
    pages = None
    if d["page_start"] is not None:
        pages = [d["page_start"], d["page_end"] if d["page_end"] is not None else d["page_start"]]
    return {
        "pipeline_id": d["pipeline_id"], "book_title": d["book_title"],
        "chapter_path": d["chapter_path"] or d["chapter_title"], "chapter_title": d["chapter_title"],
        "chapter_index": d["chapter_index"], "pages": pages, "score": round(score, 6), "full_text_match": exact,
        "snippet": snippet(d["text"], terms), "library_book_id": d["book_id"], "chunk_id": d["id"],
        "position": d["position"],
    }


def snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """A window of ``text`` around the first query term it contains (or its start)."""
    flat = re.sub(r"\s+", " ", text).strip()
    lower = flat.lower()
    hits = [i for i in (lower.find(t) for t in terms) if i >= 0]
    start = max(0, min(hits) - width // 3) if hits else 0
    piece = flat[start:start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")
