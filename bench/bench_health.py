"""Benchmark: health report (cached and fresh), stuck detection and stats refresh at 1M pipelines / 8M history.

Not a test. Builds a throwaway database (SQLite in a temp dir; PostgreSQL in a throwaway
database on postgresql://postgres@127.0.0.1:5432/, dropped after) with 1,000,000 pipelines
(``--quick``: 100,000) and ~8 history rows each, in a realistic mix: mostly finished, 2 % queued,
some waiting for approval or a retry, 400 in flight of which 20 hung and 10 orphaned. Figures
are the best of 5 runs. The baseline, measured in the same run, is the naive approach of the
public implementation: a full GROUP BY state plus every non-terminal row fetched and checked.
Targets (the issue): cache <= 20 ms, fresh <= 200 ms, stuck detection <= 100 ms, stats refresh <= 2 s.

    .venv/bin/python bench/bench_health.py [--quick] [--sqlite-only]
"""

from __future__ import annotations

import datetime as dt
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from bench import _pg

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 6, 1, tzinfo=UTC)
PATH = ["detected", "hashing", "classifying", "selecting_strategy", "processing", "validating",
        "pending_approval", "approved", "embedding", "complete"]
EXPECTED = {"hashing": 60, "classifying": 120, "selecting_strategy": 30, "processing": 900, "validating": 60,
            "embedding": 600, "detected": 3600, "pending_approval": 7200, "approved": 300}
MIX = [("complete", 0.80), ("failed", 0.04), ("rejected", 0.03), ("duplicate", 0.05), ("archived", 0.02),
       ("detected", 0.02), ("pending_approval", 0.03), ("needs_retry", 0.005), ("approved", 0.005)]
WORKING = ["hashing", "classifying", "selecting_strategy", "processing", "validating", "embedding"]


def generate(n: int, seed: int = 1):
    """Yield (pipeline row, history rows) with consistent states and times."""
    rng = random.Random(seed)
    cum, acc = [], 0.0
    for state, share in MIX:
        acc += share
        cum.append((acc, state))
    hid = 0
    for pid in range(1, n + 1):
        if pid % (n // 400) == 0:
            final = WORKING[pid % len(WORKING)]
        else:
            r = rng.random()
            final = next((s for c, s in cum if r < c), "complete")
        path = _path_to(final)
        t = NOW.timestamp() - rng.uniform(86400 * 2, 86400 * 60)
        if final in WORKING or final == "needs_retry":
            t = NOW.timestamp() - 86400
        created = t
        hist = []
        prev = None
        for i, state in enumerate(path):
            if prev is not None:
                d = rng.lognormvariate(math.log(EXPECTED.get(prev, 60)), 0.3)
                if final in WORKING and i == len(path) - 1:
                    d = 1.0
                t += d
                hid += 1
                hist.append((hid, pid, prev, state, t, d))
            else:
                hid += 1
                hist.append((hid, pid, None, state, t, None))
            prev = state
        if final in WORKING:  # shift so the book is in flight now; a few hung or orphaned
            k = pid // (n // 400)  # the k-th book in flight: every 20th hung, every 40th orphaned
            spent = EXPECTED[final] * (0.5 if k % 20 else 6.0)
            shift = NOW.timestamp() - spent - t
            hist = [(h[0], h[1], h[2], h[3], h[4] + shift, h[5]) for h in hist]
            created += shift
            t = NOW.timestamp() - spent
        k = pid // (n // 400)
        lease = ("w%d" % (k % 8), NOW.timestamp() + (3600 if k % 40 != 1 else -30)) if final in WORKING else (None, None)
        row = (pid, f"/books/{pid}.epub", final, rng.randint(1, 10), 5, created, t, t, t,
               t if final == "complete" else None, lease[0], lease[1],
               NOW.timestamp() + 600 if final == "needs_retry" else None, "processing" if final == "needs_retry" else None)
        yield row, hist


def _path_to(final: str) -> list[str]:
    if final in PATH:
        return PATH[: PATH.index(final) + 1]
    if final == "duplicate":
        return ["detected", "hashing", "duplicate"]
    if final == "archived":
        return PATH + ["archived"]
    if final in ("failed", "needs_retry"):
        return PATH[:5] + [final]
    return PATH[:7] + ["rejected"]


PP_COLS = ("id", "source_path", "state", "priority", "base_priority", "created_at", "updated_at", "state_entered_at",
           "queued_at", "completed_at", "lease_owner", "lease_expires_at", "next_attempt_at", "retry_stage")
H_COLS = ("id", "pipeline_id", "from_state", "to_state", "at", "duration_seconds")


def load_sqlite(path: Path, n: int) -> int:
    import sqlite3

    from agentic_pipeline.db import migrations
    from agentic_pipeline.db.engine import Database

    db = Database(f"sqlite:///{path}")
    migrations.upgrade(db)
    db.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    indexes = _drop_indexes(con)
    con.execute("BEGIN")
    total = 0
    batch_p, batch_h = [], []
    for row, hist in generate(n):
        batch_p.append(row)
        batch_h.extend((*h, "system:worker") for h in hist)
        if len(batch_p) >= 50_000:
            total += _flush_sqlite(con, batch_p, batch_h)
    total += _flush_sqlite(con, batch_p, batch_h)
    con.execute("COMMIT")
    for sql in indexes:
        con.execute(sql)
    con.execute("ANALYZE")
    con.close()
    return total


def _drop_indexes(con) -> list[str]:
    rows = con.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL AND "
                       "tbl_name IN ('processing_pipelines', 'pipeline_state_history')").fetchall()
    for name, _ in rows:
        con.execute(f"DROP INDEX {name}")
    return [sql for _, sql in rows]


