"""The autonomy policy: may this validated book be approved without a human? (pure, fail closed)

Modes: ``supervised`` (never), ``partial`` (known types at or above one threshold), ``confident``
(a threshold per type). Anything missing, unknown or malformed means "no": an unknown type, a
confidence that is not a number in [0, 1], a validation that did not pass, a threshold outside
(0, 1], the escape hatch, the daily cap. Every "no" says why, so the book's status can show it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

MODES = ("supervised", "partial", "confident")
DEFAULT_PARTIAL_THRESHOLD = 0.95
DEFAULT_DAILY_CAP = 50
#: per-type thresholds for ``confident`` mode when none are given
DEFAULT_TYPE_THRESHOLDS = {
    "technical_tutorial": 0.92, "technical_reference": 0.92, "textbook": 0.93, "literature": 0.90,
    "narrative_nonfiction": 0.95, "periodical": 0.95, "academic_paper": 0.93,
}
KNOWN_TYPES = frozenset(DEFAULT_TYPE_THRESHOLDS)

# denial reasons (stable strings: tests and status output use them)
SUPERVISED = "supervised"
ESCAPE_HATCH = "escape_hatch"
INVALID_CONFIG = "invalid_config"
NOT_VALIDATED = "validation_not_passed"
UNKNOWN_TYPE = "unknown_type"
NO_CONFIDENCE = "no_confidence"
NO_THRESHOLD = "no_threshold_for_type"
BELOW_THRESHOLD = "below_threshold"
DAILY_CAP = "daily_cap_reached"


@dataclasses.dataclass(frozen=True)
class Config:
    mode: str = "supervised"
    partial_threshold: float = DEFAULT_PARTIAL_THRESHOLD
    type_thresholds: Mapping[str, float] = dataclasses.field(default_factory=dict)
    daily_cap: int = DEFAULT_DAILY_CAP
    escape_hatch: bool = False


@dataclasses.dataclass(frozen=True)
class Decision:
    approve: bool
    reason: str
    threshold: float | None = None


def may_approve_any(config: Config) -> bool:
    """False when ``decide`` refuses every book whatever it is (escape hatch, supervised): no need to look closer."""
    return not config.escape_hatch and config.mode != "supervised"


def decide(config: Config, *, book_type: str | None, confidence: Any, validation_passed: Any,
           approvals_today: int) -> Decision:
    """Approve automatically only when every check passes; otherwise the first reason it does not."""
    if config.escape_hatch:
        return Decision(False, ESCAPE_HATCH)
    if config.mode == "supervised":
        return Decision(False, SUPERVISED)
    if config.mode not in MODES or not _valid_cap(config.daily_cap):
        return Decision(False, INVALID_CONFIG)
    if validation_passed is not True:
        return Decision(False, NOT_VALIDATED)
    if book_type not in KNOWN_TYPES:
        return Decision(False, UNKNOWN_TYPE)
    if not _unit_number(confidence):
        return Decision(False, NO_CONFIDENCE)
    threshold = config.partial_threshold if config.mode == "partial" else config.type_thresholds.get(book_type)
    if threshold is None:
        return Decision(False, NO_THRESHOLD)
    if not _valid_threshold(threshold):
        return Decision(False, INVALID_CONFIG)
    if float(confidence) < float(threshold):
        return Decision(False, BELOW_THRESHOLD, float(threshold))
    if approvals_today >= config.daily_cap:
        return Decision(False, DAILY_CAP, float(threshold))
    return Decision(True, "approved", float(threshold))


def _unit_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _valid_threshold(value: Any) -> bool:
    return _unit_number(value) and value > 0


def _valid_cap(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def config_from_row(row: Mapping[str, Any] | None) -> Config:
    """The stored row as a Config; a malformed row reads as supervised (fail closed)."""
    if not row:
        return Config()
    doc = row.get("thresholds") or {}
    try:
        return Config(mode=row.get("mode") or "supervised",
                      partial_threshold=doc.get("partial", DEFAULT_PARTIAL_THRESHOLD),
                      type_thresholds=dict(doc.get("per_type") or {}),
                      daily_cap=row.get("daily_cap") if row.get("daily_cap") is not None else DEFAULT_DAILY_CAP,
                      escape_hatch=row.get("escape_hatch_at") is not None)
    except (AttributeError, TypeError, ValueError):
        return Config(mode="supervised")
