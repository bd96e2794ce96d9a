"""Worker processes: 4 at once process each book exactly once (SQLite and PostgreSQL); SIGTERM releases."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from agentic_pipeline import intake
from agentic_pipeline.orchestrator import worker
from agentic_pipeline.pipeline.states import State
from tests.conftest import open_app
from tests.orchestrator.helpers import (SAMPLES, duplicate_rows, run_cli, stage_runs, start_worker, wait_for_state,
                                        wait_until, worker_env, write_text_books)

STAGES = ("hashing", "classifying", "selecting_strategy", "processing", "validating")


@pytest.mark.slow  # 200 books through 4 worker processes: ~25 s per engine when the machine is idle
def test_four_worker_processes_process_each_book_exactly_once(db_url, tmp_path):
    app = open_app(db_url)
    try:
        books = write_text_books(tmp_path / "books", 200)
        ids = [intake.queue_file(app, path, actor="human:test")["id"] for path in books]
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


@pytest.mark.parametrize("signals, code, group", [(1, 0, False), (2, 130, False), (1, 0, True), (2, 0, True)])
def test_sigterm_during_processing_leaves_the_book_claimable_at_once(sqlite_url, signals, code, group):
    """One SIGTERM: the stage finishes, no attempt used. Two (a second apart): abort. To the whole process group
    (systemd): the stage child ignores it and finishes; two signals inside a second are one request."""
    app = open_app(sqlite_url)
    try:
        pid = intake.queue_file(app, SAMPLES / "waste-land.md", actor="human:test")["id"]
        seconds = 2 if signals == 1 else 60
        env = worker_env(AGENTIC_PIPELINE_FAULTS=json.dumps({"processing": {"kind": "sleep", "seconds": seconds}}),
                         AGENTIC_PIPELINE_LEASE_SECONDS="300")
        if group and signals == 2:  # a group stop plus a forwarded copy: the same request
            seconds = 2
            env["AGENTIC_PIPELINE_FAULTS"] = json.dumps({"processing": {"kind": "sleep", "seconds": seconds}})
        proc = start_worker(sqlite_url, env=env, own_group=group)
        wait_for_state(app, pid, State.PROCESSING)
        assert app.pipelines.get(pid).lease_owner is not None
        wait_until(lambda: len(_processes_with(sqlite_url)) >= 2, 10, "the stage child")  # the worker and its stage
        first = time.monotonic()
        for n in range(signals):
            if n and not group:  # a second signal is a new request (abort) only SAME_STOP_SECONDS after the first
                time.sleep(max(0.0, first + worker.SAME_STOP_SECONDS + 0.1 - time.monotonic()))
            if group:  # both copies at once, as systemd's stop and the supervisor's forward arrive
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == code, proc.stderr.read()
        p = app.pipelines.get(pid)
        assert p.lease_owner is None and p.state in (State.PROCESSING, State.VALIDATING)
        aborted = code == 130
        assert p.state is (State.PROCESSING if aborted else State.VALIDATING)  # aborted vs finished
        assert (p.row.get("retry_count") or 0) == 0  # a stop never costs the book an attempt
        taken = app.pipelines.claim_next("worker-next", lease_seconds=60)
        assert taken is not None and taken.id == pid
    finally:
        app.close()


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc (Linux)")
def test_a_killed_worker_leaves_no_stage_process_behind(sqlite_url):
    app = open_app(sqlite_url)
    try:
        pid = intake.queue_file(app, SAMPLES / "waste-land.md", actor="human:test")["id"]
        env = worker_env(AGENTIC_PIPELINE_FAULTS=json.dumps({"processing": {"kind": "sleep", "seconds": 60}}),
                         AGENTIC_PIPELINE_LEASE_SECONDS="300")
        proc = start_worker(sqlite_url, env=env)
        wait_for_state(app, pid, State.PROCESSING)
        marker = sqlite_url  # this test's own database: other tests' workers may run beside it
        deadline = time.monotonic() + 10
        while len(_processes_with(marker)) < 2 and time.monotonic() < deadline:  # the worker and its stage child
            time.sleep(0.05)
        assert len(_processes_with(marker)) >= 2
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_with(marker) == []  # the stage died with its worker instead of running on unsupervised
    finally:
        app.close()


def test_sigterm_to_process_wait_releases_the_book(sqlite_url):
    import subprocess

    from tests.orchestrator.helpers import cli_args

    app = open_app(sqlite_url)
    try:
        env = worker_env(AGENTIC_PIPELINE_FAULTS=json.dumps({"processing": {"kind": "sleep", "seconds": 60}}),
                         AGENTIC_PIPELINE_LEASE_SECONDS="300")
        proc = subprocess.Popen(cli_args(sqlite_url, "process", str(SAMPLES / "waste-land.md"), "--wait"), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pid = 1  # the only book: queued by the command itself
        deadline = time.monotonic() + 30
        while not app.pipelines.count_by_state() and time.monotonic() < deadline:
            time.sleep(0.05)
        wait_for_state(app, pid, State.PROCESSING)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 130, proc.stderr.read()
        p = app.pipelines.get(pid)
        assert p.state is State.PROCESSING and p.lease_owner is None  # claimable at once by a worker
    finally:
        app.close()
