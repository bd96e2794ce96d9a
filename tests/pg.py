"""Throwaway PostgreSQL databases for tests: one migrated template per run, a fresh copy per test.

Locally without a server the PostgreSQL tests skip with the reason; with ``CI=true`` a missing
server is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid

import pytest

ADMIN_URL = os.environ.get("AGENTIC_PIPELINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _connect_admin():
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def server_available() -> str | None:
    """None when the server answers, else why not."""
    import psycopg

    try:
        with _connect_admin():
            return None
    except psycopg.OperationalError as exc:
        return f"PostgreSQL not reachable at {ADMIN_URL}: {exc}"


def require_server() -> None:
    reason = server_available()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def url_for(dbname: str) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


class PgDatabases:
    """Creates ``ap_t_<run>_<n>`` databases from a migrated template and drops them at the end."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.template: str | None = None
        self.created: list[str] = []

    def fresh(self, migrated: bool = True) -> str:
        name = f"ap_t_{self.run}_{len(self.created)}"
        with _connect_admin() as conn:
            if migrated:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template()}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return url_for(name)

    def _template(self) -> str:
        if self.template is None:
            from agentic_pipeline.db import migrations
            from agentic_pipeline.db.engine import Database

            name = f"ap_tpl_{self.run}"
            with _connect_admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            db = Database("postgresql+psycopg" + url_for(name)[len("postgresql"):])
            migrations.upgrade(db)
            db.dispose()
            self.template = name
        return self.template

    def drop_all(self) -> None:
        with _connect_admin() as conn:
            for name in reversed(self.created):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
