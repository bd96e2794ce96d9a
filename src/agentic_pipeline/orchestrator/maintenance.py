"""Periodic maintenance, run by exactly one worker at a time, chosen through the database.

Each task has a ``maintenance_tasks`` row; a worker runs a task only after winning a
compare-and-set on that row (free or expired holder, and due by ``last_run_at``), so with any
number of workers on any number of machines each task runs once per interval. The task
functions belong to other features and are found by import string; one that does not exist
(yet) is recorded as skipped, never fatal, and a failing task is recorded and retried next time.
"""

from __future__ import annotations

import importlib
import json
import time
from typing import Any, Callable

from agentic_pipeline.db import workers_store
import threading
import logging

#: (row name, "module:function", interval in seconds; None means the health interval)
TASKS: tuple[tuple[str, str, float | None], ...] = (
    ("refresh_health", "agentic_pipeline.health.tasks:refresh_health", None),
    ("recover_stuck", "agentic_pipeline.health.tasks:recover_stuck", 60.0),
    ("refresh_stats", "agentic_pipeline.health.tasks:refresh_stats", 60.0),
    ("priority_aging", "agentic_pipeline.queue.aging:run_aging_task", 3600.0),
    ("audit_retention", "agentic_pipeline.audit.retention:run_retention_task", 86400.0),
    ("checkpoint_wal", "agentic_pipeline.health.tasks:checkpoint_wal", 30.0),
    ("deliver_alerts", "agentic_pipeline.health.tasks:deliver_alerts", 5.0),
)


def load_task(target: str) -> Callable[[Any], dict] | None:
    """The task function named by ``module:function``, or None when it is not there."""
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, attr, None)


def interval_of(spec: float | None, health_interval: float) -> float:
    return float(health_interval) if spec is None else float(spec)


def run_due(app, holder: str, *, health_interval: float | None = None,
            tasks: tuple[tuple[str, str, float | None], ...] = TASKS) -> dict[str, Any]:
    """Run every due task this worker wins; returns {task name: its summary} for those it ran."""
    health = float(health_interval or app.settings.health_interval)
    ran: dict[str, Any] = {}
    for name, target, spec in tasks:
        with app.db.write() as conn:
            won = workers_store.take_task(conn, name, holder, now=app.clock.now(),
                                          interval=interval_of(spec, health),
                                          lease_seconds=app.settings.maintenance_lease_seconds)
        if won:
            ran[name] = {**_run_one(app, target), "runner": holder}
            with app.db.write() as conn:
                workers_store.finish_task(conn, name, holder, now=app.clock.now(), result=ran[name])
    return ran


def _run_one(app, target: str) -> dict[str, Any]:
    started = time.monotonic()
    try:
        fn = load_task(target)
        if fn is None:
            return {"skipped": f"{target} is not available"}
        result = fn(app)
        summary = dict(result) if isinstance(result, dict) else {"result": str(result)}
    except Exception as exc:  # noqa: BLE001 - a broken task must not stop the worker
        summary = {"error": f"{type(exc).__name__}: {exc}"}
    summary["seconds"] = round(time.monotonic() - started, 3)
    return json.loads(json.dumps(summary, default=str))  # stored as JSON: datetimes become ISO strings


class Ticker:
    """Calls ``run_due`` at most every ``every`` seconds of wall time (workers call ``tick`` in their loop)."""

    def __init__(self, app, holder: str, *, health_interval: float | None = None, every: float = 5.0) -> None:
        self.app, self.holder, self.health_interval = app, holder, health_interval
        self.every = min(every, float(health_interval or app.settings.health_interval))
        self._next = 0.0

    def tick(self) -> dict[str, Any]:
        if time.monotonic() < self._next:
            return {}
        self._next = time.monotonic() + self.every
        try:
            return run_due(self.app, self.holder, health_interval=self.health_interval)
        except Exception as exc:  # noqa: BLE001 - the database blinked: try again next tick
            return {"error": str(exc)}


#: what ``serve`` runs besides its endpoint, so alerts reach people while no worker is alive (no_workers)
ALERT_TASKS = tuple(t for t in TASKS if t[0] in ("refresh_health", "deliver_alerts"))


class Background:
    """A thread that runs ``tasks`` as they fall due (``serve`` uses it for the alert tasks); ``stop`` ends it."""

    def __init__(self, app, holder: str, *, tasks: tuple[tuple[str, str, float | None], ...] = ALERT_TASKS,
                 every: float = 5.0) -> None:
        self.app, self.holder, self.tasks, self.every = app, holder, tasks, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maintenance", daemon=True)

    def start(self) -> "Background":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run_due(self.app, self.holder, tasks=self.tasks)
            except Exception as exc:  # noqa: BLE001 - the database blinked: try again next time

                logging.getLogger(__name__).warning("maintenance in the background: %s", exc)
            self._stop.wait(self.every)
