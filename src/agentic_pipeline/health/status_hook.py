"""Adds "stuck" to ``agentic-pipeline status <id>``: minutes in state and the expectation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from agentic_pipeline.health import stuck_detector


def stuck_hook(app, pipeline, info: dict[str, Any], now: dt.datetime) -> None:
    """Set ``info["stuck"]`` when the pipeline is stuck (same rule as the health report)."""
    from agentic_pipeline.health import monitor

    limits = monitor.current_thresholds(app)
    book = stuck_detector.check(pipeline.row, limits, now)
    info["stuck"] = book.to_dict() if book is not None else None


def register() -> None:
    from agentic_pipeline.pipeline import status

    if stuck_hook not in status.STATUS_HOOKS:
        status.STATUS_HOOKS.append(stuck_hook)
