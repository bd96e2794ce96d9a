"""Shared fixtures: a fresh, migrated database on each engine, an App over it, a fake clock."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import pg

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
CORPUS = REPO.parent / "shared" / "corpus"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def pg_databases():
    dbs = pg.PgDatabases()
    yield dbs
    if dbs.created:
        dbs.drop_all()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    from agentic_pipeline.db import migrations
    from agentic_pipeline.db.engine import Database

    path = tmp_path_factory.mktemp("tpl") / "template.db"
    db = Database(f"sqlite:///{path}")
    migrations.upgrade(db)
    db.dispose()
    return path


def make_db_url(engine: str, tmp_path: Path, sqlite_template: Path, pg_databases, migrated: bool = True) -> str:
    if engine == "sqlite":
        path = tmp_path / "pipeline.db"
        if migrated:
            shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    pg.require_server()
    return pg_databases.fresh(migrated=migrated)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request, tmp_path, sqlite_template, pg_databases):
    """A migrated database URL nobody else uses; the tests using it run once per engine.

    PostgreSQL databases come from a pool and are reset when the test ends (tests/pg.py): as clean
    as a new copy of the template, for a fraction of the cost.
    """
    if request.param == "sqlite":
        yield make_db_url("sqlite", tmp_path, sqlite_template, pg_databases)
        return
    pg.require_server()
    url = pg_databases.lease()
    yield url
    pg_databases.give_back(url)


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    return make_db_url("sqlite", tmp_path, sqlite_template, None)


@pytest.fixture
def clock():
    from agentic_pipeline.clock import FakeClock

    return FakeClock()


def open_app(url: str, clock=None, **settings):
    from agentic_pipeline import config
    from agentic_pipeline.app import App

    s = config.load({"db": url, "embedder": "hashing", **settings}, environ={})
    return App.open(s, clock=clock)


@pytest.fixture
def app(db_url, clock):
    a = open_app(db_url, clock)
    yield a
    a.close()


@pytest.fixture
def sqlite_app(sqlite_url, clock):
    a = open_app(sqlite_url, clock)
    yield a
    a.close()
