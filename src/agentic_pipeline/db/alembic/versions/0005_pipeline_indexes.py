"""Pipelines: fewer indexes to rewrite per update (batch operations, aging, claims).

Every index holding a column an UPDATE sets is rewritten for each updated row (on PostgreSQL every
index, unless the update is HOT), and a batch of 10,000 scattered books pays it 10,000 times.

- ``ix_pipelines_claim`` (state, priority, created_at, id) goes: claims walk the partial
  ``ix_pipelines_queue`` and per-state lookups use ``ix_pipelines_state_entered``. Its last reader,
  the queue by priority of the health report, reads the priority from that index instead, which
  gains the column (state, state_entered_at, priority).
- ``ix_pipelines_lease`` (lease_expires_at) goes: no query looks rows up by lease expiry (the
  lease is checked on rows found by id or by the queue index), yet every claim, heartbeat and
  release rewrote it.

Measured on 1,000,000 pipelines (bench/bench_batch.py, bench/bench_health.py): batch approve writes
21,000 pages instead of 26,500; health figures unchanged (queue by priority 1.5 -> 5 ms).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLE = "processing_pipelines"


def upgrade() -> None:
    op.drop_index("ix_pipelines_claim", table_name=TABLE)
    op.drop_index("ix_pipelines_lease", table_name=TABLE)
    op.drop_index("ix_pipelines_state_entered", table_name=TABLE)
    op.create_index("ix_pipelines_state_entered", TABLE, ["state", "state_entered_at", "priority"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pipelines_state_entered", table_name=TABLE)
    op.create_index("ix_pipelines_state_entered", TABLE, ["state", "state_entered_at"], unique=False)
    op.create_index("ix_pipelines_lease", TABLE, ["lease_expires_at"], unique=False)
    op.create_index("ix_pipelines_claim", TABLE, ["state", "priority", "created_at", "id"], unique=False)
