"""Benchmark: the dashboard's server time per page at 1,000,000 pipelines (target: every page <= 100 ms).

Not a test. Reuses bench_health's generator and loaders (1M pipelines, ~8M history rows, the realistic mix:
30,000 waiting for approval, 20,000 queued, 40,000 failed, 400 in flight); ``--quick``: 100,000. Each page
is requested in process through Starlette's TestClient (routing, the security middleware, the operation,
Jinja2 rendering: everything but the socket), best of 5 after one warm-up. The overview computes a fresh
health report every time (it is live); ``/health`` answers from the report cache a running worker keeps
(``health_interval``), and is the baseline: what a request costs when the work is one cached row.

    .venv/bin/python -m bench.run web [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench import _pg, bench_health

TARGET_MS = 100.0


def pages(pending: int, book: int) -> list[tuple[str, str]]:
    return [
        ("overview", "/"), ("overview, live part", "/?live=1"),
        ("inbox", "/inbox"), ("inbox sorted by confidence", "/inbox?sort=confidence&desc=1"),
        ("inbox, filter + a later page", f"/inbox?source_path_pattern=/books/*&created_after=2026-04-01&after={pending}"),
        ("review", f"/review/{pending}"), ("batch form", "/batch?operation=approve"),
        ("queue by priority", "/queue"), ("queue by age, page 50", "/queue?order=age&offset=2450"),
        ("retries waiting", "/queue?state=needs_retry"), ("stuck and failures", "/stuck"),
        ("book detail", f"/books/{book}"), ("audit", "/audit"), ("audit, actor glob", "/audit?actor=web:*&days=7"),
        ("search", "/search?q=harbour+lantern"),
    ]


def best_ms(client, url: str, repeats: int = 5) -> tuple[float, int]:
    client.get(url)
    times, status = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        resp = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        status = resp.status_code
    return min(times), status


def measure(url: str, label: str, n: int) -> list[dict]:
    import sqlalchemy as sa
    from starlette.testclient import TestClient

    from agentic_pipeline import config
    from agentic_pipeline.app import App
    from agentic_pipeline.clock import FakeClock
    from agentic_pipeline.db.schema import processing_pipelines as pp
    from agentic_pipeline.health import monitor, stats
    from agentic_pipeline.interfaces.web import app as web_app

    app = App.open(config.load({"db": url, "embedder": "hashing"}, environ={}), clock=FakeClock(bench_health.NOW))
    stats.refresh(app)
    monitor.refresh(app)  # the cached report a running worker keeps fresh
    with app.db.read() as conn:
        pending = conn.execute(sa.select(sa.func.min(pp.c.id)).where(pp.c.state == "pending_approval")).scalar()
        book = conn.execute(sa.select(sa.func.max(pp.c.id)).where(pp.c.state == "complete")).scalar()
    out = []
    with TestClient(web_app.create_app(app), base_url="http://127.0.0.1") as client:
        base, _ = best_ms(client, "/health")
        for name, path in pages(pending, book):
            ms, status = best_ms(client, path)
            assert status == 200, (path, status)
            out.append({"name": f"{label}: {name}", "value": round(ms, 1), "unit": "ms", "baseline": round(base, 1),
                        "ratio": round(ms / base, 1),
                        "note": f"`{path}`" + ("" if ms <= TARGET_MS else f" OVER {TARGET_MS:g} ms")})
    app.close()
    worst = max(r["value"] for r in out)
    out.append({"name": f"{label}: slowest page", "value": worst, "unit": "ms",
                "note": f"{n:,} pipelines; target {TARGET_MS:g} ms: {'met' if worst <= TARGET_MS else 'NOT met'}"})
    return out


def run(quick: bool = False, sqlite_only: bool = False) -> list[dict]:
    n = 100_000 if quick else 1_000_000
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t = time.perf_counter()
        bench_health.load_sqlite(path, n)
        print(f"sqlite: loaded {n:,} pipelines in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        results += measure(f"sqlite:///{path}", "SQLite", n)
    if not sqlite_only:
        with _pg.throwaway_database("web") as db:
            if not db:
                return results + _pg.unavailable(db.reason)
            t = time.perf_counter()
            bench_health.load_postgres(db.url, n)
            print(f"postgresql: loaded {n:,} pipelines in {time.perf_counter() - t:.0f}s", file=sys.stderr)
            results += measure(db.sqlalchemy_url, "PostgreSQL", n)
    return results


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv, sqlite_only="--sqlite-only" in sys.argv):
        print(r)
