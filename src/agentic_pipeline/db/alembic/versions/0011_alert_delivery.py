"""Alert delivery: alert episodes (one open per code) and the outbox of notifications to send; and
``workers.stale_writes``, the writes refused because the book was no longer the worker's (many hosts).

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

import agentic_pipeline.db.types
from agentic_pipeline.db.types import JSONDoc

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = agentic_pipeline.db.types.UTCDateTime
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = "cleared_at IS NULL"
DUE = "delivered_at IS NULL AND gave_up_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "alert_episodes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("ids", JSONDoc, nullable=True),
        sa.Column("started_at", TS(), nullable=False),
        sa.Column("last_seen_at", TS(), nullable=False),
        sa.Column("notified_at", TS(), nullable=True),
        sa.Column("cleared_at", TS(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_episodes")),
    )
    op.create_index("ix_alert_episodes_open", "alert_episodes", ["code"], unique=True,
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
    op.create_index("ix_alert_episodes_started", "alert_episodes", ["started_at"], unique=False)
    op.create_table(
        "alert_outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("episode_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("payload", JSONDoc, nullable=False),
        sa.Column("created_at", TS(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS(), nullable=False),
        sa.Column("delivered_at", TS(), nullable=True),
        sa.Column("gave_up_at", TS(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("event IN ('started', 'cleared')", name=op.f("ck_alert_outbox_event_valid")),
        sa.ForeignKeyConstraint(["episode_id"], ["alert_episodes.id"], ondelete="CASCADE",
                                name=op.f("fk_alert_outbox_episode_id_alert_episodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_outbox")),
        sa.UniqueConstraint("episode_id", "event", "channel", name=op.f("uq_alert_outbox_episode_id_event_channel")),
    )
    op.create_index("ix_alert_outbox_due", "alert_outbox", ["next_attempt_at"], unique=False,
                    sqlite_where=sa.text(DUE), postgresql_where=sa.text(DUE))
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("stale_writes", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("stale_writes")
    op.drop_index("ix_alert_outbox_due", table_name="alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_index("ix_alert_episodes_started", table_name="alert_episodes")
    op.drop_index("ix_alert_episodes_open", table_name="alert_episodes")
    op.drop_table("alert_episodes")
