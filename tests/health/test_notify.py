"""Alerts that reach people: episodes, the outbox, webhook and SMTP delivery with retries, no duplicates.

A real HTTP server and a real SMTP server (aiosmtpd) on 127.0.0.1 receive the notifications; the
database is the real SQLite and PostgreSQL (``app`` runs on both).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading
import time

import pytest
import sqlalchemy as sa

from agentic_pipeline import config, errors
from agentic_pipeline.db import alerts_store, schema
from agentic_pipeline.health import notify, tasks
from agentic_pipeline.orchestrator import maintenance
from tests.conftest import open_app

NO_WORKERS = {"code": "no_workers", "severity": "warning", "message": "3 books waiting and no live worker", "ids": []}
STUCK = [{"code": "stuck_pipeline", "severity": "warning", "message": f"pipeline {i} stuck", "ids": [i]}
         for i in (4, 7)]
QUEUE = {"code": "queue_backup", "severity": "info", "message": "150 books queued", "ids": []}


class Receiver:
    """A webhook receiver on 127.0.0.1: answers the scripted statuses in turn (then 200), records every POST."""

    def __init__(self, statuses=(), delay: float = 0.0) -> None:
        self.statuses, self.delay = list(statuses), delay
        self.posts: list[tuple[int, dict]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.posts.append((status, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def acked(self) -> list[dict]:
        return [body for status, body in self.posts if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def notifying_app(db_url, clock, **settings):
    return open_app(db_url, clock, alert_notify_after_seconds=0, alert_retry_base_seconds=10, **settings)


def outbox(app):
    with app.db.read() as conn:
        return sorted(alerts_store.outbox(conn), key=lambda r: r["id"])


# ------------------------------------------------------------------ pure decisions
def test_group_keeps_one_alert_per_code_at_or_above_the_floor():
    grouped = notify.group([*STUCK, QUEUE, NO_WORKERS], "warning")
    assert set(grouped) == {"stuck_pipeline", "no_workers"}
    assert grouped["stuck_pipeline"].ids == (4, 7) and grouped["stuck_pipeline"].message.startswith("2 alerts: ")
    assert set(notify.group([QUEUE], "info")) == {"queue_backup"}
    assert notify.group([NO_WORKERS], "critical") == {}


def test_plan_starts_new_codes_keeps_open_ones_and_clears_the_rest():
    open_ = {"no_workers": {"id": 1}, "disk_space_low": {"id": 2}}
    decided = notify.plan(open_, notify.group([NO_WORKERS, *STUCK], "info"))
    assert [g.code for g in decided.start] == ["stuck_pipeline"]
    assert [e["id"] for e, _ in decided.keep] == [1] and [e["id"] for e in decided.clear] == [2]


def test_backoff_doubles_up_to_the_cap():
    assert [notify.backoff(n, 30) for n in (1, 2, 3)] == [30, 60, 120]
    assert notify.backoff(20, 30) == notify.MAX_BACKOFF_SECONDS


def test_channels_and_bad_settings_are_refused():
    s = config.load({"alert_webhooks": "http://a.example/x, https://b.example/y", "alert_smtp_host": "mail",
                     "alert_email_to": "ops@example.org"}, environ={})
    assert notify.channels(s) == ["webhook http://a.example/x", "webhook https://b.example/y", "email"]
    for bad, match in (({"alert_webhooks": "ftp://x/y"}, "not an http"),
                       ({"alert_email_to": "ops@example.org"}, "alert_smtp_host"),
                       ({"alert_smtp_host": "m", "alert_email_to": "nobody"}, "not an e-mail"),
                       ({"alert_notify_severity": "loud"}, "one of info")):
        with pytest.raises(errors.ConfigError, match=match):
            config.load(bad, environ={})


# ------------------------------------------------------------------ episodes (both engines)
def test_one_notification_when_an_alert_starts_and_one_when_it_clears(db_url, clock, receiver):
    with notifying_app(db_url, clock, alert_webhooks=receiver.url) as app:
        assert notify.record(app, [NO_WORKERS], clock.now()) == {"started": ["no_workers"], "cleared": []}
        for _ in range(3):  # the alert still holds at every later check: nothing new
            clock.advance(30)
            assert notify.record(app, [NO_WORKERS], clock.now()) == {"started": [], "cleared": []}
        clock.advance(30)
        assert notify.record(app, [], clock.now()) == {"started": [], "cleared": ["no_workers"]}
        assert notify.record(app, [], clock.now()) == {"started": [], "cleared": []}
        assert notify.deliver_due(app) == {"sent": 2, "retrying": 0, "gave_up": 0}
        events = [(b["event"], b["alert"]["code"]) for b in receiver.acked()]
        assert events == [("started", "no_workers"), ("cleared", "no_workers")]
        first = receiver.acked()[0]
        assert first["id"].endswith("/started") and first["episode"]["cleared_at"] is None
        assert "no_workers" in first["text"] and first["alert"]["message"] == NO_WORKERS["message"]
        clock.advance(30)  # it comes back: a new episode, a new notification
        assert notify.record(app, [NO_WORKERS], clock.now())["started"] == ["no_workers"]
        with app.db.read() as conn:
            assert len(alerts_store.episodes(conn)) == 2


def test_several_evaluators_send_one_notification_per_episode(db_url, clock, receiver):
    """Three workers (on as many hosts) evaluating the same alerts queue it once."""
    apps = [notifying_app(db_url, clock, alert_webhooks=receiver.url) for _ in range(3)]
    try:
        results = [notify.record(a, [NO_WORKERS, *STUCK], clock.now()) for a in apps]
        assert sum(len(r["started"]) for r in results) == 2
        clock.advance(60)
        results = [notify.record(a, [NO_WORKERS], clock.now()) for a in apps]
        assert sum(len(r["cleared"]) for r in results) == 1
        assert [(r["event"]) for r in outbox(apps[0])] == ["started", "started", "cleared"]
        with apps[0].db.write() as conn, pytest.raises(sa.exc.IntegrityError):  # and the schema holds it too
            with conn.begin_nested():
                row = outbox(apps[0])[0]
                conn.execute(schema.alert_outbox.insert().values(
                    episode_id=row["episode_id"], event="started", channel=row["channel"], payload={},
                    created_at=clock.now(), next_attempt_at=clock.now()))
    finally:
        for a in apps:
            a.close()


def test_an_alert_that_clears_before_the_hold_sends_nothing(db_url, clock, receiver):
    with open_app(db_url, clock, alert_webhooks=receiver.url, alert_notify_after_seconds=120) as app:
        assert notify.record(app, [NO_WORKERS], clock.now())["started"] == []  # a restart's brief gap
        clock.advance(60)
        assert notify.record(app, [], clock.now())["cleared"] == []
        clock.advance(60)
        notify.record(app, [NO_WORKERS], clock.now())
        clock.advance(119)
        assert notify.record(app, [NO_WORKERS], clock.now())["started"] == []
        clock.advance(1)
        assert notify.record(app, [NO_WORKERS], clock.now())["started"] == ["no_workers"]
        assert [r["event"] for r in outbox(app)] == ["started"]


# ------------------------------------------------------------------ delivery
def test_webhook_failures_are_retried_with_backoff_and_delivered_once(db_url, clock):
    receiver = Receiver(statuses=[503, 500])
    try:
        with notifying_app(db_url, clock, alert_webhooks=receiver.url) as app:
            notify.record(app, [NO_WORKERS], clock.now())
            assert notify.deliver_due(app) == {"sent": 0, "retrying": 1, "gave_up": 0}
            assert notify.deliver_due(app) == {"sent": 0, "retrying": 0, "gave_up": 0}  # not due before the backoff
            clock.advance(9)
            assert notify.deliver_due(app)["retrying"] == 0
            clock.advance(1)  # 10 s after the first failure
            assert notify.deliver_due(app) == {"sent": 0, "retrying": 1, "gave_up": 0}
            row = outbox(app)[0]
            assert row["attempts"] == 2 and "HTTP 500" in row["last_error"]
            assert row["next_attempt_at"] == clock.now() + dt.timedelta(seconds=20)  # doubled
            clock.advance(20)
            assert notify.deliver_due(app) == {"sent": 1, "retrying": 0, "gave_up": 0}
            clock.advance(3600)
            assert notify.deliver_due(app) == {"sent": 0, "retrying": 0, "gave_up": 0}
            assert [s for s, _ in receiver.posts] == [503, 500, 200]
            assert len({b["id"] for b in receiver.acked()}) == len(receiver.acked()) == 1
            assert outbox(app)[0]["delivered_at"] is not None
    finally:
        receiver.close()


def test_a_refused_webhook_is_not_retried_and_an_unreachable_one_gives_up(db_url, clock):
    receiver = Receiver(statuses=[404])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/nobody-listens"
    try:
        with notifying_app(db_url, clock, alert_webhooks=f"{receiver.url} {dead}", alert_max_attempts=2) as app:
            notify.record(app, [NO_WORKERS], clock.now())
            assert notify.deliver_due(app) == {"sent": 0, "retrying": 1, "gave_up": 1}
            clock.advance(10)
            assert notify.deliver_due(app) == {"sent": 0, "retrying": 0, "gave_up": 1}
            rows = outbox(app)
            assert all(r["gave_up_at"] is not None for r in rows)
            assert "HTTP 404" in rows[0]["last_error"] and "cannot reach" in rows[1]["last_error"]
            with app.db.read() as conn:
                assert alerts_store.backlog(conn) == {"pending": 0, "gave_up": 2}
    finally:
        receiver.close()


def test_a_slow_webhook_times_out_and_never_blocks_the_worker(sqlite_url):
    """The maintenance tick returns at once; the send runs (and times out) in the background thread."""
    receiver = Receiver(delay=3.0)
    try:
        with open_app(sqlite_url, alert_webhooks=receiver.url, alert_notify_after_seconds=0,
                      alert_timeout_seconds=0.5, alert_retry_base_seconds=3600) as app:
            notify.record(app, [NO_WORKERS], app.clock.now())
            started = time.monotonic()
            assert tasks.deliver_alerts(app) == {"started": True}
            assert time.monotonic() - started < 0.5
            assert tasks.deliver_alerts(app) == {"started": False}  # one drain at a time
            assert notify.wait_drained(app, 10)
            row = outbox(app)[0]
            assert row["attempts"] == 1 and "timed out" in row["last_error"] and row["delivered_at"] is None
    finally:
        receiver.close()


class FlakySMTPHandler:
    """aiosmtpd handler: refuses the first ``fail`` messages with 451 (try later), keeps the rest."""

    def __init__(self, fail: int) -> None:
        self.fail, self.messages = fail, []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.fail:
            self.fail -= 1
            return "451 4.3.0 try again later"
        self.messages.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_email_is_sent_over_smtp_retried_and_not_duplicated(db_url, clock):
    from email import message_from_bytes

    from aiosmtpd.controller import Controller

    handler = FlakySMTPHandler(fail=1)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with notifying_app(db_url, clock, alert_smtp_host="127.0.0.1", alert_smtp_port=controller.port,
                           alert_email_to="ops@example.org, oncall@example.org",
                           alert_email_from="pipeline@example.org") as app:
            notify.record(app, [*STUCK], clock.now())
            assert notify.deliver_due(app) == {"sent": 0, "retrying": 1, "gave_up": 0}
            clock.advance(10)
            assert notify.deliver_due(app) == {"sent": 1, "retrying": 0, "gave_up": 0}
            clock.advance(60)
            notify.record(app, [], clock.now())
            assert notify.deliver_due(app) == {"sent": 1, "retrying": 0, "gave_up": 0}
            assert notify.deliver_due(app) == {"sent": 0, "retrying": 0, "gave_up": 0}
        assert len(handler.messages) == 2
        first, second = (message_from_bytes(m.content) for m in handler.messages)
        assert handler.messages[0].rcpt_tos == ["ops@example.org", "oncall@example.org"]
        assert "WARNING stuck_pipeline started" in first["Subject"]
        assert "stuck_pipeline cleared" in second["Subject"] and first["From"] == "pipeline@example.org"
        assert "Pipelines: 4, 7" in first.get_payload()
        assert first["Message-ID"] != second["Message-ID"]
    finally:
        controller.stop()


# ------------------------------------------------------------------ through the maintenance tasks, real clock
def test_the_maintenance_leader_refreshes_health_and_delivers(db_url, receiver):
    """Books waiting and no worker: the health task opens no_workers, the delivery task posts it."""
    with open_app(db_url, alert_webhooks=receiver.url, alert_notify_after_seconds=0) as app:
        for i in range(3):
            app.pipelines.create(source_path=f"/books/{i}.epub", actor="human:t")
        only = tuple(t for t in maintenance.TASKS if t[0] in ("refresh_health", "deliver_alerts"))
        ran = maintenance.run_due(app, "w1", tasks=only)
        assert ran["refresh_health"]["alerts_started"] == ["no_workers"]
        assert notify.wait_drained(app, 20)
        assert [b["alert"]["code"] for b in receiver.acked()] == ["no_workers"]
        ran = maintenance.run_due(app, "w2", tasks=only)  # not due yet for anyone
        assert "refresh_health" not in ran


def test_serve_sends_no_workers_when_no_worker_is_alive(db_url, receiver):
    """`serve` runs the alert tasks too: with every worker gone, people still hear that books wait."""
    import os
    import subprocess
    import sys

    with open_app(db_url) as app:
        app.pipelines.create(source_path="/books/a.epub", actor="human:t")
    env = {**os.environ, "AGENTIC_PIPELINE_ALERT_WEBHOOKS": receiver.url, "AGENTIC_PIPELINE_EMBEDDER": "hashing",
           "AGENTIC_PIPELINE_ALERT_NOTIFY_AFTER_SECONDS": "0", "AGENTIC_PIPELINE_HEALTH_INTERVAL": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "agentic_pipeline.interfaces.cli", "--db", db_url, "serve",
                             "--port", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not receiver.acked() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert [b["alert"]["code"] for b in receiver.acked()] == ["no_workers"], proc.poll()
    finally:
        proc.terminate()
        proc.wait(30)
