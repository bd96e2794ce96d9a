"""Audit: close SQLite's REPLACE hole in the append-only guard.

``INSERT OR REPLACE`` (and ``REPLACE INTO``) resolves a primary-key conflict by deleting the old
row, and SQLite does not fire DELETE triggers for that unless ``recursive_triggers`` is on, so
``approval_audit_no_delete`` never sees it. A BEFORE INSERT trigger that refuses an id already
present closes it (an upsert's UPDATE branch is already refused by ``approval_audit_no_update``).
PostgreSQL has no REPLACE; ``ON CONFLICT DO UPDATE`` fires its UPDATE trigger.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NO_REPLACE = "approval_audit is append-only: an entry with this id exists (REPLACE is not allowed)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"""CREATE TRIGGER approval_audit_no_replace BEFORE INSERT ON approval_audit
            WHEN EXISTS (SELECT 1 FROM approval_audit WHERE id = NEW.id)
            BEGIN SELECT RAISE(ABORT, '{NO_REPLACE}'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS approval_audit_no_replace")
