"""The worker's claim (one statement on PostgreSQL, three on SQLite) behaves the same on both engines."""

from __future__ import annotations

import datetime as dt

import pytest

from agentic_pipeline import errors
from agentic_pipeline.db import workers_store
from agentic_pipeline.orchestrator import process, stages
from agentic_pipeline.pipeline.states import State

WORKER = "worker-claim-test"
ACTOR = "human:test"


def _register(app):
    with app.db.write() as conn:
        workers_store.register(conn, WORKER, host="h", pid=1, now=app.clock.now())


def _history(app, pid):
    return [(h["from_state"], h["to_state"], (h["detail"] or {}).get("resume")) for h in app.pipelines.history(pid)]


def test_claim_enters_the_stage_of_each_queue(app, clock):
    _register(app)
    detected = app.pipelines.create(source_path="/a.epub", actor=ACTOR, priority=1).id
    retry = app.pipelines.create(source_path="/b.epub", actor=ACTOR, priority=2).id
    for src, dst in [(State.DETECTED, State.HASHING), (State.HASHING, State.CLASSIFYING),
                     (State.CLASSIFYING, State.SELECTING_STRATEGY), (State.SELECTING_STRATEGY, State.PROCESSING)]:
        app.pipelines.transition(retry, dst, expect=src, actor=ACTOR)
    app.pipelines.transition(retry, State.NEEDS_RETRY, expect=State.PROCESSING, actor=ACTOR,
                             updates={"retry_stage": "processing", "next_attempt_at": clock.now() - dt.timedelta(1)})
    first = process.claim(app, WORKER)
    assert (first.id, first.state, first.lease_owner) == (detected, State.HASHING, WORKER)
    second = process.claim(app, WORKER)
    assert (second.id, second.state) == (retry, State.PROCESSING)
    assert _history(app, retry)[-1] == ("needs_retry", "processing", True)
    assert process.claim(app, WORKER) is None  # both leased: nothing left
    clock.advance(app.settings.lease_seconds + 1)  # the leases expire: orphaned work resumes where it was
    again = process.claim(app, WORKER)
    assert (again.id, again.state) == (detected, State.HASHING)
    assert _history(app, detected)[-1] == ("detected", "hashing", None)  # no second entry row


def test_complete_is_refused_while_a_chunk_has_no_vector(app):
    """A book never reaches COMPLETE with a chunk missing its vector, on either engine's path."""
    from tests.orchestrator.test_stages import drive, queue
    from agentic_pipeline.approval import operations
    from agentic_pipeline.db.schema import chunks

    _register(app)
    pid = queue(app)
    p = drive(app, pid)
    assert p.state is State.PENDING_APPROVAL
    operations.approve(app, pid, actor=ACTOR)
    p = process.claim(app, WORKER)
    assert p.state is State.EMBEDDING
    outcome = stages.embedding(app, p)
    with app.db.write() as conn:  # one vector goes missing after the stage ran
        first = conn.execute(chunks.select().where(chunks.c.book_id == p.book_id).limit(1)).first()
        conn.execute(chunks.update().where(chunks.c.id == first.id).values(embedding=None))
    with pytest.raises(errors.TransientError, match="no vector"):
        process.apply(app, p, outcome, WORKER)
    assert app.pipelines.get(pid).state is State.EMBEDDING
