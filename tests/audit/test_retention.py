"""Retention: the pure plan per action with a fake clock, the prune operation, the daily task."""

from __future__ import annotations

import datetime as dt

import pytest

from agentic_pipeline import config, errors
from agentic_pipeline.audit import retention, trail
from tests.audit.conftest import add

NOW = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
POLICY = dict(config.DEFAULT_RETENTION_DAYS)


def row(id_, action, age_days, h=None):
    return (id_, action, NOW - dt.timedelta(days=age_days), h or f"{id_:016x}" + "a" * 48)


@pytest.mark.parametrize("action, keep_days", [("APPROVED", 365), ("REJECTED", 365), ("ROLLED_BACK", 730),
                                               ("BATCH_QUEUED", 90), ("BATCH_PRIORITY_CHANGED", 90),
                                               ("STUCK_RECOVERED", 365), ("PRIORITY_CHANGED", 365)])
def test_plan_per_action(action, keep_days):
    p = retention.plan([row(1, action, keep_days - 1), row(2, action, keep_days + 1)], NOW, POLICY)
    assert (p.count, p.by_action) == (1, {action: 1})
    assert [(r.first, r.last) for r in p.runs] == [(2, 2)]


def test_retention_records_are_kept_forever():
    assert retention.days_for("RETENTION_PRUNED", POLICY) is None
    assert retention.plan([row(1, "RETENTION_PRUNED", 10_000)], NOW, POLICY).count == 0


def test_plan_runs_and_boundaries():
    rows = [row(1, "BATCH_QUEUED", 100), row(2, "BATCH_QUEUED", 100), row(3, "APPROVED", 100),
            row(4, "BATCH_RETRIED", 100), row(6, "BATCH_RETRIED", 100)]
    p = retention.plan(rows, NOW, POLICY)
    assert [(r.first, r.last, r.boundary) for r in p.runs] == [(1, 2, "0" * 15 + "2"), (4, 4, "0" * 15 + "4"),
                                                               (6, 6, "0" * 15 + "6")]
    assert p.by_action == {"BATCH_QUEUED": 2, "BATCH_RETRIED": 2}


def test_policy_specificity_and_validation():
    policy = {**POLICY, "BATCH_APPROVED": 10}
    assert retention.days_for("BATCH_APPROVED", policy) == 10
    assert retention.days_for("BATCH_REJECTED", policy) == 90
    assert retention.days_for("ESCAPE_HATCH", policy) == 365
    with pytest.raises(errors.ConfigError, match="matches no action"):
        retention.validate_policy({"APPROVE": 3})
    with pytest.raises(errors.ConfigError, match="whole number"):
        retention.validate_policy({"*": 0})


def test_records_are_chunked(monkeypatch):
    monkeypatch.setattr(retention, "RUNS_PER_ENTRY", 2)
    p = retention.plan([row(i, "BATCH_QUEUED", 100) for i in range(1, 10, 2)], NOW, POLICY)
    recs = retention.records(p, "system:retention")
    assert [len(r.after_state["ranges"]) for r in recs] == [2, 2, 1]
    assert {r.after_state["removed"] for r in recs} == {5}


def test_dry_run_changes_nothing_and_execute_applies_the_same_plan(app, clock):
    add(app, "BATCH_QUEUED", "batch:f1", n=3)
    add(app, "ROLLED_BACK", "human:alice")
    clock.advance(days=400)
    add(app, "APPROVED", "human:alice")
    dry = retention.prune(app)
    assert (dry["execute"], dry["count"], dry["by_action"]) == (False, 3, {"BATCH_QUEUED": 3})
    assert len(trail.query(app)) == 5
    done = retention.prune(app, execute=True, actor="human:alice")
    assert {k: done[k] for k in ("count", "by_action", "runs")} == {k: dry[k] for k in ("count", "by_action", "runs")}
    record = trail.query(app, action="RETENTION_PRUNED")
    assert len(record) == 1 and record[0]["actor"] == "human:alice"
    assert record[0]["after_state"]["ranges"][0][:2] == [1, 3]
    assert trail.verify(app)["ok"]
    assert retention.prune(app, execute=True)["count"] == 0      # nothing left: no second record
    assert len(trail.query(app, action="RETENTION_PRUNED")) == 1


def test_configured_policy(db_url, clock):
    from tests.conftest import open_app

    app = open_app(db_url, clock, retention_days={"APPROVED": 1})
    try:
        add(app, "APPROVED", "human:alice")
        add(app, "REJECTED", "human:alice")
        clock.advance(days=2)
        assert retention.prune(app)["by_action"] == {"APPROVED": 1}
    finally:
        app.close()


def test_run_retention_task(app, clock):
    add(app, "BATCH_APPROVED", "batch:f1", n=2)
    clock.advance(days=91)
    summary = retention.run_retention_task(app)
    assert summary["removed"] == 2 and summary["by_action"] == {"BATCH_APPROVED": 2}
    entry = trail.query(app, action="RETENTION_PRUNED")[0]
    assert entry["actor"] == "system:retention" and entry["id"] in summary["record_ids"]
    assert trail.verify(app)["ok"]
