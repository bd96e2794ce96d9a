"""State-duration statistics kept incrementally from ``pipeline_state_history``.

Each state has a row in ``state_duration_stats`` whose ``sketch`` JSON holds a log-bucketed
histogram of durations (bucket ``i`` covers ``[GROWTH**i, GROWTH**(i+1))`` seconds) plus tallies:
how many history rows entered the state and how many pipelines were in it at the watermark
``last_history_id``. A refresh reads only the history rows after the watermark, so its cost
is proportional to what happened since the last refresh, not to the 8M rows already seen.

Accuracy: a quantile is reported as the geometric middle of its bucket, so it is within
``(sqrt(GROWTH) - 1)`` ≈ 2.5 % of the exact order statistic; ``max_seconds`` is exact; counts are
exact. Durations below 1 ms are counted as 1 ms.

What counts as a sample: for a working state, only exits to its next stage on success (a
stage that crashed or was recovered says nothing about how long the stage normally takes);
for other states, every exit. The median is over all samples ever seen; delete a state's
row to start it over.

This module is the sketch math only (pure); ``health.stats_refresh`` reads and writes the sketches
through ``db.health_store``, handing it the bucket width (``GROWTH``) as a number.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

from agentic_pipeline.pipeline import states

GROWTH = 1.05
MIN_SECONDS = 0.001
LN_GROWTH = math.log(GROWTH)


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration (the SQL in db/health_store.py computes the same)."""
    return math.floor(math.log(max(float(seconds), MIN_SECONDS)) / LN_GROWTH)


def bucket_value(index: int) -> float:
    """The representative duration of a bucket: its geometric middle."""
    return GROWTH ** (index + 0.5)


@dataclasses.dataclass
class Sketch:
    """A mergeable log histogram of one state's durations plus its tallies."""

    buckets: dict[int, int] = dataclasses.field(default_factory=dict)
    max_seconds: float | None = None
    entered: int = 0
    count: int = 0

    @property
    def samples(self) -> int:
        return sum(self.buckets.values())

    def add(self, bucket: int, n: int = 1, max_seconds: float | None = None) -> None:
        self.buckets[bucket] = self.buckets.get(bucket, 0) + n
        if max_seconds is not None:
            self.max_seconds = max_seconds if self.max_seconds is None else max(self.max_seconds, max_seconds)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) within one bucket's width; None without samples."""
        total = self.samples
        if total == 0:
            return None
        rank = q * (total - 1)
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen > rank:
                value = bucket_value(index)
                return min(value, self.max_seconds) if self.max_seconds is not None else value
        return self.max_seconds

    def to_json(self) -> dict[str, Any]:
        return {"b": {str(k): v for k, v in sorted(self.buckets.items())}, "max": self.max_seconds,
                "entered": self.entered, "count": self.count, "growth": GROWTH}

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> "Sketch":
        doc = doc or {}
        return cls(buckets={int(k): int(v) for k, v in (doc.get("b") or {}).items()}, max_seconds=doc.get("max"),
                   entered=int(doc.get("entered") or 0), count=int(doc.get("count") or 0))


@dataclasses.dataclass(frozen=True)
class StateStats:
    """What stuck detection needs about one state."""

    state: str
    sample_count: int
    median_seconds: float | None
    p95_seconds: float | None
    max_seconds: float | None


def is_sample(from_state: str | None, to_state: str) -> bool:
    """Whether the time spent in ``from_state`` before moving to ``to_state`` is a duration sample."""
    if from_state is None:
        return False
    src = states.State(from_state)
    if src in states.WORKING:
        return states.NEXT_ON_SUCCESS.get(src) == states.State(to_state)
    return True


def apply_groups(sketches: dict[str, Sketch], groups: Iterable[tuple]) -> None:
    """Fold aggregated history rows ``(from_state, to_state, bucket, n, max_seconds)`` into the sketches."""
    for from_state, to_state, bucket, n, max_seconds in groups:
        dst = sketches.setdefault(to_state, Sketch())
        dst.entered += n
        dst.count += n
        if from_state is not None:
            src = sketches.setdefault(from_state, Sketch())
            src.count -= n
            if bucket is not None and is_sample(from_state, to_state):
                src.add(int(bucket), n, max_seconds)


def summarize(state: str, sketch: Sketch) -> StateStats:
    return StateStats(state=state, sample_count=sketch.samples, median_seconds=sketch.quantile(0.5),
                      p95_seconds=sketch.quantile(0.95), max_seconds=sketch.max_seconds)
