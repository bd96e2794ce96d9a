"""The storage contract, run against SQLite and the real PostgreSQL server."""

from __future__ import annotations

import collections
import datetime as dt
import multiprocessing
import threading

import pytest
import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.db.schema import pipeline_state_history, processing_pipelines
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State
from tests.conftest import open_app

ACTOR = "human:test"


def _path_to(target: State) -> list[State]:
    """Shortest list of states from DETECTED to ``target`` along allowed transitions."""
    frontier = collections.deque([[State.DETECTED]])
    seen = {State.DETECTED}
    while frontier:
        path = frontier.popleft()
        if path[-1] is target:
            return path
        for nxt in sorted(states.TRANSITIONS[path[-1]], key=lambda s: s.value):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(path + [nxt])
    raise AssertionError(f"{target} unreachable")


def _walk(app, target: State) -> int:
    p = app.pipelines.create(source_path=f"/books/{target.value}.epub", actor=ACTOR)
    path = _path_to(target)
    for src, dst in zip(path, path[1:]):
        app.pipelines.transition(p.id, dst, expect=src, actor=ACTOR)
    return p.id


def test_every_state_is_reachable_except_none():
    for s in State:
        assert _path_to(s)[-1] is s


def test_allowed_transitions_succeed_and_forbidden_fail(app):
    for src in State:
        for dst in State:
            pid = _walk(app, src)
            if states.can_transition(src, dst):
                moved = app.pipelines.transition(pid, dst, expect=src, actor=ACTOR)
                assert moved.state is dst
            else:
                with pytest.raises(errors.InvalidTransition):
                    app.pipelines.transition(pid, dst, expect=src, actor=ACTOR)
                assert app.pipelines.get(pid).state is src


def test_each_transition_writes_one_history_row_with_time_spent(app, clock):
    p = app.pipelines.create(source_path="/b.epub", actor=ACTOR)
    clock.advance(5)
    app.pipelines.transition(p.id, State.HASHING, expect=State.DETECTED, actor="system:worker")
    clock.advance(2.5)
    app.pipelines.transition(p.id, State.CLASSIFYING, expect=State.HASHING, actor="system:worker")
    rows = app.pipelines.history(p.id)
    assert [(r["from_state"], r["to_state"]) for r in rows] == [
        (None, "detected"), ("detected", "hashing"), ("hashing", "classifying")]
    assert [r["actor"] for r in rows] == [ACTOR, "system:worker", "system:worker"]
    assert rows[0]["at"] == p.created_at and rows[0]["duration_seconds"] is None
    assert rows[1]["duration_seconds"] == pytest.approx(5.0, abs=1e-3)
    assert rows[2]["duration_seconds"] == pytest.approx(2.5, abs=1e-3)
    assert app.pipelines.get(p.id).state_entered_at == clock.now()


def test_stale_compare_and_set_fails_and_changes_nothing(app):
    p = app.pipelines.create(source_path="/b.epub", actor=ACTOR)
    app.pipelines.transition(p.id, State.HASHING, expect=State.DETECTED, actor=ACTOR)
    with pytest.raises(errors.StaleState):
        app.pipelines.transition(p.id, State.HASHING, expect=State.DETECTED, actor=ACTOR)
    with pytest.raises(errors.StaleState):
        app.pipelines.transition(p.id, State.FAILED, expect=State.DETECTED, actor=ACTOR)
    assert app.pipelines.get(p.id).state is State.HASHING
    assert len(app.pipelines.history(p.id)) == 2


def test_unknown_pipeline_is_not_found(app):
    with pytest.raises(errors.NotFound):
        app.pipelines.transition(999_999, State.HASHING, expect=State.DETECTED, actor=ACTOR)


def test_states_are_stored_lowercase_and_priority_is_checked_by_the_database(app):
    p = app.pipelines.create(source_path="/b.epub", actor=ACTOR, priority=3)
    with app.db.read() as conn:
        assert conn.execute(sa.select(processing_pipelines.c.state)).scalar() == "detected"
    with pytest.raises(errors.StoreError):
        with app.db.write() as conn:
            conn.execute(processing_pipelines.update().where(processing_pipelines.c.id == p.id).values(priority=11))
    with pytest.raises(errors.InputError, match="priority must be between 1 and 10"):
        app.pipelines.create(source_path="/c.epub", actor=ACTOR, priority=0)


