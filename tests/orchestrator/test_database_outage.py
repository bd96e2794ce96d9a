"""A worker outlives its database connections being cut (a PostgreSQL restart) and carries on."""

from __future__ import annotations

import threading

import psycopg
import pytest
import sqlalchemy as sa

from agentic_pipeline import intake
from agentic_pipeline.orchestrator import worker
from agentic_pipeline.pipeline.states import State
from tests import pg
from tests.conftest import open_app
from tests.orchestrator.helpers import wait_until, write_text_books


@pytest.mark.pg
def test_worker_survives_killed_connections(pg_databases, tmp_path):
    pg.require_server()
    url = pg_databases.fresh()
    dbname = sa.engine.make_url(url).database
    app = open_app(url)
    w = worker.Worker(open_app(url), worker.Options(poll_seconds=0.05, isolate=False, maintenance=False),
                      worker_id="outage-test")
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    try:
        # the worker is polling an empty queue on pooled connections
        wait_until(lambda: _workers(app), 30, "the worker to register")
        with psycopg.connect(pg.ADMIN_URL, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,)).fetchone()[0]
        assert killed >= 1
        app.db.dispose()  # this test's own pooled connections were cut too
        book = write_text_books(tmp_path / "books", 1)[0]
        pid = intake.queue_file(app, book, actor="human:test")["id"]
        wait_until(lambda: app.pipelines.get(pid).state is State.PENDING_APPROVAL, 60, "the book to be processed")
        assert thread.is_alive(), "the worker died with its connections"
    finally:
        w.request_stop()
        thread.join(timeout=30)
        app.close()
    assert not thread.is_alive()


def test_a_database_error_during_a_stage_costs_the_book_no_attempt(sqlite_url, tmp_path, monkeypatch):
    """A locked or restarting database is not the book's fault: the worker backs off and resumes the stage."""
    from agentic_pipeline import errors
    from agentic_pipeline.orchestrator import stages

    app = open_app(sqlite_url)
    book = write_text_books(tmp_path / "books", 1)[0]
    pid = intake.queue_file(app, book, actor="human:test")["id"]
    real = stages.STAGES[State.PROCESSING]
    calls = []

    def flaky(app_, p):
        calls.append(p.id)
        if len(calls) <= 2:
            raise errors.StoreError("database error: database is locked")
        return real(app_, p)

    monkeypatch.setitem(stages.STAGES, State.PROCESSING, flaky)
    w = worker.Worker(open_app(sqlite_url), worker.Options(poll_seconds=0.05, isolate=False, maintenance=False,
                                                           until_empty=True), worker_id="locked-test")
    assert w.run() == 0
    p = app.pipelines.get(pid)
    assert p.state is State.PENDING_APPROVAL and len(calls) == 3
    assert (p.row.get("retry_count") or 0) == 0
    assert "needs_retry" not in [h["to_state"] for h in app.pipelines.history(pid)]
    app.close()


def _cut_connections(dbname: str) -> int:
    with psycopg.connect(pg.ADMIN_URL, autocommit=True) as admin:
        return admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchone()[0]


@pytest.mark.pg
def test_a_worker_stopped_after_its_connections_were_cut_exits_without_noise(pg_databases):
    """SIGTERM right after the server cut every connection: the worker still marks itself stopped, says nothing."""
    import signal

    from tests.orchestrator.helpers import start_worker

    pg.require_server()
    url = pg_databases.fresh()
    app = open_app(url)
    proc = start_worker(url)
    try:
        wait_until(lambda: [w for w in _workers(app) if w["stopped_at"] is None], 60, "the worker to register")
        app.db.dispose()
        assert _cut_connections(sa.engine.make_url(url).database) >= 1
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "could not mark itself stopped" not in err and "Pipeline" not in err and "Traceback" not in err, err
    assert [w["stopped_at"] is not None for w in _workers(app)] == [True]
    app.close()


def _workers(app) -> list[dict]:
    from agentic_pipeline.db.schema import workers

    with app.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(workers))]


@pytest.mark.pg
def test_psycopg_lost_pipeline_warning_is_not_logged_but_the_error_is_raised(pg_databases, caplog):
    """psycopg's "error ignored terminating <psycopg.Pipeline [BAD]>" repeated the error the caller gets anyway."""
    import logging

    from agentic_pipeline import errors
    from agentic_pipeline.db.engine import Database

    pg.require_server()
    url = pg_databases.fresh()
    db = Database(url.replace("postgresql://", "postgresql+psycopg://"))
    caplog.set_level(logging.WARNING)
    try:
        with pytest.raises(errors.StoreError, match="database error"):
            with db.write() as conn:
                raw = conn.connection.driver_connection
                _cut_connections(sa.engine.make_url(url).database)
                try:
                    raw.cursor().executemany("SELECT %s", [(1,), (2,)])  # psycopg runs it as a pipeline
                except psycopg.OperationalError as exc:
                    raise sa.exc.OperationalError("executemany", {}, exc) from exc
    finally:
        db.dispose()
    assert "error ignored terminating" not in caplog.text
    logging.getLogger("psycopg").warning("another psycopg warning")  # only that one message is dropped
    assert "another psycopg warning" in caplog.text
