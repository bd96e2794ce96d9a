"""SQL for the library tables (books, chapters, chunks): what PROCESSING writes and EMBEDDING fills.

Every write is keyed by the pipeline: ``replace_book`` deletes the pipeline's previous book (and,
by cascade, its chapters and chunks) before inserting, so re-running PROCESSING after a crash or
a fallback split replaces its own output and never duplicates it. Callers pass the ``conn`` of the
transaction that also moves the pipeline, so the rows and the state change commit together.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Sequence

import sqlalchemy as sa

from agentic_pipeline.db import fulltext
from agentic_pipeline.db.schema import books, chapters, chunks, vector_log


def replace_book(conn: sa.Connection, *, pipeline_id: int, book: dict[str, Any],
                 chapter_rows: Sequence[dict[str, Any]], chunk_rows: Sequence[dict[str, Any]],
                 now: dt.datetime) -> int:
    """Replace the pipeline's book with ``book`` and its chapters and chunks; returns the new book id.

    ``chapter_rows``: chapter_index, title, text, word_count (and optionally path). ``chunk_rows``:
    chapter_index, ordinal, position, text, token_count, optionally page_start / page_end (no
    embeddings: EMBEDDING adds them after approval). The CJK grams for full text are derived here.
    """
    delete_book(conn, pipeline_id)
    book_id = conn.execute(
        books.insert().values(pipeline_id=pipeline_id, created_at=now, chapter_count=len(chapter_rows), **book)
        .returning(books.c.id)
    ).scalar_one()
    if chapter_rows:
        conn.execute(chapters.insert(), [{**c, "book_id": book_id} for c in chapter_rows])
    ids = dict(conn.execute(sa.select(chapters.c.chapter_index, chapters.c.id).where(chapters.c.book_id == book_id)).all())
    if chunk_rows:
        conn.execute(chunks.insert(), [
            {"book_id": book_id, "chapter_id": ids[c["chapter_index"]], "ordinal": c["ordinal"],
             "position": c["position"], "text": c["text"], "token_count": c["token_count"],
             "search_grams": fulltext.search_grams(c["text"]),
             "page_start": c.get("page_start"), "page_end": c.get("page_end")}
            for c in chunk_rows
        ])
    return book_id


def delete_book(conn: sa.Connection, pipeline_id: int) -> dict[str, int]:
    """Remove the pipeline's book, chapters, chunks and vectors; returns what was removed."""
    ids = [r[0] for r in conn.execute(sa.select(books.c.id).where(books.c.pipeline_id == pipeline_id))]
    if not ids:
        return {"books": 0, "chapters": 0, "chunks": 0}
    removed_chunks = conn.execute(chunks.delete().where(chunks.c.book_id.in_(ids))).rowcount
    removed_chapters = conn.execute(chapters.delete().where(chapters.c.book_id.in_(ids))).rowcount
    conn.execute(books.delete().where(books.c.id.in_(ids)))
    conn.execute(vector_log.insert(), [{"book_id": b, "action": "remove"} for b in ids])
    return {"books": len(ids), "chapters": removed_chapters, "chunks": removed_chunks}


def book_for_pipeline(conn: sa.Connection, pipeline_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(books).where(books.c.pipeline_id == pipeline_id)).first()
    return dict(row._mapping) if row else None


def book_id_of(conn: sa.Connection, pipeline_id: int) -> int | None:
    """The library row id of the pipeline's book (None when it has none)."""
    return conn.execute(sa.select(books.c.id).where(books.c.pipeline_id == pipeline_id)).scalar()


def pipeline_ids_of(conn: sa.Connection, book_ids: Sequence[int]) -> dict[int, int | None]:
    """Library row id -> the pipeline id of its book."""
    if not book_ids:
        return {}
    rows = conn.execute(sa.select(books.c.id, books.c.pipeline_id).where(books.c.id.in_(list(book_ids))))
    return {r.id: r.pipeline_id for r in rows}


def load_chapters(conn: sa.Connection, book_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(chapters.c.chapter_index, chapters.c.title, chapters.c.text)
                        .where(chapters.c.book_id == book_id).order_by(chapters.c.chapter_index))
    return [dict(r._mapping) for r in rows]


def chunk_texts(conn: sa.Connection, book_id: int) -> list[str]:
    rows = conn.execute(sa.select(chunks.c.text).where(chunks.c.book_id == book_id).order_by(chunks.c.ordinal))
    return [r[0] for r in rows]


def _missing(book_id: int, model: str):
    return sa.and_(chunks.c.book_id == book_id,
                   sa.or_(chunks.c.embedding.is_(None), chunks.c.embedding_model.is_(None),
                          chunks.c.embedding_model != model))


def chunks_without_vectors(conn: sa.Connection, book_id: int, model: str, *, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` (id, text) of the book's chunks with no vector for ``model``, in order."""
    rows = conn.execute(sa.select(chunks.c.id, chunks.c.text).where(_missing(book_id, model))
                        .order_by(chunks.c.ordinal).limit(limit))
    return [(r.id, r.text) for r in rows]


_COUNT_MISSING = sa.select(sa.func.count()).select_from(chunks).where(
    chunks.c.book_id == sa.bindparam("b_book"),
    sa.or_(chunks.c.embedding.is_(None), chunks.c.embedding_model.is_(None),
           chunks.c.embedding_model != sa.bindparam("b_model")))


def count_without_vectors(conn: sa.Connection, book_id: int, model: str) -> int:
    """How many of the book's chunks have no vector for ``model`` (prebuilt: every COMPLETE checks it)."""
    return conn.execute(_COUNT_MISSING, {"b_book": book_id, "b_model": model}).scalar_one()


def set_embeddings(conn: sa.Connection, rows: Iterable[tuple[int, bytes]], *, model: str, dim: int) -> int:
    """Store one vector per chunk id; returns how many rows were written."""
    params = [{"cid": cid, "blob": blob} for cid, blob in rows]
    if not params:
        return 0
    stmt = (chunks.update().where(chunks.c.id == sa.bindparam("cid"))
            .values(embedding=sa.bindparam("blob"), embedding_model=model, embedding_dim=dim))
    conn.execute(stmt, params)
    book_ids = conn.execute(sa.select(chunks.c.book_id).where(chunks.c.id.in_([p["cid"] for p in params])).distinct())
    conn.execute(vector_log.insert(), [{"book_id": b, "action": "add"} for (b,) in book_ids])
    return len(params)


def counts(conn: sa.Connection, pipeline_id: int | None = None) -> dict[str, int]:
    """Books, chapters, chunks and embedded chunks (for one pipeline, or the whole library)."""
    where_books = [books.c.pipeline_id == pipeline_id] if pipeline_id is not None else []
    book_ids = sa.select(books.c.id).where(*where_books).scalar_subquery()
    n_books = conn.execute(sa.select(sa.func.count()).select_from(books).where(*where_books)).scalar_one()
    n_chapters = conn.execute(sa.select(sa.func.count()).select_from(chapters)
                              .where(chapters.c.book_id.in_(book_ids))).scalar_one()
    n_chunks = conn.execute(sa.select(sa.func.count()).select_from(chunks).where(chunks.c.book_id.in_(book_ids))).scalar_one()
    n_vec = conn.execute(sa.select(sa.func.count()).select_from(chunks)
                         .where(chunks.c.book_id.in_(book_ids), chunks.c.embedding.is_not(None))).scalar_one()
    return {"books": n_books, "chapters": n_chapters, "chunks": n_chunks, "embedded": n_vec}
