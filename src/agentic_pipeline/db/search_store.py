"""SQL for library search: full-text candidates (FTS5 / PostgreSQL full text), vectors, chunk details.

Only books whose pipeline is COMPLETE are searchable, so a rejected or rolled-back book never
shows up even if a row were left behind.
"""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from agentic_pipeline.db import fulltext
from agentic_pipeline.db.schema import books, chapters, chunks, processing_pipelines as pp

def _searchable(book_id: int | None):
    cond = [books.c.pipeline_id == pp.c.id, pp.c.state == "complete"]
    if book_id is not None:
        cond.append(books.c.id == book_id)
    return cond


#: full-text matches ranked per query at most: a common word must not make a query score the whole library
FTS_CANDIDATES = 2000
#: up to this many chunks, stop words stay in the full-text query (ranking them costs little there, and
#: dropping them moved one gold query from rank 1 to 2); beyond it they go (``fulltext.Query.indexed``)
STOP_WORDS_KEPT_UP_TO = 50_000


def fts_ranked(conn: sa.Connection, query: fulltext.Query, *, limit: int, book_id: int | None = None,
               any_of: bool = False) -> list[tuple[int, float]]:
    """(chunk id, score) best first: BM25 (SQLite FTS5) or ts_rank over the stored tsvector (PostgreSQL).

    All clauses are required unless ``any_of``; in a library of more than ``STOP_WORDS_KEPT_UP_TO``
    chunks (the highest chunk id: one primary-key lookup) lone stop words are dropped when a content
    word remains (``Query.indexed``). At most ``FTS_CANDIDATES`` matches are ranked (the first ones the index
    yields), so the cost is bounded whatever the words; only COMPLETE books count. On SQLite a query
    of stop words only is not ranked: BM25 would read their whole posting lists, and any order is as good.
    """
    if (conn.execute(sa.select(sa.func.max(chunks.c.id))).scalar() or 0) > STOP_WORDS_KEPT_UP_TO:
        query = query.indexed()
    if conn.dialect.name == "sqlite":
        match = fulltext.fts5_match(query, any_of=any_of)
        if match is None:
            return []
        rank = "0.0" if query.only_stop_words else "-bm25(chunks_fts)"
        inner = (f"SELECT chunks_fts.rowid AS id, {rank} AS score FROM chunks_fts "
                 + ("JOIN chunks c ON c.id = chunks_fts.rowid " if book_id is not None else "")
                 + "WHERE chunks_fts MATCH :match " + ("AND c.book_id = :book_id " if book_id is not None else "")
                 + "LIMIT :cand")
        params: dict[str, Any] = {"match": match}
    else:
        built = fulltext.pg_tsquery(query, any_of=any_of)
        if built is None:
            return []
        expr, params = built
        # the GIN index is always the right plan for a capped match, statistics or not (right after a
        # bulk load the planner guessed a sequential scan: 3.96 s instead of 35 ms at 10,000 chunks)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        inner = (f"SELECT c.id, c.book_id, ts_rank(c.tsv, q.q) AS score FROM chunks c, (SELECT {expr} AS q) q "
                 "WHERE c.tsv @@ q.q " + ("AND c.book_id = :book_id " if book_id is not None else "")
                 + "LIMIT :cand")
    sql = sa.text(f"SELECT m.id, m.score, c2.book_id FROM ({inner}) m JOIN chunks c2 ON c2.id = m.id")
    params.update({"cand": FTS_CANDIDATES, "book_id": book_id})
    rows = conn.execute(sql, params).all()
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = on")
    ok = complete_books(conn, {r[2] for r in rows})
    ranked = sorted(((r[0], float(r[1])) for r in rows if r[2] in ok), key=lambda pair: (-pair[1], pair[0]))
    return ranked[:limit]


def complete_books(conn: sa.Connection, book_ids) -> set[int]:
    """Those of ``book_ids`` whose pipeline is COMPLETE (the searchable ones).

    Two lookups by primary key on purpose: joined to chunks or books, SQLite's planner started from
    the pipelines' state index and walked every COMPLETE book (0.6 s per search at 1,000,000 chunks).
    """
    if not book_ids:
        return set()
    owners = dict(conn.execute(sa.select(books.c.id, books.c.pipeline_id).where(books.c.id.in_(sorted(book_ids)))).all())
    done = {r[0] for r in conn.execute(sa.select(pp.c.id).where(
        pp.c.id.in_(sorted({p for p in owners.values() if p is not None})), pp.c.state == "complete"))}
    return {b for b, p in owners.items() if p in done}


def chunk_details(conn: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(chunks.c.id, chunks.c.text, chunks.c.position, chunks.c.page_start, chunks.c.page_end,
                  books.c.id.label("book_id"), books.c.title.label("book_title"), books.c.pipeline_id,
                  chapters.c.chapter_index, chapters.c.title.label("chapter_title"),
                  chapters.c.path.label("chapter_path"))
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

