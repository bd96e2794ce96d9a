"""Search that scales: stored full text, CJK grams, page ranges, chapter paths, the vector change log.

* ``chunks.search_grams``: the chunk's CJK runs as character bigrams (``db.fulltext.search_grams``),
  written by the write path; filled here for existing chunks.
* SQLite: ``chunks_fts`` gains the ``search_grams`` column (rebuilt from ``chunks``).
* PostgreSQL: ``chunks.tsv``, a stored generated ``tsvector`` of the text and the grams, with a GIN
  index: the old expression index made every query recompute ``to_tsvector`` for ranking.
* ``chunks.page_start`` / ``page_end`` (PDF pages a chunk spans) and ``chapters.path`` (the
  chapter's place in the book's hierarchy, "Book One › Chapter VIII"): filled by extraction from now on.
* ``vector_log``: one row per book whose vectors were written or removed, in commit order; the
  vector index (a derived cache) catches up by reading the rows after the last one it saw.

Revision ID: 0009
Revises: 0012
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0012"
branch_labels = None
depends_on = None

_FTS_TRIGGERS = ("chunks_fts_ai", "chunks_fts_ad", "chunks_fts_au")
SQLITE_FTS = [
    """CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text, search_grams, content='chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER chunks_fts_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, text, search_grams) VALUES (new.id, new.text, new.search_grams); END""",
    """CREATE TRIGGER chunks_fts_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text, search_grams)
        VALUES ('delete', old.id, old.text, old.search_grams); END""",
    """CREATE TRIGGER chunks_fts_au AFTER UPDATE OF text, search_grams ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text, search_grams)
        VALUES ('delete', old.id, old.text, old.search_grams);
        INSERT INTO chunks_fts(rowid, text, search_grams) VALUES (new.id, new.text, new.search_grams); END""",
    "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')",
]
SQLITE_FTS_DOWN = [
    """CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text, content='chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER chunks_fts_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER chunks_fts_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END""",
    """CREATE TRIGGER chunks_fts_au AFTER UPDATE OF text ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END""",
    "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')",
]
PG_TSV = [
    "DROP INDEX IF EXISTS ix_chunks_fts",
    """ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS
        (to_tsvector('simple'::regconfig, text) || to_tsvector('simple'::regconfig, coalesce(search_grams, ''))) STORED""",
    "CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)",
]


def _fill_grams(bind) -> None:
    from agentic_pipeline.db.fulltext import search_grams

    sql = "SELECT id, text FROM chunks"
    if bind.dialect.name == "postgresql":
        sql += " WHERE text ~ '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]'"
    updates = []
    for cid, text in bind.exec_driver_sql(sql).fetchall():
        grams = search_grams(text)
        if grams:
            updates.append({"cid": cid, "g": grams})
    if updates:
        bind.execute(sa.text("UPDATE chunks SET search_grams = :g WHERE id = :cid"), updates)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("search_grams", sa.Text(), nullable=True))
        batch.add_column(sa.Column("page_start", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("page_end", sa.Integer(), nullable=True))
    with op.batch_alter_table("chapters") as batch:
        batch.add_column(sa.Column("path", sa.Text(), nullable=True))
    op.create_table(
        "vector_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("book_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vector_log")),
        sqlite_autoincrement=True,
    )
    if bind.dialect.name == "sqlite":
        for trigger in _FTS_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS chunks_fts")
        _fill_grams(bind)
        for stmt in SQLITE_FTS:
            op.execute(stmt)
    else:
        _fill_grams(bind)
        for stmt in PG_TSV:
            op.execute(stmt)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in _FTS_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS chunks_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_chunks_tsv")
        op.execute("ALTER TABLE chunks DROP COLUMN tsv")
        op.execute("CREATE INDEX ix_chunks_fts ON chunks USING gin (to_tsvector('simple', text))")
    op.drop_table("vector_log")
    with op.batch_alter_table("chapters") as batch:
        batch.drop_column("path")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("page_end")
        batch.drop_column("page_start")
        batch.drop_column("search_grams")
    if bind.dialect.name == "sqlite":
        for stmt in SQLITE_FTS_DOWN:
            op.execute(stmt)
