"""A name over 255 bytes (or a path over 4,095) is an input error that says what is wrong, on the CLI and in the
watcher (the MCP tools: tests/mcp/test_mcp_safety.py). Before, the filesystem's ``OSError: [Errno 36]`` escaped."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from agentic_pipeline.interfaces.cli import cli
from agentic_pipeline.interfaces.cli.context import run
from agentic_pipeline.orchestrator import queueing, watching
from tests.conftest import SAMPLES, open_app

LONG = "n" * 300


def _deep_folder(base: Path, depth_bytes: int = 4_300) -> Path:
    """A real folder whose full path is longer than PATH_MAX (each name is legal), made one level at a time."""
    path, name = base, "d" * 200
    fd = os.open(base, os.O_RDONLY)
    try:
        while len(os.fsencode(path)) < depth_bytes:
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, path = child, path / name
        book = os.open("deep.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(book, (SAMPLES / "books" / "waste-land.md").read_bytes())
        os.close(book)
    finally:
        os.close(fd)
    return path


def test_path_problem_names_what_is_wrong():
    assert queueing.path_problem("/tmp/book.epub") is None
    assert queueing.path_problem(f"/tmp/{'n' * 255}") is None
    problem = queueing.path_problem(f"/tmp/{LONG}.epub")
    assert problem.startswith("file name too long: a name in the path (nnnn") and "is 305 bytes" in problem
    assert "at most 255 bytes" in problem
    assert queueing.path_problem("/" + "/".join(["d" * 200] * 21)).startswith("path too long: 4,221 bytes")
    assert queueing.path_problem("é" * 128) is not None  # bytes, not characters: 256 bytes in UTF-8


@pytest.mark.parametrize("command", ["process", "batch-queue"])
def test_cli_refuses_a_300_character_name_with_an_input_error(tmp_path, capsys, command):
    db = str(tmp_path / "x.db")
    assert run(cli, ["--db", db, "init"]) == 0
    capsys.readouterr()
    target = tmp_path / (LONG + (".epub" if command == "process" else ""))
    assert run(cli, ["--db", db, command, str(target)]) == 2
    err = capsys.readouterr().err
    assert "file name too long" in err and "at most 255 bytes" in err, err
    assert "Traceback" not in err and "Errno" not in err and err.count("\n") <= 2, err


def test_cli_refuses_a_path_over_path_max_and_a_watch_folder_with_a_long_name(tmp_path, capsys):
    db = str(tmp_path / "x.db")
    assert run(cli, ["--db", db, "init"]) == 0
    capsys.readouterr()
    deep = _deep_folder(tmp_path)
    assert run(cli, ["--db", db, "process", str(deep / "deep.md")]) == 2
    assert "path too long" in capsys.readouterr().err
    assert run(cli, ["--db", db, "batch-queue", str(deep)]) == 2
    assert "path too long" in capsys.readouterr().err
    assert run(cli, ["--db", db, "worker", "--until-empty", "--watch", str(tmp_path / LONG)]) == 2
    err = capsys.readouterr().err
    assert "--watch: file name too long" in err and "Traceback" not in err, err


def test_the_watcher_logs_one_clear_line_for_a_path_too_long_and_keeps_going(sqlite_url, tmp_path, caplog):
    app = open_app(sqlite_url)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLES / "books" / "waste-land.md", inbox / "before.md")
    _deep_folder(inbox)
    caplog.set_level(logging.WARNING, logger=watching.__name__)
    watcher = watching.Watcher(app, inbox, settle=0.2).start()
    try:
        assert len(watcher.queued) == 1  # the readable book, queued at start
        lines = [r.getMessage() for r in caplog.records if "not queued" in r.getMessage()]
        assert len(lines) == 1 and "path too long" in lines[0] and "Traceback" not in caplog.text, lines
        watcher.note(Path(str(inbox / LONG) + ".md"))  # as an event would name it
        assert any("file name too long" in e for e in watcher.errors), watcher.errors
        shutil.copy(SAMPLES / "books" / "romeo-juliet.epub", inbox / "after.epub")  # it keeps going
        deadline = time.monotonic() + 30
        while len(watcher.queued) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(watcher.queued) == 2
    finally:
        watcher.stop()
        app.close()


def test_batch_queue_reports_a_folder_too_deep_to_read_and_queues_the_rest(sqlite_url, tmp_path):
    from agentic_pipeline import intake

    app = open_app(sqlite_url)
    try:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        shutil.copy(SAMPLES / "books" / "waste-land.md", inbox / "poem.md")
        _deep_folder(inbox)
        out = intake.batch_queue(app, inbox, recursive=True, actor="human:test")
        assert out["queued_count"] == 1
        assert [u["reason"].split(":")[0] for u in out["unreadable"]] == ["path too long"], out["unreadable"]
    finally:
        app.close()
