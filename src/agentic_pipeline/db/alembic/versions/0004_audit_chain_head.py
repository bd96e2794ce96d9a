"""Audit: a one-row chain head for single-round-trip appends; JSON (not JSONB) documents on PostgreSQL.

``audit_chain_head`` holds the newest entry's id and hash. On PostgreSQL an append locks and
advances that row in the same statement that inserts the entry (``db/audit_store.py``), instead
of an advisory lock, a head read and an insert (three round trips). SQLite serialises writers
with ``BEGIN IMMEDIATE`` and reads the head from the primary key, so it leaves the table empty.

The three JSON columns of ``approval_audit`` become ``json`` on PostgreSQL: ``json`` keeps the
text it is given, so the canonical text the hash covers comes back verbatim and ``audit verify``
hashes it without decoding (``jsonb`` re-formats it). Rows written before this migration keep
JSONB's formatting; ``verify`` re-encodes those (slower, equally strict). The ALTER rewrites the
table without firing its row triggers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON_COLUMNS = ("before_state", "after_state", "filter_used")
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    alters = ", ".join(f"ALTER COLUMN {c} TYPE json USING {c}::text::json" for c in JSON_COLUMNS)
    op.execute(f"ALTER TABLE approval_audit {alters}")
    op.execute(f"""INSERT INTO audit_chain_head (id, last_id, last_hash)
        SELECT 1, COALESCE(max(id), 0),
               COALESCE((SELECT entry_hash FROM approval_audit ORDER BY id DESC LIMIT 1), '{GENESIS}')
        FROM approval_audit""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        alters = ", ".join(f"ALTER COLUMN {c} TYPE jsonb USING {c}::jsonb" for c in JSON_COLUMNS)
        op.execute(f"ALTER TABLE approval_audit {alters}")
    op.drop_table("audit_chain_head")