def test_claims_follow_priority_then_age_then_id(app, clock):
    made = []
    for priority in (5, 1, 10, 1, 5):
        made.append((priority, app.pipelines.create(source_path=f"/{len(made)}.pdf", actor=ACTOR, priority=priority).id))
        clock.advance(1)
    expected = [pid for _, pid in sorted(made, key=lambda t: (t[0], t[1]))]
    claimed = [app.pipelines.claim_next("w1", lease_seconds=60).id for _ in made]
    assert claimed == expected
    assert app.pipelines.claim_next("w1", lease_seconds=60) is None


def test_needs_retry_is_claimable_only_when_due(app, clock):
    pid = _walk(app, State.HASHING)
    app.pipelines.transition(pid, State.NEEDS_RETRY, expect=State.HASHING, actor=ACTOR,
                             updates={"next_attempt_at": clock.now() + dt.timedelta(minutes=5), "retry_stage": "hashing"})
    assert app.pipelines.claim_next("w", lease_seconds=60) is None
    clock.advance(minutes=5)
    assert app.pipelines.claim_next("w", lease_seconds=60).id == pid


def test_expired_lease_is_reclaimed_and_the_old_owner_is_refused(app, clock):
    p = app.pipelines.create(source_path="/b.epub", actor=ACTOR)
    assert app.pipelines.claim_next("old", lease_seconds=30).id == p.id
    app.pipelines.transition(p.id, State.HASHING, expect=State.DETECTED, actor=ACTOR, owner="old")
    assert app.pipelines.claim_next("new", lease_seconds=30) is None  # lease still live
    clock.advance(31)
    taken = app.pipelines.claim_next("new", lease_seconds=30)
    assert taken.id == p.id and taken.state is State.HASHING and taken.lease_owner == "new"
    with pytest.raises(errors.LeaseLost):
        app.pipelines.transition(p.id, State.CLASSIFYING, expect=State.HASHING, actor=ACTOR, owner="old")
    with pytest.raises(errors.LeaseLost):
        app.pipelines.heartbeat(p.id, "old", lease_seconds=30)
    assert not app.pipelines.release(p.id, "old")
    app.pipelines.transition(p.id, State.CLASSIFYING, expect=State.HASHING, actor=ACTOR, owner="new")


def test_heartbeat_extends_and_release_frees_the_lease(app, clock):
    p = app.pipelines.create(source_path="/b.epub", actor=ACTOR)
    app.pipelines.claim_next("w", lease_seconds=30)
    clock.advance(20)
    app.pipelines.heartbeat(p.id, "w", lease_seconds=30)
    clock.advance(20)
    assert app.pipelines.claim_next("x", lease_seconds=30) is None
    assert app.pipelines.release(p.id, "w")
    assert app.pipelines.claim_next("x", lease_seconds=30).id == p.id


def test_a_beat_that_says_seen_also_refreshes_the_worker_row(app, clock):
    from agentic_pipeline.db import workers_store

    with app.db.write() as conn:
        workers_store.register(conn, "w", host="h", pid=1, now=clock.now())
        workers_store.register(conn, "x", host="h", pid=2, now=clock.now())
    p = app.pipelines.create(source_path="/b.epub", actor=ACTOR)
    app.pipelines.claim_next("w", lease_seconds=30)
    clock.advance(20)
    expires = app.pipelines.heartbeat(p.id, "w", lease_seconds=30, seen=True)
    assert app.pipelines.get(p.id).lease_expires_at == expires == clock.now() + dt.timedelta(seconds=30)
    with app.db.read() as conn:
        assert workers_store.get(conn, "w")["last_seen"] == clock.now()
    clock.advance(5)
    with pytest.raises(errors.LeaseLost):
        app.pipelines.heartbeat(p.id, "x", lease_seconds=30, seen=True)
    assert app.pipelines.get(p.id).lease_expires_at == expires  # the lease is untouched by the refused beat


