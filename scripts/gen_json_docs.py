"""Write docs/json.md: the ``--json`` output of every command, captured from a real run.

The run: a fresh SQLite database, three sample books queued and processed by a real worker
(the hashing embedder, so it takes seconds), then every command that prints JSON, on the
books it produced. Lists are cut to their first item. tests/interfaces/test_json_docs.py runs
the same scenario and fails when a command's output no longer has the documented shape (the
same keys, the same value types), or when a command with ``--json`` is missing here.

Run after changing a command's JSON output: ``.venv/bin/python scripts/gen_json_docs.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "json.md"
SAMPLE_BOOKS = ("waste-land.epub", "ltnews36.pdf", "fsm-drivers.pdf")

HEADER = """# JSON output of every command

Every command that prints data takes `--json` and then prints one JSON document on stdout (the
`--watch` modes print one document per line). The shapes below were captured from a real run
(three sample books through a real worker) by `scripts/gen_json_docs.py`; lists are cut to their
first item, and `null` marks a value that may be absent. `tests/interfaces/test_json_docs.py`
runs the same scenario and fails when an output's keys or value types differ from what is shown
here. Errors are not JSON: they go to stderr as one line, with exit code 1 (2 for bad input).
"""


def scenario(workdir: Path) -> list[tuple[str, Any]]:
    """Run every command with ``--json`` once; returns (command line shown in the doc, parsed output)."""
    from click.testing import CliRunner

    from agentic_pipeline.interfaces.cli import cli

    books = workdir / "books"
    books.mkdir()
    for name in SAMPLE_BOOKS:
        shutil.copy(ROOT / "samples" / "books" / name, books / name)
    _repeated_letters(books / "letters.md")  # the validator rejects it (duplicate_chapters): for `override`
    db = str(workdir / "pipeline.db")
    runner = CliRunner()
    env = {"AGENTIC_PIPELINE_EMBEDDER": "hashing", "AGENTIC_PIPELINE_CONFIG": "", "AGENTIC_PIPELINE_DB": db}
    captured: list[tuple[str, Any]] = []

    def run(*args: str, shown: str | None = None, record: bool = True) -> Any:
        result = runner.invoke(cli, ["--db", db, *args], env=env, catch_exceptions=False)
        if result.exit_code not in (0, 1) or (record and not result.stdout.strip()):
            raise RuntimeError(f"agentic-pipeline {' '.join(args)} exited {result.exit_code}: {result.output}")
        if not record:
            return None
        data = json.loads(result.stdout)
        captured.append((shown or " ".join(a for a in args if a != "--json"), data))
        return data

    run("init", "--json")
    run("batch-queue", str(books), "--json", shown="batch-queue FOLDER")
    run("batch-queue", str(books), "--execute", "--json", shown="batch-queue FOLDER --execute")
    run("worker", "--until-empty", record=False)
    pending = run("pending", "--json")
    first, second, third = (row["id"] for row in pending[:3])
    run("status", str(first), "--json", shown="status ID")
    run("books", "--json")
    run("show", str(first), "--json", shown="show ID")
    run("edit", str(third), "--title", "A better title", "--book-type", "textbook", "--json",
        shown="edit ID --title TEXT --book-type TYPE")
    rejected = run("books", "--state", "rejected", "--json", shown="books --state rejected")
    run("override", str(rejected["rows"][0]["id"]), "--relax", "duplicate_chapters", "--reason", "they repeat",
        "--json", shown="override ID --relax CHECK --reason TEXT")
    run("batch-cancel", "--state", "needs_retry", "--reason", "r", "--json",
        shown="batch-cancel --state needs_retry --reason TEXT")
    run("batch-cancel", "--state", "needs_retry", "--reason", "r", "--execute", "--json",
        shown="batch-cancel --state needs_retry --reason TEXT --execute")
    run("priority", str(third), "2", "--json", shown="priority ID N")
    run("approve", str(first), "--json", shown="approve ID")
    run("reject", str(second), "--reason", "not wanted", "--json", shown="reject ID --reason TEXT")
    run("worker", "--until-empty", record=False)
    run("search", "opening the device", "--json", shown="search QUERY")
    run("strategies", "--json")
    run("retry", str(second), "--json", shown="retry ID")
    run("batch-rollback", "--state", "complete", "--reason", "r", "--json",
        shown="batch-rollback --state complete --reason TEXT")
    run("rollback", str(first), "--reason", "wrong edition", "--json", shown="rollback ID --reason TEXT")
    run("batch-approve", "--state", "pending_approval", "--json", shown="batch-approve --state pending_approval")
    run("batch-retry", "--state", "rejected", "--json", shown="batch-retry --state rejected")
    run("batch-reject", "--state", "pending_approval", "--reason", "r", "--json",
        shown="batch-reject --state pending_approval --reason TEXT")
    run("batch-priority", "3", "--state", "pending_approval", "--json",
        shown="batch-priority N --state pending_approval")
    run("batch-approve", "--state", "pending_approval", "--execute", "--json",
        shown="batch-approve --state pending_approval --execute")
    run("process", str(books / SAMPLE_BOOKS[0]), "--json", shown="process FILE")
    run("health", "--json")
    run("doctor", "--json")
    run("stuck", "--json")
    run("audit", "--json")
    run("audit", "verify", "--json")
    run("audit", "prune", "--json")
    run("autonomy", "--json")
    run("autonomy", "status", "--json")
    run("autonomy", "enable", "partial", "--threshold", "0.97", "--json",
        shown="autonomy enable partial --threshold X")
    run("autonomy", "disable", "--json")
    run("escape-hatch", "an assistant misbehaves", "--json", shown="escape-hatch REASON")
    run("autonomy", "resume", "--json")
    run("reembed", "--dry-run", "--json")
    run("reprocess", str(second), "--ocr", "force", "--json", shown="reprocess ID --ocr MODE")
    return captured


def _repeated_letters(path: Path) -> None:
    """A small real book whose chapters 2 and 4 are the same letter (same as tests/approval/test_override.py)."""
    import random

    rnd = random.Random(5)
    words = ("the of and a to in is was it that he she for on with as his her at by from they river house "
             "garden letter morning winter said walked").split()

    def para() -> str:
        return " ".join(rnd.choice(words) for _ in range(200)).capitalize() + "."

    same = para()
    parts = ["# Repeated Letters", ""]
    for i in range(1, 6):
        parts += [f"## Letter {2 if i == 4 else i}", "", same if i in (2, 4) else para(), ""]
    path.write_text("\n".join(parts), encoding="utf-8")


def trimmed(value: Any) -> Any:
    """``value`` with every list cut to its first item (the doc shows shapes, not data)."""
    if isinstance(value, list):
        return [trimmed(value[0])] if value else []
    if isinstance(value, dict):
        return {key: trimmed(item) for key, item in value.items()}
    return value


def render(captured: list[tuple[str, Any]]) -> str:
    parts = [HEADER]
    for shown, data in captured:
        parts.append(f"## `agentic-pipeline {shown} --json`\n\n```json\n"
                     f"{json.dumps(trimmed(data), indent=2, ensure_ascii=False)}\n```\n")
    return "\n".join(parts)


def documented(text: str) -> dict[str, Any]:
    """The documented outputs in ``text`` (docs/json.md), by the command line shown."""
    found = {}
    for section in text.split("\n## `agentic-pipeline ")[1:]:
        shown, _, rest = section.partition(" --json`")
        block = rest.split("```json\n", 1)[1].split("\n```", 1)[0]
        found[shown] = json.loads(block)
    return found


def collect() -> list[tuple[str, Any]]:
    """The scenario's outputs, with the temporary folder shown as /home/me."""
    with tempfile.TemporaryDirectory() as tmp:
        captured = scenario(Path(tmp))
        text = json.dumps(captured).replace(str(Path(tmp).resolve()), "/home/me").replace(tmp, "/home/me")
        return [(shown, data) for shown, data in json.loads(text)]


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    DOC.write_text(render(collect()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
