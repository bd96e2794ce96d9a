"""End to end through the real CLI: process --wait, approve, a worker embeds, search finds it; reject and
rollback leave no trace in search."""

from __future__ import annotations

import json


from agentic_pipeline.library import search
from tests.conftest import open_app
from tests.orchestrator.helpers import SAMPLES, library_counts, run_cli



def cli_json(db_url, *args):
    out = run_cli(db_url, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def titles_found(app, query):
    return {r["pipeline_id"] for r in search.search(app, query, limit=20)}


def test_process_approve_worker_search_then_rollback(db_url):
    ended = cli_json(db_url, "process", str(SAMPLES / "waste-land.epub"), "--wait")
    assert ended["state"] == "pending_approval", ended
    pid = ended["id"]
    other = cli_json(db_url, "process", str(SAMPLES / "fsm-drivers.pdf"), "--wait")
    assert other["state"] == "pending_approval", other
    pending = cli_json(db_url, "pending")
    assert {r["id"] for r in pending} == {pid, other["id"]}
    assert cli_json(db_url, "approve", str(pid), "--actor", "human:alice")["state"] == "approved"
    worker = run_cli(db_url, "worker", "--until-empty", "--poll", "0.1")
    assert worker.returncode == 0, worker.stderr
    app = open_app(db_url)
    try:
        assert app.pipelines.get(pid).state.value == "complete"
        assert pid in titles_found(app, "April is the cruellest month")
        rejected = cli_json(db_url, "reject", str(other["id"]), "--reason", "not wanted")
        assert rejected["state"] == "rejected"
        rolled = cli_json(db_url, "rollback", str(pid), "--reason", "wrong edition", "--actor", "human:bob")
        assert rolled["state"] == "archived" and rolled["removed"]["chunks"] > 0
        assert titles_found(app, "April is the cruellest month") == set()
        assert library_counts(app) == {"books": 0, "chapters": 0, "chunks": 0, "embedded": 0}
    finally:
        app.close()


def test_status_shows_lease_and_next_retry(sqlite_url):
    from tests.orchestrator.helpers import worker_env

    env = worker_env(AGENTIC_PIPELINE_FAULTS='{"classifying": {"kind": "transient", "times": 5}}',
                     AGENTIC_PIPELINE_RETRY_BASE_SECONDS="600")
    ended = json.loads(run_cli(sqlite_url, "process", str(SAMPLES / "waste-land.md"), "--wait", "--json", env=env).stdout)
    assert ended["state"] == "needs_retry"
    status = run_cli(sqlite_url, "status", str(ended["id"]))
    assert "Next retry:" in status.stdout and "injected transient failure" in status.stdout
    retried = cli_json(sqlite_url, "retry", str(ended["id"]))
    assert retried[0]["state"] == "needs_retry"
