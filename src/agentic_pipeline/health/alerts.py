"""Alert rules (pure): the design's table plus ``no_workers``; thresholds from ``Settings``.

| code              | severity | fires when                                                             |
|-------------------|----------|------------------------------------------------------------------------|
| stuck_pipeline    | warning  | one per stuck book (orphans included)                                  |
| high_failure_rate | warning  | > alert_failure_rate of the last 100 finished books (COMPLETE or       |
|                   |          | FAILED) failed; needs at least MIN_FINISHED of them to judge           |
| queue_backup      | info     | more than alert_queue_backup books queued (DETECTED)                   |
| worker_idle       | info     | workers alive, work waiting, and no stage finished for alert_idle_minutes |
| disk_space_low    | critical | under alert_disk_free_mb free where the SQLite database lives          |
| no_workers        | warning  | work waiting and no live worker                                         |

"Work waiting" is what a worker would claim now: DETECTED, APPROVED (to embed) and NEEDS_RETRY
books whose next attempt is due (``workable``).

"Nothing completed" for ``worker_idle`` means no book finished any stage: in supervised mode
books stop at PENDING_APPROVAL, so COMPLETE alone would call busy workers idle.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Sequence

SEVERITIES = ("info", "warning", "critical")
MIN_FINISHED = 10


@dataclasses.dataclass(frozen=True)
class Alert:
    code: str
    severity: str
    message: str
    ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "ids": list(self.ids)}


@dataclasses.dataclass(frozen=True)
class AlertInputs:
    """The figures the rules look at, gathered by the monitor."""

    stuck: Sequence[Any]  # StuckBook-like: id, state, minutes_in_state, expected_minutes, reason
    queued: int
    live_workers: int
    finished_recent: int
    failed_recent: int
    last_progress_at: dt.datetime | None
    disk_free_bytes: int | None
    #: queued + approved + due retries; defaults to ``queued`` for callers that only know that
    workable: int | None = None

    @property
    def waiting_work(self) -> int:
        return self.queued if self.workable is None else self.workable


def evaluate(inp: AlertInputs, now: dt.datetime, settings) -> list[Alert]:
    """Every alert that holds now, most severe first."""
    found = [a for rule in RULES for a in rule(inp, now, settings)]
    return sorted(found, key=lambda a: -SEVERITIES.index(a.severity))


def overall(alerts: Sequence[Alert]) -> str:
    """``critical`` / ``warning`` / ``healthy`` (info alerts do not make a system unhealthy)."""
    severities = {a.severity for a in alerts}
    return "critical" if "critical" in severities else "warning" if "warning" in severities else "healthy"


#: up to this many stuck books get one alert each; more make one alert with the count and the first ids
STUCK_EACH = 3
#: ids named in a grouped alert
GROUP_IDS = 10


def stuck_pipeline(inp, now, settings) -> list[Alert]:
    """One alert per stuck book while they are few; one alert with the count and the first ids when many.

    The output of ``health`` must not grow with the database: 10,000 stuck books are one line.
    """
    if len(inp.stuck) > STUCK_EACH:
        worst = sorted(inp.stuck, key=lambda s: -s.minutes_in_state)
        by_state: dict[str, int] = {}
        for s in worst:
            by_state[s.state] = by_state.get(s.state, 0) + 1
        states = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items(), key=lambda kv: -kv[1]))
        first = [s.id for s in worst[:GROUP_IDS]]
        return [Alert("stuck_pipeline", "warning",
                      f"{len(inp.stuck)} pipelines stuck ({states}); longest first: "
                      + ", ".join(map(str, first)) + (" ..." if len(worst) > GROUP_IDS else "")
                      + " (see `agentic-pipeline stuck`)", tuple(first))]
    out = []
    for s in inp.stuck:
        what = ("orphaned: its worker's lease expired" if s.reason == "orphaned"
                else f"overdue for retry by more than {s.limit_minutes:.0f} min" if s.reason == "retry_overdue"
                else f"expected {s.expected_minutes:.0f} min")
        out.append(Alert("stuck_pipeline", "warning",
                         f"pipeline {s.id} stuck in {s.state} for {s.minutes_in_state:.0f} min ({what})", (s.id,)))
    return out


def high_failure_rate(inp, now, settings) -> list[Alert]:
    if inp.finished_recent < MIN_FINISHED:
        return []
    rate = inp.failed_recent / inp.finished_recent
    if rate <= settings.alert_failure_rate:
        return []
    return [Alert("high_failure_rate", "warning",
                  f"{inp.failed_recent} of the last {inp.finished_recent} finished books failed ({rate:.0%} > "
                  f"{settings.alert_failure_rate:.0%})")]


def queue_backup(inp, now, settings) -> list[Alert]:
    if inp.queued <= settings.alert_queue_backup:
        return []
    return [Alert("queue_backup", "info", f"{inp.queued} books queued (more than {settings.alert_queue_backup})")]


def worker_idle(inp, now, settings) -> list[Alert]:
    if not inp.live_workers or not inp.waiting_work:
        return []
    idle_for = settings.alert_idle_minutes * 60
    if inp.last_progress_at is not None and (now - inp.last_progress_at).total_seconds() < idle_for:
        return []
    since = "ever" if inp.last_progress_at is None else f"{(now - inp.last_progress_at).total_seconds() / 60:.0f} min"
    return [Alert("worker_idle", "info", f"{inp.live_workers} workers alive and {inp.waiting_work} books waiting "
                                         f"for one, but no stage finished for {since}")]


def disk_space_low(inp, now, settings) -> list[Alert]:
    if inp.disk_free_bytes is None or inp.disk_free_bytes >= settings.alert_disk_free_mb * 1024 * 1024:
        return []
    return [Alert("disk_space_low", "critical", f"only {inp.disk_free_bytes / 1024 / 1024:.0f} MB free where the "
                                                f"database lives (minimum {settings.alert_disk_free_mb} MB)")]


def no_workers(inp, now, settings) -> list[Alert]:
    if inp.live_workers or not inp.waiting_work:
        return []
    return [Alert("no_workers", "warning", f"{inp.waiting_work} books waiting for a worker (queued, approved or "
                                           "due for retry) and no live worker: start one with `agentic-pipeline worker`")]


RULES = (stuck_pipeline, high_failure_rate, queue_backup, worker_idle, disk_space_low, no_workers)
#: every alert code with its severity (the table above), for the metrics and deploy/prometheus-rules.yml
CODES = {"stuck_pipeline": "warning", "high_failure_rate": "warning", "queue_backup": "info", "worker_idle": "info",
         "disk_space_low": "critical", "no_workers": "warning"}
