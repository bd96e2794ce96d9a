"""Benchmark: the MCP server at 1,000,000 pipelines: start (spawn + initialize) and per-tool latency and size.

Not a test. Builds the SQLite database of bench/bench_health.py (1,000,000 pipelines, ~8 history rows
each; ``--quick``: 100,000), gives 10,000 of the books waiting for approval one type and a confidence,
then starts ``agentic-pipeline mcp`` over stdio with the SDK's client and times each call (best of 5,
client side: JSON-RPC over the pipe included). Targets (issue 13): health <= 50 ms, a preview of
10,000 matches <= 300 ms and <= 20 KB.

    .venv/bin/python -m bench.run mcp [--quick]
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

MATCHES = 10_000


def _mark(path: Path) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute(f"""UPDATE processing_pipelines SET book_type = 'periodical', confidence = 0.9,
                        title = 'A generated periodical ' || id
                        WHERE id IN (SELECT id FROM processing_pipelines WHERE state = 'pending_approval'
                                     ORDER BY id LIMIT {MATCHES})""")
    con.close()


def run(quick: bool = False) -> list[dict]:
    from bench import bench_health
    from tests.mcp.client import mcp_client, server_env, text

    n = 100_000 if quick else 1_000_000
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t = time.perf_counter()
        bench_health.load_sqlite(path, n)
        _mark(path)
        print(f"sqlite: loaded {n:,} pipelines in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        env = server_env(f"sqlite:///{path}", [Path(tmp)])
        starts = []
        for _ in range(3):
            t = time.perf_counter()
            with mcp_client(env):
                starts.append(time.perf_counter() - t)
        results.append({"name": f"server start (spawn + initialize), {n:,} pipelines", "value": round(min(starts) * 1000),
                        "unit": "ms", "note": "best of 3; includes the interpreter start and the schema check"})
        preview = {"book_type": "periodical", "state": "pending_approval", "max_count": MATCHES}
        calls = [
            ("get_pipeline_health", {}, 50),
            ("get_autonomy_status", {}, None),
            ("list_pending_approvals", {}, None),
            ("list_books", {"state": "pending_approval", "book_type": "periodical"}, None),
            ("list_rejected_books", {}, None),
            ("get_stuck_pipelines", {}, None),
            ("get_pipeline_status", {"pipeline_id": 1}, None),
            ("show_book", {"pipeline_id": 1}, None),
            ("get_audit_log", {}, None),
            ("batch_approve", preview, 300),
            ("batch_set_priority", {**preview, "priority": 2}, 300),
        ]
        with mcp_client(env) as client:
            for name, args, target in calls:
                best, size = float("inf"), 0
                for _ in range(5):
                    t = time.perf_counter()
                    result = client.call(name, **args)
                    best = min(best, time.perf_counter() - t)
                    assert not result.is_error, (name, text(result))
                    size = len(json.dumps(result.structured_content).encode()) + len(text(result).encode())
                matched = (result.structured_content.get("preview") or {}).get("matched")
                note = f"answer {size:,} bytes (bound 20,000)"
                if matched is not None:
                    note += f"; {matched:,} matches"
                if target:
                    note += f"; target <= {target} ms"
                results.append({"name": f"{name} {json.dumps(args) if args else ''}".strip(),
                                "value": round(best * 1000, 1), "unit": "ms", "note": note})
    return results


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
