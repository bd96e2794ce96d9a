"""The set-based batch path leaves the same state, history and audit as the single-book operations,
and a batch racing a worker on the same books never approves one twice or loses an update."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.approval import operations as approval
from agentic_pipeline.batch import operations as batch
from agentic_pipeline.batch.filters import make_filter
from agentic_pipeline.db.schema import books, chapters, processing_pipelines as pp
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.queue import operations as queue_ops
from tests.batch import rows
from tests.conftest import open_app

ACTOR = "human:alice"
SKIP_COLUMNS = {"id", "source_path", "title", "book_type"}
AUDIT_SKIP = {"id", "pipeline_id", "book_id", "filter_used", "prev_hash", "entry_hash", "performed_at"}


def _pipeline(app, pid):
    return {k: v for k, v in app.pipelines.get(pid).row.items() if k not in SKIP_COLUMNS}


def _history(app, pid):
    return [{k: v for k, v in h.items() if k not in ("id", "pipeline_id")} for h in app.pipelines.history(pid)]


def _audit(app, pid):
    return [{k: v for k, v in a.items() if k not in AUDIT_SKIP} for a in rows.audit_rows(app) if a["pipeline_id"] == pid]


def _with_library(app, pid):
    with app.db.write() as conn:
        book = conn.execute(books.insert().values(pipeline_id=pid, content_hash="h" * 64, source_path="/x",
                                                  created_at=app.clock.now()).returning(books.c.id)).scalar_one()
        conn.execute(chapters.insert(), [{"book_id": book, "chapter_index": i, "title": "c", "text": "t",
                                          "word_count": 1} for i in range(3)])
        conn.execute(pp.update().where(pp.c.id == pid).values(book_id=book))


def test_batch_approve_and_reject_equal_the_single_book_operations(app, clock):
    single_a, batch_a, single_r, batch_r = rows.insert(app, [
        rows.row(clock.now(), i, confidence=0.8, book_type=t)
        for i, t in enumerate(["textbook", "periodical", "literature", "academic_paper"])])
    for pid in (single_r, batch_r):
        _with_library(app, pid)
    clock.advance(minutes=5)
    approval.approve(app, single_a, actor=ACTOR, reason="looks fine")
    batch.batch_approve(app, make_filter(book_type="periodical"), actor=ACTOR, reason="looks fine", execute=True)
    approval.reject(app, single_r, actor=ACTOR, reason="garbled")
    batch.batch_reject(app, make_filter(book_type="academic_paper"), actor=ACTOR, reason="garbled", execute=True)
    for single, batched in ((single_a, batch_a), (single_r, batch_r)):
        assert _pipeline(app, batched) == _pipeline(app, single)
        assert _history(app, batched) == _history(app, single)
        assert _audit(app, batched) == _audit(app, single)
    assert _audit(app, batch_r)[0]["after_state"]["removed"] == {"books": 1, "chapters": 3, "chunks": 0}
    with app.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(books)).scalar_one() == 0


def test_batch_priority_equals_set_priority(app, clock):
    a, b = rows.insert(app, [rows.row(clock.now(), i, state="detected", priority=2, base_priority=4, aging_level=1,
                                      book_type=t) for i, t in enumerate(["textbook", "periodical"])])
    clock.advance(minutes=1)
    queue_ops.set_priority(app, a, 8, actor=ACTOR)
    batch.batch_priority(app, make_filter(book_type="periodical"), 8, actor=ACTOR, execute=True)
    assert _pipeline(app, b) == _pipeline(app, a)
    assert _audit(app, b) == _audit(app, a)


def test_concurrent_batch_and_worker_never_double_apply(db_url, clock):
    """One thread batch-approves 300 books in chunks while another rejects the same books one by one."""
    setup = open_app(db_url, clock)
    ids = rows.insert(setup, [rows.row(clock.now(), i) for i in range(300)])
    plan = batch.plan_batch(setup, "approve", make_filter(book_type="textbook", max_count=300))
    results, rejected = {}, []
    start = threading.Barrier(2)

    def run_batch():
        app = open_app(db_url, clock)
        start.wait()
        results["batch"] = batch.apply_plan(app, plan, actor=ACTOR, chunk_size=25)
        app.close()

    def run_worker():
        app = open_app(db_url, clock)
        start.wait()
        for pid in reversed(ids):
            try:
                app.pipelines.transition(pid, State.REJECTED, expect=State.PENDING_APPROVAL, actor="system:worker")
                rejected.append(pid)
            except errors.StaleState:
                pass
        app.close()

    threads = [threading.Thread(target=run_batch), threading.Thread(target=run_worker)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied = set(results["batch"]["applied_ids"])
    skipped = {s["id"] for s in results["batch"]["skipped_details"]}
    assert applied | skipped == set(ids) and not applied & skipped
    assert applied.isdisjoint(rejected) and applied | set(rejected) == set(ids)
    states = {pid: setup.pipelines.get(pid).state for pid in ids}
    assert {pid for pid, s in states.items() if s is State.APPROVED} == applied
    assert {pid for pid, s in states.items() if s is State.REJECTED} == set(rejected)
    approvals = [a["pipeline_id"] for a in rows.audit_rows(setup, "APPROVED")]
    assert sorted(approvals) == sorted(applied)  # each approved exactly once
    for pid in ids:
        moves = [h for h in setup.pipelines.history(pid) if h["from_state"] == "pending_approval"]
        assert len(moves) == 1
    setup.close()


def test_single_and_batch_decisions_go_through_the_one_writer(app, clock, monkeypatch):
    """approve/reject of one book is a move of one; a batch is one move of its chunk (the same store call)."""
    ids = rows.insert(app, [rows.row(clock.now(), i, confidence=0.8, book_type=t)
                            for i, t in enumerate(["textbook", "periodical", "periodical", "literature"])])
    calls = []
    real = type(app.pipelines).move

    def spy(self, move_ids, to, **kw):
        calls.append((sorted(move_ids), State(to)))
        return real(self, move_ids, to, **kw)

    monkeypatch.setattr(type(app.pipelines), "move", spy)
    approval.approve(app, ids[0], actor=ACTOR)
    batch.batch_approve(app, make_filter(book_type="periodical"), actor=ACTOR, execute=True)
    approval.reject(app, ids[3], actor=ACTOR, reason="garbled")
    assert calls == [([ids[0]], State.APPROVED), ([ids[1], ids[2]], State.APPROVED), ([ids[3]], State.REJECTED)]
