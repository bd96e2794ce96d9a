"""SQL for the book views: a filtered, sorted, keyset-paginated page of pipelines, and one book in full.

``page`` evaluates the batch filter in the database (``batch_store.where``), sorts on a non-null key
with the pipeline id as tie-breaker, and continues after a given pipeline (keyset pagination: the
cost of page N does not grow with N). ``summary`` counts the whole filtered set by state and type.
Human type labels (``book_labels``) are appended, never updated.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa

from agentic_pipeline.db import batch_store
from agentic_pipeline.db.schema import book_labels, books, chapters
from agentic_pipeline.db.schema import processing_pipelines as pp

#: sort names users give -> a non-null sort key (nulls sort as the lowest value)
SORT_KEYS: dict[str, Any] = {
    "id": pp.c.id,
    "created": pp.c.created_at,
    "updated": pp.c.updated_at,
    "state": pp.c.state,
    "title": sa.func.coalesce(pp.c.title, ""),
    "type": sa.func.coalesce(pp.c.book_type, ""),
    "confidence": sa.func.coalesce(pp.c.confidence, -1.0),
    "priority": pp.c.priority,
}

_ROW_COLUMNS = (pp.c.id, pp.c.title, pp.c.state, pp.c.book_type, pp.c.confidence, pp.c.source_path,
                pp.c.priority, pp.c.created_at, pp.c.updated_at, pp.c.state_entered_at, pp.c.error,
                pp.c.duplicate_of, books.c.authors, books.c.language, books.c.word_count, books.c.chapter_count)


def page(conn: sa.Connection, f, *, sort: str, descending: bool, limit: int, after: int | None) -> list[dict[str, Any]]:
    """Up to ``limit`` matching pipelines in (sort key, id) order, after pipeline ``after`` when given.

    ``after`` names the last row of the previous page; a pipeline that no longer exists raises
    ``LookupError`` (the caller says so).
    """
    key = SORT_KEYS[sort]
    conds = batch_store.where(f, conn.dialect.name)
    if after is not None:
        anchor = conn.execute(sa.select(key.label("k")).select_from(pp).where(pp.c.id == after)).first()
        if anchor is None:
            raise LookupError(after)
        value = anchor.k
        if descending:
            conds.append(sa.or_(key < value, sa.and_(key == value, pp.c.id < after)))
        else:
            conds.append(sa.or_(key > value, sa.and_(key == value, pp.c.id > after)))
    order = (key.desc(), pp.c.id.desc()) if descending else (key.asc(), pp.c.id.asc())
    query = (sa.select(*_ROW_COLUMNS).select_from(pp.outerjoin(books, books.c.pipeline_id == pp.c.id))
             .where(*conds).order_by(*order).limit(limit))
    return [dict(m) for m in conn.execute(query).mappings().all()]


def summary(conn: sa.Connection, f) -> dict[str, dict[str, int]]:
    """The whole filtered set counted by state and by type (one GROUP BY)."""
    rows = conn.execute(sa.select(pp.c.state, pp.c.book_type, sa.func.count())
                        .where(*batch_store.where(f, conn.dialect.name))
                        .group_by(pp.c.state, pp.c.book_type)).all()
    by_state: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for state, book_type, n in rows:
        by_state[state] = by_state.get(state, 0) + n
        by_type[book_type or "unclassified"] = by_type.get(book_type or "unclassified", 0) + n
    return {"state": dict(sorted(by_state.items(), key=lambda kv: -kv[1])),
            "book_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1]))}


def chapter_list(conn: sa.Connection, book_id: int) -> list[dict[str, Any]]:
    """The book's chapters in order: index, title, word count (no text)."""
    rows = conn.execute(sa.select(chapters.c.chapter_index, chapters.c.title, chapters.c.word_count)
                        .where(chapters.c.book_id == book_id).order_by(chapters.c.chapter_index))
    return [{"index": r.chapter_index, "title": r.title, "words": r.word_count} for r in rows]


def library_book(conn: sa.Connection, pipeline_id: int) -> dict[str, Any] | None:
    """The library row of the pipeline's book (without chapter text), or None."""
    row = conn.execute(sa.select(books.c.id, books.c.title, books.c.authors, books.c.language, books.c.book_type,
                                 books.c.word_count, books.c.chapter_count, books.c.metadata)
                       .where(books.c.pipeline_id == pipeline_id)).first()
    return dict(row._mapping) if row else None


def update_library_book(conn: sa.Connection, pipeline_id: int, values: dict[str, Any]) -> int:
    """Set ``values`` (title, authors, language, book_type) on the pipeline's library book, if it has one."""
    if not values:
        return 0
    return conn.execute(books.update().where(books.c.pipeline_id == pipeline_id).values(**values)).rowcount


def add_label(conn: sa.Connection, *, pipeline_id: int, content_hash: str | None, book_type: str,
              previous_type: str | None, previous_confidence: float | None, actor: str, reason: str | None,
              now: dt.datetime) -> int:
    """Record a person's type correction; returns the label id."""
    return conn.execute(book_labels.insert().values(
        pipeline_id=pipeline_id, content_hash=content_hash, book_type=book_type, previous_type=previous_type,
        previous_confidence=previous_confidence, actor=actor, reason=reason, labelled_at=now,
    ).returning(book_labels.c.id)).scalar_one()


def current_label(conn: sa.Connection, pipeline_id: int) -> dict[str, Any] | None:
    """The newest human type label of the pipeline, or None."""
    row = conn.execute(sa.select(book_labels).where(book_labels.c.pipeline_id == pipeline_id)
                       .order_by(book_labels.c.id.desc()).limit(1)).first()
    return dict(row._mapping) if row else None


def labels(conn: sa.Connection, *, since_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """Human type labels in id order after ``since_id`` (for the classifier to learn from)."""
    rows = conn.execute(sa.select(book_labels).where(book_labels.c.id > since_id)
                        .order_by(book_labels.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


def confidence_bands(conn: sa.Connection, f, bands: Sequence[tuple[float, str]]) -> dict[str, int]:
    """The filtered set counted by confidence band: ``bands`` is ((upper bound, label), ...), ascending;
    the last label takes the rest, ``none`` the unclassified (one GROUP BY)."""
    conf = pp.c.confidence
    band = sa.case((conf.is_(None), "none"), *[(conf < upper, label) for upper, label in bands[:-1]],
                   else_=bands[-1][1]).label("band")
    rows = conn.execute(sa.select(band, sa.func.count()).where(*batch_store.where(f, conn.dialect.name))
                        .group_by(band)).all()
    return {label: n for label, n in rows}


def rejected_errors(conn: sa.Connection, f) -> list[tuple[int, str | None, str | None]]:
    """(id, error, error_stage) of every rejected pipeline matching ``f``, by id (for grouping by cause)."""
    rejected = sa.and_(*batch_store.where(f, conn.dialect.name), pp.c.state == "rejected")
    return [tuple(r) for r in conn.execute(sa.select(pp.c.id, pp.c.error, pp.c.error_stage)
                                           .where(rejected).order_by(pp.c.id))]
