"""Relevance people trust: nothing rather than noise, front matter last, the query's script, pipeline ids first."""

from __future__ import annotations

import json

import pytest

from agentic_pipeline.library import relevance, search
from tests.conftest import open_app
from tests.library.test_search import _library_book

ALICE_CONTENTS = ("CHAPTER I. Down the Rabbit-Hole\nCHAPTER II. The Pool of Tears\n"
                  "CHAPTER III. A Caucus-Race and a Long Tale\nCHAPTER IV. The Rabbit Sends in a Little Bill\n")
FRONT_MATTER = ("Contents Preface . . . . . . . 3 Sets . . . . . . . 9 Functions . . . . . . 21 Relations . . . . . . 30 "
                "Algebras . . . . . . . 47 Lattices . . . . . . 58 Index . . . . . . 90")
TOC_LINES = "\n".join(f"{i}.{j} Vectors and assignment of things {7 + i * 3 + j}" for i in range(1, 4) for j in range(1, 4))
DATA_ROWS = "R> merge(z1, lag(z1, k = 1))\n" + "\n".join(f"2004-01-{d:02d} {d % 9} {d % 7}" for d in range(5, 20))


def test_front_matter_is_recognised_by_title_or_shape_and_prose_is_not():
    assert relevance.is_front_matter(ALICE_CONTENTS, "Contents")
    assert relevance.is_front_matter(FRONT_MATTER, "Front matter")
    assert relevance.is_front_matter(TOC_LINES, "Section 1")
    assert relevance.is_front_matter("whatever", "Table of Contents") and relevance.is_front_matter("x", "Index")
    assert not relevance.is_front_matter(DATA_ROWS, "2. The class zoo")  # a table of numbers is not a TOC
    assert not relevance.is_front_matter("April is the cruellest month, breeding lilacs. " * 20, "I. The Burial")
    assert not relevance.is_front_matter("The preface explains why. " * 30, "Front matter")  # prose stays


def test_script_of_a_text_and_which_vector_hits_an_english_query_keeps():
    assert relevance.script_family("Where is the cat?") == "latin"
    assert relevance.script_family("吾輩は猫である。名前はまだ無い。") == "cjk"
    assert relevance.script_family("机器学习 is fun") == "cjk"
    assert not relevance.keep_vector_hit("latin", "机器学习是人工智能的一个分支。")
    assert relevance.keep_vector_hit("latin", "Machine learning, 机器学习.")
    assert relevance.keep_vector_hit("other", "机器学习")


def test_no_match_needs_neither_full_text_nor_a_close_vector():
    assert relevance.nothing_matches(0, None) and relevance.nothing_matches(0, relevance.VECTOR_FLOOR - 0.01)
    assert not relevance.nothing_matches(0, relevance.VECTOR_FLOOR) and not relevance.nothing_matches(3, 0.1)


@pytest.fixture
def real_app(db_url, clock, tmp_path):
    """The shipped model: the no-match floor is calibrated on its cosines."""
    app = open_app(db_url, clock, data_dir=tmp_path / "data", embedder="wordllama")
    yield app
    app.close()


def test_absent_words_and_nonsense_return_nothing(real_app):
    _library_book(real_app, "waste-land.epub")
    _library_book(real_app, "romeo-juliet.epub")
    for query in ("zzzxqv", "Tweedledum", "qwxzv plorkt", "asdfghjkl"):
        assert search.search(real_app, query) == [], query
    top = search.search(real_app, "Juliet on the balcony")
    assert top and top[0]["full_text_match"]
    assert list(top[0])[0] == "pipeline_id"  # hits lead with the id users act on


def test_an_english_question_does_not_surface_japanese_passages(real_app):
    _library_book(real_app, "kusamakura-ja.epub")
    wl = _library_book(real_app, "waste-land.epub")
    results = search.search(real_app, "a quiet painter walking in the mountains thinks about art", limit=20)
    assert results and {r["library_book_id"] for r in results} == {wl}
    japanese = search.search(real_app, "智に働けば角が立つ")
    assert japanese and japanese[0]["full_text_match"]


