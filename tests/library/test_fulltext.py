"""Full-text semantics on both engines: all words required, stop words, quotes, exclusions, CJK."""

from __future__ import annotations

import pytest

from agentic_pipeline.db import fulltext, library_store, search_store
from agentic_pipeline.library import search
from agentic_pipeline.pipeline.states import State

PATH = [State.HASHING, State.CLASSIFYING, State.SELECTING_STRATEGY, State.PROCESSING, State.VALIDATING,
        State.PENDING_APPROVAL, State.APPROVED, State.EMBEDDING, State.COMPLETE]

TEXTS = {
    "cat": "The cat sat on the mat and looked at the garden.",
    "dog": "The dog ran across the garden after a ball.",
    "bird": "A bird sang in the tree at the end of the garden.",
    "neko": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "tokyo": "東京都に行く前に、京都で茶を飲んだ。",
    "zh": "机器学习是人工智能的一个分支。",
}


def _book(app, texts: dict[str, str]) -> dict[int, str]:
    p = app.pipelines.create(source_path="/books/garden.txt", actor="human:t")
    prev = State.DETECTED
    for nxt in PATH:
        app.pipelines.transition(p.id, nxt, expect=prev, actor="human:t")
        prev = nxt
    with app.db.write() as conn:
        book_id = library_store.replace_book(
            conn, pipeline_id=p.id, book={"content_hash": "h" * 64, "title": "Garden", "source_path": p.source_path},
            chapter_rows=[{"chapter_index": 0, "title": "One", "text": " ".join(texts.values()), "word_count": 60}],
            chunk_rows=[{"chapter_index": 0, "ordinal": i, "position": i, "text": t, "token_count": 10}
                        for i, t in enumerate(texts.values())], now=app.clock.now())
        ids = library_store.chunks_without_vectors(conn, book_id, "none", limit=100)
    by_text = {text: cid for cid, text in ids}
    return {by_text[t]: name for name, t in texts.items()}


def _names(app, names: dict[int, str], query: str, *, any_of: bool = False) -> set[str]:
    with app.db.read() as conn:
        hits = search_store.fts_ranked(conn, fulltext.parse(query), limit=50, any_of=any_of)
    return {names[cid] for cid, _ in hits}


def test_every_word_is_required_so_a_stop_word_does_not_match_everything(app):
    names = _book(app, TEXTS)
    assert _names(app, names, "the cat") == {"cat"}
    assert _names(app, names, "the garden") == {"cat", "dog", "bird"}
    assert _names(app, names, "the zebra") == set()
    assert [c.words for c in fulltext.parse("the zebra").relaxed().clauses] == [("zebra",)]  # the stop word goes
    assert fulltext.parse("zebra").relaxed() is None
    assert fulltext.parse("the of").relaxed() is None  # stop words alone never widen to "any of them"
    relaxed = fulltext.parse("cat zebra").relaxed()
    assert relaxed is not None and _names(app, names, "cat zebra") == set()
    with app.db.read() as conn:
        assert [names[c] for c, _ in search_store.fts_ranked(conn, relaxed, limit=10, any_of=True)] == ["cat"]


def test_quotes_ask_for_a_phrase_and_a_minus_excludes(app):
    names = _book(app, TEXTS)
    assert _names(app, names, '"sat on the mat"') == {"cat"}
    assert _names(app, names, '"mat the on sat"') == set()
    assert _names(app, names, "garden -dog") == {"cat", "bird"}
    assert _names(app, names, 'garden -"the tree"') == {"cat", "dog"}
    assert _names(app, names, "-garden") == set()  # exclusions alone select nothing


def test_cjk_is_found_by_any_substring_of_a_run(app):
    names = _book(app, TEXTS)
    assert _names(app, names, "名前") == {"neko"}
    assert _names(app, names, "吾輩は猫") == {"neko"}
    assert _names(app, names, "猫") == {"neko"}  # one character: a prefix match on the grams
    assert _names(app, names, "京都") == {"tokyo"}  # inside 東京都 and on its own
    assert _names(app, names, "人工智能") == {"zh"}
    assert _names(app, names, "猫名") == set()  # both characters are there, but not side by side
    assert _names(app, names, "京都 -茶") == set()


def test_search_applies_exclusions_to_vector_hits_too(app):
    _book(app, TEXTS)
    results = search.search(app, "garden -dog", limit=10)
    assert results and all("dog" not in r["snippet"].lower() for r in results)


def test_query_syntax_parses_websearch_style():
    q = fulltext.parse('"Sat on" the -Dog -"a ball" 東京')
    assert [(c.words, c.negated, c.cjk) for c in q.clauses] == [
        (("sat", "on"), False, False), (("the",), False, False), (("dog",), True, False),
        (("a", "ball"), True, False), (("東京",), False, True)]
    assert q.terms == ["sat", "on", "the", "東京"]
    assert fulltext.search_grams("x 東京都 y 日") == "東京 京都 都 日"
    assert fulltext.search_grams("plain latin") is None
    assert fulltext.excludes(q, "the dog barked") and not fulltext.excludes(q, "a hotdog")


@pytest.mark.parametrize("query", ['"', "-", '""', "- -", "NEAR(", "'; DROP TABLE chunks; --", "a:b*(c)"])
def test_any_typed_text_is_a_valid_query(app, query):
    names = _book(app, TEXTS)
    _names(app, names, query)  # never a syntax error


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def test_migration_0009_makes_existing_chunks_searchable_by_cjk_and_stored_tsvector(engine, tmp_path, sqlite_template,
                                                                                    pg_databases):
    import sqlalchemy as sa
    from alembic import command

    from agentic_pipeline.clock import FakeClock
    from agentic_pipeline.db import migrations, schema
    from agentic_pipeline.db.engine import Database
    from tests.conftest import make_db_url

    db = Database(make_db_url(engine, tmp_path, sqlite_template, pg_databases, migrated=False))
    with db.write() as conn:
        command.upgrade(migrations._config(conn), "0006")
        now = FakeClock().now()
        pid = conn.execute(schema.processing_pipelines.insert().values(
            source_path="/b", state="complete", priority=5, base_priority=5, created_at=now, updated_at=now,
            state_entered_at=now, queued_at=now).returning(schema.processing_pipelines.c.id)).scalar_one()
        book = conn.execute(schema.books.insert().values(pipeline_id=pid, content_hash="h", source_path="/b",
                                                         created_at=now).returning(schema.books.c.id)).scalar_one()
        chapter = conn.execute(sa.text("INSERT INTO chapters (book_id, chapter_index, title, text, word_count) "
                                       "VALUES (:b, 0, 'c', 'x', 1) RETURNING id"), {"b": book}).scalar_one()
        conn.execute(sa.text("INSERT INTO chunks (book_id, chapter_id, ordinal, position, text, token_count) "
                             "VALUES (:b, :c, 0, 0, :t, 5)"), {"b": book, "c": chapter, "t": TEXTS["neko"] + " old words"})
    assert migrations.upgrade(db)[1] == migrations.HEAD
    with db.read() as conn:
        for query in ("名前", "old words"):
            assert [cid for cid, _ in search_store.fts_ranked(conn, fulltext.parse(query), limit=5)] != [], query
        assert conn.execute(sa.select(schema.chunks.c.search_grams)).scalar().startswith("吾輩 輩は")
    db.dispose()
