"""Helpers for the audit tests: appending entries, raw driver connections, dropping the guards."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from agentic_pipeline.audit import chain
from agentic_pipeline.db import audit_store

SQLITE_TRIGGERS = ("approval_audit_no_update", "approval_audit_no_delete", "approval_audit_no_replace",
                   "approval_audit_whole_millisecond")
PG_TRIGGERS = ("approval_audit_append_only", "approval_audit_no_truncate")


def add(app, action="APPROVED", actor="human:alice", n=1, **fields) -> list[dict]:
    """Append ``n`` entries now (one transaction each) and return the rows."""
    rows = []
    for _ in range(n):
        with app.db.write() as conn:
            rows.append(audit_store.append(conn, chain.AuditEntry(action=action, actor=actor, **fields),
                                           app.clock.now()))
    return rows


def raw_connect(app):
    """A connection through the raw driver (sqlite3 / psycopg), autocommit, bypassing SQLAlchemy."""
    url = sa.engine.make_url(app.db.url)
    if app.db.is_sqlite:
        import sqlite3

        return sqlite3.connect(url.database, isolation_level=None)
    import psycopg

    return psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True)


def drop_guards(app) -> None:
    """What an intruder with the schema owner's rights does first: drop the append-only triggers (and 0008's check)."""
    with app.db.write() as conn:
        for name in SQLITE_TRIGGERS if app.db.is_sqlite else PG_TRIGGERS:
            suffix = "" if app.db.is_sqlite else " ON approval_audit"
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}{suffix}")
        if app.db.is_postgres:
            conn.exec_driver_sql("ALTER TABLE approval_audit DROP CONSTRAINT IF EXISTS approval_audit_whole_millisecond")


def tamper(app, sql: str, **params) -> None:
    """Run ``sql`` out of band (after ``drop_guards``)."""
    with app.db.write() as conn:
        conn.execute(sa.text(sql), params)


@pytest.fixture
def days():
    return lambda n: dt.timedelta(days=n)
