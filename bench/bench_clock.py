"""Benchmark: what the database's clock costs (issue 16).

Not a test. On PostgreSQL every App takes ``now`` from the server (``clock.DatabaseClock``): one
``clock_timestamp()`` read per 30 s per process, carried forward by the monotonic clock. Figures:

* ``now()`` of the DatabaseClock against the SystemClock's (the baseline), in microseconds;
* one server read (the round trip paid every 30 s);
* how far the carried-forward time is from a fresh server read (worst of N).

    .venv/bin/python -m bench.run clock [--quick]
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import timeit

from bench._pg import throwaway_database


def run(quick: bool = False) -> list[dict]:
    from agentic_pipeline import clock
    from agentic_pipeline.db import server_clock
    from agentic_pipeline.db.engine import Database

    rows = []
    n = 50_000 if quick else 200_000
    with throwaway_database("clock") as pg:
        if not pg:
            return [{"name": "database_clock", "value": None, "unit": "", "note": f"skipped: {pg.reason}"}]
        db = Database(pg.sqlalchemy_url)
        try:
            system = clock.SystemClock()
            database = clock.for_database(db)
            database.now()
            base = min(timeit.repeat(system.now, number=n, repeat=5)) / n * 1e6
            ours = min(timeit.repeat(database.now, number=n, repeat=5)) / n * 1e6
            rows.append({"name": "now_us", "value": ours, "unit": "µs", "baseline": base, "ratio": ours / base,
                         "note": "DatabaseClock.now() against SystemClock.now() (the baseline)"})
            reads = []
            for _ in range(50 if quick else 200):
                started = time.perf_counter()
                server_clock.read(db)
                reads.append((time.perf_counter() - started) * 1e3)
            rows.append({"name": "server_read_ms", "value": statistics.median(reads), "unit": "ms",
                         "note": "median of one clock_timestamp() round trip, paid once per 30 s per process"})
            errors = []
            for _ in range(50 if quick else 200):
                server, at = server_clock.read_timed(db)  # the server's time, and the monotonic instant of it
                base, base_at = database._base
                predicted = base + dt.timedelta(seconds=at - base_at)  # what DatabaseClock.now() said then
                errors.append(abs((server - predicted).total_seconds()) * 1e3)
            rows.append({"name": "carried_forward_error_median_ms", "value": statistics.median(errors), "unit": "ms",
                         "note": "median difference between DatabaseClock's time and a fresh server read"})
            rows.append({"name": "carried_forward_error_max_ms", "value": max(errors), "unit": "ms",
                         "note": "worst of them (scheduling on a machine shared by 8 busy sessions included)"})
        finally:
            db.dispose()
    return rows
