"""Book labels: a person's correction of a book's type, kept for the classifier to learn from.

``edit --book-type`` writes one row per correction (``books.operations.edit``); the newest row per
pipeline is the current human label. No rows are ever updated.

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

from agentic_pipeline.db.types import UTCDateTime

revision = "0012"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "book_labels",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("pipeline_id", sa.BigInteger,
                  sa.ForeignKey("processing_pipelines.id", ondelete="SET NULL",
                                name="fk_book_labels_pipeline_id_processing_pipelines")),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("book_type", sa.String(32), nullable=False),
        sa.Column("previous_type", sa.String(32)),
        sa.Column("previous_confidence", sa.Float),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("labelled_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_book_labels"),
    )
    op.create_index("ix_book_labels_pipeline", "book_labels", ["pipeline_id", "id"])
    op.create_index("ix_book_labels_hash", "book_labels", ["content_hash"])


def downgrade() -> None:
    op.drop_index("ix_book_labels_hash", table_name="book_labels")
    op.drop_index("ix_book_labels_pipeline", table_name="book_labels")
    op.drop_table("book_labels")
