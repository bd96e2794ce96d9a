"""The pool of PostgreSQL test databases (tests/pg.py): a database given back is as clean as a new copy of the
template, and one whose schema a test changed is never lent again."""

from __future__ import annotations

import psycopg
import pytest

from agentic_pipeline.audit import trail
from tests import pg
from tests.audit.conftest import add, drop_guards
from tests.conftest import open_app

pytestmark = pytest.mark.pg


@pytest.fixture
def pool():
    pg.require_server()
    dbs = pg.PgDatabases()
    yield dbs
    dbs.drop_all()


def _fill(url: str) -> int:
    app = open_app(url)
    try:
        add(app, n=3)
        return app.pipelines.create(source_path="/b/1.epub", actor="human:t").id
    finally:
        app.close()


def test_a_database_given_back_is_reset_to_the_template_and_lent_again(pool):
    url = pool.lease()
    assert _fill(url) == 1
    leaked = psycopg.connect(url, autocommit=True)  # a connection the test forgot: cut, so it cannot write later
    pool.give_back(url)
    assert _is_dead(leaked)
    leaked.close()
    again = pool.lease()
    assert again == url  # the same database, reset
    assert _fill(again) == 1  # ids start over: RESTART IDENTITY
    app = open_app(again)
    try:
        result = trail.verify(app)  # the chain head the migration seeded was put back: a fresh chain
        assert result["ok"] and result["count"] == 3 and result["first_id"] == 1, result
    finally:
        app.close()
    pool.give_back(again)


def _is_dead(conn) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_a_database_whose_schema_changed_is_dropped_not_lent_again(pool):
    url = pool.lease()
    app = open_app(url)
    drop_guards(app)  # what the tamper tests do
    app.close()
    pool.give_back(url)
    assert pool.idle == [] and url.rsplit("/", 1)[1] not in pool.created
    pool.wait_for_drops()  # dropped in the background, beside the next test
    with psycopg.connect(pg.ADMIN_URL, autocommit=True) as admin:
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                             (url.rsplit("/", 1)[1],)).fetchone()[0] == 0
    fresh = pool.lease()
    assert fresh != url
    pool.give_back(fresh)
    assert pool.idle == [fresh.rsplit("/", 1)[1]]
