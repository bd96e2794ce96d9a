"""The real server under ``serve`` (uvicorn + guards) on 127.0.0.1: probes, slow clients, disconnects."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from agentic_pipeline.health import monitor
from agentic_pipeline.interfaces.web import app as web_app
from agentic_pipeline.interfaces.web import probes, server as web_server


def start(app, **guard):
    return web_server.make_server(web_app.create_app(app), "127.0.0.1", 0,
                                  guard=web_server.Guard(**guard)).start()


@pytest.fixture
def served(app):
    srv = start(app)
    yield app, f"http://127.0.0.1:{srv.address[1]}"
    srv.shutdown()


def fetch(url, method="GET", timeout=10):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type"), exc.read()


def test_health_metrics_404_405(served):
    app, base = served
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


def test_health_is_503_when_critical(served):
    app, base = served
    app.settings.alert_disk_free_mb = 10**12  # more than any disk: disk_space_low fires (SQLite only)
    status, _, body = fetch(base + "/health")
    if app.db.is_sqlite:
        assert status == 503 and json.loads(body)["status"] == "critical"
    else:
        assert status == 200  # no disk check on PostgreSQL


def test_head_other_methods_and_unexpected_errors(served, monkeypatch):
    app, base = served
    status, ctype, body = fetch(base + "/health", method="HEAD")
    assert (status, ctype, body) == (200, "application/json", b"")
    for method in ("TRACE", "PROPFIND", "OPTIONS"):
        status, ctype, body = fetch(base + "/health", method=method)
        assert (status, ctype) == (405, "application/json") and b"read-only" in body, method

    def boom(_app):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(probes, "health_response", boom)
    status, ctype, body = fetch(base + "/health")
    assert (status, ctype) == (500, "application/json")
    assert b"internal error" in body and b"secret" not in body


def test_binds_loopback_by_default(sqlite_app):
    srv = web_server.make_server(web_app.create_app(sqlite_app), port=0)
    assert srv.address[0] == "127.0.0.1"
    srv.sock.close()


class SlowClients:
    """``n`` connections that each send a request line, then one more header line every ``every`` seconds."""

    def __init__(self, port: int, n: int, every: float = 0.5) -> None:
        self.socks = []
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            self.socks.append(sock)
        self.every = every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._dribble, daemon=True)
        self.thread.start()

    def _dribble(self) -> None:
        i = 0
        while not self.stop.wait(self.every):
            i += 1
            for sock in self.socks:
                try:
                    sock.sendall(b"X-Slow-%d: 1\r\n" % i)
                except OSError:
                    pass  # dropped by the server: that is the point

    def closed(self) -> int:
        """How many the server has closed (a read returns EOF or the connection was reset)."""
        n = 0
        for sock in self.socks:
            sock.settimeout(0.01)
            try:
                n += sock.recv(1024) == b""
            except (BlockingIOError, socket.timeout):
                pass
            except OSError:
                n += 1
        return n

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for sock in self.socks:
            sock.close()


@pytest.mark.parametrize("n", [32, 100])
def test_slow_header_clients_never_blind_the_probes(sqlite_app, n):
    """Slow-header clients (issue 17): every /health answers within 1 s with the real status, and they are dropped."""
    sqlite_app.pipelines.create(source_path="/b/1.epub", actor="human:t")  # status "warning", not a default
    expected = monitor.get_health(sqlite_app, save=False)["status"]
    srv = start(sqlite_app, request_timeout=3.0, max_per_client=16, over_cap_timeout=1.0)
    base = f"http://127.0.0.1:{srv.address[1]}"
    slow = SlowClients(srv.address[1], n, every=0.3)
    try:
        started = time.monotonic()
        worst, probes_done = 0.0, 0
        while time.monotonic() - started < 4.0:  # past the request deadline: before and after the drops
            t0 = time.monotonic()
            status, _, body = fetch(base + "/health", timeout=1.0)
            took = time.monotonic() - t0
            worst = max(worst, took)
            assert status == 200 and json.loads(body)["status"] == expected
            assert took < 1.0
            probes_done += 1
            _, _, metrics = fetch(base + "/metrics", timeout=1.0)
            assert b"agentic_pipeline_pipelines" in metrics
            time.sleep(0.05)
        assert probes_done >= 10
        deadline = time.monotonic() + 5
        while slow.closed() < n and time.monotonic() < deadline:
            time.sleep(0.1)
        assert slow.closed() == n  # every slow client was dropped at its deadline, none held on for good
        assert srv.guard.dropped >= n
    finally:
        slow.close()
        srv.shutdown()


def test_over_cap_connections_get_probes_only(sqlite_app):
    srv = start(sqlite_app, max_per_client=2, request_timeout=5.0)
    base = f"http://127.0.0.1:{srv.address[1]}"
    slow = SlowClients(srv.address[1], 2, every=0.3)
    try:
        assert fetch(base + "/health", timeout=1.0)[0] == 200  # a third connection: the probe is served
        status, _, body = fetch(base + "/", timeout=1.0)  # ... but not a page
        assert status == 503 and b"too many connections" in body
    finally:
        slow.close()
        srv.shutdown()
    assert not srv.guard.per_client and srv.guard.total == 0  # every connection was counted out


def test_a_client_that_goes_away_costs_one_log_line(sqlite_app, monkeypatch, caplog):
    from agentic_pipeline.health import dashboard

    entered, release = threading.Event(), threading.Event()
    real = dashboard.overview

    def slow_overview(app):
        entered.set()
        release.wait(5)
        return real(app)

    monkeypatch.setattr(dashboard, "overview", slow_overview)
    srv = start(sqlite_app)
    try:
        with caplog.at_level(logging.DEBUG):
            sock = socket.create_connection(srv.address, timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert entered.wait(5)
            sock.close()  # gone before the answer
            deadline = time.monotonic() + 5
            while not any("went away" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
                time.sleep(0.02)
            release.set()
            time.sleep(0.3)  # let the late answer meet the closed connection
        lines = [r for r in caplog.records if "went away" in r.getMessage()]
        assert len(lines) == 1 and "before the answer to GET /" in lines[0].getMessage()
        assert not any(r.exc_info for r in caplog.records), [r.getMessage() for r in caplog.records]
        assert fetch(f"http://127.0.0.1:{srv.address[1]}/health")[0] == 200
    finally:
        release.set()
        srv.shutdown()
