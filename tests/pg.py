"""Throwaway PostgreSQL databases for tests: one migrated template per run, a pool of its copies reused.

Creating a copy of the template costs ~0.5 s and dropping it ~1.4 s (a checkpoint each), per
test. So a test that only needs a migrated database (the ``db_url`` fixture) leases one from this
process's pool and gives it back; giving back resets it in ~20 ms: other sessions on it are
terminated, every table but ``alembic_version`` is emptied and its id sequence restarted (with
``session_replication_role = replica``, so the audit trail's delete guard stays in place but does not
fire), and the rows the migrations seeded are put back. A database whose schema the test
changed (a dropped trigger, a migration run) fails the schema fingerprint and is dropped instead,
so every test still starts from exactly the migrated template (the drop runs in a thread beside the
next test). The rest are dropped at the end of the session.

Locally without a server the PostgreSQL tests skip with the reason; with ``CI=true`` a missing
server is a failure, never a skip.
"""

from __future__ import annotations

import itertools
import os
import threading
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


_answered = False  # the server answered once in this process: asking again per test only costs a connection


def require_server() -> None:
    global _answered
    if _answered:
        return
    reason = server_available()
    if reason is None:
        _answered = True
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def url_for(dbname: str) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


#: one text for a database's schema: tables, columns, constraints, indexes, triggers (and whether they are
#: enabled), functions, extensions and the Alembic revision; equal texts mean a reset leaves it as migrated
SCHEMA_FINGERPRINT = """
SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
    SELECT 'rel ' || c.relname || ' ' || c.relkind::text FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'col ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
        || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'idx ' || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'trg ' || tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text || ' ' || pg_get_triggerdef(oid)
        FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT 'fn ' || proname || ' ' || md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'ext ' || extname || ' ' || extversion FROM pg_extension
    UNION ALL SELECT 'rev ' || version_num FROM alembic_version
) AS parts(x)
"""
#: tables a reset leaves alone
KEEP_TABLES = ("alembic_version",)


class PgDatabases:
    """Creates ``ap_t_<run>_<n>`` databases from a migrated template, lends them out, and drops them at the end."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.template: str | None = None
        self.created: list[str] = []
        self.idle: list[str] = []  # reset, ready to lend
        self._fingerprint: str | None = None
        self._tables: list[str] = []
        self._seed: dict[str, list[tuple]] = {}
        self._dropping: list[threading.Thread] = []
        self._numbers = itertools.count()

    def lease(self) -> str:
        """A migrated database nobody uses: a reset one from the pool, else a new copy of the template."""
        if self.idle:
            return url_for(self.idle.pop())
        url = self.fresh()
        if self._fingerprint is None:
            self._learn(url)
        return url

    def give_back(self, url: str) -> None:
        """Reset the database to the migrated template and pool it; drop it if the test changed its schema."""
        name = url.rsplit("/", 1)[1]
        try:
            if self._reset(name):
                self.idle.append(name)
                return
        except Exception:  # noqa: BLE001 - a database that cannot be reset is dropped, never lent again
            pass
        self.created.remove(name)
        dropping = threading.Thread(target=self._drop, args=([name],), name=f"drop-{name}")  # beside the next test
        dropping.start()
        self._dropping.append(dropping)

    def _learn(self, url: str) -> None:
        """The template's fingerprint, tables and seeded rows, read from its first copy before any test ran."""
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            self._fingerprint = conn.execute(SCHEMA_FINGERPRINT).fetchone()[0]
            self._tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
                if r[0] not in KEEP_TABLES]
            for table in self._tables:
                rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
                if rows:
                    self._seed[table] = rows

    def _reset(self, name: str) -> bool:
        import psycopg

        with _connect_admin() as admin:  # a worker or an app the test left open must not write after the reset
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                          "AND pid <> pg_backend_pid()", (name,))
        with psycopg.connect(url_for(name), connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '5s'")
            if conn.execute(SCHEMA_FINGERPRINT).fetchone()[0] != self._fingerprint:
                return False
            # no trigger fires: the audit trail's delete guard and the foreign keys' checks (every table is emptied)
            conn.execute("SET LOCAL session_replication_role = replica")
            for table in self._tables:  # DELETE: a test leaves few rows, and TRUNCATE of 17 tables costs ~0.4 s
                conn.execute(f'DELETE FROM "{table}"')
            for (sequence,) in conn.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'").fetchall():
                conn.execute("SELECT setval(%s, 1, false)", (f'"{sequence}"',))  # ids start over, as in the template
            for table, rows in self._seed.items():
                marks = ", ".join(["%s"] * len(rows[0]))
                conn.cursor().executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
        return True

    def _drop(self, names: list[str]) -> None:
        with _connect_admin() as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def fresh(self, migrated: bool = True) -> str:
        name = f"ap_t_{self.run}_{next(self._numbers)}"
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
        self._drop(list(reversed(self.created)))
        self.wait_for_drops()
        self.idle = []

    def wait_for_drops(self) -> None:
        """Until the databases ``give_back`` is dropping in the background are gone."""
        while self._dropping:
            self._dropping.pop().join()
