"""Maintenance tasks, each ``fn(app) -> dict`` (a summary), run by one worker at a time."""

from __future__ import annotations

from typing import Any


def refresh_health(app) -> dict[str, Any]:
    """Recompute the health report and store it in ``health_metrics`` (every ``health_interval`` s)."""
    from agentic_pipeline.health import monitor

    return monitor.refresh(app)


def recover_stuck(app) -> dict[str, Any]:
    """Apply the recovery rules to stuck and orphaned books (every 60 s)."""
    from agentic_pipeline.audit import actions
    from agentic_pipeline.health import recovery

    result = recovery.recover_stuck(app, actor=actions.SYSTEM_HEALTH)
    return {"stuck": result["stuck"], "recovered": [r["id"] for r in result["recovered"]],
            "alerted": [a["id"] for a in result["alerted"]], "conflicts": [c["id"] for c in result["conflicts"]]}


def refresh_stats(app) -> dict[str, Any]:
    """Fold new ``pipeline_state_history`` rows into ``state_duration_stats`` (every 60 s)."""
    from agentic_pipeline.health import stats

    return stats.refresh(app)


def checkpoint_wal(app) -> dict[str, Any]:
    """SQLite: a PASSIVE WAL checkpoint, so no request pays for one a batch deferred (every 30 s)."""
    result = app.db.checkpoint()
    return {"skipped": "PostgreSQL checkpoints by itself"} if result is None else result
