"""The ``reembed`` operation: give every completed book vectors from the configured model.

Switching ``embedder`` leaves the library's old vectors in place but unused (search only compares
vectors of the current model, so a query never meets a vector from another space). ``reembed``
fills in the current model's vectors, a batch per transaction, so it can be stopped and run again
at any point and picks up where it left off; books stay COMPLETE and searchable by full text
meanwhile.
"""

from __future__ import annotations

from typing import Any, Callable

from agentic_pipeline import errors
from agentic_pipeline.db import library_store, search_store
from agentic_pipeline.ingest import embed
from agentic_pipeline.library.search import resolve_pipeline_book

BATCH = 256


def plan(app, *, pipeline_id: int | None = None, book_id: int | None = None) -> dict[str, Any]:
    """Which completed books (or the one of ``pipeline_id``) lack vectors for the current model, and how many chunks.

    ``NotFound`` when the pipeline has no completed book. ``book_id``: the same by the library's
    internal row id. Each book is named by its pipeline id (and its library row id, labelled).
    """
    with app.db.read() as conn:
        if pipeline_id is not None:
            book_id = resolve_pipeline_book(conn, pipeline_id)
        if book_id is not None and not search_store.is_searchable_book(conn, book_id):
            name = f"pipeline {pipeline_id}" if pipeline_id is not None else f"library book {book_id}"
            raise errors.NotFound(f"{name} is not a completed book",
                                  hint="only books that finished the pipeline have vectors")
        books = search_store.books_missing_vectors(conn, app.embedder.name)
        books = [(b, n) for b, n in books if book_id is None or b == book_id]
        owners = library_store.pipeline_ids_of(conn, [b for b, _n in books])
    return {"model": app.embedder.name,
            "books": [{"pipeline_id": owners.get(b), "library_book_id": b, "chunks": n} for b, n in books],
            "chunks": sum(n for _b, n in books)}


def reembed(app, *, pipeline_id: int | None = None, book_id: int | None = None,
            progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Embed the missing chunks (of one book, or all completed books); returns what was done."""
    books = plan(app, pipeline_id=pipeline_id, book_id=book_id)["books"]
    model, done = app.embedder, 0
    for book in books:
        while True:
            with app.db.read() as conn:
                batch = library_store.chunks_without_vectors(conn, book["library_book_id"], model.name, limit=BATCH)
            if not batch:
                break
            vectors = model.embed([text for _cid, text in batch])
            with app.db.write() as conn:
                written = library_store.set_embeddings(
                    conn, [(cid, embed.to_blob(v)) for (cid, _t), v in zip(batch, vectors)], model=model.name, dim=model.dim)
            done += written
            if progress:
                progress(written)
    return {"model": model.name, "books": len(books), "chunks_embedded": done}

