"""Maintenance tasks, each ``fn(app) -> dict`` (a summary), run by one worker at a time."""

from __future__ import annotations

from typing import Any

from agentic_pipeline.audit import actions
from agentic_pipeline.health import monitor, notify, recovery, stats_refresh


def refresh_health(app) -> dict[str, Any]:
    """Recompute the health report, store it in ``health_metrics`` and open or close alert episodes
    (queueing their notifications), every ``health_interval`` s."""
    report = monitor.get_health(app, fresh=True)
    events = notify.record(app, report["alerts"], app.clock.now())
    return {"status": report["status"], "stuck": len(report["stuck"]), "alerts": len(report["alerts"]),
            "generated_at": report["generated_at"], "alerts_started": events["started"],
            "alerts_cleared": events["cleared"]}


def deliver_alerts(app) -> dict[str, Any]:
    """Send due alert notifications in a background thread of this worker (every 5 s; never waits for a send)."""
    return {"started": notify.start_drain(app)}


def recover_stuck(app) -> dict[str, Any]:
    """Apply the recovery rules to stuck and orphaned books (every 60 s)."""
    result = recovery.recover_stuck(app, actor=actions.SYSTEM_HEALTH)
    return {"stuck": result["stuck"], "recovered": [r["id"] for r in result["recovered"]],
            "alerted": [a["id"] for a in result["alerted"]], "conflicts": [c["id"] for c in result["conflicts"]]}


def refresh_stats(app) -> dict[str, Any]:
    """Fold new ``pipeline_state_history`` rows into ``state_duration_stats`` (every 60 s)."""
    return stats_refresh.refresh(app)


def checkpoint_wal(app) -> dict[str, Any]:
    """SQLite: a PASSIVE WAL checkpoint, so no request pays for one a batch deferred (every 30 s)."""
    result = app.db.checkpoint()
    return {"skipped": "PostgreSQL checkpoints by itself"} if result is None else result
