"""Statistical stuck detection (pure): thresholds from observed durations, decisions from ``now``.

Expected seconds per working state = the design's default (``Settings.expected_seconds``) until
the state has ``Settings.stuck_min_samples`` duration samples, then the observed median. A book
is stuck when its time in the state exceeds expected × ``Settings.stuck_multiplier``.

* Working states only. DETECTED and APPROVED are queues and PENDING_APPROVAL waits for a
  human: they are reported as waiting, with the oldest age, never as stuck.
* NEEDS_RETRY is stuck only when it is overdue: ``now`` is past ``next_attempt_at`` by more than
  expected × multiplier of the stage it will retry (``retry_stage``; the largest expectation when
  unknown). A retry that is merely scheduled for later is never stuck.
* A working book whose lease has expired is ``orphaned`` (its worker died): reported at once,
  whatever the threshold says, so the maintenance worker can recover it without waiting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Iterable, Mapping

from agentic_pipeline.pipeline import states

S = states.State
STUCK_STATES = frozenset(states.WORKING)


@dataclasses.dataclass(frozen=True)
class Threshold:
    """How long a state normally takes and when a book in it counts as stuck."""

    state: str
    expected_seconds: float
    source: str  # "default" or "median"
    samples: int
    limit_seconds: float


@dataclasses.dataclass(frozen=True)
class StuckBook:
    id: int
    state: str
    minutes_in_state: float
    expected_minutes: float
    expected_source: str
    limit_minutes: float
    reason: str  # "over_threshold", "orphaned" or "retry_overdue"
    lease_owner: str | None
    auto_recovery_count: int
    retry_count: int
    title: str | None = None
    #: the row as read, for the compare-and-set of recovery
    seen: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def orphaned(self) -> bool:
        return self.reason == "orphaned"

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "seen"}
        for key in ("minutes_in_state", "expected_minutes", "limit_minutes"):
            d[key] = round(d[key], 2)
        return d


def thresholds(stats: Mapping[str, Any], settings) -> dict[str, Threshold]:
    """Per working state: defaults until ``stuck_min_samples`` samples, then the observed median.

    The limit is ``expected × stuck_multiplier``, but never under ``stuck_floor_seconds``: a stage
    whose median is a few milliseconds would otherwise call a healthy book stuck one second in
    (heartbeats come every 15 s; nothing finer is meaningful).
    """
    out = {}
    for state in sorted(STUCK_STATES, key=lambda s: s.value):
        name = state.value
        st = stats.get(name)
        samples = st.sample_count if st is not None else 0
        if st is not None and samples >= settings.stuck_min_samples and st.median_seconds:
            expected, source = float(st.median_seconds), "median"
        else:
            expected, source = float(settings.expected_seconds[name]), "default"
        limit = max(expected * settings.stuck_multiplier, float(settings.stuck_floor_seconds))
        out[name] = Threshold(name, expected, source, samples, limit)
    return out


def min_limit_seconds(limits: Mapping[str, Threshold]) -> float:
    """The smallest limit: rows that entered their state more recently than this cannot be stuck."""
    return min(t.limit_seconds for t in limits.values())


def check(row: Mapping[str, Any], limits: Mapping[str, Threshold], now: dt.datetime) -> StuckBook | None:
    """Whether one pipeline row (state, state_entered_at, lease, next_attempt_at...) is stuck."""
    state = S(row["state"])
    in_state = (now - row["state_entered_at"]).total_seconds()
    if state in STUCK_STATES:
        t = limits[state.value]
        expires = row.get("lease_expires_at")
        if row.get("lease_owner") is not None and expires is not None and expires < now:
            return _stuck(row, t, in_state, "orphaned")
        return _stuck(row, t, in_state, "over_threshold") if in_state > t.limit_seconds else None
    if state is S.NEEDS_RETRY and row.get("next_attempt_at") is not None:
        t = _retry_threshold(row.get("retry_stage"), limits)
        overdue = (now - row["next_attempt_at"]).total_seconds()
        return _stuck(row, t, in_state, "retry_overdue") if overdue > t.limit_seconds else None
    return None  # queues, approval, terminal states: never stuck


def detect(rows: Iterable[Mapping[str, Any]], limits: Mapping[str, Threshold], now: dt.datetime) -> list[StuckBook]:
    """Every stuck book among ``rows``, orphans first, then the longest in state."""
    found = [s for s in (check(r, limits, now) for r in rows) if s is not None]
    return sorted(found, key=lambda s: (not s.orphaned, -s.minutes_in_state, s.id))


def _retry_threshold(retry_stage: str | None, limits: Mapping[str, Threshold]) -> Threshold:
    if retry_stage in limits:
        return limits[retry_stage]
    return max(limits.values(), key=lambda t: t.limit_seconds)


def _stuck(row: Mapping[str, Any], t: Threshold, in_state: float, reason: str) -> StuckBook:
    return StuckBook(
        id=int(row["id"]), state=S(row["state"]).value, minutes_in_state=in_state / 60,
        expected_minutes=t.expected_seconds / 60, expected_source=t.source, limit_minutes=t.limit_seconds / 60,
        reason=reason, lease_owner=row.get("lease_owner"), auto_recovery_count=int(row.get("auto_recovery_count") or 0),
        retry_count=int(row.get("retry_count") or 0), title=row.get("title"), seen=dict(row),
    )
