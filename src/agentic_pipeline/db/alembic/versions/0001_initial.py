"""Initial schema: pipelines, history, the append-only audit trail, stats, workers, library.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import agentic_pipeline.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_UPDATE = "approval_audit is append-only: UPDATE is not allowed"
APPEND_ONLY_DELETE = "approval_audit is append-only: DELETE is only allowed through audit retention"

SQLITE_DDL = [
    f"""CREATE TRIGGER approval_audit_no_update BEFORE UPDATE ON approval_audit
        BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_UPDATE}'); END""",
    f"""CREATE TRIGGER approval_audit_no_delete BEFORE DELETE ON approval_audit
        WHEN NOT EXISTS (SELECT 1 FROM audit_prune_grants WHERE audit_id = OLD.id)
        BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_DELETE}'); END""",
    """CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text, content='chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER chunks_fts_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER chunks_fts_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END""",
    """CREATE TRIGGER chunks_fts_au AFTER UPDATE OF text ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END""",
]

POSTGRES_DDL = [
    f"""CREATE FUNCTION approval_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            RAISE EXCEPTION '{APPEND_ONLY_UPDATE}';
        ELSIF TG_OP = 'TRUNCATE' THEN
            RAISE EXCEPTION '{APPEND_ONLY_DELETE}';
        ELSIF NOT EXISTS (SELECT 1 FROM audit_prune_grants WHERE audit_id = OLD.id) THEN
            RAISE EXCEPTION '{APPEND_ONLY_DELETE}';
        END IF;
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER approval_audit_append_only BEFORE UPDATE OR DELETE ON approval_audit
        FOR EACH ROW EXECUTE FUNCTION approval_audit_guard()""",
    """CREATE TRIGGER approval_audit_no_truncate BEFORE TRUNCATE ON approval_audit
        FOR EACH STATEMENT EXECUTE FUNCTION approval_audit_guard()""",
    "CREATE INDEX ix_chunks_fts ON chunks USING gin (to_tsvector('simple', text))",
]


