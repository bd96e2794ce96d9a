"""The vector index is a derived cache: built from the database, caught up, never trusted when damaged."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from agentic_pipeline.db import library_store
from agentic_pipeline.ingest import embed
from agentic_pipeline.library import search, vector_index
from agentic_pipeline.pipeline.states import State
from tests.conftest import REPO, open_app

PATH = [State.HASHING, State.CLASSIFYING, State.SELECTING_STRATEGY, State.PROCESSING, State.VALIDATING,
        State.PENDING_APPROVAL, State.APPROVED, State.EMBEDDING, State.COMPLETE]

WORDS = ("river", "harbour", "lantern", "orchard", "glacier", "violin", "meadow", "comet", "quarry", "falcon")


def add_book(app, name: str, texts: list[str]) -> tuple[int, int]:
    """A COMPLETE book written the way the pipeline writes it (rows, then vectors); (pipeline id, book id)."""
    p = app.pipelines.create(source_path=f"/books/{name}.txt", actor="human:t")
    prev = State.DETECTED
    for nxt in PATH:
        app.pipelines.transition(p.id, nxt, expect=prev, actor="human:t")
        prev = nxt
    emb = app.embedder
    with app.db.write() as conn:
        book_id = library_store.replace_book(
            conn, pipeline_id=p.id, book={"content_hash": name.ljust(64, "0"), "title": name, "source_path": p.source_path},
            chapter_rows=[{"chapter_index": 0, "title": "One", "text": "\n\n".join(texts), "word_count": 10}],
            chunk_rows=[{"chapter_index": 0, "ordinal": i, "position": i, "text": t, "token_count": 8}
                        for i, t in enumerate(texts)], now=app.clock.now())
        todo = library_store.chunks_without_vectors(conn, book_id, emb.name, limit=1000)
        vecs = emb.embed([t for _, t in todo])
        library_store.set_embeddings(conn, [(cid, embed.to_blob(v)) for (cid, _), v in zip(todo, vecs)],
                                     model=emb.name, dim=emb.dim)
    return p.id, book_id


def texts_about(word: str, n: int = 6) -> list[str]:
    return [f"The {word} chapter, part {i}: a long passage about the {word} and nothing else, {word} again."
            for i in range(n)]


def vector_book_ids(app, query: str) -> set[int]:
    index = app.vector_index
    index.sync(app.db)
    with app.db.read() as conn:
        hits = index.search(conn, app.embedder.embed([query])[0], 20)
        from agentic_pipeline.db import search_store

        details = search_store.chunk_details(conn, [cid for cid, _ in hits])
    return {d["book_id"] for d in details.values()}


@pytest.fixture(scope="session")
def pgvector_server(tmp_path_factory):
    """A real PostgreSQL with the pgvector extension: the ``pgserver`` wheel, on a unix socket.

    pgserver runs the server as an unprivileged ``pgserver`` user when started as root (it creates
    it). Its absence or failure is a test failure, never a skip: CI must exercise this path.
    """
    import pgserver

    srv = pgserver.get_server(tmp_path_factory.mktemp("pgv") / "data", cleanup_mode="stop")
    yield srv
    srv.cleanup()


def _pgvector_url(srv, name: str) -> str:
    import psycopg

    from agentic_pipeline.db import migrations
    from agentic_pipeline.db.engine import Database

    with psycopg.connect(srv.get_uri(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = srv.get_uri(name).replace("postgresql://", "postgresql+psycopg://", 1)
    db = Database(url)
    migrations.upgrade(db)
    db.dispose()
    return url


ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]


@pytest.fixture(params=[*ENGINES, pytest.param("pgvector", marks=pytest.mark.pg)])
def index_app(request, clock, tmp_path, sqlite_template, pg_databases):
    """An App on SQLite, on PostgreSQL without pgvector (files) and on PostgreSQL with it (HNSW in the database)."""
    yield from _app(request, clock, tmp_path, sqlite_template, pg_databases)


@pytest.fixture(params=ENGINES)
def file_index_app(request, clock, tmp_path, sqlite_template, pg_databases):
    """An App whose index lives in files (SQLite, and PostgreSQL without pgvector)."""
    yield from _app(request, clock, tmp_path, sqlite_template, pg_databases)


def _app(request, clock, tmp_path, sqlite_template, pg_databases):
    from tests.conftest import make_db_url

    if request.param == "pgvector":
        srv = request.getfixturevalue("pgvector_server")
        url = _pgvector_url(srv, "t_" + request.node.name.split("[")[0][-40:])
    else:
        url = make_db_url(request.param, tmp_path, sqlite_template, pg_databases)
    app = open_app(url, clock, data_dir=tmp_path / "data", embedder="hashing")
    kind = app.vector_index.kind
    assert kind == ("pgvector-hnsw" if request.param == "pgvector" else "usearch-hnsw")
    yield app
    app.close()


def test_built_from_the_database_and_caught_up_with_another_processs_book(index_app, tmp_path):
    app = index_app
    _, river = add_book(app, "river", texts_about("river"))
    assert vector_book_ids(app, "river") == {river}
    assert app.vector_index.last_sync["action"] == "rebuilt"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.conftest import open_app
        from tests.library.test_vector_index import add_book, texts_about
        app = open_app({app.settings.db_url!r}, None, data_dir={str(tmp_path / 'data')!r}, embedder="hashing")
        print(add_book(app, "comet", texts_about("comet"))[1])
        app.close()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.returncode == 0, out.stderr
    comet = int(out.stdout.split()[-1])
    assert comet in vector_book_ids(app, "comet")  # the same, long-running index object caught up
    assert app.vector_index.last_sync["action"] == "caught up 1 books"
    results = search.search(app, "comet", limit=5)
    assert results and all(r["library_book_id"] == comet for r in results)


def test_forgets_a_rolled_back_book(index_app):
    app = index_app
    pid, river = add_book(app, "river", texts_about("river"))
    _, orchard = add_book(app, "orchard", texts_about("orchard"))
    assert vector_book_ids(app, "river a long passage") == {river, orchard}
    with app.db.write() as conn:
        library_store.delete_book(conn, pid)  # what rollback and reject do
    assert vector_book_ids(app, "river a long passage") == {orchard}
    assert app.vector_index.last_sync["action"] == "caught up 1 books"


def test_a_second_process_loads_the_saved_index_instead_of_rebuilding(file_index_app, clock, tmp_path):
    app = file_index_app
    for w in WORDS[:3]:
        add_book(app, w, texts_about(w))
    app.vector_index.sync(app.db)
    other = open_app(app.settings.db_url, clock, data_dir=tmp_path / "data", embedder="hashing")
    try:
        assert other.vector_index.sync(other.db)["action"] == "loaded"
        assert other.vector_index.last_sync["rows"] == 18
    finally:
        other.close()


@pytest.mark.parametrize("damage", ["missing", "truncated", "flipped", "header"])
def test_a_damaged_or_missing_index_is_rebuilt_never_trusted(file_index_app, clock, tmp_path, damage):
    app = file_index_app
    ids = {add_book(app, w, texts_about(w))[1] for w in WORDS[:4]}
    app.vector_index.sync(app.db)
    folder = vector_index.index_folder(app.settings.db_url, app.settings.data_dir)
    header = (folder / "current.json").read_text()
    gen = folder / (__import__("json").loads(header)["gen"] + ".usearch")
    if damage == "missing":
        gen.unlink()
    elif damage == "truncated":
        gen.write_bytes(gen.read_bytes()[:-100])
    elif damage == "flipped":
        raw = bytearray(gen.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        gen.write_bytes(bytes(raw))
    else:
        (folder / "current.json").write_text("{not json")
    other = open_app(app.settings.db_url, clock, data_dir=tmp_path / "data", embedder="hashing")
    try:
        assert other.vector_index.sync(other.db)["action"] == "rebuilt"
        assert other.vector_index.last_sync["rows"] == 24
        assert vector_book_ids(other, "lantern") <= ids
        assert other.vector_index.sync(other.db)["action"] == "current"
    finally:
        other.close()


def test_index_recall_against_exact_search(index_app):
    """HNSW candidates re-ranked exactly find the exact top 10 (the bench measures it on real vectors at 1M)."""
    app = index_app
    for w in WORDS:
        add_book(app, w, texts_about(w, 30))
    index = app.vector_index
    index.sync(app.db)
    from agentic_pipeline.db import vector_store

    with app.db.read() as conn:
        ids, _books, mat = next(vector_store.stream_vectors(conn, app.embedder.name, app.embedder.dim))
        hits = 0
        for q in mat[::17]:
            exact = mat @ q
            kth = np.sort(exact)[-10]
            got = index.search(conn, q, 10)
            hits += sum(score >= kth - 1e-6 for _, score in got)
    assert hits / (10 * len(mat[::17])) >= 0.95


def test_identical_vectors_share_one_node_and_outlive_one_of_their_copies(file_index_app):
    """A book copied (or boilerplate shared by books): one graph node per distinct vector, every copy found."""
    app = file_index_app
    pid, first = add_book(app, "first", texts_about("glacier"))
    _, second = add_book(app, "second", texts_about("glacier"))
    _, third = add_book(app, "third", texts_about("violin"))
    assert vector_book_ids(app, "glacier a long passage") >= {first, second}
    snap = app.vector_index._snap
    assert snap.rows == 18 and len(snap.graph) == 12  # the copies share their nodes
    with app.db.write() as conn:
        library_store.delete_book(conn, pid)
    found = vector_book_ids(app, "glacier a long passage")
    assert second in found and first not in found
    assert len(app.vector_index._snap.graph) == 12 and app.vector_index._snap.rows == 12
    del third
