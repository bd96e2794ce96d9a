"""Benchmark: outputs that scale (issue 18, point 7), through the real CLI in subprocesses.

Not a test. Wall times of whole commands (start-up included) against ``status 1`` on the same
database as the start-up baseline, so "beyond start-up" is the difference:

- ``batch-approve --book-type periodical --min-confidence 0.9 --state pending_approval --execute``
  on 10,000 matches among 200,000 pipelines (bench_batch's spread layout), default output piped
  (a fresh copy of the database per run); target <= 1 s beyond start-up;
- the output time of ``--json`` for the 10,000-row plan (rendering and writing it, measured in-process
  around ``emit``); target <= 0.3 s;
- ``health`` and ``pending`` on 1,000,000 pipelines / ~8M history rows (bench_health's generator;
  --quick: 100,000), default output piped: one screen, time beyond start-up (target <= 0.5 s) and the
  peak memory (/usr/bin/time), beside the same at a tenth of the size (memory independent of size).

    .venv/bin/python -m bench.run output [--quick]
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

FILTER = ["--book-type", "periodical", "--min-confidence", "0.9", "--state", "pending_approval", "--max-count", "20000"]


def _cli(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from agentic_pipeline.interfaces.cli import main; main()", "--db", str(db), *args]


def _wall(cmd: list[str], runs: int = 3, prepare=None) -> tuple[float, int, int]:
    """Median wall seconds, peak RSS in MB (max over runs) and output lines of ``cmd``."""
    times, peak, lines = [], 0, 0
    for _ in range(runs):
        if prepare:
            prepare()
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True,
                              env={"AGENTIC_PIPELINE_EMBEDDER": "hashing", "PATH": "/usr/bin:/bin",
                                   "LINES": "24", "COLUMNS": "80"})
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1, 2):
            raise RuntimeError(f"{cmd[5:]} exited {done.returncode}: {done.stderr[-500:]}")
        peak = max(peak, int(done.stderr.strip().splitlines()[-1]) // 1024)
        lines = len(done.stdout.splitlines())
    return statistics.median(times), peak, lines


def batch_rows(quick: bool) -> list[dict]:
    from agentic_pipeline import config
    from agentic_pipeline.app import App
    from agentic_pipeline.batch import operations as batch
    from agentic_pipeline.batch.filters import make_filter
    from agentic_pipeline.db import migrations
    from agentic_pipeline.db.engine import Database
    from agentic_pipeline.interfaces.cli.context import emit
    from bench import bench_batch

    n = 200_000
    tmp = Path(tempfile.mkdtemp(prefix="bench-output-"))
    try:
        master = tmp / "master.db"
        db = Database(f"sqlite:///{master}")
        migrations.upgrade(db)
        db.dispose()
        app = App.open(config.load({"db": str(master), "embedder": "hashing"}, environ={}))
        bench_batch.load(app, n)
        app.close()
        work = tmp / "work.db"

        def fresh():
            shutil.copy(master, work)

        fresh()
        runs = 2 if quick else 3
        start, _, _ = _wall(_cli(work, "status", "1"), runs)
        preview, _, preview_lines = _wall(_cli(work, "batch-approve", *FILTER), runs)
        execute, _, execute_lines = _wall(_cli(work, "batch-approve", *FILTER, "--execute"), runs, prepare=fresh)
        fresh()
        app = App.open(config.load({"db": str(work), "embedder": "hashing"}, environ={}))
        plan = batch.plan_batch(app, "approve", make_filter(book_type="periodical", min_confidence=0.9,
                                                           state="pending_approval", max_count=20000))
        data = {"plan": plan.to_dict(), "executed": False}
        outs = []
        for _ in range(3):
            sink = io.StringIO()
            t = time.perf_counter()
            with redirect_stdout(sink):
                emit(data, True, None)
            outs.append(time.perf_counter() - t)
        app.close()
        json_out = min(outs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        {"name": f"status 1 (start-up baseline, {n:,} pipelines)", "value": round(start, 3), "unit": "s"},
        {"name": "batch-approve 10,000 of 200,000, preview (default output)", "value": round(preview, 3), "unit": "s",
         "baseline": round(start, 3), "ratio": round(preview / start, 2),
         "note": f"{preview - start:.3f} s beyond start-up; {preview_lines} lines printed"},
        {"name": "batch-approve 10,000 of 200,000, --execute (default output)", "value": round(execute, 3), "unit": "s",
         "baseline": round(start, 3), "ratio": round(execute / start, 2),
         "note": f"{execute - start:.3f} s beyond start-up (target <= 1 s); {execute_lines} lines printed"},
        {"name": "--json output of the 10,000-row plan", "value": round(json_out, 3), "unit": "s",
         "note": f"{len(sink.getvalue()) / 1e6:.1f} MB of JSON; target <= 0.3 s"},
    ]


def health_rows(quick: bool) -> list[dict]:
    from bench import bench_health

    out = []
    sizes = (10_000, 100_000) if quick else (100_000, 1_000_000)
    for n in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="bench-output-"))
        try:
            path = tmp / "health.db"
            t = time.perf_counter()
            bench_health.load_sqlite(path, n)
            built = time.perf_counter() - t
            start, start_mb, _ = _wall(_cli(path, "status", "1"))
            for label, args in (("health (stored report)", ["health"]), ("health --fresh", ["health", "--fresh"]),
                                ("pending", ["pending"])):
                wall, mb, lines = _wall(_cli(path, *args))
                out.append({"name": f"{label}, {n:,} pipelines", "value": round(wall - start, 3),
                            "unit": "s beyond start-up", "baseline": round(start, 3),
                            "note": f"{lines} lines; peak {mb} MB (status 1: {start_mb} MB); "
                                    f"database built in {built:.0f} s"})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def run(quick: bool = False) -> list[dict]:
    return batch_rows(quick) + health_rows(quick)


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