def test_one_statement_is_its_own_transaction(app):
    """PostgreSQL: autocommit (visible to others at once, no BEGIN/COMMIT); SQLite: a write transaction."""
    count = sa.select(sa.func.count()).select_from(processing_pipelines)
    now = app.clock.now()
    with app.db.one_statement() as conn:
        conn.execute(processing_pipelines.insert().values(source_path="/one", state="detected", priority=5,
                                                          base_priority=5, created_at=now, updated_at=now,
                                                          state_entered_at=now, queued_at=now))
        with app.db.read() as other:
            seen = other.execute(count).scalar()
        assert seen == (1 if app.db.is_postgres else 0)
    with app.db.one_statement(write=False) as conn:
        assert conn.execute(count).scalar() == 1
        raw = conn.connection.dbapi_connection
    if app.db.is_postgres:
        assert raw.autocommit is False  # reset when the connection went back to the pool
    with pytest.raises(errors.StoreError):  # a refused statement leaves nothing behind, and the error is ours
        with app.db.one_statement() as conn:
            conn.execute(processing_pipelines.insert().values(source_path="/two", state="detected", priority=11,
                                                              base_priority=5, created_at=now, updated_at=now,
                                                              state_entered_at=now, queued_at=now))
    with app.db.read() as conn:
        assert conn.execute(count).scalar() == 1
    # the pooled connection goes back transactional: a rolled-back write() leaves nothing
    with pytest.raises(ZeroDivisionError):
        with app.db.write() as conn:
            conn.execute(processing_pipelines.insert().values(source_path="/three", state="detected", priority=5,
                                                              base_priority=5, created_at=now, updated_at=now,
                                                              state_entered_at=now, queued_at=now))
            1 / 0
    with app.db.read() as conn:
        assert conn.execute(count).scalar() == 1


def test_terminal_and_pending_books_are_never_claimed(app):
    for s in (State.PENDING_APPROVAL, State.COMPLETE, State.REJECTED, State.FAILED, State.DUPLICATE, State.ARCHIVED):
        _walk(app, s)
    claimed = app.pipelines.claim_next("w", lease_seconds=60)
    # every walk passes through working states but ends outside them: nothing left to claim
    assert claimed is None


# ------------------------------------------------------------------ concurrency
N_BOOKS = 2000


def _claim_all(url: str, worker: str) -> list[int]:
    app = open_app(url)
    got = []
    try:
        while (p := app.pipelines.claim_next(worker, lease_seconds=3600)) is not None:
            got.append(p.id)
    finally:
        app.close()
    return got


def _claim_in_process(args) -> list[int]:
    return _claim_all(*args)


def test_many_threads_and_processes_get_disjoint_pipelines(db_url):
    app = open_app(db_url)
    now = app.clock.now()
    with app.db.write() as conn:
        conn.execute(processing_pipelines.insert(), [
            dict(source_path=f"/q/{i}.pdf", state="detected", priority=1 + i % 10, base_priority=1 + i % 10,
                 created_at=now, updated_at=now, state_entered_at=now, queued_at=now)
            for i in range(N_BOOKS)])
    app.close()
    results: dict[str, list[int]] = {}

    def run_thread(name):
        results[name] = _claim_all(db_url, name)

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        async_result = pool.map_async(_claim_in_process, [(db_url, f"proc-{i}") for i in range(4)])
        threads = [threading.Thread(target=run_thread, args=(f"thread-{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, got in enumerate(async_result.get(timeout=300)):
            results[f"proc-{i}"] = got
    every = [pid for got in results.values() for pid in got]
    assert len(every) == N_BOOKS, "some pipelines were not claimed"
    assert len(set(every)) == N_BOOKS, "a pipeline was claimed twice"
    assert sum(1 for got in results.values() if got) >= 2, "no concurrency happened"
    with open_app(db_url) as check, check.db.read() as conn:
        owners = dict(conn.execute(sa.select(processing_pipelines.c.id, processing_pipelines.c.lease_owner)).all())
    for name, got in results.items():
        assert all(owners[pid] == name for pid in got)


def test_history_is_written_in_the_same_transaction(app):
    p = app.pipelines.create(source_path="/b.epub", actor=ACTOR)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with app.db.write() as conn:
            app.pipelines.transition(p.id, State.HASHING, expect=State.DETECTED, actor=ACTOR, conn=conn)
            raise Boom
    assert app.pipelines.get(p.id).state is State.DETECTED
    with app.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pipeline_state_history)).scalar() == 1
