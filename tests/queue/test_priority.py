"""Priority rules, claim order and the single-book priority change."""

from __future__ import annotations

import datetime as dt

import pytest

from agentic_pipeline import errors
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.pipeline import priority
from agentic_pipeline.queue import operations
from tests.batch import rows

ACTOR = "human:test"


def test_aged_priority_boosts_once_never_below_one_and_promotes_to_one():
    assert priority.aged_priority(5, 1, 2) == 3
    assert priority.aged_priority(2, 1, 2) == 1
    assert priority.aged_priority(1, 1, 2) == 1
    assert priority.aged_priority(10, 2, 2) == 1
    assert priority.aged_priority(7, 0, 2) == 7


def test_claims_follow_priority_then_age_then_id(app, clock):
    now = clock.now()
    ids = rows.insert(app, [
        rows.row(now, 0, state="detected", priority=5),
        rows.row(now - dt.timedelta(hours=1), 1, state="detected", priority=5),
        rows.row(now, 2, state="detected", priority=1),
        rows.row(now, 3, state="detected", priority=10),
        rows.row(now, 4, state="pending_approval", priority=1),  # waits for a person: never claimed
        rows.row(now, 5, state="approved", priority=5),
    ])
    got = []
    while (p := app.pipelines.claim_next("w1", lease_seconds=600)) is not None:
        got.append(p.id)
    assert got == [ids[2], ids[1], ids[0], ids[5], ids[3]]


def test_set_priority_changes_effective_and_base_resets_aging_and_audits(app, clock):
    now = clock.now()
    (pid,) = rows.insert(app, [rows.row(now, 0, state="detected", priority=3, base_priority=5, aging_level=1)])
    out = operations.set_priority(app, pid, 8, actor=ACTOR, reason="backfill")
    assert out["old"] == {"priority": 3, "base_priority": 5, "aging_level": 1}
    assert out["new"] == {"priority": 8, "base_priority": 8, "aging_level": 0}
    p = app.pipelines.get(pid)
    assert (p.priority, p.base_priority, p.row["aging_level"]) == (8, 8, 0)
    (audit,) = rows.audit_rows(app, "PRIORITY_CHANGED")
    assert audit["actor"] == ACTOR and audit["pipeline_id"] == pid and audit["reason"] == "backfill"
    assert audit["before_state"]["priority"] == 3 and audit["after_state"]["priority"] == 8
    rows.verify_chain(app)


@pytest.mark.parametrize("bad", [0, 11, -1, "5", 2.5, True])
def test_set_priority_refuses_out_of_range_with_the_message(app, clock, bad):
    (pid,) = rows.insert(app, [rows.row(clock.now(), 0, state="detected")])
    with pytest.raises(errors.InputError, match="priority must be between 1 and 10"):
        operations.set_priority(app, pid, bad, actor=ACTOR)
    assert rows.audit_rows(app) == []


def test_set_priority_refuses_finished_books_and_unknown_ids(app, clock):
    (pid,) = rows.insert(app, [rows.row(clock.now(), 0, state="complete")])
    with pytest.raises(errors.InvalidTransition, match="complete"):
        operations.set_priority(app, pid, 2, actor=ACTOR)
    with pytest.raises(errors.NotFound):
        operations.set_priority(app, pid + 99, 2, actor=ACTOR)


def test_unchanged_priority_writes_nothing(app, clock):
    (pid,) = rows.insert(app, [rows.row(clock.now(), 0, state="detected", priority=4)])
    assert operations.set_priority(app, pid, 4, actor=ACTOR)["changed"] is False
    assert rows.audit_rows(app) == []


def test_worker_order_is_priority_order(app, clock):
    """Priority processing order through a worker's claim loop (claim_next + the stage transitions).

    The orchestrator's worker loop was not on main when this was written; it claims with the same
    ``claim_next``, so this drives claims and transitions the way it does.
    """
    ids = [app.pipelines.create(source_path=f"/b/{i}.txt", actor=ACTOR, priority=p).id
           for i, p in enumerate([7, 2, 5, 2, 9, 1])]
    order = []
    while (p := app.pipelines.claim_next("w", lease_seconds=600)) is not None:
        order.append(p.id)
        app.pipelines.transition(p.id, State.HASHING, expect=State.DETECTED, actor="system:worker", owner="w")
        app.pipelines.transition(p.id, State.FAILED, expect=State.HASHING, actor="system:worker", owner="w")
    assert order == [ids[5], ids[1], ids[3], ids[2], ids[0], ids[4]]
