"""Stages on real sample books, in process: the happy path, idempotent re-runs, retries at each stage."""

from __future__ import annotations

import pytest

from agentic_pipeline import errors
from agentic_pipeline import intake
from agentic_pipeline.orchestrator import faults, process
from agentic_pipeline.pipeline.states import State
from tests.orchestrator.helpers import SAMPLES, duplicate_rows, library_counts, stage_runs

BOOK = SAMPLES / "waste-land.md"
WORKER = "worker-test-1"


def audit_rows(app, pid):
    import sqlalchemy as sa

    from agentic_pipeline.db.schema import approval_audit as aa

    with app.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(aa).where(aa.c.pipeline_id == pid).order_by(aa.c.id))]


def queue(app, path=BOOK):
    return intake.queue_file(app, path, actor="human:test")["id"]


def drive(app, pid, plan=None, isolate=False):
    """Claim and drive like a worker does (in process)."""
    p = app.pipelines.claim_next(WORKER, lease_seconds=60)
    assert p is not None and p.id == pid
    return process.drive(app, p, WORKER, isolate=isolate, plan=plan)


def test_a_book_reaches_pending_approval_with_library_rows(app):
    pid = queue(app)
    p = drive(app, pid)
    assert p.state is State.PENDING_APPROVAL
    assert p.book_type and p.confidence is not None and p.row["book_profile"]["reasoning"]
    assert p.row["strategy"]["chunk_tokens"] > 0 and p.row["validation_result"]["passed"] is True
    counts = library_counts(app)
    assert counts["books"] == 1 and counts["chapters"] >= 1 and counts["chunks"] >= 1 and counts["embedded"] == 0
    assert p.lease_owner is None
    from agentic_pipeline.db import library_store

    with app.db.read() as conn:  # a Markdown file declares no language: the text says English
        assert library_store.book_for_pipeline(conn, pid)["language"] == "en"


def test_queueing_the_same_file_twice_gives_one_pipeline_and_a_copy_is_a_duplicate(app, tmp_path):
    assert queue(app) == queue(app)
    copy = tmp_path / "copy.md"
    copy.write_bytes(BOOK.read_bytes())
    first, second = queue(app), queue(app, copy)
    assert second != first
    p = drive(app, first)
    assert p.state is State.PENDING_APPROVAL
    d = drive(app, second)
    assert d.state is State.DUPLICATE and d.duplicate_of == first


@pytest.mark.parametrize("stage", ["hashing", "classifying", "selecting_strategy", "processing", "validating", "embedding"])
def test_a_transient_failure_resumes_at_its_stage(sqlite_app, clock, stage):
    app = sqlite_app
    pid = queue(app)
    plan = faults.FaultPlan({stage: {"kind": "transient", "times": 1}})
    p = drive(app, pid, plan)
    if stage == "embedding":
        assert p.state is State.PENDING_APPROVAL
        from agentic_pipeline.approval import operations

        operations.approve(app, pid, actor="human:test")
        p = drive(app, pid, plan)
    assert p.state is State.NEEDS_RETRY
    assert (p.retry_stage, p.error_stage, p.retry_count) == (stage, stage, 1)
    assert p.next_attempt_at > clock.now()
    assert app.pipelines.claim_next(WORKER, lease_seconds=60) is None  # not due yet
    clock.advance(3600)
    p = drive(app, pid, plan)
    assert p.state is (State.COMPLETE if stage == "embedding" else State.PENDING_APPROVAL)
    assert p.retry_count == 0  # a finished run gives back its attempts: embedding after approval gets its own
    history = [(h["from_state"], h["to_state"]) for h in app.pipelines.history(pid)]
    assert (State.NEEDS_RETRY.value, stage) in history  # resumed at that stage, not from the start
    runs = stage_runs(app)
    earlier = ["hashing", "classifying", "selecting_strategy", "processing", "validating"]
    for before in earlier[:earlier.index(stage)] if stage in earlier else earlier:
        assert runs[(pid, before)] == 1, before
    assert duplicate_rows(app) == 0


def test_a_permanent_error_is_rejected_and_never_retried(app):
    pid = queue(app)
    p = drive(app, pid, faults.FaultPlan({"classifying": {"kind": "permanent"}}))
    assert p.state is State.REJECTED and p.retry_count == 0 and "injected permanent" in p.error
    assert app.pipelines.claim_next(WORKER, lease_seconds=60) is None
    assert library_counts(app)["books"] == 0
    assert [a["action"] for a in audit_rows(app, pid)] == ["REJECTED"]


