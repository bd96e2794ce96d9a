"""Every decision and system action writes exactly one audit entry, from its real interface.

The CLI (in process, through the console script's own ``run``), the worker, and the maintenance
tasks drive one library through every audited action; after each step the entries written since
the previous step must be exactly the expected (action, actor) pairs, with before/after states.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import shutil

import pytest
import sqlalchemy as sa

from agentic_pipeline.audit.actions import Action
from agentic_pipeline.interfaces.cli import cli
from agentic_pipeline.interfaces.cli.context import run
from agentic_pipeline.clock import FakeClock
from agentic_pipeline.db.schema import approval_audit
from agentic_pipeline.pipeline.states import State
from tests.conftest import SAMPLES, open_app

HUMAN = "human:alice"


class Trail:
    """Reads the entries appended since the last look."""

    def __init__(self, url: str):
        self.url = url
        self.seen = 0

    def new(self) -> list[dict]:
        with open_app(self.url) as app, app.db.read() as conn:
            rows = conn.execute(sa.select(approval_audit).where(approval_audit.c.id > self.seen)
                                .order_by(approval_audit.c.id)).all()
        rows = [dict(r._mapping) for r in rows]
        if rows:
            self.seen = rows[-1]["id"]
        return rows


BATCH_MEMBER = "batch member"


def pairs(rows) -> collections.Counter:
    """(action, actor) per entry; a per-book entry of a batch (filter recorded, actor ``batch:<id>`` or the
    human who ran it) counts as BATCH_MEMBER."""
    def who(r):
        member = r["filter_used"] and r["pipeline_id"] is not None and not r["action"].startswith("BATCH_")
        return BATCH_MEMBER if member or r["actor"].startswith("batch:") else r["actor"]
    return collections.Counter((r["action"], who(r)) for r in rows)


def cli_ok(capsys, *args) -> str:
    capsys.readouterr()
    code = run(cli, list(args))
    out = capsys.readouterr()
    assert code == 0, (args, out.err)
    return out.out


@pytest.fixture
def library(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in ("waste-land.epub", "fsm-drivers.pdf", "waste-land.md", "ltnews36.pdf"):
        shutil.copy(SAMPLES / "books" / name, folder / name)
    shutil.copy(SAMPLES / "broken" / "garbled-ru.pdf", folder / "garbled-ru.pdf")
    return folder


def _query_ids(app, state: State) -> list[int]:
    from agentic_pipeline.approval import operations

    return sorted(r["id"] for r in operations.list_by_state(app, state))


def test_every_action_writes_exactly_one_entry(db_url, library, capsys, monkeypatch):
    monkeypatch.setenv("AGENTIC_PIPELINE_EMBEDDER", "hashing")
    url = db_url
    db = ["--db", url]
    trail = Trail(url)

    # BATCH_QUEUED: once for the whole folder
    cli_ok(capsys, *db, "batch-queue", str(library), "--execute", "--actor", HUMAN)
    rows = trail.new()
    assert pairs(rows) == {(Action.BATCH_QUEUED.value, HUMAN): 1}
    assert rows[0]["filter_used"] or rows[0]["after_state"]

    # the worker: the garbled PDF is rejected by the validator; the rest wait for approval
    cli_ok(capsys, *db, "worker", "--until-empty")
    rows = trail.new()
    assert pairs(rows) == {(Action.REJECTED.value, "system:validator"): 1}, rows
    assert rows[0]["before_state"]["state"] in {"classifying", "processing", "hashing"}
    assert rows[0]["after_state"]["state"] == "rejected"
    with open_app(url) as app:
        pending = _query_ids(app, State.PENDING_APPROVAL)
    assert len(pending) == 4
    first, second, third, fourth = pending

    # APPROVED / REJECTED / PRIORITY_CHANGED by a human, one entry each
    cli_ok(capsys, *db, "approve", str(first), "--actor", HUMAN)
    cli_ok(capsys, *db, "reject", str(second), "--reason", "not wanted", "--actor", HUMAN)
    cli_ok(capsys, *db, "priority", str(third), "2", "--actor", HUMAN)
    rows = trail.new()
    assert [(r["action"], r["actor"], r["pipeline_id"]) for r in rows] == [
        (Action.APPROVED.value, HUMAN, first), (Action.REJECTED.value, HUMAN, second),
        (Action.PRIORITY_CHANGED.value, HUMAN, third)]
    assert rows[0]["before_state"]["state"] == "pending_approval" and rows[0]["after_state"]["state"] == "approved"
    assert rows[1]["reason"] == "not wanted" and rows[1]["after_state"]["state"] == "rejected"
    assert json.dumps(rows[2]["before_state"]).count("5") and json.dumps(rows[2]["after_state"]).count("2")

    # embedding after approval is worker work and writes no decision
    cli_ok(capsys, *db, "worker", "--until-empty")
    assert trail.new() == []

    # ROLLED_BACK
    cli_ok(capsys, *db, "rollback", str(first), "--reason", "wrong edition", "--actor", HUMAN)
    rows = trail.new()
    assert pairs(rows) == {(Action.ROLLED_BACK.value, HUMAN): 1}
    assert rows[0]["before_state"]["state"] == "complete" and rows[0]["after_state"]["state"] == "archived"

    # RETRIED (single) and BATCH_RETRIED + one RETRIED per book
    cli_ok(capsys, *db, "retry", str(second), "--actor", HUMAN)
    rows = trail.new()
    assert pairs(rows) == {(Action.RETRIED.value, HUMAN): 1}
    cli_ok(capsys, *db, "batch-retry", "--state", "rejected", "--execute", "--actor", HUMAN)
    rows = trail.new()
    assert pairs(rows) == {(Action.BATCH_RETRIED.value, HUMAN): 1, (Action.RETRIED.value, BATCH_MEMBER): 1}, rows
    cli_ok(capsys, *db, "worker", "--until-empty")
    rows = trail.new()
    assert pairs(rows) == {(Action.REJECTED.value, "system:validator"): 1}  # the garbled PDF again

    # BATCH_PRIORITY_CHANGED + PRIORITY_CHANGED per book; BATCH_REJECTED + REJECTED per book
    with open_app(url) as app:
        pending = _query_ids(app, State.PENDING_APPROVAL)
    assert len(pending) == 3
    cli_ok(capsys, *db, "batch-priority", "3", "--state", "pending_approval", "--execute", "--actor", HUMAN)
    rows = trail.new()
    assert pairs(rows) == {(Action.BATCH_PRIORITY_CHANGED.value, HUMAN): 1,
                           (Action.PRIORITY_CHANGED.value, BATCH_MEMBER): 3}, rows
    batch_row = next(r for r in rows if r["action"] == Action.BATCH_PRIORITY_CHANGED.value)
    assert batch_row["filter_used"]
    cli_ok(capsys, *db, "batch-reject", "--state", "pending_approval", "--source-pattern", "*.md",
           "--reason", "markdown copy", "--execute", "--actor", HUMAN)
    rows = trail.new()
    assert pairs(rows) == {(Action.BATCH_REJECTED.value, HUMAN): 1, (Action.REJECTED.value, BATCH_MEMBER): 1}, rows

    # BATCH_APPROVED + APPROVED per book
    cli_ok(capsys, *db, "batch-approve", "--state", "pending_approval", "--execute", "--actor", HUMAN)
    rows = trail.new()
    assert pairs(rows) == {(Action.BATCH_APPROVED.value, HUMAN): 1, (Action.APPROVED.value, BATCH_MEMBER): 2}, rows

    # AUTONOMY_CHANGED, then an automatic approval by the worker, then ESCAPE_HATCH
    cli_ok(capsys, *db, "autonomy", "enable", "partial", "--threshold", "0.5", "--actor", HUMAN)
    rows = trail.new()
    assert pairs(rows) == {(Action.AUTONOMY_CHANGED.value, HUMAN): 1}
    extra = library / "more"
    extra.mkdir()
    shutil.copy(SAMPLES / "books" / "romeo-juliet.epub", extra / "romeo-juliet.epub")
    cli_ok(capsys, *db, "batch-queue", str(extra), "--execute", "--actor", HUMAN)
    cli_ok(capsys, *db, "worker", "--until-empty")
    rows = trail.new()
    assert pairs(rows) == {(Action.BATCH_QUEUED.value, HUMAN): 1, (Action.APPROVED.value, "auto:high_confidence"): 1}, rows
    auto = rows[1]
    assert auto["confidence_at_decision"] is not None and auto["confidence_at_decision"] >= 0.5
    cli_ok(capsys, *db, "escape-hatch", "odd approvals", "--actor", HUMAN)
    rows = trail.new()
    assert pairs(rows) == {(Action.ESCAPE_HATCH.value, HUMAN): 1}

    # STUCK_RECOVERED by a human (CLI) and by the health monitor (maintenance task)
    clock = FakeClock(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3))  # the CLI below runs on real time
    with open_app(url, clock) as app:
        stuck_ids = []
        for n in range(2):
            p = app.pipelines.create(source_path=f"/gone/{n}.epub", actor=HUMAN)
            app.pipelines.claim_next("dead-worker", lease_seconds=30)
            app.pipelines.transition(p.id, State.HASHING, expect=State.DETECTED, actor=HUMAN, owner="dead-worker")
            stuck_ids.append(p.id)
    trail.new()
    clock.advance(hours=3)
    cli_ok(capsys, *db, "stuck", "--reset", str(stuck_ids[0]), "--action", "reject", "--actor", HUMAN,
           "--reason", "stuck on a dead mount")
    rows = trail.new()
    assert pairs(rows) == {(Action.STUCK_RECOVERED.value, HUMAN): 1}
    from agentic_pipeline.health import tasks as health_tasks

    clock.advance(hours=3)  # the monitor recovers it at now + 3 h: it waits in the queue less than a day below
    with open_app(url, clock) as app:
        health_tasks.recover_stuck(app)
    rows = trail.new()
    assert pairs(rows) == {(Action.STUCK_RECOVERED.value, "system:health_monitor"): 1}, rows
    assert rows[0]["pipeline_id"] == stuck_ids[1]

    # PRIORITY_CHANGED by aging (hourly maintenance), once per threshold
    from agentic_pipeline.queue import aging

    with open_app(url) as app:
        waiting = app.pipelines.create(source_path="/waiting.epub", actor=HUMAN, priority=7)
    trail.new()
    later = FakeClock(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=25))
    with open_app(url, later) as app:
        aging.run_aging_task(app)
        aging.run_aging_task(app)  # the same threshold never applies twice
    rows = trail.new()
    assert [(r["action"], r["actor"], r["pipeline_id"]) for r in rows] == [
        (Action.PRIORITY_CHANGED.value, "system:aging", waiting.id)]

    # RETENTION_PRUNED by the daily maintenance task, far in the future
    from agentic_pipeline.audit import retention

    future = FakeClock(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400))
    with open_app(url, future) as app:
        retention.run_retention_task(app)
    rows = trail.new()
    assert pairs(rows) == {(Action.RETENTION_PRUNED.value, "system:retention"): 1}

    out = cli_ok(capsys, *db, "audit", "verify", "--json")
    assert json.loads(out)["ok"] is True