def test_table_of_contents_chunks_rank_after_the_text_they_point_to(real_app):
    _library_book(real_app, "r-intro.pdf")
    from agentic_pipeline.db import search_store

    results = search.search(real_app, "vectors and assignment", limit=50)
    with real_app.db.read() as conn:
        details = search_store.chunk_details(conn, [r["chunk_id"] for r in results])
    front = [relevance.is_front_matter(details[r["chunk_id"]]["text"], r["chapter_title"]) for r in results]
    assert any(front), "the table of contents matches these words: the test needs it among the hits"
    assert not front[0]
    assert front == sorted(front)  # every front-matter hit after every other hit


def test_cli_and_mcp_say_no_passage_matches(db_url, tmp_path):
    from click.testing import CliRunner

    from agentic_pipeline.interfaces.cli import cli

    app = open_app(db_url, None, data_dir=tmp_path / "data", embedder="wordllama")
    _library_book(app, "waste-land.epub")
    app.close()
    env = {"AGENTIC_PIPELINE_DATA_DIR": str(tmp_path / "data")}
    out = CliRunner().invoke(cli, ["--db", db_url, "search", "Tweedledum"], env=env)
    assert out.exit_code == 0 and "No passage matches 'Tweedledum'." in out.output
    out = CliRunner().invoke(cli, ["--db", db_url, "search", "Tweedledum", "--json"], env=env)
    assert json.loads(out.output) == []
    out = CliRunner().invoke(cli, ["--db", db_url, "search", "cruellest month"], env=env)
    assert out.exit_code == 0 and out.output.split()[0].isdigit()  # the pipeline id leads
    # MCP: tests/mcp/test_mcp_server.py checks the message beside the empty result


def test_hits_carry_the_pdf_pages_and_the_chapter_path(app):
    """The PROCESSING stage's rows (stages._chunk_row) through the write path to a search hit."""
    from agentic_pipeline.db import library_store
    from agentic_pipeline.ingest import chunking, embed, extract
    from agentic_pipeline.orchestrator import stages
    from tests.conftest import SAMPLES
    from tests.library.test_vector_index import PATH

    for name in ("r-intro.pdf", "romeo-juliet.epub"):
        book = extract.extract(SAMPLES / "books" / name)
        by_index = {c.index: c for c in book.chapters}
        chunks = chunking.chunk_chapters(book.chapters, max_tokens=256, overlap_tokens=0, count_tokens=app.embedder.count_tokens)
        p = app.pipelines.create(source_path=str(SAMPLES / "books" / name), actor="human:t")
        prev = PATH[0].__class__("detected")
        for nxt in PATH:
            app.pipelines.transition(p.id, nxt, expect=prev, actor="human:t")
            prev = nxt
        with app.db.write() as conn:
            book_id = library_store.replace_book(
                conn, pipeline_id=p.id, book={"content_hash": name.ljust(64, "x"), "title": name, "source_path": name},
                chapter_rows=[{"chapter_index": c.index, "title": c.title, "text": c.text, "word_count": c.word_count,
                               "path": c.path or None} for c in book.chapters],
                chunk_rows=[stages._chunk_row(c, by_index[c.chapter_index]) for c in chunks], now=app.clock.now())
            todo = library_store.chunks_without_vectors(conn, book_id, app.embedder.name, limit=10 ** 6)
            vecs = app.embedder.embed([t for _, t in todo])
            library_store.set_embeddings(conn, [(cid, embed.to_blob(v)) for (cid, _), v in zip(todo, vecs)],
                                         model=app.embedder.name, dim=app.embedder.dim)
    pdf_hit = search.search(app, "Kolmogorov-Smirnov test", limit=3)[0]
    assert pdf_hit["book_title"] == "r-intro.pdf" and pdf_hit["pages"][0] <= pdf_hit["pages"][1]
    assert 30 < pdf_hit["pages"][0] < 80
    epub_hit = search.search(app, "Verona public place", limit=3)[0]
    assert epub_hit["pages"] is None and epub_hit["chapter_path"].startswith("Act I › SCENE")
