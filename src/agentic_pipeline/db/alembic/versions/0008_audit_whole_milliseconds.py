"""Audit: an entry's time is stored as the whole millisecond its hash covers, and the database says so; TRUNCATE gets its own refusal.

The hash has always covered ``performed_at`` as integer milliseconds, and every entry has always
been appended at a whole millisecond (``chain.truncate_to_millis``); but ``verify`` rounded the
stored value to the millisecond, so an out-of-band edit smaller than one (``performed_at +
0.0004``) verified. ``verify`` now takes the time only when the stored value is exactly a whole
millisecond (``db.audit_scan``), and this migration makes the database refuse to store any other:
a CHECK constraint on PostgreSQL (``NOT VALID``: rows already stored are not rewritten or judged
here; ``verify`` judges them), a BEFORE INSERT trigger on SQLite (which cannot add a constraint
to an existing table without rebuilding it). Existing chains need no change: every entry written
by any earlier version is a whole millisecond, so each one verifies exactly as before; an entry
that is not was edited, and ``verify`` names it.

Also (PostgreSQL): a refused ``TRUNCATE`` said "DELETE is only allowed through audit retention",
about a statement nobody issued; the guard function now gives TRUNCATE its own message. SQLite has
no TRUNCATE (its ``DELETE`` without ``WHERE`` fires the per-row DELETE guard).

Revision ID: 0008
Revises: 0009
Create Date: 2026-12-03
"""
from alembic import op

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None

NAME = "approval_audit_whole_millisecond"
MESSAGE = "approval_audit stores performed_at as the whole millisecond its hash covers"
APPEND_ONLY_UPDATE = "approval_audit is append-only: UPDATE is not allowed"
APPEND_ONLY_DELETE = "approval_audit is append-only: DELETE is only allowed through audit retention"
NO_TRUNCATE = ("approval_audit is append-only: TRUNCATE is not allowed (audit retention removes old entries "
               "one by one, leaving a RETENTION_PRUNED record)")


def _guard(truncate_message: str) -> str:
    return f"""CREATE OR REPLACE FUNCTION approval_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            RAISE EXCEPTION '{APPEND_ONLY_UPDATE}';
        ELSIF TG_OP = 'TRUNCATE' THEN
            RAISE EXCEPTION '{truncate_message}';
        ELSIF NOT EXISTS (SELECT 1 FROM audit_prune_grants WHERE audit_id = OLD.id) THEN
            RAISE EXCEPTION '{APPEND_ONLY_DELETE}';
        END IF;
        RETURN OLD;
    END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"""CREATE TRIGGER {NAME} BEFORE INSERT ON approval_audit
            WHEN NEW.performed_at <> round(NEW.performed_at * 1000) / 1000.0
            BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""")
    else:  # in UTC the expressions are immutable, as a CHECK needs
        op.execute(f"""ALTER TABLE approval_audit ADD CONSTRAINT {NAME}
            CHECK ((performed_at AT TIME ZONE 'UTC') = date_trunc('milliseconds', performed_at AT TIME ZONE 'UTC'))
            NOT VALID""")
        op.execute(_guard(NO_TRUNCATE))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {NAME}")
    else:
        op.execute(f"ALTER TABLE approval_audit DROP CONSTRAINT IF EXISTS {NAME}")
        op.execute(_guard(APPEND_ONLY_DELETE))
