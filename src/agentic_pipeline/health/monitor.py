"""The health report: computed in one place (``build_report``, pure), served everywhere (``get_health``).

``get_health`` answers from ``health_metrics`` while the stored report is younger than
``Settings.health_stale_seconds`` (the maintenance worker refreshes it every ``health_interval``
seconds), and recomputes it otherwise or when asked for a fresh one; ``source`` in the answer
says which ("cache" or "fresh"), ``age_seconds`` how old it is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from typing import Any, Mapping

from agentic_pipeline.health import alerts as alert_rules
from agentic_pipeline.db import health_store as hs
from agentic_pipeline.health import stats, stats_refresh, stuck_detector
from agentic_pipeline.pipeline import states

S = states.State
SMALL_STATES = tuple(s.value for s in S if s not in states.TERMINAL)
TERMINAL_STATES = tuple(s.value for s in S if s in states.TERMINAL)
WAITING_STATES = (S.DETECTED.value, S.APPROVED.value, S.PENDING_APPROVAL.value, S.NEEDS_RETRY.value)
#: a stage finishing (any of these entered) counts as progress for the worker_idle alert
PROGRESS_STATES = tuple(sorted({s.value for s in states.NEXT_ON_SUCCESS.values()} | {S.DUPLICATE.value}))
#: where books end, each counted in the last 24 hours and in total in the report's "finished"
FINISHED_STATES = (S.COMPLETE.value, S.REJECTED.value, S.DUPLICATE.value, S.FAILED.value)


@dataclasses.dataclass
class Snapshot:
    """Everything the report is computed from, read in one transaction."""

    now: dt.datetime
    backend: str
    counts: dict[str, int]
    counts_source: str
    queue_by_priority: dict[int, int]
    oldest: dict[str, dt.datetime | None]
    candidates: list[dict[str, Any]]
    workers: list[dict[str, Any]]
    completed_24h: int
    last_progress_at: dt.datetime | None
    recent_completed: list[dict[str, Any]]
    finished_recent: int
    failed_recent: int
    stats: dict[str, stats.StateStats]
    disk_free_bytes: int | None
    #: NEEDS_RETRY books whose next attempt is due: work a worker would claim now
    due_retries: int = 0
    #: books that entered each finishing state in the last 24 hours (FINISHED_STATES)
    entered_24h: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class HealthReport:
    status: str
    generated_at: dt.datetime
    active: int
    stuck: list[stuck_detector.StuckBook]
    queued: int
    pending_approval: int
    approved: int
    completed_24h: int
    failed: int
    failed_permanently: int
    avg_processing_seconds: float | None
    estimated_queue_minutes: float | None
    queue_by_priority: dict[int, int]
    counts_by_state: dict[str, int]
    waiting: dict[str, dict[str, Any]]
    workers: list[dict[str, Any]]
    alerts: list[alert_rules.Alert]
    thresholds: dict[str, stuck_detector.Threshold]
    backend: str
    #: where books ended: {"complete" | "rejected" | "duplicate" | "failed": {"last_24h": n, "total": n}}
    finished: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    @property
    def orphaned(self) -> int:
        return sum(1 for s in self.stuck if s.orphaned)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: times as ISO 8601 strings, so the cached report reads back identically."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["generated_at"] = self.generated_at.isoformat()
        d["stuck"] = [s.to_dict() for s in self.stuck]
        d["orphaned"] = self.orphaned
        d["alerts"] = [a.to_dict() for a in self.alerts]
        d["thresholds"] = {k: dataclasses.asdict(t) for k, t in self.thresholds.items()}
        d["queue_by_priority"] = {str(k): v for k, v in self.queue_by_priority.items()}
        d["workers"] = [{**w, "last_seen": _iso(w.get("last_seen"))} for w in self.workers]
        return d


def build_report(snap: Snapshot, now: dt.datetime, settings) -> HealthReport:
    """The report from a snapshot (pure): stuck books, averages, estimates, alerts."""
    limits = stuck_detector.thresholds(snap.stats, settings)
    stuck = stuck_detector.detect(snap.candidates, limits, now)
    active = sum(1 for r in snap.candidates if S(r["state"]) in states.WORKING and _leased(r, now))
    queued = snap.counts.get(S.DETECTED.value, 0)
    # what a worker would claim now: new books, approved books to embed, retries that are due
    workable = queued + snap.counts.get(S.APPROVED.value, 0) + snap.due_retries
    to_process = queued + snap.due_retries  # whole books (approved ones only need embedding)
    work = [r["work_seconds"] for r in snap.recent_completed if r["work_seconds"] > 0]
    per_book = statistics.fmean(work) if work else sum(t.expected_seconds for t in limits.values())
    inputs = alert_rules.AlertInputs(stuck=stuck, queued=queued, workable=workable, live_workers=len(snap.workers),
                                     finished_recent=snap.finished_recent, failed_recent=snap.failed_recent,
                                     last_progress_at=snap.last_progress_at, disk_free_bytes=snap.disk_free_bytes)
    found = alert_rules.evaluate(inputs, now, settings)
    return HealthReport(
        status=alert_rules.overall(found), generated_at=now, active=active, stuck=stuck, queued=queued,
        pending_approval=snap.counts.get(S.PENDING_APPROVAL.value, 0), approved=snap.counts.get(S.APPROVED.value, 0),
        completed_24h=snap.completed_24h, failed=snap.counts.get(S.NEEDS_RETRY.value, 0),
        failed_permanently=snap.counts.get(S.FAILED.value, 0),
        avg_processing_seconds=_avg_processing(snap.recent_completed),
        estimated_queue_minutes=(None if not snap.workers else 0.0 if not to_process
                                 else round(to_process * per_book / len(snap.workers) / 60, 1)),
        queue_by_priority=snap.queue_by_priority, counts_by_state=snap.counts,
        waiting={s: {"count": snap.counts.get(s, 0), "oldest_age_seconds": _age(snap.oldest.get(s), now)}
                 for s in WAITING_STATES},
        workers=snap.workers, alerts=found, thresholds=limits, backend=snap.backend,
        finished={state: {"last_24h": snap.entered_24h.get(state, 0), "total": snap.counts.get(state, 0)}
                  for state in FINISHED_STATES},
    )


def collect_snapshot(app, conn, now: dt.datetime) -> Snapshot:
    """Read every figure of the report in one read transaction (see db/health_store.py for the cost)."""

    summaries, sketches, watermark = stats_refresh.load(app, conn)
    counts, source = _counts(conn, sketches, watermark)
    limits = stuck_detector.thresholds(summaries, app.settings)
    entered_before = now - dt.timedelta(seconds=stuck_detector.min_limit_seconds(limits))
    finished, failed = hs.recent_finished(conn)
    return Snapshot(
        now=now, backend=app.db.dialect, counts=counts, counts_source=source,
        queue_by_priority=hs.queue_by_priority(conn), oldest=hs.oldest_entered(conn, WAITING_STATES),
        candidates=hs.working_rows(conn) + hs.waiting_retries(conn, entered_before),
        workers=hs.live_workers(conn, now - dt.timedelta(seconds=app.settings.lease_seconds)),
        completed_24h=hs.entered_since(conn, S.COMPLETE.value, now - dt.timedelta(hours=24)),
        entered_24h={state: hs.entered_since(conn, state, now - dt.timedelta(hours=24)) for state in FINISHED_STATES},
        last_progress_at=hs.last_entered(conn, PROGRESS_STATES), recent_completed=hs.recent_completed(conn),
        finished_recent=finished, failed_recent=failed, stats=summaries, disk_free_bytes=hs.disk_free_bytes(app.db.url),
        due_retries=hs.due_retries(conn, now),
    )


def _counts(conn, sketches: Mapping[str, stats.Sketch], watermark: int | None) -> tuple[dict[str, int], str]:
    """Small states counted directly; terminal ones from the stats tally plus the history since it."""

    if watermark is None:
        counts = hs.count_all_states(conn)
        return {s.value: counts.get(s.value, 0) for s in S}, "scan"
    counts = hs.count_states(conn, SMALL_STATES)
    terminal = {s: sketches[s].count if s in sketches else 0 for s in TERMINAL_STATES}
    for src, dst, n in hs.history_delta(conn, watermark):
        if dst in terminal:
            terminal[dst] += n
        if src in terminal:
            terminal[src] -= n
    return {**counts, **terminal}, "tally"


def compute(app) -> HealthReport:
    """A fresh report, straight from the database."""
    now = app.clock.now()
    with app.db.read() as conn:
        snap = collect_snapshot(app, conn, now)
    return build_report(snap, now, app.settings)


def get_health(app, *, fresh: bool = False, save: bool = True, max_age: float | None = None) -> dict[str, Any]:
    """The report as a dict: from ``health_metrics`` while fresh enough, else recomputed (and stored).

    ``max_age``: accept a stored report only this many seconds old (``health --watch`` passes its
    interval, so every redraw shows figures at most one interval old); ``age_seconds`` says how old.
    """

    now = app.clock.now()
    cached = None
    if not fresh:
        with app.db.read() as conn:
            cached = hs.read_report(conn)
        if cached is not None:
            age = (now - cached[1]).total_seconds()
            limit = app.settings.health_stale_seconds if max_age is None else min(max_age, app.settings.health_stale_seconds)
            if 0 <= age <= limit:
                return {**cached[0], "source": "cache", "age_seconds": round(age, 3)}
    report = compute(app).to_dict()
    if save:
        with app.db.write() as conn:
            hs.write_report(conn, report, now)
    note = {"stale_cache_age_seconds": round((now - cached[1]).total_seconds(), 3)} if cached else {}
    return {**report, "source": "fresh", "age_seconds": 0.0, **note}


def refresh(app) -> dict[str, Any]:
    """Recompute the report and store it in ``health_metrics`` (the maintenance task)."""
    report = get_health(app, fresh=True)
    return {"status": report["status"], "stuck": len(report["stuck"]), "alerts": len(report["alerts"]),
            "generated_at": report["generated_at"]}


def current_thresholds(app, conn=None) -> dict[str, stuck_detector.Threshold]:
    summaries, _, _ = stats_refresh.load(app, conn)
    return stuck_detector.thresholds(summaries, app.settings)


def stuck_entry(app, row: Mapping[str, Any], now: dt.datetime) -> dict[str, Any] | None:
    """One book's "stuck" entry for ``status`` (the health report's rule and thresholds), or None."""
    book = stuck_detector.check(row, current_thresholds(app), now)
    return book.to_dict() if book is not None else None


def find_stuck(app) -> dict[str, Any]:
    """Stuck detection alone: the working books, overdue retries and thresholds, nothing else."""

    now = app.clock.now()
    with app.db.read() as conn:
        limits = current_thresholds(app, conn)
        entered_before = now - dt.timedelta(seconds=stuck_detector.min_limit_seconds(limits))
        rows = hs.working_rows(conn) + hs.waiting_retries(conn, entered_before)
    return {"generated_at": now, "thresholds": limits, "stuck": stuck_detector.detect(rows, limits, now)}


def _leased(row: Mapping[str, Any], now: dt.datetime) -> bool:
    expires = row.get("lease_expires_at")
    return row.get("lease_owner") is not None and expires is not None and expires >= now


def _avg_processing(recent: list[dict[str, Any]]) -> float | None:
    spans = [(r["completed_at"] - r["created_at"]).total_seconds() - r["approval_seconds"] for r in recent]
    return round(statistics.fmean(spans), 3) if spans else None


def _age(moment: dt.datetime | None, now: dt.datetime) -> float | None:
    return round((now - moment).total_seconds(), 3) if moment is not None else None


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value
