"""Hybrid search over real sample text, on SQLite FTS5 and PostgreSQL full text."""

from __future__ import annotations

import pytest

from agentic_pipeline import errors
from agentic_pipeline.db import fulltext
from agentic_pipeline.db.schema import books, chapters, chunks
from agentic_pipeline.ingest import embed, extract
from agentic_pipeline.library import search
from agentic_pipeline.pipeline.states import State
from tests.conftest import SAMPLES

PATH = [State.HASHING, State.CLASSIFYING, State.SELECTING_STRATEGY, State.PROCESSING, State.VALIDATING,
        State.PENDING_APPROVAL, State.APPROVED, State.EMBEDDING, State.COMPLETE]


def _library_book(app, sample: str, *, complete: bool = True) -> int:
    """Put a real sample book into the library tables, one chunk per paragraph group."""
    book = extract.extract(SAMPLES / "books" / sample)
    p = app.pipelines.create(source_path=str(SAMPLES / "books" / sample), actor="human:t")
    prev = State.DETECTED
    for nxt in PATH if complete else PATH[:6]:
        app.pipelines.transition(p.id, nxt, expect=prev, actor="human:t")
        prev = nxt
    emb = app.embedder
    with app.db.write() as conn:
        book_id = conn.execute(books.insert().values(
            pipeline_id=p.id, content_hash="x" * 64, title=book.metadata.title, source_path=p.source_path,
            created_at=app.clock.now()).returning(books.c.id)).scalar_one()
        ordinal = 0
        for ch in book.chapters:
            chapter_id = conn.execute(chapters.insert().values(
                book_id=book_id, chapter_index=ch.index, title=ch.title, text=ch.text,
                word_count=ch.word_count).returning(chapters.c.id)).scalar_one()
            paras = [t for t in ch.text.split("\n\n") if t.strip()]
            groups = ["\n\n".join(paras[i:i + 4]) for i in range(0, len(paras), 4)]
            vecs = emb.embed(groups) if groups else []
            for pos, (text, vec) in enumerate(zip(groups, vecs)):
                conn.execute(chunks.insert().values(
                    book_id=book_id, chapter_id=chapter_id, ordinal=ordinal, position=pos, text=text,
                    token_count=emb.count_tokens(text), embedding=embed.to_blob(vec),
                    search_grams=fulltext.search_grams(text),
                    embedding_model=emb.name, embedding_dim=emb.dim))
                ordinal += 1
    return book_id


def test_finds_the_passage_by_its_words(app):
    book_id = _library_book(app, "waste-land.epub")
    results = search.search(app, "April is the cruellest month", limit=5)
    assert results, "nothing found"
    top = results[0]
    assert top["library_book_id"] == book_id
    assert "cruellest" in top["snippet"].lower()
    assert top["full_text_match"]
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_only_completed_books_are_searchable(app):
    _library_book(app, "waste-land.epub", complete=False)
    assert search.search(app, "cruellest month") == []


def test_book_filter_and_limits(app):
    wl = _library_book(app, "waste-land.epub")
    assert search.search(app, "the river", book_id=wl) and search.search(app, "the", book_id=wl)[0]["library_book_id"] == wl
    with pytest.raises(errors.NotFound, match=f"library book {wl + 1000} is not a searchable book"):
        search.search(app, "the", book_id=wl + 1000)
    assert len(search.search(app, "the river", limit=3)) <= 3
    with pytest.raises(errors.InputError):
        search.search(app, "   ")
    with pytest.raises(errors.InputError, match="limit"):
        search.search(app, "river", limit=0)


def test_query_with_fts_operators_is_safe(app):
    _library_book(app, "waste-land.epub")
    # quotes, NEAR, parentheses and a colon would be syntax errors if passed to MATCH / to_tsquery raw
    results = search.search(app, 'NEAR("water" AND) : * (dry -rock')
    assert any("water" in r["snippet"].lower() or "rock" in r["snippet"].lower() for r in results)


def test_snippet_centres_on_a_term():
    text = "x " * 500 + "the needle is here " + "y " * 500
    s = search.snippet(text, ["needle"])
    assert "needle" in s and s.startswith("…") and s.endswith("…")
