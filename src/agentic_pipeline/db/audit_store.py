"""SQL for the audit trail: appending entries inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from agentic_pipeline.audit import chain
from agentic_pipeline.db.schema import approval_audit

#: PostgreSQL advisory lock key serialising appends, so the chain has one order
AUDIT_LOCK_KEY = 7261002


def append(conn: sa.Connection, entry: chain.AuditEntry, now: dt.datetime) -> dict[str, Any]:
    """Append ``entry`` in ``conn``'s transaction, chained to the newest entry; returns the row."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(AUDIT_LOCK_KEY)))
    last = conn.execute(
        sa.select(approval_audit.c.id, approval_audit.c.entry_hash).order_by(approval_audit.c.id.desc()).limit(1)
    ).first()
    row: dict[str, Any] = {
        "id": (last.id + 1) if last else 1,
        "book_id": entry.book_id,
        "pipeline_id": entry.pipeline_id,
        "action": str(entry.action),
        "actor": entry.actor,
        "reason": entry.reason,
        "before_state": entry.before_state,
        "after_state": entry.after_state,
        "filter_used": entry.filter_used,
        "confidence_at_decision": entry.confidence_at_decision,
        "performed_at": chain.truncate_to_millis(now),
        "prev_hash": last.entry_hash if last else chain.GENESIS,
    }
    row["entry_hash"] = chain.compute_hash(row)
    conn.execute(approval_audit.insert().values(**row))
    return row
