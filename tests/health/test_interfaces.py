"""The CLI's exit codes and ``health --watch`` under a pty (HTTP: tests/web/test_server.py)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from agentic_pipeline.clock import utcnow
from agentic_pipeline.interfaces.cli import cli
from tests.conftest import open_app

REPO = Path(__file__).resolve().parents[2]


def run_cli(url, *args):
    return CliRunner().invoke(cli, ["--db", url, *args], catch_exceptions=False)


def test_cli_health_exit_codes_and_json(sqlite_url, clock):
    app = open_app(sqlite_url, clock)
    assert run_cli(sqlite_url, "health").exit_code == 0
    app.pipelines.create(source_path="/b/1.epub", actor="human:t")
    result = run_cli(sqlite_url, "health", "--json", "--fresh")
    assert result.exit_code == 1 and json.loads(result.output)["alerts"][0]["code"] == "no_workers"
    human = run_cli(sqlite_url, "health", "--fresh")
    assert "WARNING" in human.output and "Queued: 1" in human.output
    env_result = CliRunner().invoke(cli, ["--db", sqlite_url, "health", "--fresh"],
                                    env={"AGENTIC_PIPELINE_ALERT_DISK_FREE_MB": str(10**12)})
    assert env_result.exit_code == 2
    assert "No stuck books" in run_cli(sqlite_url, "stuck").output
    app.close()


def test_cli_stuck_recover_and_reset(sqlite_url, clock):
    app = open_app(sqlite_url, clock)
    pid = app.pipelines.create(source_path="/b/1.epub", actor="human:t").id
    app.pipelines.claim_next("w1", lease_seconds=1)
    from agentic_pipeline.pipeline.states import State as S

    app.pipelines.transition(pid, S.HASHING, expect=S.DETECTED, actor="system:worker", owner="w1")
    # the CLI uses the real clock, and the fake one stands in the past (2026-01-01): the lease has run out
    assert app.pipelines.get(pid).lease_expires_at < utcnow()
    listing = run_cli(sqlite_url, "stuck", "--json")
    assert json.loads(listing.output)["stuck"][0]["reason"] == "orphaned"
    recovered = run_cli(sqlite_url, "stuck", "--recover", "--json")
    assert json.loads(recovered.output)["recovered"][0]["id"] == pid
    reset = run_cli(sqlite_url, "stuck", "--reset", str(pid), "--action", "reject", "--actor", "human:bob",
                    "--reason", "the source is a scan")
    assert reset.exit_code == 0 and "needs_retry -> rejected" in reset.output
    app.close()


def test_health_watch_redraws_under_a_pty_until_ctrl_c(sqlite_url):
    open_app(sqlite_url).close()
    pid, fd = pty.fork()
    if pid == 0:  # child: the real entry point on a terminal
        exe = str(Path(sys.executable).parent / "agentic-pipeline")
        os.execv(exe, [exe, "--db", sqlite_url, "health", "--watch", "--interval", "0.3"])
    output = b""
    deadline = time.time() + 20
    while time.time() < deadline and output.count(b"Pipeline health") < 3:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                output += os.read(fd, 65536)
            except OSError:
                break
    os.kill(pid, signal.SIGINT)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert output.count(b"Pipeline health") >= 3  # the first draw and two refreshes
    assert b"\x1b[" in output  # Rich redrew in place with cursor controls
    assert os.waitstatus_to_exitcode(status) == 0


def test_health_watch_json_prints_one_report_per_line_and_serve_refuses_bad_addresses(sqlite_url):
    import subprocess

    open_app(sqlite_url).close()
    exe = str(Path(sys.executable).parent / "agentic-pipeline")
    proc = subprocess.Popen([exe, "--db", sqlite_url, "health", "--watch", "--json", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, deadline = [], time.monotonic() + 30
    while len(lines) < 2 and time.monotonic() < deadline:  # two reports (the first and one refresh), then stop
        if select.select([proc.stdout], [], [], 0.5)[0]:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    reports = [json.loads(line) for line in "".join(lines + [out]).splitlines()]
    assert len(reports) >= 2 and all(r["status"] == "healthy" for r in reports), (out, err)
    bad = run_cli(sqlite_url, "serve", "--port", "70000")
    assert bad.exit_code == 2 and "not in the range" in bad.output
    result = subprocess.run([exe, "--db", sqlite_url, "serve", "--host", "no-such-host.invalid"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "cannot listen on no-such-host.invalid" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr



def _finish_some(app):
    """Two rejected books and one duplicate, through real transitions (history rows, as a worker leaves them)."""
    from agentic_pipeline.pipeline.states import State as S

    for n in (1, 2):
        p = app.pipelines.create(source_path=f"/b/{n}.epub", actor="human:t")
        app.pipelines.transition(p.id, S.REJECTED, expect=S.DETECTED, actor="human:t")
    p = app.pipelines.create(source_path="/b/3.epub", actor="human:t")
    app.pipelines.transition(p.id, S.HASHING, expect=S.DETECTED, actor="system:worker")
    app.pipelines.transition(p.id, S.DUPLICATE, expect=S.HASHING, actor="system:worker")


def test_health_text_shows_rejected_duplicate_and_failed_counts(sqlite_url):
    app = open_app(sqlite_url)
    _finish_some(app)
    app.close()
    out = run_cli(sqlite_url, "health", "--fresh").output
    assert "Last 24h: completed 0   rejected 2   duplicates 1   failed 0" in out
    assert "Total:    completed 0   rejected 2   duplicates 1   failed 0" in out
    report = json.loads(run_cli(sqlite_url, "health", "--json").output)
    assert report["finished"]["rejected"] == {"last_24h": 2, "total": 2}
    from agentic_pipeline.health import metrics

    app = open_app(sqlite_url)
    body = metrics.render(app)[0].decode()
    app.close()
    assert 'agentic_pipeline_finished_last_24h{state="rejected"} 2.0' in body
    assert 'agentic_pipeline_pipelines{state="duplicate"} 1.0' in body


def test_health_watch_shows_a_change_within_two_refreshes(sqlite_url):
    app = open_app(sqlite_url)
    pid, fd = pty.fork()
    if pid == 0:
        exe = str(Path(sys.executable).parent / "agentic-pipeline")
        os.execv(exe, [exe, "--db", sqlite_url, "health", "--watch", "--interval", "0.5"])
    output, changed_at = b"", None
    deadline = time.time() + 30
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                output += os.read(fd, 65536)
            except OSError:
                break
        if changed_at is None and output.count(b"Pipeline health") >= 1:
            _finish_some(app)
            changed_at = output.count(b"Pipeline health")
        if changed_at is not None and output.count(b"Pipeline health") >= changed_at + 2:
            break
    os.kill(pid, signal.SIGINT)
    os.waitpid(pid, 0)
    os.close(fd)
    app.close()
    draws = output.split(b"Pipeline health")
    assert changed_at is not None and len(draws) - 1 >= changed_at + 2, output[-2000:]
    # the draws after the change: the new figures appear in one of the next two
    assert any(b"rejected 2" in d for d in draws[changed_at + 1:changed_at + 3]), output[-2000:]
    assert b"old" in output or b"just computed" in output  # each draw says how old its figures are


def test_health_exit_code_3_when_the_database_is_unreachable_or_missing(tmp_path):
    unreachable = CliRunner().invoke(cli, ["--db", "postgresql://postgres@127.0.0.1:1/none", "health"])
    assert unreachable.exit_code == 3 and "health unknown" in unreachable.output
    missing = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "health"])
    assert missing.exit_code == 3 and "no database" in missing.output
