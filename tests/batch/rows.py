"""Bulk-inserted pipeline rows for batch and queue tests (thousands in one statement, no per-row calls)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from agentic_pipeline.db.schema import approval_audit, pipeline_state_history, processing_pipelines as pp


def row(now: dt.datetime, i: int, **values: Any) -> dict[str, Any]:
    """A processing_pipelines row with sensible defaults (pending approval, a PDF, created ``now``)."""
    base = {
        "source_path": f"/books/book-{i:06d}.pdf", "content_hash": None, "state": "pending_approval",
        "priority": 5, "base_priority": 5, "aging_level": 0, "book_type": "textbook", "confidence": 0.5,
        "created_at": now, "updated_at": now, "state_entered_at": now, "queued_at": now, "title": f"Book {i}",
    }
    base.update(values)
    base["base_priority"] = values.get("base_priority", base["priority"])
    return base


def insert(app, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` with one executemany; returns their ids in order."""
    with app.db.write() as conn:
        start = conn.execute(sa.select(sa.func.coalesce(sa.func.max(pp.c.id), 0))).scalar_one()
        ids = list(range(start + 1, start + 1 + len(rows)))
        keys = set().union(*rows) if rows else set()
        conn.execute(pp.insert(), [{"id": i, **dict.fromkeys(keys), **r} for i, r in zip(ids, rows)])
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('processing_pipelines', 'id'), "
                                 "(SELECT max(id) FROM processing_pipelines))"))
    return ids


def dump(app) -> dict[str, list[tuple]]:
    """Every row of the pipelines, history and audit tables, in id order (for before/after comparisons)."""
    out = {}
    with app.db.read() as conn:
        for table in (pp, pipeline_state_history, approval_audit):
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]
    return out


def audit_rows(app, action: str | None = None) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        query = sa.select(approval_audit).order_by(approval_audit.c.id)
        if action is not None:
            query = query.where(approval_audit.c.action == action)
        return [dict(r._mapping) for r in conn.execute(query)]


def verify_chain(app) -> None:
    """Every audit row's hash covers it and links to the previous one."""
    from agentic_pipeline.audit import chain

    prev = chain.GENESIS
    for r in audit_rows(app):
        assert r["prev_hash"] == prev, r["id"]
        assert chain.compute_hash(r) == r["entry_hash"], r["id"]
        prev = r["entry_hash"]
