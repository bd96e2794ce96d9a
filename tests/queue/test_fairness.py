"""The fairness promise, simulated with a fake clock: under a steady stream of priority-1 work that
leaves spare capacity, no book waits more than 48 h.

Simulated 54 h: workers finish one book every 6 minutes (10 an hour); every hour 6 priority-1 and
3 priority-3 books arrive (9 an hour: one hour-slot of spare capacity); at the start a burst of 60
priority-5 books lands. Without aging the burst drains at the spare rate, one an hour, and its last
books wait about 60 h; with aging (hourly, as the maintenance worker runs it) the burst is boosted
to priority 3 after 24 h, ahead of the newer priority-3 work, and every book is taken within 48 h.
"""

from __future__ import annotations

import datetime as dt

from agentic_pipeline.pipeline.states import State
from agentic_pipeline.queue import aging
from tests.conftest import open_app

HOURS = 54
STEPS_PER_HOUR = 10  # one claim per 6-minute step
P1_STEPS = {0, 2, 4, 5, 7, 9}  # 6 priority-1 arrivals an hour
P3_STEPS = {1, 3, 6}  # 3 priority-3 arrivals an hour
BURST = 60


def simulate(app, clock, *, with_aging: bool) -> tuple[float, int]:
    """Run the workload; returns (longest wait in hours, books taken), counting books still waiting."""
    start = clock.now()
    created: dict[int, dt.datetime] = {}
    for i in range(BURST):
        created[app.pipelines.create(source_path=f"/burst/{i}.txt", actor="human:sim", priority=5).id] = clock.now()
    waits = []
    for step in range(HOURS * STEPS_PER_HOUR):
        minute = step % STEPS_PER_HOUR
        if minute == 0 and with_aging:
            aging.run_aging(app)
        for prio, steps in ((1, P1_STEPS), (3, P3_STEPS)):
            if minute in steps:
                p = app.pipelines.create(source_path=f"/stream/{step}-{prio}.txt", actor="human:sim", priority=prio)
                created[p.id] = clock.now()
        waits.append(_take_one(app, clock, created))
        clock.advance(minutes=60 / STEPS_PER_HOUR)
    still = [(clock.now() - at).total_seconds() / 3600 for at in created.values()]
    taken = [w for w in waits if w is not None]
    assert clock.now() - start == dt.timedelta(hours=HOURS)
    return max(taken + still), len(taken)


def _take_one(app, clock, created) -> float | None:
    p = app.pipelines.claim_next("sim-worker", lease_seconds=10**7)
    if p is None:
        return None
    app.pipelines.transition(p.id, State.HASHING, expect=State.DETECTED, actor="system:worker", owner="sim-worker")
    app.pipelines.transition(p.id, State.FAILED, expect=State.HASHING, actor="system:worker", owner="sim-worker")
    return (clock.now() - created.pop(p.id)).total_seconds() / 3600


def test_no_book_waits_more_than_48_hours_with_aging(app, clock):
    longest, taken = simulate(app, clock, with_aging=True)
    assert taken >= HOURS * 9  # the stream was served: this was not an idle system
    assert longest <= 48, f"a book waited {longest:.1f} h"


def test_without_aging_the_same_workload_starves_the_burst(sqlite_url, clock):
    app = open_app(sqlite_url, clock)
    try:
        longest, _ = simulate(app, clock, with_aging=False)
    finally:
        app.close()
    assert longest > 48, "the control run should show starvation; otherwise the test above proves nothing"