def _flush_sqlite(con, batch_p, batch_h) -> int:
    con.executemany(f"INSERT INTO processing_pipelines ({', '.join(PP_COLS)}) VALUES ({', '.join('?' * len(PP_COLS))})",
                    batch_p)
    con.executemany(f"INSERT INTO pipeline_state_history ({', '.join(H_COLS)}, actor) VALUES (?,?,?,?,?,?,?)", batch_h)
    done = len(batch_h)
    batch_p.clear()
    batch_h.clear()
    return done


def load_postgres(url: str, n: int) -> int:
    import psycopg

    from agentic_pipeline.db import migrations
    from agentic_pipeline.db.engine import Database

    db = Database("postgresql+psycopg" + url[len("postgresql"):])
    migrations.upgrade(db)
    db.dispose()
    total = 0
    with psycopg.connect(url) as con:
        # two COPYs cannot interleave on one connection: write pipelines, then history (same seed)
        with con.cursor() as cur, cur.copy(f"COPY processing_pipelines ({', '.join(PP_COLS)}) FROM STDIN") as cp:
            for row, _ in generate(n):
                cp.write_row(_pg_row(row, (5, 6, 7, 8, 9, 11, 12)))
        with con.cursor() as cur, cur.copy(f"COPY pipeline_state_history ({', '.join(H_COLS)}, actor) FROM STDIN") as cp:
            for _, hist in generate(n):
                for h in hist:
                    cp.write_row((*_pg_row(h, (4,)), "system:worker"))
                    total += 1
        con.execute("SELECT setval(pg_get_serial_sequence('pipeline_state_history', 'id'), %s)", (total,))
        con.execute("SELECT setval(pg_get_serial_sequence('processing_pipelines', 'id'), %s)", (n,))
        con.commit()
        con.autocommit = True
        con.execute("VACUUM ANALYZE processing_pipelines")
        con.execute("VACUUM ANALYZE pipeline_state_history")
    return total


def _pg_row(row, time_cols):
    return tuple(dt.datetime.fromtimestamp(v, UTC) if i in time_cols and v is not None else v
                 for i, v in enumerate(row))