def upgrade() -> None:
    op.create_table('approval_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('book_id', sa.BigInteger(), nullable=True),
    sa.Column('pipeline_id', sa.BigInteger(), nullable=True),
    sa.Column('action', sa.String(length=48), nullable=False),
    sa.Column('actor', sa.String(length=160), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('before_state', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('after_state', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('filter_used', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('confidence_at_decision', sa.Float(), nullable=True),
    sa.Column('performed_at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_audit'))
    )
    op.create_index('ix_audit_action', 'approval_audit', ['action', 'performed_at'], unique=False)
    op.create_index('ix_audit_actor', 'approval_audit', ['actor', 'performed_at'], unique=False)
    op.create_index('ix_audit_book', 'approval_audit', ['book_id', 'performed_at'], unique=False)
    op.create_index('ix_audit_performed', 'approval_audit', ['performed_at'], unique=False)
    op.create_index('ix_audit_pipeline', 'approval_audit', ['pipeline_id', 'performed_at'], unique=False)
    op.create_table('audit_prune_grants',
    sa.Column('audit_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('audit_id', name=op.f('pk_audit_prune_grants'))
    )
    op.create_table('autonomy_config',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('mode', sa.String(length=16), server_default='supervised', nullable=False),
    sa.Column('thresholds', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('daily_cap', sa.Integer(), server_default='50', nullable=False),
    sa.Column('escape_hatch_at', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.Column('escape_hatch_reason', sa.Text(), nullable=True),
    sa.Column('updated_at', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.Column('updated_by', sa.String(length=160), nullable=True),
    sa.CheckConstraint("mode IN ('supervised', 'partial', 'confident')", name=op.f('ck_autonomy_config_mode_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autonomy_config'))
    )
    op.create_table('autonomy_daily',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('auto_approvals', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_autonomy_daily'))
    )
    op.create_table('health_metrics',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('report', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('generated_at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_health_metrics'))
    )
    op.create_table('maintenance_tasks',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.Column('last_run_at', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.Column('last_result', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_maintenance_tasks'))
    )
    op.create_table('processing_pipelines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.Integer(), server_default='5', nullable=False),
    sa.Column('base_priority', sa.Integer(), server_default='5', nullable=False),
    sa.Column('aging_level', sa.Integer(), server_default='0', nullable=False),
    sa.Column('book_type', sa.String(length=32), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('created_at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.Column('state_entered_at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.Column('queued_at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.Column('completed_at', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.Column('retry_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=True),
    sa.Column('retry_stage', sa.String(length=32), nullable=True),
    sa.Column('next_attempt_at', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.Column('auto_recovery_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_heartbeat', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('error_stage', sa.String(length=32), nullable=True),
    sa.Column('duplicate_of', sa.BigInteger(), nullable=True),
    sa.Column('book_id', sa.BigInteger(), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('book_profile', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('strategy', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('validation_result', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('processing_result', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('approved_by', sa.String(length=128), nullable=True),
    sa.Column('approved_at', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.CheckConstraint("state IN ('detected', 'hashing', 'classifying', 'selecting_strategy', 'processing', 'validating', 'pending_approval', 'approved', 'embedding', 'complete', 'duplicate', 'needs_retry', 'rejected', 'failed', 'archived')", name=op.f('ck_processing_pipelines_state_valid')),
    sa.CheckConstraint('base_priority BETWEEN 1 AND 10', name=op.f('ck_processing_pipelines_base_priority_range')),
    sa.CheckConstraint('confidence IS NULL OR (confidence >= 0 AND confidence <= 1)', name=op.f('ck_processing_pipelines_confidence_range')),
    sa.CheckConstraint('priority BETWEEN 1 AND 10', name=op.f('ck_processing_pipelines_priority_range')),
    sa.ForeignKeyConstraint(['duplicate_of'], ['processing_pipelines.id'], name=op.f('fk_processing_pipelines_duplicate_of_processing_pipelines'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_processing_pipelines'))
    )
    op.create_index('ix_pipelines_claim', 'processing_pipelines', ['state', 'priority', 'created_at', 'id'], unique=False)
    op.create_index('ix_pipelines_created', 'processing_pipelines', ['created_at'], unique=False)
    claimable = ("state IN ('detected', 'approved', 'needs_retry', 'hashing', 'classifying', "
                 "'selecting_strategy', 'processing', 'validating', 'embedding')")
    op.create_index('ix_pipelines_queue', 'processing_pipelines', ['priority', 'created_at', 'id'], unique=False,
                    sqlite_where=sa.text(claimable), postgresql_where=sa.text(claimable))
    op.create_index('ix_pipelines_hash', 'processing_pipelines', ['content_hash'], unique=False)
    op.create_index('ix_pipelines_lease', 'processing_pipelines', ['lease_expires_at'], unique=False)
    op.create_index('ix_pipelines_type_conf', 'processing_pipelines', ['book_type', 'confidence'], unique=False)
    op.create_table('state_duration_stats',
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('sample_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('median_seconds', sa.Float(), nullable=True),
    sa.Column('p95_seconds', sa.Float(), nullable=True),
    sa.Column('max_seconds', sa.Float(), nullable=True),
    sa.Column('last_history_id', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('sketch', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('updated_at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('state', name=op.f('pk_state_duration_stats'))
    )
    op.create_table('workers',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.Column('last_seen', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.Column('stopped_at', agentic_pipeline.db.types.UTCDateTime(), nullable=True),
    sa.Column('current_pipeline_id', sa.BigInteger(), nullable=True),
    sa.Column('completed_count', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers'))
    )
    op.create_table('books',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('pipeline_id', sa.BigInteger(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('authors', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('book_type', sa.String(length=32), nullable=True),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('word_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('chapter_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pipeline_id'], ['processing_pipelines.id'], name=op.f('fk_books_pipeline_id_processing_pipelines'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_books')),
    sa.UniqueConstraint('pipeline_id', name=op.f('uq_books_pipeline_id'))
    )
    op.create_table('pipeline_state_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('pipeline_id', sa.BigInteger(), nullable=False),
    sa.Column('from_state', sa.String(length=32), nullable=True),
    sa.Column('to_state', sa.String(length=32), nullable=False),
    sa.Column('at', agentic_pipeline.db.types.UTCDateTime(), nullable=False),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['pipeline_id'], ['processing_pipelines.id'], name=op.f('fk_pipeline_state_history_pipeline_id_processing_pipelines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_state_history'))
    )
    op.create_index('ix_history_pipeline', 'pipeline_state_history', ['pipeline_id', 'id'], unique=False)
    op.create_index('ix_history_to_at', 'pipeline_state_history', ['to_state', 'at'], unique=False)
    op.create_table('chapters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('book_id', sa.BigInteger(), nullable=False),
    sa.Column('chapter_index', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('word_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['books.id'], name=op.f('fk_chapters_book_id_books'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chapters')),
    sa.UniqueConstraint('book_id', 'chapter_index', name=op.f('uq_chapters_book_id_chapter_index'))
    )
    op.create_table('chunks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('book_id', sa.BigInteger(), nullable=False),
    sa.Column('chapter_id', sa.BigInteger(), nullable=False),
    sa.Column('ordinal', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('token_count', sa.Integer(), nullable=False),
    sa.Column('embedding', sa.LargeBinary(), nullable=True),
    sa.Column('embedding_model', sa.String(length=128), nullable=True),
    sa.Column('embedding_dim', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['book_id'], ['books.id'], name=op.f('fk_chunks_book_id_books'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['chapter_id'], ['chapters.id'], name=op.f('fk_chunks_chapter_id_chapters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chunks')),
    sa.UniqueConstraint('book_id', 'ordinal', name=op.f('uq_chunks_book_id_ordinal'))
    )
    op.create_index('ix_chunks_chapter', 'chunks', ['chapter_id'], unique=False)

    ddl = POSTGRES_DDL if op.get_bind().dialect.name == "postgresql" else SQLITE_DDL
    for statement in ddl:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("downgrading below the first revision would drop every table")
