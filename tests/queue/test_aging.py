"""Priority aging with a fake clock: once per threshold, never below 1, original kept, audited."""

from __future__ import annotations

import dataclasses
import datetime as dt

from agentic_pipeline.pipeline.states import State
from agentic_pipeline.queue import aging
from tests.batch import rows

ACTOR = "human:test"


def _state(app, pid):
    p = app.pipelines.get(pid)
    return p.priority, p.base_priority, p.row["aging_level"]


def test_aging_once_per_threshold_never_compounds(app, clock):
    pid = app.pipelines.create(source_path="/b/a.txt", actor=ACTOR, priority=5).id
    low = app.pipelines.create(source_path="/b/b.txt", actor=ACTOR, priority=2).id
    clock.advance(hours=23)
    assert aging.run_aging(app)["aged"] == 0
    clock.advance(hours=1, seconds=1)  # 24 h + 1 s
    out = aging.run_aging(app)
    assert out["boosted"] == 2 and out["promoted"] == 0
    assert _state(app, pid) == (3, 5, 1)
    assert _state(app, low) == (1, 2, 1)  # never below 1
    for _ in range(23):  # hourly runs up to 47 h: nothing more
        clock.advance(hours=1)
        assert aging.run_aging(app)["aged"] == 0
    assert _state(app, pid) == (3, 5, 1)
    clock.advance(hours=1, seconds=1)  # past 48 h
    assert aging.run_aging(app)["promoted"] == 2
    assert _state(app, pid) == (1, 5, 2)
    clock.advance(hours=5)
    assert aging.run_aging(app)["aged"] == 0
    audit = rows.audit_rows(app, "PRIORITY_CHANGED")
    got = sorted((a["pipeline_id"], a["before_state"]["priority"], a["after_state"]["priority"]) for a in audit)
    assert got == sorted([(pid, 5, 3), (low, 2, 1), (pid, 3, 1), (low, 1, 1)])
    assert all(a["after_state"]["base_priority"] == a["before_state"]["base_priority"] for a in audit)
    assert {a["actor"] for a in audit} == {"system:aging"}
    rows.verify_chain(app)


def test_a_book_past_both_thresholds_goes_straight_to_one(app, clock):
    pid = app.pipelines.create(source_path="/b/a.txt", actor=ACTOR, priority=10).id
    clock.advance(hours=72)
    out = aging.run_aging(app)
    assert (out["promoted"], out["boosted"]) == (1, 0)
    assert _state(app, pid) == (1, 10, 2)


def test_only_waiting_books_age_and_waiting_is_measured_from_queued_at(app, clock):
    now = clock.now()
    old = now.replace(year=2025)
    ids = rows.insert(app, [rows.row(old, i, state=s, queued_at=old, priority=6) for i, s in enumerate(
        ["detected", "approved", "needs_retry", "pending_approval", "processing", "complete"])])
    (fresh,) = rows.insert(app, [rows.row(old, 9, state="approved", queued_at=now, priority=6)])
    aging.run_aging(app)
    assert [_state(app, i)[0] for i in ids] == [1, 1, 1, 6, 6, 6]
    assert _state(app, fresh)[0] == 6


def test_plan_aging_is_what_run_aging_does(app, clock):
    now = clock.now()
    spec = [(h, p, lvl) for h in (1, 25, 30, 47, 49, 100) for p in (1, 2, 5, 10) for lvl in (0, 1)]
    rs = [rows.row(now, i, state="detected", queued_at=now - dt.timedelta(hours=h),
                   priority=p if lvl == 0 else max(1, p - 2), base_priority=p, aging_level=lvl)
          for i, (h, p, lvl) in enumerate(spec)]
    ids = rows.insert(app, rs)
    planned = aging.plan_aging([{**r, "id": i} for i, r in zip(ids, rs)], now, app.settings)
    out = aging.run_aging(app)
    assert sorted(out["changes"], key=lambda c: c["pipeline_id"]) == [dataclasses.asdict(c) for c in planned]
    assert out["unexpected"] == []


def test_manual_change_resets_aging_so_the_book_can_age_again(app, clock):
    from agentic_pipeline.queue import operations

    pid = app.pipelines.create(source_path="/b/a.txt", actor=ACTOR, priority=9).id
    clock.advance(hours=25)
    aging.run_aging(app)
    assert _state(app, pid) == (7, 9, 1)
    operations.set_priority(app, pid, 6, actor=ACTOR)
    assert _state(app, pid) == (6, 6, 0)
    clock.advance(hours=1)
    aging.run_aging(app)  # the person's number stands: the aging clock restarted with the change
    assert _state(app, pid) == (6, 6, 0)
    clock.advance(hours=24)
    aging.run_aging(app)  # a full threshold after the change: boosted from the new base
    assert _state(app, pid) == (4, 6, 1)


def test_task_summary_and_thresholds_from_settings(db_url, clock):
    from tests.conftest import open_app

    app = open_app(db_url, clock, aging_first_hours=1, aging_boost=3, aging_second_hours=2)
    try:
        pid = app.pipelines.create(source_path="/b/a.txt", actor=ACTOR, priority=8).id
        clock.advance(minutes=61)
        summary = aging.run_aging_task(app)
        assert summary["boosted"] == 1 and set(summary) == {"aged", "boosted", "promoted", "at"}
        assert _state(app, pid) == (5, 8, 1)
        clock.advance(minutes=60)
        aging.run_aging_task(app)
        assert _state(app, pid) == (1, 8, 2)
    finally:
        app.close()


def test_requeued_book_is_measured_from_its_new_queued_at(app, clock):
    pid = app.pipelines.create(source_path="/b/a.txt", actor=ACTOR, priority=5).id
    clock.advance(hours=20)
    app.pipelines.transition(pid, State.HASHING, expect=State.DETECTED, actor=ACTOR)
    app.pipelines.transition(pid, State.NEEDS_RETRY, expect=State.HASHING, actor=ACTOR)
    clock.advance(hours=10)  # 30 h since created, 10 h since queued again
    assert aging.run_aging(app)["aged"] == 0
