"""The schema Alembic builds equals the metadata in code, on both engines; old databases are refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.db import migrations, schema
from agentic_pipeline.db.engine import Database
from tests.conftest import make_db_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def empty_url(request, tmp_path, sqlite_template, pg_databases):
    url = make_db_url(request.param, tmp_path, sqlite_template, pg_databases, migrated=False)
    return url.replace("postgresql://", "postgresql+psycopg://")


def test_head_constant_matches_alembic():
    assert migrations.HEAD == migrations.head_revision()


def test_alembic_schema_has_no_drift_from_metadata(empty_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database(empty_url)
    before, after = migrations.upgrade(db)
    assert (before, after) == (None, migrations.HEAD)
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": migrations.include_object})
        diff = compare_metadata(ctx, schema.metadata)
    db.dispose()
    assert diff == []


def test_upgrade_is_idempotent_and_commands_refuse_an_unmigrated_database(empty_url):
    db = Database(empty_url)
    with pytest.raises(errors.SchemaBehind, match="init"):
        migrations.check_current(db)
    migrations.upgrade(db)
    assert migrations.upgrade(db) == (migrations.HEAD, migrations.HEAD)
    migrations.check_current(db)
    with db.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(errors.SchemaBehind, match="agentic-pipeline init"):
        migrations.check_current(db)
    db.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(sqlite_url):
    db = Database(sqlite_url)
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    db.dispose()


def _add_book(conn, pipeline_id: int, now) -> int:
    from agentic_pipeline.db import library_store

    return library_store.replace_book(
        conn, pipeline_id=pipeline_id, book={"content_hash": "h", "title": "t", "source_path": "/b"},
        chapter_rows=[{"chapter_index": 0, "title": "c", "text": "some words", "word_count": 2}],
        chunk_rows=[{"chapter_index": 0, "ordinal": 0, "position": 0, "text": "some words", "token_count": 2}],
        now=now)


def _add_old_book(conn, pipeline_id: int, now) -> int:
    """A book as the 0005 schema holds it (only the columns it had: today's write path adds more)."""
    book = conn.execute(schema.books.insert().values(
        pipeline_id=pipeline_id, content_hash="h", title="t", source_path="/b", created_at=now, chapter_count=1)
        .returning(schema.books.c.id)).scalar_one()
    chapter = conn.execute(schema.chapters.insert().values(
        book_id=book, chapter_index=0, title="c", text="some words", word_count=2)
        .returning(schema.chapters.c.id)).scalar_one()
    conn.execute(schema.chunks.insert().values(book_id=book, chapter_id=chapter, ordinal=0, position=0,
                                               text="some words", token_count=2))
    return book


def test_a_removed_books_id_is_never_given_to_the_next_book(app):
    from agentic_pipeline.db import library_store

    p1 = app.pipelines.create(source_path="/a", actor="human:t")
    p2 = app.pipelines.create(source_path="/b", actor="human:t")
    with app.db.write() as conn:
        first = _add_book(conn, p1.id, app.clock.now())
        library_store.delete_book(conn, p1.id)  # the largest id is gone (a rollback)
        second = _add_book(conn, p2.id, app.clock.now())
    assert second > first


def test_migration_0006_rebuilds_books_on_sqlite_and_keeps_every_chapter_and_chunk(tmp_path):
    from alembic import command

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    with db.write() as conn:  # a library made by the previous version
        command.upgrade(migrations._config(conn), "0005")
    from agentic_pipeline.clock import FakeClock

    now = FakeClock().now()
    with db.write() as conn:
        pid = conn.execute(schema.processing_pipelines.insert().values(
            source_path="/b", state="complete", priority=5, base_priority=5, created_at=now, updated_at=now,
            state_entered_at=now, queued_at=now).returning(schema.processing_pipelines.c.id)).scalar_one()
        book = _add_old_book(conn, pid, now)
    assert migrations.upgrade(db) == ("0005", migrations.HEAD)
    with db.read() as conn:
        sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'books'").scalar()
        assert "AUTOINCREMENT" in sql
        counts = [conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                  for t in (schema.books, schema.chapters, schema.chunks)]
        assert counts == [1, 1, 1]
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on for ordinary work
        assert conn.execute(sa.select(schema.chunks.c.book_id)).scalar() == book
        hits = conn.exec_driver_sql("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'words'").scalar()
        assert hits == 1  # the full-text index still finds the chunk
    db.dispose()
