"""The autonomy policy is pure and fails closed: every denial reason, and the one way to a yes."""

from __future__ import annotations

import pytest

from agentic_pipeline.approval import policy

PARTIAL = policy.Config(mode="partial", partial_threshold=0.9, daily_cap=5)
CONFIDENT = policy.Config(mode="confident", type_thresholds={"literature": 0.8}, daily_cap=5)


def decide(cfg=PARTIAL, book_type="literature", confidence=0.95, passed=True, today=0):
    return policy.decide(cfg, book_type=book_type, confidence=confidence, validation_passed=passed,
                         approvals_today=today)


def test_approves_a_known_type_above_the_threshold():
    d = decide()
    assert d.approve and d.threshold == 0.9
    assert decide(CONFIDENT, confidence=0.81).approve


@pytest.mark.parametrize("kwargs, reason", [
    ({"cfg": policy.Config()}, policy.SUPERVISED),
    ({"cfg": policy.Config(mode="partial", escape_hatch=True)}, policy.ESCAPE_HATCH),
    ({"cfg": policy.Config(mode="yolo")}, policy.INVALID_CONFIG),
    ({"cfg": policy.Config(mode="partial", daily_cap=-1)}, policy.INVALID_CONFIG),
    ({"cfg": policy.Config(mode="partial", partial_threshold=0)}, policy.INVALID_CONFIG),
    ({"cfg": policy.Config(mode="partial", partial_threshold=float("nan"))}, policy.INVALID_CONFIG),
    ({"passed": False}, policy.NOT_VALIDATED),
    ({"passed": None}, policy.NOT_VALIDATED),
    ({"book_type": "unknown"}, policy.UNKNOWN_TYPE),
    ({"book_type": None}, policy.UNKNOWN_TYPE),
    ({"confidence": None}, policy.NO_CONFIDENCE),
    ({"confidence": float("nan")}, policy.NO_CONFIDENCE),
    ({"confidence": 1.5}, policy.NO_CONFIDENCE),
    ({"confidence": "0.99"}, policy.NO_CONFIDENCE),
    ({"cfg": CONFIDENT, "book_type": "textbook"}, policy.NO_THRESHOLD),
    ({"confidence": 0.89}, policy.BELOW_THRESHOLD),
    ({"today": 5}, policy.DAILY_CAP),
])
def test_every_denial_reason(kwargs, reason):
    d = decide(**kwargs)
    assert not d.approve and d.reason == reason


def test_a_malformed_row_reads_as_supervised():
    assert policy.config_from_row(None).mode == "supervised"
    assert policy.config_from_row({"mode": "partial", "thresholds": "garbage"}).mode == "supervised"
    cfg = policy.config_from_row({"mode": "partial", "thresholds": {"partial": 0.97}, "daily_cap": 3,
                                  "escape_hatch_at": None})
    assert (cfg.mode, cfg.partial_threshold, cfg.daily_cap, cfg.escape_hatch) == ("partial", 0.97, 3, False)


@pytest.mark.parametrize("cfg, expected", [
    (policy.Config(), False),
    (policy.Config(mode="partial", escape_hatch=True), False),
    (PARTIAL, True),
    (CONFIDENT, True),
])
def test_may_approve_any_is_false_exactly_when_every_book_is_refused(cfg, expected):
    assert policy.may_approve_any(cfg) is expected
    if not expected:  # the shortcut never hides a yes: decide refuses the best possible book too
        assert not decide(cfg, confidence=1.0).approve


def test_enable_refuses_options_that_do_not_apply_to_the_mode(sqlite_app):
    from agentic_pipeline import errors
    from agentic_pipeline.approval import autonomy

    with pytest.raises(errors.InputError, match="confident mode"):
        autonomy.enable(sqlite_app, "partial", actor="human:a", thresholds={"literature": 0.5})
    with pytest.raises(errors.InputError, match="partial mode"):
        autonomy.enable(sqlite_app, "confident", actor="human:a", threshold=0.3)
    assert autonomy.status(sqlite_app)["mode"] == "supervised"  # nothing changed
