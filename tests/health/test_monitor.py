"""The report, stuck detection, recovery and stats against the real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.db import health_store, schema
from agentic_pipeline.health import metrics, monitor, recovery, stats_refresh, tasks
from agentic_pipeline.pipeline import status
from agentic_pipeline.pipeline.states import State as S

W = "system:worker"


def add_worker(app, wid="w1", current=None):
    now = app.clock.now()
    with app.db.write() as conn:
        conn.execute(sa.delete(schema.workers).where(schema.workers.c.id == wid))
        conn.execute(schema.workers.insert().values(id=wid, host="test-host", pid=4242, started_at=now, last_seen=now,
                                                    current_pipeline_id=current))


def keep_alive(app, clock, pid, minutes, worker="w1"):
    """A live worker: let ``minutes`` pass, heartbeating every minute."""
    for _ in range(int(minutes)):
        clock.advance(minutes=1)
        app.pipelines.heartbeat(pid, worker, lease_seconds=app.settings.lease_seconds)


def start(app, n=1, worker="w1", to=S.HASHING):
    """Queue ``n`` books and have ``worker`` claim the first and move it into ``to`` (via HASHING...)."""
    ids = [app.pipelines.create(source_path=f"/books/{i}.epub", actor="human:t").id for i in range(n)]
    p = app.pipelines.claim_next(worker, lease_seconds=app.settings.lease_seconds)
    path = [S.HASHING, S.CLASSIFYING, S.SELECTING_STRATEGY, S.PROCESSING]
    prev = S.DETECTED
    for state in path[: path.index(to) + 1]:
        app.pipelines.transition(p.id, state, expect=prev, actor=W, owner=worker)
        prev = state
    return p.id, ids


def test_report_generation_counts_queue_and_cache(app, clock):
    pid, ids = start(app, n=4)
    app.pipelines.transition(ids[1], S.REJECTED, expect=S.DETECTED, actor="human:t")
    first = monitor.get_health(app)
    assert first["source"] == "fresh"
    assert first["counts_by_state"]["detected"] == 2 and first["counts_by_state"]["rejected"] == 1
    assert first["queued"] == 2 and first["queue_by_priority"]["5"] == 2
    assert first["waiting"]["detected"]["count"] == 2
    assert [a["code"] for a in first["alerts"]] == ["no_workers"] and first["status"] == "warning"
    clock.advance(10)
    cached = monitor.get_health(app)
    assert cached["source"] == "cache" and cached["age_seconds"] == 10
    assert cached["generated_at"] == first["generated_at"]
    clock.advance(app.settings.health_stale_seconds)
    again = monitor.get_health(app)
    assert again["source"] == "fresh" and again["stale_cache_age_seconds"] > app.settings.health_stale_seconds
    assert tasks.refresh_health(app)["status"] == "warning"


def test_approved_books_and_due_retries_with_no_worker_raise_no_workers(app, clock):
    path = [S.HASHING, S.CLASSIFYING, S.SELECTING_STRATEGY, S.PROCESSING, S.VALIDATING, S.PENDING_APPROVAL,
            S.APPROVED]
    for i in range(3):
        p = app.pipelines.create(source_path=f"/b/{i}.epub", actor="human:t")
        prev = S.DETECTED
        for to in path:
            app.pipelines.transition(p.id, to, expect=prev, actor="human:t")
            prev = to
    clock.advance(hours=5)
    r = monitor.get_health(app, fresh=True)
    assert r["queued"] == 0 and r["approved"] == 3
    assert [a["code"] for a in r["alerts"]] == ["no_workers"] and "3 books waiting" in r["alerts"][0]["message"]
    assert r["estimated_queue_minutes"] is None  # no worker: no estimate


def test_high_failure_rate_counts_books_by_their_latest_finish_and_clears_when_they_are_mended(app, clock):
    path = [S.HASHING, S.CLASSIFYING, S.SELECTING_STRATEGY, S.PROCESSING, S.VALIDATING, S.PENDING_APPROVAL,
            S.APPROVED, S.EMBEDDING, S.COMPLETE]
    ids = []
    for i in range(12):
        p = app.pipelines.create(source_path=f"/b/{i}.epub", actor="human:t")
        app.pipelines.transition(p.id, S.HASHING, expect=S.DETECTED, actor="human:t")
        app.pipelines.transition(p.id, S.FAILED, expect=S.HASHING, actor="human:t")
        ids.append(p.id)
    first = monitor.get_health(app, fresh=True)
    assert "high_failure_rate" in [a["code"] for a in first["alerts"]]
    clock.advance(60)
    for pid in ids:  # each failed book is retried and completes
        app.pipelines.transition(pid, S.NEEDS_RETRY, expect=S.FAILED, actor="human:t")
        prev = S.NEEDS_RETRY
        for to in path:
            app.pipelines.transition(pid, to, expect=prev, actor="human:t")
            prev = to
    mended = monitor.get_health(app, fresh=True)
    assert "high_failure_rate" not in [a["code"] for a in mended["alerts"]]


def test_live_worker_holding_a_lease_shows_as_active(app, clock):
    pid, _ = start(app, n=2)
    add_worker(app, "w1", current=pid)
    clock.advance(30)
    app.pipelines.heartbeat(pid, "w1", lease_seconds=app.settings.lease_seconds)
    r = monitor.get_health(app, fresh=True)
    assert r["active"] == 1 and r["stuck"] == []
    assert [w["id"] for w in r["workers"]] == ["w1"] and r["workers"][0]["current_pipeline_id"] == pid
    assert r["estimated_queue_minutes"] is not None and r["status"] == "healthy"


def test_stats_after_100_samples_switch_threshold_to_median_incrementally(app, clock):
    for i in range(100):
        pid = app.pipelines.create(source_path=f"/b/{i}", actor="human:t").id
        app.pipelines.transition(pid, S.HASHING, expect=S.DETECTED, actor=W)
        clock.advance(10)
        app.pipelines.transition(pid, S.CLASSIFYING, expect=S.HASHING, actor=W)
    clock.advance(health_store.WATERMARK_LAG_SECONDS + 1)  # PostgreSQL leaves the youngest rows for the next refresh
    first = tasks.refresh_stats(app)
    assert first["mode"] == "full"
    summaries, sketches, watermark = stats_refresh.load(app)
    assert summaries["hashing"].sample_count == 100
    assert summaries["hashing"].median_seconds == pytest.approx(10, rel=0.025)
    assert sketches["classifying"].count == 100 and watermark == first["to_history_id"]
    limits = monitor.current_thresholds(app)
    assert limits["hashing"].source == "median" and limits["classifying"].source == "default"
    app.pipelines.transition(1, S.SELECTING_STRATEGY, expect=S.CLASSIFYING, actor=W)
    clock.advance(60)
    second = tasks.refresh_stats(app)
    assert second["mode"] == "incremental" and second["from_history_id"] == first["to_history_id"]
    summaries, sketches, _ = stats_refresh.load(app)
    assert summaries["classifying"].sample_count == 1 and sketches["selecting_strategy"].count == 1
    # the counts from the tally agree with a full scan
    tallied = monitor.get_health(app, fresh=True)["counts_by_state"]
    with app.db.read() as conn:
        scanned = health_store.count_all_states(conn)
    assert {k: v for k, v in tallied.items() if v} == scanned


def test_timed_out_worker_is_orphaned_and_recovered_at_once(app, clock):
    """A worker that stopped heartbeating (SIGKILLed): simulated by letting its lease run out."""
    pid, _ = start(app, n=1, to=S.CLASSIFYING)
    add_worker(app, "w1", current=pid)
    clock.advance(app.settings.lease_seconds + 1)
    r = monitor.get_health(app, fresh=True)
    assert [(s["id"], s["reason"]) for s in r["stuck"]] == [(pid, "orphaned")] and r["orphaned"] == 1
    assert r["active"] == 0 and r["workers"] == []
    out = tasks.recover_stuck(app)
    assert out["recovered"] == [pid]
    p = app.pipelines.get(pid)
    assert p.state is S.NEEDS_RETRY and p.retry_stage == "classifying" and p.auto_recovery_count == 1
    assert p.lease_owner is None
    with app.db.read() as conn:
        audit = conn.execute(sa.select(schema.approval_audit)).all()
    assert [(a.action, a.actor, a.pipeline_id) for a in audit] == [("STUCK_RECOVERED", "system:health_monitor", pid)]
    assert audit[0].before_state["minutes_in_state"] > 2 and audit[0].after_state["action"] == "retry"
    with pytest.raises(errors.Conflict):  # the worker wakes up: it cannot overwrite the recovered book
        app.pipelines.transition(pid, S.SELECTING_STRATEGY, expect=S.CLASSIFYING, actor=W, owner="w1")
    with pytest.raises(errors.LeaseLost):
        app.pipelines.heartbeat(pid, "w1", lease_seconds=60)


def test_processing_rule_recovers_after_60_min_then_caps(app, clock):
    pid, _ = start(app, n=1, to=S.PROCESSING)
    for round_ in range(3):
        keep_alive(app, clock, pid, 61)
        out = recovery.recover_stuck(app)
        if round_ < 2:
            assert [r["id"] for r in out["recovered"]] == [pid]
            assert app.pipelines.get(pid).auto_recovery_count == round_ + 1
            claimed = app.pipelines.claim_next("w1", lease_seconds=120, states_=[S.NEEDS_RETRY])
            app.pipelines.transition(claimed.id, S.PROCESSING, expect=S.NEEDS_RETRY, actor=W, owner="w1")
        else:
            assert out["recovered"] == [] and out["alerted"][0]["id"] == pid and "max 2" in out["alerted"][0]["reason"]
            assert app.pipelines.get(pid).state is S.PROCESSING


def test_recovery_compare_and_set_loses_to_a_worker_that_moved_on(app, clock):
    pid, _ = start(app, n=1, to=S.PROCESSING)
    keep_alive(app, clock, pid, 61)
    found = monitor.find_stuck(app)["stuck"]
    assert [s.id for s in found] == [pid]
    app.pipelines.transition(pid, S.VALIDATING, expect=S.PROCESSING, actor=W, owner="w1")  # it finished meanwhile
    with pytest.raises(errors.StaleState):
        recovery._apply(app, found[0], "retry", "system:health_monitor", "test")
    assert app.pipelines.get(pid).state is S.VALIDATING and app.pipelines.get(pid).auto_recovery_count == 0


@pytest.mark.parametrize("action,state", [("retry", S.NEEDS_RETRY), ("reject", S.REJECTED), ("reset", S.DETECTED)])
def test_recover_one_by_hand(app, clock, action, state):
    pid, _ = start(app, n=1, to=S.HASHING)
    keep_alive(app, clock, pid, 5)
    if action != "retry":
        with pytest.raises(errors.InputError, match="needs a reason"):
            recovery.recover_one(app, pid, action, actor="human:alice")
    out = recovery.recover_one(app, pid, action, actor="human:alice", reason="stuck on a bad mount")
    assert (out["to"], out["actor"], out["stuck_minutes"]) == (state.value, "human:alice", 5.0)
    assert out["reason"] == f"recovered by hand: {action}: stuck on a bad mount"
    assert app.pipelines.get(pid).state is state
    with pytest.raises(errors.InputError):
        recovery.recover_one(app, pid, "explode", actor="human:alice")


def test_a_book_on_time_under_a_live_lease_is_not_taken_by_hand_unless_forced(app, clock):
    pid, _ = start(app, n=1, to=S.HASHING)
    clock.advance(5)  # 5 s into HASHING: on time, lease live
    with pytest.raises(errors.PolicyDenied, match="not stuck.*holds its lease"):
        recovery.recover_one(app, pid, "reject", actor="human:alice", reason="looks stuck to me")
    p = app.pipelines.get(pid)
    assert p.state is S.HASHING and p.lease_owner == "w1" and p.auto_recovery_count == 0
    out = recovery.recover_one(app, pid, "reset", actor="human:alice", reason="worker host is gone", force=True)
    assert out["to"] == "detected" and app.pipelines.get(pid).lease_owner is None


def test_status_shows_stuck_with_minutes_and_expected(app, clock):
    pid, _ = start(app, n=1, to=S.HASHING)
    assert status.describe(app, pid)["stuck"] is None
    keep_alive(app, clock, pid, 3)
    info = status.describe(app, pid)["stuck"]
    assert info["minutes_in_state"] == 3.0 and info["expected_minutes"] == 1.0


def test_metrics_text(app, clock):
    pid, _ = start(app, n=3, to=S.HASHING)
    clock.advance(30)
    app.pipelines.transition(pid, S.CLASSIFYING, expect=S.HASHING, actor=W, owner="w1")
    clock.advance(health_store.WATERMARK_LAG_SECONDS + 1)
    tasks.refresh_stats(app)
    body, ctype = metrics.render(app)
    text = body.decode()
    assert ctype.startswith("text/plain")
    assert 'agentic_pipeline_pipelines{state="detected"} 2.0' in text
    assert 'agentic_pipeline_queued_by_priority{priority="5"} 2.0' in text
    assert "agentic_pipeline_completed_total 0.0" in text and "agentic_pipeline_recovered_total 0.0" in text
    assert 'agentic_pipeline_state_duration_seconds_bucket{le="60.0",state="hashing"} 1.0' in text
    assert "agentic_pipeline_workers 0.0" in text and "agentic_pipeline_stuck 0.0" in text


def test_recovered_total_never_goes_down_when_retention_prunes_the_audit_entries(app, clock):
    from agentic_pipeline.audit import retention

    pid, _ = start(app, n=1, to=S.PROCESSING)
    keep_alive(app, clock, pid, 61)
    assert recovery.recover_stuck(app, actor="system:health_monitor")["recovered"][0]["id"] == pid

    def recovered():
        line = [l for l in metrics.render(app)[0].decode().splitlines() if l.startswith("agentic_pipeline_recovered_total")]
        return float(line[0].split()[-1])

    assert recovered() == 1.0
    clock.advance(days=400)  # past every default retention period
    assert retention.prune(app, execute=True)["by_action"].get("STUCK_RECOVERED") == 1
    assert recovered() == 1.0


def test_postgres_stats_wait_for_a_history_row_whose_transaction_stays_open_past_the_lag(db_url):
    """A transaction that wrote a history row and is still open must not be passed by the watermark."""
    import threading

    from agentic_pipeline.clock import FakeClock
    from tests.conftest import open_app

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: a history row is visible in id order")
    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    app, other = open_app(db_url, clock), open_app(db_url, clock)
    try:
        slow = app.pipelines.create(source_path="/b/slow", actor="human:t").id
        fast = app.pipelines.create(source_path="/b/fast", actor="human:t").id
        tasks.refresh_stats(app)
        wrote, release, done = threading.Event(), threading.Event(), threading.Event()

        def long_transaction():
            with other.db.write() as conn:  # writes its history row, then stays open (e.g. behind a lock)
                other.pipelines.transition(slow, S.REJECTED, expect=S.DETECTED, actor="human:t", conn=conn)
                wrote.set()
                release.wait(30)
            done.set()

        thread = threading.Thread(target=long_transaction)
        thread.start()
        assert wrote.wait(30)
        app.pipelines.transition(fast, S.REJECTED, expect=S.DETECTED, actor="human:t")  # commits after it
        clock.advance(health_store.WATERMARK_LAG_SECONDS * 6)  # both rows are older than the lag now
        tasks.refresh_stats(app)  # sees only the fast row: must not move past the slow one
        release.set()
        assert done.wait(30)
        thread.join()
        clock.advance(health_store.WATERMARK_LAG_SECONDS * 6)
        tasks.refresh_stats(app)
        assert monitor.get_health(app, fresh=True)["counts_by_state"]["rejected"] == 2
    finally:
        app.close()
        other.close()
