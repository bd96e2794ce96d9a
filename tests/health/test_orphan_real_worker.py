"""Orphan recovery with a real worker process: SIGKILLed in PROCESSING, its lease runs out, the maintenance
task reports the book orphaned and recovers it, and a new worker completes it to the undisturbed final state."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import sqlalchemy as sa

from agentic_pipeline.db import schema
from agentic_pipeline.health import monitor, tasks
from agentic_pipeline import intake
from agentic_pipeline.orchestrator import process
from agentic_pipeline.pipeline.states import State
from tests.conftest import open_app
from tests.orchestrator.helpers import (SAMPLES, duplicate_rows, library_counts, run_cli, stage_runs, start_worker,
                                        wait_for_state, wait_until, worker_env)

BOOK = SAMPLES / "waste-land.md"
LEASE = 2


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _undisturbed(tmp_path) -> dict:
    """The same book through an undisturbed in-process run, in its own database."""
    from agentic_pipeline.db import migrations
    from agentic_pipeline.db.engine import Database

    url = f"sqlite:///{tmp_path / 'reference.db'}"
    db = Database(url)
    migrations.upgrade(db)
    db.dispose()
    ref = open_app(url)
    try:
        done = process.process_one(ref, str(BOOK), actor="human:test", wait=True, isolate=False)
        return {"state": done["state"], "book_type": done["book_type"], "library": library_counts(ref)}
    finally:
        ref.close()


@pytest.mark.slow  # waits out a real lease twice and runs three worker processes: ~10 s
def test_sigkilled_worker_is_orphaned_recovered_and_completed_by_a_new_worker(sqlite_url, tmp_path):
    app = open_app(sqlite_url, lease_seconds=LEASE, heartbeat_seconds=1)
    try:
        pid = intake.queue_file(app, BOOK, actor="human:test")["id"]
        env = worker_env(AGENTIC_PIPELINE_FAULTS=json.dumps({"processing": {"kind": "sleep", "seconds": 120}}),
                         AGENTIC_PIPELINE_LEASE_SECONDS=str(LEASE), AGENTIC_PIPELINE_HEARTBEAT_SECONDS="1")
        proc = start_worker(sqlite_url, env=env)
        wait_for_state(app, pid, State.PROCESSING)
        dead, first_expiry = app.pipelines.get(pid).lease_owner, app.pipelines.get(pid).lease_expires_at
        assert dead is not None
        # the heartbeat is alive: the lease is extended before it runs out
        wait_until(lambda: app.pipelines.get(pid).lease_expires_at > first_expiry, 10, "the heartbeat to extend the lease")
        assert app.pipelines.get(pid).lease_expires_at > app.clock.now()
        stage_children = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)  # nothing extends the lease any more
        proc.wait(timeout=10)
        for child in stage_children:  # the forked stage would sleep on for two minutes
            _kill(child)
        proc.stdout.close()
        proc.stderr.close()

        expiry = app.pipelines.get(pid).lease_expires_at
        wait_until(lambda: app.clock.now() > expiry, LEASE + 10, "the lease to run out")
        report = monitor.get_health(app, fresh=True)
        assert [(s["id"], s["reason"]) for s in report["stuck"]] == [(pid, "orphaned")]
        assert report["orphaned"] == 1 and report["active"] == 0

        out = tasks.recover_stuck(app)  # what the maintenance worker runs every 60 s
        assert out["recovered"] == [pid] and out["conflicts"] == []
        p = app.pipelines.get(pid)
        assert p.state is State.NEEDS_RETRY and p.retry_stage == "processing" and p.lease_owner is None
        assert p.auto_recovery_count == 1
        with app.db.read() as conn:
            audit = conn.execute(sa.select(schema.approval_audit.c.action, schema.approval_audit.c.pipeline_id)).all()
        assert ("STUCK_RECOVERED", pid) in [tuple(a) for a in audit]

        finished = run_cli(sqlite_url, "worker", "--until-empty", "--poll", "0.1",
                           env=worker_env(AGENTIC_PIPELINE_LEASE_SECONDS=str(LEASE)))
        assert finished.returncode == 0, finished.stderr[-2000:]
        p = app.pipelines.get(pid)
        expected = _undisturbed(tmp_path)
        assert {"state": p.state.value, "book_type": p.book_type, "library": library_counts(app)} == expected
        runs = stage_runs(app)
        assert runs[(pid, "processing")] == 2 and runs[(pid, "hashing")] == 1  # resumed at the stage it died in
        assert duplicate_rows(app) == 0
        actors = [h["actor"] for h in app.pipelines.history(pid) if h["to_state"] == "needs_retry"]
        assert actors == ["system:health_monitor"]
    finally:
        app.close()
