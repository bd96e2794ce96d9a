"""Creating and upgrading the schema with Alembic, and refusing a database that is behind.

``upgrade`` runs inside one transaction on both engines (SQLite and PostgreSQL both have
transactional DDL), serialised by a lock so two ``init`` calls at once do not race.
``check_current`` is what every command but ``init`` calls: one cheap query.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.db.engine import Database

#: the newest migration; tests check it equals Alembic's head
HEAD = "0005"
#: objects the migrations create with raw DDL, outside the SQLAlchemy metadata
RAW_DDL_OBJECTS = {"chunks_fts", "chunks_fts_data", "chunks_fts_idx", "chunks_fts_docsize",
                   "chunks_fts_config", "chunks_fts_content", "ix_chunks_fts"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Hide the raw-DDL objects (full-text index, triggers) and Alembic's own table from comparisons."""
    return name not in RAW_DDL_OBJECTS and name != "alembic_version"


def _config(conn: sa.Connection):
    from alembic.config import Config

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
    """Bring the schema to the newest revision; returns (before, after)."""
    from alembic import command

    with db.write() as conn:
        if db.is_postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7261001)"))
        before = _revision_in(conn)
        command.upgrade(_config(conn), "head")
        after = _revision_in(conn)
    return before, after


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
    from alembic.script import ScriptDirectory

    cfg = _config(None)
    return ScriptDirectory.from_config(cfg).get_current_head()


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a message helper must not fail
        return "<database>"
