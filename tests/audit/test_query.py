"""Queries: each filter alone and combined, actor globs with escaping, newest first, last_days."""

from __future__ import annotations

import pytest

from agentic_pipeline import errors
from agentic_pipeline.audit import trail
from agentic_pipeline.db import audit_store
from tests.audit.conftest import add


@pytest.fixture
def filled(app, clock):
    add(app, "APPROVED", "human:alice", pipeline_id=1, book_id=10)
    clock.advance(days=3)
    add(app, "REJECTED", "human:bob", pipeline_id=2, reason="garbled")
    clock.advance(days=3)
    add(app, "BATCH_APPROVED", "batch:f_1", n=2, pipeline_id=3, book_id=30)
    clock.advance(hours=1)
    add(app, "BATCH_REJECTED", "batch:f%2", pipeline_id=4)
    add(app, "APPROVED", "auto:high_confidence", pipeline_id=5, book_id=10)
    return app


def ids(rows):
    return [r["id"] for r in rows]


def test_newest_first_and_limit(filled):
    assert ids(trail.query(filled)) == [6, 5, 4, 3, 2, 1]
    assert ids(trail.query(filled, limit=2)) == [6, 5]


def test_each_filter_alone(filled):
    assert ids(trail.query(filled, actor="human:bob")) == [2]
    assert ids(trail.query(filled, action="approved")) == [6, 1]
    assert ids(trail.query(filled, book_id=10)) == [6, 1]
    assert ids(trail.query(filled, pipeline_id=3)) == [4, 3]
    assert ids(trail.query(filled, last_days=1)) == [6, 5, 4, 3]


def test_globs(filled):
    assert ids(trail.query(filled, actor="batch:*")) == [5, 4, 3]
    assert ids(trail.query(filled, actor="human:*")) == [2, 1]
    assert ids(trail.query(filled, actor="*:b*")) == [2]
    assert ids(trail.query(filled, actor="batch:f?1")) == [4, 3]
    # LIKE's own wildcards are literals in a glob
    assert ids(trail.query(filled, actor="batch:f%2")) == [5]
    assert ids(trail.query(filled, actor="batch:f_*")) == [4, 3]
    assert ids(trail.query(filled, actor="BATCH:*")) == []
    # case-sensitive past the literal prefix too (SQLite's LIKE is not: GLOB there)
    assert ids(trail.query(filled, actor="*BOB")) == [] and ids(trail.query(filled, actor="*bob")) == [2]
    assert ids(trail.query(filled, actor="*[a]*")) == []  # brackets are literal, not a GLOB class
    # prefixes whose "next string" is not simply the last character plus one
    assert trail.query(filled, actor="\U0010ffff*") == [] and trail.query(filled, actor="a\ud7ff*") == []


def test_filters_combined(filled):
    assert ids(trail.query(filled, actor="batch:*", action="BATCH_APPROVED", pipeline_id=3, last_days=1)) == [4, 3]
    assert ids(trail.query(filled, actor="human:*", last_days=4)) == [2]
    assert ids(trail.query(filled, action="APPROVED", book_id=10, last_days=1)) == [6]


def test_unknown_action_lists_the_valid_ones(filled):
    with pytest.raises(errors.InputError, match="BATCH_PRIORITY_CHANGED"):
        trail.query(filled, action="APPROVE")


@pytest.mark.parametrize("bad", [{"limit": 0}, {"limit": 10**6}, {"last_days": -1}, {"book_id": "x"}])
def test_bad_input(filled, bad):
    with pytest.raises(errors.InputError):
        trail.query(filled, **bad)


def test_like_pattern():
    assert audit_store.like_pattern("batch:*") == ("batch:%", "batch:")
    assert audit_store.like_pattern("a_b%c\\?") == ("a\\_b\\%c\\\\_", "a_b%c\\")


def test_query_plans_use_the_indexes(app):
    if not app.db.is_sqlite:
        pytest.skip("PostgreSQL plans depend on table statistics; bench/bench_audit.py reports them at 1M rows")
    shapes = {"ix_audit_actor": {"actor": "batch:*"}, "ix_audit_action": {"action": "APPROVED"},
              "ix_audit_book": {"book_id": 1}, "ix_audit_pipeline": {"pipeline_id": 1},
              "ix_audit_performed": {"since": app.clock.now()}}
    with app.db.read() as conn:
        for index, filters in shapes.items():
            stmt = audit_store.query_statement(**filters, dialect="sqlite")
            sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert index in plan, (filters, plan)
