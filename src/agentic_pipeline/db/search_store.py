"""SQL for library search: full-text candidates (FTS5 / PostgreSQL full text), vectors, chunk details.

Only books whose pipeline is COMPLETE are searchable, so a rejected or rolled-back book never
shows up even if a row were left behind.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import sqlalchemy as sa

from agentic_pipeline.db.schema import books, chapters, chunks, processing_pipelines as pp

_TERM = re.compile(r"\w+", re.UNICODE)


def query_terms(query: str, max_terms: int = 32) -> list[str]:
    """The words of a free-text query (punctuation and FTS operators dropped)."""
    return [t.lower() for t in _TERM.findall(query)][:max_terms]


def _searchable(book_id: int | None):
    cond = [books.c.pipeline_id == pp.c.id, pp.c.state == "complete"]
    if book_id is not None:
        cond.append(books.c.id == book_id)
    return cond


def fts_ranked(conn: sa.Connection, query: str, *, limit: int, book_id: int | None = None) -> list[int]:
    """Chunk ids best first by BM25 (SQLite) or ts_rank (PostgreSQL), any-term match."""
    terms = query_terms(query)
    if not terms:
        return []
    if conn.dialect.name == "sqlite":
        match = " OR ".join(f'"{t}"' for t in terms)
        sql = sa.text(
            "SELECT c.id FROM chunks_fts f JOIN chunks c ON c.id = f.rowid "
            "JOIN books b ON b.id = c.book_id JOIN processing_pipelines p ON p.id = b.pipeline_id "
            "WHERE chunks_fts MATCH :match AND p.state = 'complete' "
            + ("AND b.id = :book_id " if book_id is not None else "")
            + "ORDER BY bm25(chunks_fts) LIMIT :limit"
        )
        params: dict[str, Any] = {"match": match, "limit": limit, "book_id": book_id}
    else:
        tsquery = " | ".join(terms)
        sql = sa.text(
            "SELECT c.id FROM chunks c JOIN books b ON b.id = c.book_id "
            "JOIN processing_pipelines p ON p.id = b.pipeline_id "
            "WHERE to_tsvector('simple', c.text) @@ to_tsquery('simple', :q) AND p.state = 'complete' "
            + ("AND b.id = :book_id " if book_id is not None else "")
            + "ORDER BY ts_rank(to_tsvector('simple', c.text), to_tsquery('simple', :q)) DESC, c.id LIMIT :limit"
        )
        params = {"q": tsquery, "limit": limit, "book_id": book_id}
    return [row[0] for row in conn.execute(sql, params)]


def vectors(conn: sa.Connection, model: str, *, book_id: int | None = None) -> tuple[list[int], list[bytes], int]:
    """(chunk ids, float32 blobs, dim) of every searchable chunk embedded with ``model``."""
    rows = conn.execute(
        sa.select(chunks.c.id, chunks.c.embedding, chunks.c.embedding_dim)
        .select_from(chunks.join(books, books.c.id == chunks.c.book_id).join(pp, pp.c.id == books.c.pipeline_id))
        .where(*_searchable(book_id), chunks.c.embedding_model == model, chunks.c.embedding.is_not(None))
        .order_by(chunks.c.id)
    ).all()
    dim = rows[0].embedding_dim if rows else 0
    return [r.id for r in rows], [r.embedding for r in rows], dim


def chunk_details(conn: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(chunks.c.id, chunks.c.text, chunks.c.position, books.c.id.label("book_id"),
                  books.c.title.label("book_title"), books.c.pipeline_id, chapters.c.chapter_index,
                  chapters.c.title.label("chapter_title"))
        .select_from(chunks.join(books, books.c.id == chunks.c.book_id).join(chapters, chapters.c.id == chunks.c.chapter_id))
        .where(chunks.c.id.in_(list(ids)))
    )
    return {r.id: dict(r._mapping) for r in rows}


def books_missing_vectors(conn: sa.Connection, model: str) -> list[tuple[int, int]]:
    """(book id, chunks without a ``model`` vector) for every searchable book that has any."""
    missing = sa.or_(chunks.c.embedding.is_(None), chunks.c.embedding_model.is_(None), chunks.c.embedding_model != model)
    rows = conn.execute(
        sa.select(books.c.id, sa.func.count(chunks.c.id))
        .select_from(chunks.join(books, books.c.id == chunks.c.book_id).join(pp, pp.c.id == books.c.pipeline_id))
        .where(pp.c.state == "complete", missing).group_by(books.c.id).order_by(books.c.id)
    )
    return [(book_id, n) for book_id, n in rows]


def is_searchable_book(conn: sa.Connection, book_id: int) -> bool:
    """True when ``book_id`` is a library book whose pipeline is COMPLETE."""
    row = conn.execute(sa.select(books.c.id).select_from(books.join(pp, pp.c.id == books.c.pipeline_id))
                       .where(books.c.id == book_id, pp.c.state == "complete")).first()
    return row is not None
