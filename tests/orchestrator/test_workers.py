"""Worker processes: 4 at once process each book exactly once (SQLite and PostgreSQL); SIGTERM releases."""

from __future__ import annotations

import json
import signal
import time

import pytest

from agentic_pipeline.orchestrator import queueing
from agentic_pipeline.pipeline.states import State
from tests.conftest import open_app
from tests.orchestrator.helpers import (SAMPLES, duplicate_rows, run_cli, stage_runs, start_worker, worker_env,
                                        write_text_books)

STAGES = ("hashing", "classifying", "selecting_strategy", "processing", "validating")


def test_four_worker_processes_process_each_book_exactly_once(db_url, tmp_path):
    app = open_app(db_url)
    try:
        books = write_text_books(tmp_path / "books", 200)
        ids = [queueing.queue_file(app, path, actor="human:test")["id"] for path in books]
        started = time.monotonic()
        out = run_cli(db_url, "worker", "--concurrency", "4", "--until-empty", "--poll", "0.05", timeout=240)
        assert out.returncode == 0, out.stderr[-2000:]
        elapsed = time.monotonic() - started
        runs = stage_runs(app)
        assert app.pipelines.count_by_state() == {"pending_approval": len(ids)}
        for pid in ids:
            assert [runs.get((pid, s)) for s in STAGES] == [1] * len(STAGES), pid
        assert duplicate_rows(app) == 0
        workers = {h["actor"] for pid in ids[:50] for h in app.pipelines.history(pid)[1:]}
        assert len(workers) >= 2, f"only one worker did the work in {elapsed:.1f}s"
    finally:
        app.close()


def _wait_for(app, pid, state, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.pipelines.get(pid).state is state:
            return
        time.sleep(0.05)
    raise AssertionError(f"pipeline {pid} never reached {state.value}: {app.pipelines.get(pid).state.value}")


@pytest.mark.parametrize("signals, code", [(1, 0), (2, 130)])
def test_sigterm_during_processing_leaves_the_book_claimable_at_once(sqlite_url, signals, code):
    app = open_app(sqlite_url)
    try:
        pid = queueing.queue_file(app, SAMPLES / "waste-land.md", actor="human:test")["id"]
        seconds = 2 if signals == 1 else 60
        env = worker_env(AGENTIC_PIPELINE_FAULTS=json.dumps({"processing": {"kind": "sleep", "seconds": seconds}}),
                         AGENTIC_PIPELINE_LEASE_SECONDS="300")
        proc = start_worker(sqlite_url, env=env)
        _wait_for(app, pid, State.PROCESSING)
        assert app.pipelines.get(pid).lease_owner is not None
        for _ in range(signals):
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
        assert proc.wait(timeout=20) == code, proc.stderr.read()
        p = app.pipelines.get(pid)
        assert p.lease_owner is None and p.state in (State.PROCESSING, State.VALIDATING)
        assert p.state is (State.VALIDATING if signals == 1 else State.PROCESSING)  # finished vs aborted
        taken = app.pipelines.claim_next("worker-next", lease_seconds=60)
        assert taken is not None and taken.id == pid
    finally:
        app.close()
