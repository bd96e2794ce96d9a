"""Run every benchmark (or those named) and record the figures in docs/benchmarks.md.

    make bench                          # all of them
    .venv/bin/python -m bench.run audit batch --quick

Each ``bench/bench_<name>.py`` exposes ``run(quick: bool) -> list[dict]``; every dict has
``name``, ``value``, ``unit`` and optionally ``baseline``, ``ratio``, ``note``. Figures are
ratios against a baseline measured in the same run, or absolute numbers labelled with the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "docs" / "benchmarks.md"
START, END = "<!-- results:{name}:start -->", "<!-- results:{name}:end -->"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        mem = "?"
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, Python {platform.python_version()}, {platform.system()}"


def available() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def render(name: str, rows: list[dict], command: str) -> str:
    lines = [START.format(name=name), f"### {name}", "",
             f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", f"- machine: {machine()}",
             f"- command: `{command}`", "", "| benchmark | value | unit | baseline | ratio | note |",
             "|---|---:|---|---:|---:|---|"]
    for r in rows:
        lines.append("| {name} | {value} | {unit} | {baseline} | {ratio} | {note} |".format(
            name=r.get("name", ""), value=_fmt(r.get("value")), unit=r.get("unit", ""),
            baseline=_fmt(r.get("baseline")), ratio=_fmt(r.get("ratio")), note=r.get("note", "")))
    lines.append(END.format(name=name))
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def record(name: str, block: str) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmarks\n\nResults of `make bench`.\n"
    start, end = START.format(name=name), END.format(name=name)
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(available())}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--no-record", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = set(names) - set(available())
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    failed = 0
    for name in names:
        command = f"python -m bench.run {name}" + (" --quick" if args.quick else "")
        print(f"== {name}", flush=True)
        try:
            rows = importlib.import_module(f"bench.bench_{name}").run(quick=args.quick)
        except Exception:  # noqa: BLE001 - report and continue with the others
            traceback.print_exc()
            failed += 1
            continue
        block = render(name, rows, command)
        print(block)
        if not args.no_record:
            record(name, block)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