def test_a_corrupt_sample_is_rejected_with_the_reason(app):
    pid = queue(app, SAMPLES.parent / "broken" / "password.pdf")
    p = drive(app, pid)
    assert p.state is State.REJECTED and "password" in p.error and p.error_stage == "classifying"


def test_max_attempts_ends_in_failed(sqlite_app, clock):
    app = sqlite_app
    pid = queue(app)
    plan = faults.FaultPlan({"processing": {"kind": "transient", "times": 99}})
    for _ in range(2):
        assert drive(app, pid, plan).state is State.NEEDS_RETRY
        clock.advance(7200)
    p = drive(app, pid, plan)
    assert p.state is State.FAILED and p.retry_count == 3 and p.error_stage == "processing"


def test_rerunning_processing_replaces_its_rows(sqlite_app):
    app = sqlite_app
    pid = queue(app)
    p = drive(app, pid)
    before = library_counts(app)
    # an operator sends it back through processing (as a stuck-recovery would): rows are replaced, not added
    with app.db.write() as conn:
        app.pipelines.transition(pid, State.REJECTED, expect=State.PENDING_APPROVAL, actor="human:t", conn=conn)
        app.pipelines.transition(pid, State.NEEDS_RETRY, expect=State.REJECTED, actor="human:t", conn=conn,
                                 updates={"retry_stage": "processing", "next_attempt_at": None})
    p = drive(app, pid)
    assert p.state is State.PENDING_APPROVAL
    assert library_counts(app) == before and duplicate_rows(app) == 0


@pytest.mark.parametrize("stage", ["hashing", "processing"])  # in-process alarm / killed child process
def test_a_stage_past_its_time_limit_is_stopped_and_retried(sqlite_url, clock, stage):
    from tests.conftest import open_app

    app = open_app(sqlite_url, clock, stage_timeouts={stage: 0.5})
    try:
        pid = queue(app)
        p = drive(app, pid, faults.FaultPlan({stage: {"kind": "sleep", "seconds": 30}}), isolate=True)
        assert p.state is State.NEEDS_RETRY and "time limit" in p.error and p.retry_stage == stage
    finally:
        app.close()


def test_a_stage_process_that_dies_is_retried(sqlite_app):
    pid = queue(sqlite_app)
    p = drive(sqlite_app, pid, faults.FaultPlan({"classifying": {"kind": "exit"}}), isolate=True)
    assert p.state is State.NEEDS_RETRY and "died" in p.error


def test_a_lost_lease_cannot_write(sqlite_app, clock):
    app = sqlite_app
    pid = queue(app)
    p = app.pipelines.claim_next(WORKER, lease_seconds=5)
    clock.advance(10)
    other = app.pipelines.claim_next("worker-other", lease_seconds=60)
    assert other.id == pid
    with pytest.raises(errors.LeaseLost):
        process.drive(app, p, WORKER, isolate=False)


def test_a_file_replaced_between_stages_starts_over_instead_of_mixing_two_books(sqlite_app, tmp_path):
    import shutil

    book = tmp_path / "book.md"
    shutil.copy(BOOK, book)
    pid = queue(sqlite_app, book)

    from tests.orchestrator.helpers import write_text_books

    other = write_text_books(tmp_path / "other", 1)[0].read_text(encoding="utf-8")

    class Swap:  # between HASHING and CLASSIFYING the file becomes another text
        def before(self, stage, p):
            if stage == "classifying" and book.read_text(encoding="utf-8").startswith("# The Waste Land"):
                book.write_text(other, encoding="utf-8")

    p = drive(sqlite_app, pid, plan=Swap())
    assert p.state is State.DETECTED and p.row.get("content_hash") is None
    started_over = [h for h in sqlite_app.pipelines.history(pid) if h["to_state"] == "detected"][-1]
    assert started_over["from_state"] == "classifying" and "changed" in started_over["detail"]["reason"]
    p = drive(sqlite_app, pid)  # taken again: hashed and read as the new text
    assert p.state is State.PENDING_APPROVAL and p.row["title"] == "Book 0"
