"""Worker log lines: one per book for each outcome, text and JSON, parsed back; control characters escaped."""

from __future__ import annotations

import json
import re
import shutil

from agentic_pipeline import logs
from agentic_pipeline.escaping import printable
from tests.orchestrator.helpers import SAMPLES, run_cli, worker_env

TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (DEBUG|INFO|WARNING|ERROR)\s+(\w+) (.*)$")
FIELD = re.compile(r' (\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_text(stderr: str) -> list[dict]:
    """Every line must be a log line; returns {timestamp, level, event, fields...} per line."""
    out = []
    for line in stderr.splitlines():
        m = TEXT_LINE.match(line)
        assert m, f"not a log line: {line!r}"
        fields = {k: json.loads(v) if v.startswith('"') else v for k, v in FIELD.findall(m.group(4))}
        out.append({"timestamp": m.group(1), "level": m.group(2), "event": m.group(3), **fields})
    return out


def parse_json(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines()]


def _worker(url, fmt, **env):
    done = run_cli(url, "--log-format", fmt, "worker", "--until-empty", "--poll", "0.1", env=worker_env(**env))
    assert done.returncode == 0, done.stderr
    return parse_text(done.stderr) if fmt == "text" else parse_json(done.stderr)


def test_worker_logs_every_outcome_in_text_and_json(sqlite_url, tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    shutil.copy(SAMPLES / "waste-land.epub", books / "waste-land.epub")
    evil = "evil\n2026-01-01T00:00:00.000Z ERROR   forged line.epub"
    shutil.copy(SAMPLES / "waste-land.epub", books / evil)  # same bytes: a DUPLICATE, named to forge a line
    shutil.copy(SAMPLES.parent / "broken" / "empty.epub", books / "empty.epub")
    for name in ("waste-land.epub", evil, "empty.epub"):
        assert run_cli(url := sqlite_url, "process", str(books / name)).returncode == 0

    lines = _worker(url, "text")
    start = lines[0]
    assert start["event"] == "worker_start" and start["concurrency"] == "1" and start["database"].startswith("sqlite")
    done = {r["pipeline_id"]: r for r in lines if r["event"] == "book_done"}
    assert {r["state"] for r in done.values()} == {"pending_approval", "duplicate", "rejected"}
    dup = next(r for r in done.values() if r["state"] == "duplicate")
    assert dup["title"] == printable(evil) and "\\n" in dup["title"] and dup["reason"].startswith("same content")
    rejected = next(r for r in done.values() if r["state"] == "rejected")
    assert rejected["title"] == "empty.epub" and "empty" in rejected["reason"] and float(rejected["seconds"]) >= 0
    assert lines[-1]["event"] == "worker_summary" and lines[-1]["books"] == "3"
    assert not any(r["event"] == "forged" for r in lines)

    pending = next(pid for pid, r in done.items() if r["state"] == "pending_approval")
    assert run_cli(url, "approve", pending).returncode == 0
    lines = _worker(url, "json")
    complete = [r for r in lines if r["event"] == "book_done"]
    assert [(r["pipeline_id"], r["state"], r["title"]) for r in complete] == [(int(pending), "complete", "The Waste Land")]
    assert all({"timestamp", "level", "event", "message"} <= set(r) for r in lines)

    # a transient failure: NEEDS_RETRY, then (due again at once) through to PENDING_APPROVAL
    assert run_cli(url, "process", str(SAMPLES / "fsm-drivers.pdf")).returncode == 0
    lines = _worker(url, "json", AGENTIC_PIPELINE_FAULTS=json.dumps({"processing": {"kind": "transient", "times": 1}}))
    states = [(r["state"], r["level"]) for r in lines if r["event"] == "book_done"]
    assert states == [("needs_retry", "warning"), ("pending_approval", "info")]
    assert "injected" in next(r for r in lines if r.get("state") == "needs_retry")["reason"].lower()

    # out of attempts: FAILED
    assert run_cli(url, "process", str(SAMPLES / "ltnews36.pdf")).returncode == 0
    lines = _worker(url, "json", AGENTIC_PIPELINE_MAX_ATTEMPTS="1",
                    AGENTIC_PIPELINE_FAULTS=json.dumps({"processing": {"kind": "transient", "times": 5}}))
    failed = [r for r in lines if r["event"] == "book_done"]
    assert [(r["state"], r["level"]) for r in failed] == [("failed", "warning")]
    assert lines[-1]["event"] == "worker_summary" and lines[-1]["outcomes"] == {"failed": 1}


def test_watch_on_a_missing_folder_is_an_error_unless_create(sqlite_url, tmp_path):
    missing = tmp_path / "no" / "such"
    out = run_cli(sqlite_url, "worker", "--watch", str(missing), "--until-empty")
    assert out.returncode == 2 and "no such folder" in out.stderr and not missing.exists()
    out = run_cli(sqlite_url, "worker", "--watch", str(missing), "--create", "--until-empty", "--poll", "0.1")
    assert out.returncode == 0, out.stderr
    assert missing.is_dir() and "watch_created" in out.stderr


def test_text_lines_escape_control_characters_and_json_lines_parse(capsys):
    import io
    import logging

    stream = io.StringIO()
    logs.setup("info", "text", stream)
    log = logging.getLogger("agentic_pipeline.test")
    logs.event(log, "book_done", "pipeline 1 title\nINFO forged", title="a\r\nb\x1b[31m", pipeline_id=1)
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\\n" in text and "\\x1b" in text
    stream = io.StringIO()
    logs.setup("debug", "json", stream)
    logs.event(log, "book_done", "x\ny", title="t\u202e", pipeline_id=2)
    (doc,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert doc["title"] == "t\u202e" and doc["pipeline_id"] == 2 and doc["level"] == "info"
    logs.setup("info", "text")
