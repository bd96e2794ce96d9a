"""HTTP through a real server on 127.0.0.1, the CLI's exit codes, and ``health --watch`` under a pty."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentic_pipeline.interfaces.cli import cli
from agentic_pipeline.interfaces import http
from tests.conftest import open_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(app):
    srv = http.make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def fetch(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type"), exc.read()


def test_http_health_metrics_404_405(server):
    app, base = server
    app.pipelines.create(source_path="/b/1.epub", actor="human:t")
    status, ctype, body = fetch(base + "/health")
    report = json.loads(body)
    assert (status, ctype) == (200, "application/json")
    assert report["status"] == "warning" and report["queued"] == 1
    status, ctype, body = fetch(base + "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert b'agentic_pipeline_pipelines{state="detected"} 1.0' in body
    assert fetch(base + "/nope")[0] == 404
    assert fetch(base + "/health", method="POST")[0] == 405
    assert fetch(base + "/health", method="DELETE")[0] == 405


def test_http_health_is_503_when_critical(server):
    app, base = server
    app.settings.alert_disk_free_mb = 10**12  # more than any disk: disk_space_low fires (SQLite only)
    status, _, body = fetch(base + "/health")
    if app.db.is_sqlite:
        assert status == 503 and json.loads(body)["status"] == "critical"
    else:
        assert status == 200  # no disk check on PostgreSQL


def test_http_head_other_methods_and_unexpected_errors(server, monkeypatch):
    app, base = server
    status, ctype, body = fetch(base + "/health", method="HEAD")
    assert (status, ctype, body) == (200, "application/json", b"")
    for method in ("TRACE", "PROPFIND", "OPTIONS"):
        status, ctype, body = fetch(base + "/health", method=method)
        assert (status, ctype) == (405, "application/json") and b"read-only" in body, method

    def boom(_app):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(http, "health_response", boom)
    status, ctype, body = fetch(base + "/health")
    assert (status, ctype) == (500, "application/json")
    assert b"internal error" in body and b"secret" not in body


def _raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /health HTTP/1.1\r\n")  # and never the rest of the request
    return sock


def test_http_drops_silent_clients_and_caps_connections(app, monkeypatch):
    monkeypatch.setattr(http._Handler, "timeout", 0.5)
    srv = http.make_server(app, "127.0.0.1", 0, max_connections=2)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        slow = [_raw(port), _raw(port)]
        time.sleep(0.1)
        third = _raw(port)  # both slots taken by silent clients: refused at once, not queued
        assert third.recv(1024).startswith(b"HTTP/1.1 503")
        started = time.monotonic()
        for sock in slow:  # each silent client is dropped (closed, no answer) after the timeout
            assert sock.recv(1024) == b""
        assert time.monotonic() - started < 3
        time.sleep(0.2)
        status, _, _ = fetch(f"http://127.0.0.1:{port}/health")  # the slots came back
        assert status == 200
    finally:
        srv.shutdown()
        srv.server_close()


def test_server_binds_loopback_by_default(app):
    srv = http.make_server(app, port=0)
    assert srv.server_address[0] == "127.0.0.1"
    srv.server_close()


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
    time.sleep(1.2)  # the CLI uses the real clock: let the 1 s lease run out
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
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    reports = [json.loads(line) for line in out.splitlines()]
    assert len(reports) >= 2 and all(r["status"] == "healthy" for r in reports), (out, err)
    bad = run_cli(sqlite_url, "serve", "--port", "70000")
    assert bad.exit_code == 2 and "not in the range" in bad.output
    result = subprocess.run([exe, "--db", sqlite_url, "serve", "--host", "no-such-host.invalid"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "cannot listen on no-such-host.invalid" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr

