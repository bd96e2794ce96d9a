"""Refreshing and loading the state-duration sketches (``health.stats`` math, ``db.health_store`` SQL).

A refresh reads only the history rows after the watermark and folds them into the sketches, in
one write transaction. The watermark stays behind history rows that may not all be committed yet
(``health_store.watermark_lag``: a few seconds on PostgreSQL, whose ids are not given in commit
order; none on SQLite, whose writers take turns).
"""

from __future__ import annotations

from typing import Any

from agentic_pipeline.db import health_store
from agentic_pipeline.health.stats import GROWTH, MIN_SECONDS, Sketch, StateStats, apply_groups, summarize
from agentic_pipeline.pipeline import states


def _rows(sketches: dict[str, Sketch]) -> dict[str, dict[str, Any]]:
    """What ``health_store.save_stats`` writes per state: the summary and the sketch document."""
    out = {}
    for state, sketch in sketches.items():
        s = summarize(state, sketch)
        out[state] = dict(sample_count=s.sample_count, median_seconds=s.median_seconds, p95_seconds=s.p95_seconds,
                          max_seconds=s.max_seconds, sketch=sketch.to_json())
    return out


def _groups(conn, after_id: int, upto_id: int) -> list[tuple]:
    return health_store.history_groups(conn, after_id, upto_id, growth=GROWTH, min_seconds=MIN_SECONDS)


def refresh(app) -> dict[str, Any]:
    """Fold the history rows written since the last refresh into ``state_duration_stats``."""
    now = app.clock.now()
    with app.db.write() as conn:
        lag = health_store.watermark_lag(conn)
        rows = health_store.load_stats(conn, lock=True)
        if not rows:
            return _full_build(conn, now, lag)
        watermark = min(r["last_history_id"] for r in rows.values())
        upto = health_store.history_upto(conn, watermark, now, lag)
        sketches = {s: Sketch.from_json(r["sketch"]) for s, r in rows.items()}
        groups = _groups(conn, watermark, upto) if upto > watermark else []
        apply_groups(sketches, groups)
        health_store.save_stats(conn, _rows(sketches), upto, now)
    return {"mode": "incremental", "from_history_id": watermark, "to_history_id": upto,
            "groups": len(groups), "states": len(sketches)}


def _full_build(conn, now, lag: float) -> dict[str, Any]:
    """First refresh: counts from the pipelines table, durations from the whole history (once)."""
    counts, upto = health_store.counts_and_watermark(conn, now, lag)
    sketches = {s.value: Sketch() for s in states.State}
    apply_groups(sketches, _groups(conn, 0, upto))
    for state, sketch in sketches.items():
        sketch.count = counts.get(state, 0)
    health_store.save_stats(conn, _rows(sketches), upto, now)
    return {"mode": "full", "from_history_id": 0, "to_history_id": upto, "states": len(sketches)}


def load(app, conn=None) -> tuple[dict[str, StateStats], dict[str, Sketch], int | None]:
    """Per-state summaries, sketches and the watermark (None before the first refresh)."""
    if conn is None:
        with app.db.read() as c:
            return load(app, c)
    rows = health_store.load_stats(conn)
    if not rows:
        return {}, {}, None
    sketches = {s: Sketch.from_json(r["sketch"]) for s, r in rows.items()}
    summaries = {s: StateStats(s, r["sample_count"], r["median_seconds"], r["p95_seconds"], r["max_seconds"])
                 for s, r in rows.items()}
    return summaries, sketches, min(r["last_history_id"] for r in rows.values())
