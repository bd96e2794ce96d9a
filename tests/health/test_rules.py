"""Pure rules: thresholds, what is never stuck, recovery decisions and caps, every alert."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from agentic_pipeline import config
from agentic_pipeline.health import alerts, recovery, stats, stuck_detector
from agentic_pipeline.pipeline.states import State as S

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
SETTINGS = config.Settings()


def row(state, minutes, pid=1, **extra):
    base = {"id": pid, "state": state.value, "state_entered_at": NOW - dt.timedelta(minutes=minutes),
            "lease_owner": "w1", "lease_expires_at": NOW + dt.timedelta(seconds=60), "retry_count": 0,
            "auto_recovery_count": 0, "next_attempt_at": None, "retry_stage": None, "title": None}
    return {**base, **extra}


def sketch_of(seconds: list[float]) -> stats.StateStats:
    sk = stats.Sketch()
    for s in seconds:
        sk.add(stats.bucket_of(s), 1, s)
    return stats.summarize("processing", sk)


def test_thresholds_use_design_defaults_until_min_samples_then_median():
    limits = stuck_detector.thresholds({}, SETTINGS)
    assert limits["processing"].expected_seconds == 900 and limits["processing"].source == "default"
    assert limits["processing"].limit_seconds == 1800
    assert limits["selecting_strategy"].expected_seconds == 30
    few = {"processing": sketch_of([300.0] * 99)}
    assert stuck_detector.thresholds(few, SETTINGS)["processing"].source == "default"
    enough = {"processing": sketch_of([300.0] * 100)}
    t = stuck_detector.thresholds(enough, SETTINGS)["processing"]
    assert t.source == "median" and t.samples == 100
    assert t.expected_seconds == pytest.approx(300, rel=0.025)
    assert t.limit_seconds == pytest.approx(600, rel=0.025)


def test_a_tiny_median_never_makes_a_limit_under_the_floor():
    fast = {"processing": sketch_of([0.05] * 100)}
    t = stuck_detector.thresholds(fast, SETTINGS)["processing"]
    assert t.source == "median" and t.expected_seconds < 0.1
    assert t.limit_seconds == SETTINGS.stuck_floor_seconds == 30.0
    one_second_in = row(S.PROCESSING, 1 / 60)
    assert stuck_detector.check(one_second_in, stuck_detector.thresholds(fast, SETTINGS), NOW) is None
    hung = row(S.PROCESSING, 1)  # a minute in a 50 ms stage, lease live: stuck
    assert stuck_detector.check(hung, stuck_detector.thresholds(fast, SETTINGS), NOW).reason == "over_threshold"


def test_sketch_quantiles_are_within_bucket_accuracy():
    import random

    rng = random.Random(3)
    data = [rng.lognormvariate(5, 0.8) for _ in range(5000)]
    sk = stats.Sketch()
    for d in data:
        sk.add(stats.bucket_of(d), 1, d)
    exact = sorted(data)
    assert sk.quantile(0.5) == pytest.approx(exact[2499], rel=0.03)
    assert sk.quantile(0.95) == pytest.approx(exact[int(0.95 * 4999)], rel=0.03)
    assert sk.max_seconds == max(data)
    assert stats.Sketch.from_json(sk.to_json()) == sk


@pytest.mark.parametrize("state", [S.DETECTED, S.APPROVED, S.PENDING_APPROVAL, S.COMPLETE, S.FAILED,
                                   S.REJECTED, S.DUPLICATE, S.ARCHIVED])
def test_queued_waiting_and_terminal_books_are_never_stuck(state):
    limits = stuck_detector.thresholds({}, SETTINGS)
    old = row(state, minutes=60 * 24 * 30, lease_owner=None, lease_expires_at=None)
    assert stuck_detector.check(old, limits, NOW) is None


def test_needs_retry_is_stuck_only_when_overdue():
    limits = stuck_detector.thresholds({}, SETTINGS)
    scheduled = row(S.NEEDS_RETRY, 600, lease_owner=None, lease_expires_at=None, retry_stage="processing",
                    next_attempt_at=NOW + dt.timedelta(hours=1))
    assert stuck_detector.check(scheduled, limits, NOW) is None
    due_recently = {**scheduled, "next_attempt_at": NOW - dt.timedelta(minutes=29)}
    assert stuck_detector.check(due_recently, limits, NOW) is None
    overdue = {**scheduled, "next_attempt_at": NOW - dt.timedelta(minutes=31)}
    assert stuck_detector.check(overdue, limits, NOW).reason == "retry_overdue"


def test_working_book_over_limit_is_stuck_and_expired_lease_is_orphaned_at_once():
    limits = stuck_detector.thresholds({}, SETTINGS)
    assert stuck_detector.check(row(S.PROCESSING, 29), limits, NOW) is None
    s = stuck_detector.check(row(S.PROCESSING, 31), limits, NOW)
    assert (s.reason, round(s.minutes_in_state), s.expected_minutes) == ("over_threshold", 31, 15)
    dead = row(S.PROCESSING, 3, lease_expires_at=NOW - dt.timedelta(seconds=1))
    assert stuck_detector.check(dead, limits, NOW).orphaned


def stuck(state, minutes, count=0, reason="over_threshold"):
    limits = stuck_detector.thresholds({}, SETTINGS)
    return stuck_detector._stuck(row(state, minutes, auto_recovery_count=count), limits[state.value],
                                 minutes * 60, reason)


@pytest.mark.parametrize("state,minutes,action", [
    (S.PROCESSING, 59, "alert"), (S.PROCESSING, 61, "retry"),
    (S.EMBEDDING, 29, "alert"), (S.EMBEDDING, 31, "retry"),
    (S.HASHING, 600, "alert"), (S.CLASSIFYING, 600, "alert"), (S.VALIDATING, 600, "alert"),
])
def test_recovery_rules_per_state(state, minutes, action):
    assert recovery.decide(stuck(state, minutes), SETTINGS).action == action


def test_recovery_cap_then_alert_only_for_rules_and_orphans():
    assert recovery.decide(stuck(S.PROCESSING, 90, count=1), SETTINGS).action == "retry"
    capped = recovery.decide(stuck(S.PROCESSING, 90, count=2), SETTINGS)
    assert capped.action == "alert" and "max 2" in capped.reason
    assert recovery.decide(stuck(S.HASHING, 5, count=0, reason="orphaned"), SETTINGS).action == "retry"
    assert recovery.decide(stuck(S.HASHING, 5, count=2, reason="orphaned"), SETTINGS).action == "alert"
    custom = SETTINGS.replace(max_auto_recoveries=5, recovery_minutes={"processing": 10})
    assert recovery.decide(stuck(S.PROCESSING, 40, count=4), custom).action == "retry"
    assert recovery.decide(stuck(S.EMBEDDING, 400, count=0), custom).action == "alert"


def inputs(**kw):
    base = dict(stuck=[], queued=0, live_workers=1, finished_recent=100, failed_recent=0,
                last_progress_at=NOW, disk_free_bytes=10 * 1024**3)
    return alerts.AlertInputs(**{**base, **kw})


def codes(**kw):
    return sorted(a.code for a in alerts.evaluate(inputs(**kw), NOW, SETTINGS))


def test_no_alerts_when_all_is_well():
    assert codes() == [] and alerts.overall([]) == "healthy"


def test_stuck_pipeline_alert_one_per_book():
    found = alerts.evaluate(inputs(stuck=[stuck(S.PROCESSING, 40), stuck(S.EMBEDDING, 40)]), NOW, SETTINGS)
    assert [a.code for a in found] == ["stuck_pipeline"] * 2
    assert found[0].severity == "warning" and found[0].ids == (1,)


def test_high_failure_rate_alert():
    assert codes(failed_recent=21) == ["high_failure_rate"]
    assert codes(failed_recent=20) == []
    assert codes(finished_recent=5, failed_recent=5) == []  # too few to judge


def test_queue_backup_alert_is_info():
    found = alerts.evaluate(inputs(queued=101), NOW, SETTINGS)
    assert [(a.code, a.severity) for a in found] == [("queue_backup", "info")]
    assert alerts.overall(found) == "healthy"
    assert codes(queued=100) == []


def test_worker_idle_alert():
    idle = NOW - dt.timedelta(minutes=61)
    assert codes(queued=5, last_progress_at=idle) == ["worker_idle"]
    assert codes(queued=5, last_progress_at=NOW - dt.timedelta(minutes=59)) == []
    assert codes(queued=0, last_progress_at=idle) == []


def test_disk_space_low_alert_is_critical():
    found = alerts.evaluate(inputs(disk_free_bytes=512 * 1024**2), NOW, SETTINGS)
    assert [(a.code, a.severity) for a in found] == [("disk_space_low", "critical")]
    assert alerts.overall(found) == "critical"
    assert codes(disk_free_bytes=None) == []  # PostgreSQL: not checked


def test_no_workers_alert():
    assert codes(queued=3, live_workers=0) == ["no_workers"]
    assert codes(queued=0, live_workers=0) == []
    # approved books to embed and due retries are work waiting for a worker too
    assert codes(queued=0, workable=3, live_workers=0) == ["no_workers"]
    assert codes(queued=0, workable=2, last_progress_at=NOW - dt.timedelta(minutes=61)) == ["worker_idle"]


def test_many_stuck_books_are_one_alert_with_a_count_and_the_first_ids():
    many = [dataclasses.replace(stuck(S.PROCESSING, 40 + i), id=i + 1) for i in range(5000)]
    found = alerts.evaluate(inputs(stuck=many), NOW, SETTINGS)
    assert [a.code for a in found] == ["stuck_pipeline"]
    (alert,) = found
    assert alert.message.startswith("5000 pipelines stuck (5000 processing)")
    assert alert.ids == tuple(range(5000, 4990, -1))  # the longest stuck first, ten of them
