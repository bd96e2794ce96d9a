"""Creating and upgrading the schema with Alembic, and refusing a database that is behind.

``upgrade`` runs inside one transaction on both engines (SQLite and PostgreSQL both have
transactional DDL), serialised by a lock so two ``init`` calls at once do not race.
``check_current`` is what every command but ``init`` calls: one cheap query.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.db.engine import Database
from sqlalchemy import event

#: the newest migration; tests check it equals Alembic's head
HEAD = "0010"  # chained after 0011: migrations run in the order they reached main
#: objects the migrations create with raw DDL, outside the SQLAlchemy metadata
RAW_DDL_OBJECTS = {"chunks_fts", "chunks_fts_data", "chunks_fts_idx", "chunks_fts_docsize",
                   "chunks_fts_config", "chunks_fts_content", "ix_chunks_fts",
                   "tsv", "ix_chunks_tsv"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Hide the raw-DDL objects (full-text index, triggers) and Alembic's own table from comparisons."""
    return name not in RAW_DDL_OBJECTS and name != "alembic_version"


def _config(conn: sa.Connection):
    from alembic.config import Config  # lazy: alembic loads only to migrate or to read the head revision

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("alembic")))
    cfg.attributes["connection"] = conn
    return cfg


def current_revision(db: Database) -> str | None:
    with db.read() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after).

    On SQLite, foreign keys are off for the migration (a rebuilt table is dropped and renamed; with
    them on, dropping ``books`` would cascade to every chapter and chunk) and checked with
    ``PRAGMA foreign_key_check`` before the commit: a violation rolls everything back.
    """
    from alembic import command  # lazy: alembic loads only to migrate or to read the head revision

    with _foreign_keys_off(db):
        with db.write() as conn:
            if db.is_postgres:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7261001)"))
            before = _revision_in(conn)
            command.upgrade(_config(conn), "head")
            after = _revision_in(conn)
            if db.is_sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise errors.StoreError(f"the migration would break {len(broken)} foreign keys "
                                            f"(first: {tuple(broken[0])}); nothing was changed")
    return before, after


@contextlib.contextmanager
def _foreign_keys_off(db: Database) -> Iterator[None]:
    """SQLite: every pooled connection has foreign keys off while this runs (the PRAGMA is per connection and
    cannot change inside a transaction), back on afterwards. A no-op on PostgreSQL."""
    if not db.is_sqlite:
        yield
        return

    def off(dbapi_conn, _record, _proxy):
        dbapi_conn.execute("PRAGMA foreign_keys = OFF")

    def on(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA foreign_keys = ON")

    event.listen(db.engine, "checkout", off)
    event.listen(db.engine, "checkin", on)
    try:
        yield
    finally:
        event.remove(db.engine, "checkout", off)
        event.remove(db.engine, "checkin", on)


def _revision_in(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def check_current(db: Database) -> None:
    """Raise ``SchemaBehind`` unless the database is at ``HEAD``."""
    try:
        rev = current_revision(db)
    except errors.StoreError:
        raise
    if rev is None:
        raise errors.SchemaBehind(f"the database at {safe_url(db.url)} has no schema yet")
    if rev != HEAD:
        raise errors.SchemaBehind(f"the database schema is at revision {rev}, this version needs {HEAD}")


def head_revision() -> str:
    from alembic.script import ScriptDirectory  # lazy: alembic loads only to migrate or to read the head revision

    cfg = _config(None)
    return ScriptDirectory.from_config(cfg).get_current_head()


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a message helper must not fail
        return "<database>"
