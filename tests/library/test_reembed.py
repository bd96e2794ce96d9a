"""Switching the embedding model re-embeds cleanly: old vectors are ignored, reembed fills the new ones."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.interfaces.cli import cli
from agentic_pipeline.interfaces.cli.context import run
from agentic_pipeline.db.schema import chunks
from agentic_pipeline.library import reembed, search
from tests.conftest import open_app
from tests.library.test_search import _library_book


def _models(app) -> dict[str, int]:
    with app.db.read() as conn:
        return dict(conn.execute(sa.select(chunks.c.embedding_model, sa.func.count()).group_by(chunks.c.embedding_model)).all())


def test_switching_models_then_reembed(db_url):
    with open_app(db_url) as hashing_app:  # embedder "hashing"
        book_id = _library_book(hashing_app, "waste-land.epub")
        n = sum(_models(hashing_app).values())
    with open_app(db_url, embedder="wordllama") as app:
        assert reembed.plan(app)["chunks"] == n == reembed.plan(app, book_id=book_id)["chunks"]
        with pytest.raises(errors.NotFound):  # the dry run says so too, instead of totalling every book
            reembed.plan(app, book_id=book_id + 99)
        # before re-embedding, search still works by full text and never mixes vector spaces
        assert search.search(app, "cruellest month")[0]["library_book_id"] == book_id
        done = reembed.reembed(app)
        assert done == {"model": app.embedder.name, "books": 1, "chunks_embedded": n}
        assert _models(app) == {app.embedder.name: n}
        assert reembed.plan(app)["chunks"] == 0
        assert reembed.reembed(app)["chunks_embedded"] == 0  # idempotent
        hits = search.search(app, "the drowned Phoenician sailor")
        assert hits and hits[0]["library_book_id"] == book_id
        with pytest.raises(errors.NotFound):
            reembed.reembed(app, book_id=book_id + 99)


def test_reembed_cli_dry_run_and_json(sqlite_url, capsys, monkeypatch):
    with open_app(sqlite_url) as app:
        _library_book(app, "waste-land.epub")
    monkeypatch.setenv("AGENTIC_PIPELINE_EMBEDDER", "wordllama")
    assert run(cli, ["--db", sqlite_url, "reembed", "--dry-run", "--json"]) == 0
    todo = json.loads(capsys.readouterr().out)
    assert todo["chunks"] > 0 and todo["model"].startswith("wordllama")
    assert run(cli, ["--db", sqlite_url, "reembed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks_embedded"] == todo["chunks"]
