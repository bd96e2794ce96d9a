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