def best_ms(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return min(times)


def measure(url: str, label: str, n: int, history_rows: int) -> list[dict]:
    from agentic_pipeline import config
    from agentic_pipeline.app import App
    from agentic_pipeline.clock import FakeClock
    from agentic_pipeline.health import monitor, stats_refresh

    clock = FakeClock(NOW)
    app = App.open(config.load({"db": url, "embedder": "hashing"}, environ={}), clock=clock)
    out = []
    naive = best_ms(lambda: _naive(app))
    clock.advance(60)  # the newest generated rows are older than PostgreSQL's watermark lag
    t = time.perf_counter()
    full = stats_refresh.refresh(app)
    full_s = time.perf_counter() - t
    _append_history(app, 10_000)
    clock.advance(60)
    t = time.perf_counter()
    inc = stats_refresh.refresh(app)
    inc_s = time.perf_counter() - t
    fresh = best_ms(lambda: monitor.get_health(app, fresh=True))
    cached = best_ms(lambda: monitor.get_health(app))
    assert monitor.get_health(app)["source"] == "cache"
    found = monitor.find_stuck(app)["stuck"]
    stuck_ms = best_ms(lambda: monitor.find_stuck(app))
    report = monitor.get_health(app, fresh=True)
    queued_flagged = sum(1 for s in found if s.state in ("detected", "approved", "pending_approval"))
    note = f"{n:,} pipelines, {history_rows:,} history rows"
    out += [
        {"name": f"{label}: health from cache", "value": round(cached, 2), "unit": "ms", "note": note},
        {"name": f"{label}: fresh health report", "value": round(fresh, 1), "unit": "ms", "baseline": round(naive, 1),
         "ratio": round(naive / fresh, 1), "note": "baseline: naive GROUP BY + every non-terminal row"},
        {"name": f"{label}: stuck detection", "value": round(stuck_ms, 1), "unit": "ms", "baseline": round(naive, 1),
         "ratio": round(naive / stuck_ms, 1),
         "note": f"{len(found)} stuck ({sum(s.orphaned for s in found)} orphaned), {queued_flagged} queued flagged"},
        {"name": f"{label}: stats refresh, incremental (10k new rows)", "value": round(inc_s, 3), "unit": "s",
         "note": f"{inc['groups']} groups"},
        {"name": f"{label}: stats refresh, first full build", "value": round(full_s, 2), "unit": "s",
         "note": f"{full['to_history_id']:,} history rows, once per database"},
        {"name": f"{label}: report counts agree", "value": int(report["counts_by_state"]["complete"] > 0), "unit": "bool"},
    ]
    app.close()
    return out


def _naive(app):
    import sqlalchemy as sa

    from agentic_pipeline.db.schema import processing_pipelines as pp

    with app.db.read() as conn:
        dict(conn.execute(sa.select(pp.c.state, sa.func.count()).group_by(pp.c.state)).all())
        rows = conn.execute(sa.select(pp.c.id, pp.c.state, pp.c.state_entered_at).where(
            pp.c.state.not_in(["complete", "failed", "rejected", "duplicate", "archived"]))).all()
        return [r for r in rows if (NOW - r.state_entered_at).total_seconds() > 1800]  # flags queued books too


def _append_history(app, n: int) -> None:
    """10k new transitions since the full build: hashing -> classifying moves on finished books' ids."""
    from agentic_pipeline.db.schema import pipeline_state_history as hist

    at = app.clock.now()
    rows = [{"pipeline_id": i + 1, "from_state": "hashing", "to_state": "classifying", "at": at + dt.timedelta(seconds=i / 1000),
             "duration_seconds": 50.0 + i % 20, "actor": "system:worker"} for i in range(n)]
    rows += [{"pipeline_id": i + 1, "from_state": "classifying", "to_state": "hashing", "at": at + dt.timedelta(seconds=i / 1000),
              "duration_seconds": 1.0, "actor": "system:worker"} for i in range(n)]
    with app.db.write() as conn:
        conn.execute(hist.insert(), rows[:n // 2] + rows[n:n + n // 2])


def run(quick: bool = False, sqlite_only: bool = False) -> list[dict]:
    n = 100_000 if quick else 1_000_000
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t = time.perf_counter()
        rows = load_sqlite(path, n)
        print(f"sqlite: loaded {n:,} pipelines, {rows:,} history rows in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        results += measure(f"sqlite:///{path}", "SQLite", n, rows)
    if not sqlite_only:
        results += _postgres(n)
    return results


def _postgres(n: int) -> list[dict]:
    with _pg.throwaway_database("health") as db:
        if not db:
            return _pg.unavailable(db.reason)
        t = time.perf_counter()
        rows = load_postgres(db.url, n)
        print(f"postgresql: loaded {n:,} pipelines, {rows:,} history rows in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        return measure(db.url, "PostgreSQL", n, rows)


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv, sqlite_only="--sqlite-only" in sys.argv):
        print(r)
