"""The ``status`` operation: everything about one pipeline, for the CLI, MCP and HTTP alike."""

from __future__ import annotations

from typing import Any

from agentic_pipeline.health import monitor
from agentic_pipeline.pipeline import states


def describe(app, pipeline_id: int) -> dict[str, Any]:
    """State, time in state, stage history with durations, last error, lease holder, next retry."""
    now = app.clock.now()
    p = app.pipelines.get(pipeline_id)
    history = app.pipelines.history(pipeline_id)
    row = p.row
    info: dict[str, Any] = {
        "id": p.id,
        "source_path": p.source_path,
        "title": row.get("title"),
        "state": p.state.value,
        "seconds_in_state": round(p.seconds_in_state(now), 3),
        "priority": p.priority,
        "base_priority": p.base_priority,
        "book_type": row.get("book_type"),
        "confidence": row.get("confidence"),
        "content_hash": row.get("content_hash"),
        "created_at": p.created_at,
        "retry_count": row.get("retry_count"),
        "auto_recovery_count": row.get("auto_recovery_count"),
        "error": row.get("error"),
        "error_stage": row.get("error_stage"),
        "next_attempt_at": row.get("next_attempt_at") if p.state is states.State.NEEDS_RETRY else None,
        "lease_owner": row.get("lease_owner"),
        "lease_expires_at": row.get("lease_expires_at"),
        "library_book_id": row.get("book_id"),  # internal: commands take the pipeline id
        "duplicate_of": row.get("duplicate_of"),
        "validation": row.get("validation_result"),
        "history": [
            {"from": h["from_state"], "to": h["to_state"], "at": h["at"],
             "seconds_in_previous": h["duration_seconds"], "actor": h["actor"], "detail": h["detail"]}
            for h in history
        ],
        "stuck": monitor.stuck_entry(app, p.row, now),
    }
    return info
