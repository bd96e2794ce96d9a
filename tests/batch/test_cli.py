"""The priority and batch commands through the real CLI entry point (dry run, --execute, --json, errors)."""

from __future__ import annotations

import json

from agentic_pipeline.interfaces.cli import cli
from agentic_pipeline.interfaces.cli.context import run
from tests.batch import rows
from tests.conftest import SAMPLES, open_app


def _db(tmp_path, capsys) -> str:
    db = str(tmp_path / "x.db")
    assert run(cli, ["--db", db, "init"]) == 0
    capsys.readouterr()
    return db


def test_batch_approve_dry_run_then_execute(tmp_path, capsys):
    db = _db(tmp_path, capsys)
    with open_app(f"sqlite:///{db}") as app:
        ids = rows.insert(app, [rows.row(app.clock.now(), i, confidence=0.95, book_type="periodical") for i in range(3)])
        before = rows.dump(app)
    args = ["--db", db, "batch-approve", "--book-type", "periodical", "--min-confidence", "0.9"]
    assert run(cli, args) == 0
    out = capsys.readouterr().out
    assert "3 books match" in out and "Book 1" in out and "--execute" in out
    with open_app(f"sqlite:///{db}") as app:
        assert rows.dump(app) == before
    assert run(cli, args + ["--execute", "--json", "--actor", "human:bob"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["result"]["applied_ids"] == ids and data["result"]["actor"] == "human:bob"


def test_bad_values_exit_2_with_the_valid_ones_and_max_count_exit_1(tmp_path, capsys):
    db = _db(tmp_path, capsys)
    assert run(cli, ["--db", db, "batch-reject", "--state", "nope", "--reason", "x"]) == 2
    assert "valid states" in capsys.readouterr().err
    assert run(cli, ["--db", db, "batch-priority", "0", "--all"]) == 2
    assert "priority must be between 1 and 10" in capsys.readouterr().err
    assert run(cli, ["--db", db, "priority", "1", "12"]) == 2
    assert "priority must be between 1 and 10" in capsys.readouterr().err
    with open_app(f"sqlite:///{db}") as app:
        rows.insert(app, [rows.row(app.clock.now(), i) for i in range(4)])
    assert run(cli, ["--db", db, "batch-approve", "--all", "--max-count", "3", "--execute"]) == 1
    assert "4 books match" in capsys.readouterr().err


def test_batch_queue_and_priority(tmp_path, capsys):
    db = _db(tmp_path, capsys)
    assert run(cli, ["--db", db, "batch-queue", str(SAMPLES / "books"), "--pattern", "*.epub", "--json"]) == 0
    preview = json.loads(capsys.readouterr().out)
    assert preview["executed"] is False and preview["queued_count"] == 4
    assert run(cli, ["--db", db, "batch-queue", str(SAMPLES / "books"), "--pattern", "*.epub", "--priority", "2",
                     "--execute"]) == 0
    assert "Queued 4" in capsys.readouterr().out
    assert run(cli, ["--db", db, "priority", "1", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new"]["priority"] == 7
    assert run(cli, ["--db", db, "batch-retry", "--state", "failed"]) == 0
    assert "0 books match" in capsys.readouterr().out
