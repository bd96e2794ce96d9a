"""The schema, in SQLAlchemy Core. Alembic migrations build exactly this (a test checks for drift).

Table names follow the design so users can query them directly. States are stored as their
lowercase names; times are ``UTCDateTime`` (timestamptz on PostgreSQL, epoch REAL on SQLite).
"""

from __future__ import annotations

import sqlalchemy as sa

from agentic_pipeline.db.types import JSONDoc, UTCDateTime
from agentic_pipeline.pipeline.states import State

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_STATES = ", ".join(f"'{s.value}'" for s in State)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY is the rowid on SQLite

processing_pipelines = sa.Table(
    "processing_pipelines",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("source_path", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="5"),
    sa.Column("base_priority", sa.Integer, nullable=False, server_default="5"),
    sa.Column("aging_level", sa.Integer, nullable=False, server_default="0"),
    sa.Column("book_type", sa.String(32)),
    sa.Column("confidence", sa.Float),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("state_entered_at", UTCDateTime, nullable=False),
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("retry_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer),
    sa.Column("retry_stage", sa.String(32)),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("auto_recovery_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_heartbeat", UTCDateTime),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("error", sa.Text),
    sa.Column("error_stage", sa.String(32)),
    sa.Column("duplicate_of", sa.BigInteger, sa.ForeignKey("processing_pipelines.id", ondelete="SET NULL")),
    sa.Column("book_id", sa.BigInteger),
    sa.Column("title", sa.Text),
    sa.Column("book_profile", JSONDoc),
    sa.Column("strategy", JSONDoc),
    sa.Column("validation_result", JSONDoc),
    sa.Column("processing_result", JSONDoc),
    sa.Column("approved_by", sa.String(128)),
    sa.Column("approved_at", UTCDateTime),
    # i15 (0010): this book's own OCR mode (auto / force / off), set by `reprocess --ocr`; NULL = the setting
    sa.Column("ocr_mode", sa.String(8)),
    sa.CheckConstraint("priority BETWEEN 1 AND 10", name="priority_range"),
    sa.CheckConstraint("base_priority BETWEEN 1 AND 10", name="base_priority_range"),
    sa.CheckConstraint(f"state IN ({_STATES})", name="state_valid"),
    sa.CheckConstraint("confidence IS NULL OR (confidence >= 0 AND confidence <= 1)", name="confidence_range"),
)
# No (state, priority, created_at, id) nor lease_expires_at index (dropped by migration 0005): every
# index holding a column an UPDATE sets is rewritten per row (PostgreSQL: every index, unless the update
# is HOT), and no query needed them: claims walk ix_pipelines_queue, the per-state lookups
# ix_pipelines_state_entered.
# the work queue: only rows a worker could claim, in claim order
_CLAIMABLE_STATES = ("detected", "approved", "needs_retry", "hashing", "classifying",
                     "selecting_strategy", "processing", "validating", "embedding")
CLAIMABLE_SQL = "state IN (" + ", ".join(f"'{s}'" for s in _CLAIMABLE_STATES) + ")"
sa.Index("ix_pipelines_queue", processing_pipelines.c.priority, processing_pipelines.c.created_at,
         processing_pipelines.c.id, sqlite_where=sa.text(CLAIMABLE_SQL), postgresql_where=sa.text(CLAIMABLE_SQL))
sa.Index("ix_pipelines_hash", processing_pipelines.c.content_hash)
sa.Index("ix_pipelines_type_conf", processing_pipelines.c.book_type, processing_pipelines.c.confidence)
sa.Index("ix_pipelines_created", processing_pipelines.c.created_at)
# health: oldest waiting book per state and stuck candidates in one index seek (migration 0002); per-state
# counts and the queue by priority read it alone (priority added by migration 0005)
sa.Index("ix_pipelines_state_entered", processing_pipelines.c.state, processing_pipelines.c.state_entered_at,
         processing_pipelines.c.priority)

pipeline_state_history = sa.Table(
    "pipeline_state_history",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("pipeline_id", sa.BigInteger,
              sa.ForeignKey("processing_pipelines.id", ondelete="CASCADE"), nullable=False),
    sa.Column("from_state", sa.String(32)),
    sa.Column("to_state", sa.String(32), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("detail", JSONDoc),
)
sa.Index("ix_history_pipeline", pipeline_state_history.c.pipeline_id, pipeline_state_history.c.id)
sa.Index("ix_history_to_at", pipeline_state_history.c.to_state, pipeline_state_history.c.at)

approval_audit = sa.Table(
    "approval_audit",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("book_id", sa.BigInteger),
    sa.Column("pipeline_id", sa.BigInteger),  # no foreign key: the trail outlives its pipelines
    sa.Column("action", sa.String(48), nullable=False),
    sa.Column("actor", sa.String(160), nullable=False),
    sa.Column("reason", sa.Text),
    # JSON, not JSONB: PostgreSQL keeps the canonical text the hash covers verbatim (migration 0004)
    sa.Column("before_state", sa.JSON),
    sa.Column("after_state", sa.JSON),
    sa.Column("filter_used", sa.JSON),
    sa.Column("confidence_at_decision", sa.Float),
    sa.Column("performed_at", UTCDateTime, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)
sa.Index("ix_audit_performed", approval_audit.c.performed_at)
sa.Index("ix_audit_actor", approval_audit.c.actor, approval_audit.c.performed_at)
sa.Index("ix_audit_action", approval_audit.c.action, approval_audit.c.performed_at)
sa.Index("ix_audit_book", approval_audit.c.book_id, approval_audit.c.performed_at)
sa.Index("ix_audit_pipeline", approval_audit.c.pipeline_id, approval_audit.c.performed_at)

#: ids that the retention path is allowed to delete in its own transaction (see audit/retention.py)
audit_prune_grants = sa.Table(
    "audit_prune_grants",
    metadata,
    sa.Column("audit_id", sa.BigInteger, primary_key=True, autoincrement=False),
)

#: the audit chain's head (one row, id 1) on PostgreSQL: locking it serialises appends and hands each
#: append the previous id and hash in the same statement (see db/audit_store.py); unused on SQLite
audit_chain_head = sa.Table(
    "audit_chain_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

state_duration_stats = sa.Table(
    "state_duration_stats",
    metadata,
    sa.Column("state", sa.String(32), primary_key=True),
    sa.Column("sample_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("median_seconds", sa.Float),
    sa.Column("p95_seconds", sa.Float),
    sa.Column("max_seconds", sa.Float),
    sa.Column("last_history_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("sketch", JSONDoc),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

health_metrics = sa.Table(
    "health_metrics",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("report", JSONDoc, nullable=False),
    sa.Column("generated_at", UTCDateTime, nullable=False),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("stopped_at", UTCDateTime),
    sa.Column("current_pipeline_id", sa.BigInteger),
    sa.Column("completed_count", sa.Integer, nullable=False, server_default="0"),
    #: writes refused because the book was no longer this worker's (its lease taken over, or moved by someone)
    sa.Column("stale_writes", sa.Integer, nullable=False, server_default="0"),
)

#: periodic maintenance tasks: who leads them and when each last ran
maintenance_tasks = sa.Table(
    "maintenance_tasks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128)),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("last_run_at", UTCDateTime),
    sa.Column("last_result", JSONDoc),
)

autonomy_config = sa.Table(
    "autonomy_config",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("mode", sa.String(16), nullable=False, server_default="supervised"),
    sa.Column("thresholds", JSONDoc),
    sa.Column("daily_cap", sa.Integer, nullable=False, server_default="50"),
    sa.Column("escape_hatch_at", UTCDateTime),
    sa.Column("escape_hatch_reason", sa.Text),
    sa.Column("updated_at", UTCDateTime),
    sa.Column("updated_by", sa.String(160)),
    sa.CheckConstraint("mode IN ('supervised', 'partial', 'confident')", name="mode_valid"),
)

autonomy_daily = sa.Table(
    "autonomy_daily",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),  # YYYY-MM-DD in UTC
    sa.Column("auto_approvals", sa.Integer, nullable=False, server_default="0"),
)

books = sa.Table(
    "books",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("pipeline_id", sa.BigInteger,
              sa.ForeignKey("processing_pipelines.id", ondelete="SET NULL"), unique=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("title", sa.Text),
    sa.Column("authors", JSONDoc),
    sa.Column("language", sa.String(16)),
    sa.Column("book_type", sa.String(32)),
    sa.Column("source_path", sa.Text, nullable=False),
    sa.Column("word_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("chapter_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("metadata", JSONDoc),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # i15 (0010): pages read by OCR and their mean word confidence (0-100); NULL when none were
    sa.Column("ocr_pages", sa.Integer),
    sa.Column("ocr_confidence", sa.Float),
    # SQLite reuses the largest rowid once its row is gone (a rolled-back book): AUTOINCREMENT never does, so
    # a book id in the audit trail or a search result always means one book (migration 0006)
    sqlite_autoincrement=True,
)

chapters = sa.Table(
    "chapters",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("book_id", sa.BigInteger, sa.ForeignKey("books.id", ondelete="CASCADE"), nullable=False),
    sa.Column("chapter_index", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("word_count", sa.Integer, nullable=False),
    #: the chapter's place in the book's hierarchy, "Book One › Chapter VIII" (None: its title alone; 0009)
    sa.Column("path", sa.Text),
    sa.UniqueConstraint("book_id", "chapter_index"),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("book_id", sa.BigInteger, sa.ForeignKey("books.id", ondelete="CASCADE"), nullable=False),
    sa.Column("chapter_id", sa.BigInteger, sa.ForeignKey("chapters.id", ondelete="CASCADE"), nullable=False),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("token_count", sa.Integer, nullable=False),
    sa.Column("embedding", sa.LargeBinary),
    sa.Column("embedding_model", sa.String(128)),
    sa.Column("embedding_dim", sa.Integer),
    #: the CJK runs of ``text`` as character bigrams for full text (db.fulltext.search_grams; 0009)
    sa.Column("search_grams", sa.Text),
    #: the PDF pages the chunk spans (None for other formats; 0009)
    sa.Column("page_start", sa.Integer),
    sa.Column("page_end", sa.Integer),
    sa.UniqueConstraint("book_id", "ordinal"),
)
sa.Index("ix_chunks_chapter", chunks.c.chapter_id)

# --- i18: human labels (migration 0012) ---------------------------------------------------------------
#: a person's correction of a book's type (``edit --book-type``): kept for the classifier to learn from.
#: One row per correction (the newest per pipeline is the current label); the content hash ties it to the
#: book's bytes, so the label survives a rollback and re-queue of the same file.
book_labels = sa.Table(
    "book_labels",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("pipeline_id", sa.BigInteger,
              sa.ForeignKey("processing_pipelines.id", ondelete="SET NULL")),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("book_type", sa.String(32), nullable=False),
    sa.Column("previous_type", sa.String(32)),
    sa.Column("previous_confidence", sa.Float),
    sa.Column("actor", sa.String(160), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("labelled_at", UTCDateTime, nullable=False),
)
sa.Index("ix_book_labels_pipeline", book_labels.c.pipeline_id, book_labels.c.id)
sa.Index("ix_book_labels_hash", book_labels.c.content_hash)

#: books whose vectors were written ("add") or removed ("remove"), in commit order: what the vector index
#: (a derived cache of ``chunks.embedding``) reads to catch up (0009)
vector_log = sa.Table(
    "vector_log",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("book_id", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sqlite_autoincrement=True,
)
# ------------------------------------------------------------------ alert delivery (issue 16, migration 0011)
#: one row per alert episode: from the first report an alert holds in to the first it no longer does. The
#: partial unique index allows one open episode per code, so two evaluators (a maintenance leader whose
#: lease ran out and its successor) cannot open the same episode twice: the loser's insert does nothing
alert_episodes = sa.Table(
    "alert_episodes",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("ids", JSONDoc),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    #: when its "started" notification was queued (None while it has held for less than alert_notify_after_seconds)
    sa.Column("notified_at", UTCDateTime),
    sa.Column("cleared_at", UTCDateTime),
)
sa.Index("ix_alert_episodes_open", alert_episodes.c.code, unique=True,
         sqlite_where=sa.text("cleared_at IS NULL"), postgresql_where=sa.text("cleared_at IS NULL"))
sa.Index("ix_alert_episodes_started", alert_episodes.c.started_at)

#: the notifications to send, written in the transaction that opens or closes an episode (an outbox):
#: one row per (episode, event, channel), drained by a thread of the maintenance leader
alert_outbox = sa.Table(
    "alert_outbox",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("episode_id", sa.BigInteger, sa.ForeignKey("alert_episodes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("payload", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("gave_up_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("episode_id", "event", "channel"),
    sa.CheckConstraint("event IN ('started', 'cleared')", name="event_valid"),
)
sa.Index("ix_alert_outbox_due", alert_outbox.c.next_attempt_at,
         sqlite_where=sa.text("delivered_at IS NULL AND gave_up_at IS NULL"),
         postgresql_where=sa.text("delivered_at IS NULL AND gave_up_at IS NULL"))
