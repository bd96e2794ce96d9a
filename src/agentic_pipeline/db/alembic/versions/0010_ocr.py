"""OCR: a book's own OCR mode, and what the library book records about its OCR.

``processing_pipelines.ocr_mode`` (auto / force / off, NULL = the ``ocr_mode`` setting) is set by
``reprocess --ocr``; ``books.ocr_pages`` and ``books.ocr_confidence`` say how many pages were read by
OCR and their mean word confidence (NULL when no page was).

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processing_pipelines") as batch:
        batch.add_column(sa.Column("ocr_mode", sa.String(8)))
    with op.batch_alter_table("books") as batch:
        batch.add_column(sa.Column("ocr_pages", sa.Integer))
        batch.add_column(sa.Column("ocr_confidence", sa.Float))


def downgrade() -> None:
    # a SQLite rebuild must keep AUTOINCREMENT (0006)
    with op.batch_alter_table("books", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("ocr_confidence")
        batch.drop_column("ocr_pages")
    with op.batch_alter_table("processing_pipelines") as batch:
        batch.drop_column("ocr_mode")
