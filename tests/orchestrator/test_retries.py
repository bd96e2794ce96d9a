"""Pure retry decisions: backoff with jitter, permanent vs transient, max attempts; the fault plan port."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given, strategies as st

from agentic_pipeline import config, errors
from agentic_pipeline.orchestrator import faults, retries
from agentic_pipeline.pipeline.states import State

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@given(st.integers(1, 30), st.floats(0, 0.999999))
def test_backoff_is_bounded_and_jittered(attempt, r):
    delay = retries.backoff_seconds(attempt, base=30, cap=3600, random=lambda: r)
    full = min(3600, 30 * 2 ** (attempt - 1))
    assert full / 2 <= delay < full + 1e-9


def test_backoff_grows_and_jitter_spreads():
    lows = [retries.backoff_seconds(a, base=30, cap=3600, random=lambda: 0.0) for a in (1, 2, 3, 4)]
    assert lows == [15, 30, 60, 120]
    rng = random.Random(1)
    spread = {round(retries.backoff_seconds(3, base=30, cap=3600, random=rng.random), 3) for _ in range(20)}
    assert len(spread) > 10


def test_transient_failure_goes_to_needs_retry_at_that_stage():
    d = retries.decide_failure(errors.StageTimeout("slow"), stage=State.EMBEDDING, retry_count=0, max_attempts=3,
                               now=NOW, base=30, cap=3600, random=lambda: 0.5)
    assert d.to is State.NEEDS_RETRY and not d.permanent
    assert d.updates["retry_stage"] == "embedding" and d.updates["error_stage"] == "embedding"
    assert d.updates["retry_count"] == 1 and d.updates["next_attempt_at"] == NOW + dt.timedelta(seconds=22.5)


def test_permanent_failure_is_rejected_without_retry():
    d = retries.decide_failure(errors.PasswordProtected("password protected: x.pdf"), stage=State.CLASSIFYING,
                               retry_count=0, max_attempts=3, now=NOW, base=30, cap=3600)
    assert d.to is State.REJECTED and d.permanent and "retry_count" not in d.updates
    assert d.updates["error"].startswith("password protected")


def test_max_attempts_ends_in_failed():
    d = retries.decide_failure(RuntimeError("boom"), stage=State.PROCESSING, retry_count=2, max_attempts=3,
                               now=NOW, base=30, cap=3600)
    assert d.to is State.FAILED and d.updates["retry_count"] == 3 and d.updates["error"] == "RuntimeError: boom"


class _P:
    def __init__(self, retry_count):
        self.row = {"retry_count": retry_count}


def test_fault_plan_counts_attempts_by_retry_count():
    plan = faults.FaultPlan({"processing": {"kind": "transient", "times": 2}, "hashing": {"kind": "permanent"}})
    with pytest.raises(faults.InjectedFault):
        plan.before("processing", _P(1))
    plan.before("processing", _P(2))
    plan.before("classifying", _P(0))
    with pytest.raises(errors.BookError):
        plan.before("hashing", _P(5))


def test_fault_plan_from_env():
    assert faults.parse(config.load(environ={}).faults) is None
    settings = config.load(environ={faults.ENV: '{"embedding": {"kind": "sleep"}}'})
    assert faults.parse(settings.faults).rules["embedding"]["kind"] == "sleep"
    with pytest.raises(errors.ConfigError):
        faults.parse("{nope")
