"""Simulation with a fake clock: thousands of books, log-normal stage durations, some truly hung.

Books start every few seconds and go through the six working stages; each stage takes a
log-normal time whose median is the design's expectation (sigma 0.25: the slowest of 100 runs
of a stage takes about 1.8x its median). 2 % of books hang in one
stage forever. Every 10 simulated seconds stuck detection runs over the books in flight, with
thresholds learned from the finished stages (the same sketch the database keeps). Every hung book
must be flagged within 2x its state's expected duration (plus the 10 s between checks and the
sketch's 2.5 % accuracy); under 5 % of merely slow stage runs (a stage that took longer than its
p75 but finished) may ever be flagged, and under 5 % of merely slow books (not hung, some stage
slower than its p75). The rule flags exactly the runs past multiplier x median, so the share of
slow books flagged depends on the spread: at sigma 0.3 it is about 6 % per book (1 in 30 stage
runs); raise ``stuck_multiplier`` when stage times spread wider (docs/health.md).
"""

from __future__ import annotations

import datetime as dt
import math
import random

from agentic_pipeline import config
from agentic_pipeline.clock import FakeClock
from agentic_pipeline.health import stats, stuck_detector
from agentic_pipeline.pipeline import states

STAGES = [s.value for s in states.STAGE_ORDER] + ["embedding"]
SIGMA = 0.25
TICK = 10.0


def test_hung_books_found_within_2x_and_few_slow_books_flagged():
    settings = config.Settings()
    rng = random.Random(42)
    clock = FakeClock()
    start = clock.now()
    books = []
    for i in range(3000):
        durations = {s: rng.lognormvariate(math.log(settings.expected_seconds[s]), SIGMA) for s in STAGES}
        hung = rng.choice(STAGES) if rng.random() < 0.02 else None
        if hung:
            durations[hung] = math.inf
        books.append({"id": i, "start": i * 3.0, "durations": durations, "hung": hung})
    p75 = {s: settings.expected_seconds[s] * math.exp(0.674 * SIGMA) for s in STAGES}
    sketches = {s: stats.Sketch() for s in STAGES}
    flagged: dict[tuple[int, str], float] = {}
    waiting = list(reversed(books))
    active: list[dict] = []
    end = 3000 * 3.0 + 4 * 3600
    t = 0.0
    while t <= end:
        now = start + dt.timedelta(seconds=t)
        summaries = {s: stats.summarize(s, sk) for s, sk in sketches.items()}
        limits = stuck_detector.thresholds(summaries, settings)
        while waiting and waiting[-1]["start"] <= t:
            active.append(waiting.pop())
        rows = [r for r in (_position(b, t, start, sketches) for b in active) if r is not None]
        active = [b for b in active if not b.get("finished")]
        for s in stuck_detector.detect(rows, limits, now):
            flagged.setdefault((s.id, s.state), s.minutes_in_state * 60)
        t += TICK
        clock.advance(TICK)
    hung = [b for b in books if b["hung"]]
    assert len(hung) > 30
    for b in hung:
        seconds = flagged[(b["id"], b["hung"])]
        assert seconds <= 2 * settings.expected_seconds[b["hung"]] * 1.03 + TICK
    slow = [(b["id"], s) for b in books for s in STAGES if b["hung"] != s and b["durations"][s] > p75[s]]
    false = [key for key in slow if key in flagged]
    assert len(slow) > 3000
    assert len(false) / len(slow) < 0.05, (len(false), len(slow))
    slow_books = {b["id"] for b in books if not b["hung"] and any(b["durations"][s] > p75[s] for s in STAGES)}
    flagged_books = {book for book, _state in flagged if book in slow_books}
    assert len(slow_books) > 1000
    assert len(flagged_books) / len(slow_books) < 0.05, (len(flagged_books), len(slow_books))
    print(f"slow stage runs flagged: {len(false)}/{len(slow)}; hung found: {len(hung)}/{len(hung)}")
    assert all(sk.samples >= 100 for sk in sketches.values())  # thresholds came from the medians


def _position(book, t, start, sketches):
    """The pipeline row of ``book`` at time ``t`` (None before it starts or after it finishes)."""
    if t < book["start"]:
        return None
    entered = book["start"]
    for s in STAGES:
        d = book["durations"][s]
        if t < entered + d:
            return {"id": book["id"], "state": s, "state_entered_at": start + dt.timedelta(seconds=entered),
                    "lease_owner": "w", "lease_expires_at": start + dt.timedelta(seconds=t + 60)}
        if not book.get(f"done_{s}"):
            book[f"done_{s}"] = True
            sketches[s].add(stats.bucket_of(d), 1, d)
        entered += d
    book["finished"] = True
    return None
