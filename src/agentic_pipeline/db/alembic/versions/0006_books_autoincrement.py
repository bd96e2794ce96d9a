"""Books: ids are never reused on SQLite (AUTOINCREMENT).

SQLite gives a new row the largest rowid plus one; once the book with the largest id is gone (a
rollback or a rejection removes it), the next book got the same id, and the audit trail's
``book_id`` and ``search --book`` then mixed two books. ``AUTOINCREMENT`` keeps the high-water
mark in ``sqlite_sequence``. The table is rebuilt (SQLite cannot add it in place) with foreign keys
off (``migrations.upgrade``): chapters and chunks keep their rows. PostgreSQL's identity sequences
never reuse ids: nothing to do there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # no column changes: recreate="always" rebuilds the table with the new table options, which is the change
    with op.batch_alter_table("books", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("books", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass  # the rebuild without AUTOINCREMENT is the whole downgrade
