"""CLI start-up: `agentic-pipeline --help` against a bare interpreter start, in the same run."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(quick: bool = False) -> list[dict]:
    runs = 5 if quick else 15
    bare = _time([sys.executable, "-c", "pass"], runs)
    helped = _time([sys.executable, "-c", "from agentic_pipeline.interfaces.cli import main; main(['--help'])"], runs)
    return [
        {"name": "python -c pass (baseline)", "value": bare * 1000, "unit": "ms"},
        {"name": "agentic-pipeline --help", "value": helped * 1000, "unit": "ms", "baseline": bare * 1000,
         "ratio": helped / bare, "note": "target: well under 500 ms"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
