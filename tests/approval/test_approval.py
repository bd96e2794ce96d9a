"""Approve, reject, rollback, pending; autonomy operations with audit; the daily cap under concurrency."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.approval import autonomy, operations, policy
from agentic_pipeline.db.schema import approval_audit as aa
from agentic_pipeline import intake
from agentic_pipeline.orchestrator import process
from agentic_pipeline.pipeline.states import State
from tests.orchestrator.helpers import SAMPLES, library_counts, write_text_books

W = "worker-approval-test"


def pending_book(app, path=SAMPLES / "waste-land.md"):
    pid = intake.queue_file(app, path, actor="human:test")["id"]
    p = app.pipelines.claim_next(W, lease_seconds=60)
    p = process.drive(app, p, W, isolate=False)
    assert p.id == pid
    return p


def actions_for(app, pid=None):
    with app.db.read() as conn:
        q = sa.select(aa.c.action, aa.c.actor, aa.c.confidence_at_decision, aa.c.after_state).order_by(aa.c.id)
        if pid is not None:
            q = q.where(aa.c.pipeline_id == pid)
        return [dict(r._mapping) for r in conn.execute(q)]


def test_pending_approve_then_embed_then_rollback(app):
    p = pending_book(app)
    assert p.state is State.PENDING_APPROVAL  # supervised by default: waits for a human
    rows = operations.list_pending(app)
    assert [r["id"] for r in rows] == [p.id] and rows[0]["validation"].startswith("passed")
    assert operations.approve(app, p.id, actor="human:alice")["state"] == "approved"
    done = process.drive(app, app.pipelines.claim_next(W, lease_seconds=60), W, isolate=False)
    assert done.state is State.COMPLETE and library_counts(app)["embedded"] == library_counts(app)["chunks"] > 0
    out = operations.rollback(app, p.id, actor="human:alice", reason="wrong edition")
    assert out["state"] == "archived" and out["removed"]["chunks"] > 0
    assert library_counts(app) == {"books": 0, "chapters": 0, "chunks": 0, "embedded": 0}
    assert [a["action"] for a in actions_for(app, p.id)] == ["APPROVED", "ROLLED_BACK"]


def test_reject_removes_the_rows_and_needs_a_reason(app):
    p = pending_book(app)
    with pytest.raises(errors.InputError):
        operations.reject(app, p.id, actor="human:alice", reason=" ")
    out = operations.reject(app, p.id, actor="human:alice", reason="not a book")
    assert out["state"] == "rejected" and library_counts(app)["chunks"] == 0
    with pytest.raises(errors.InvalidTransition):
        operations.rollback(app, p.id, actor="human:alice", reason="x")
    with pytest.raises(errors.InputError):
        operations.approve(app, p.id, actor="nobody")


def test_autonomy_changes_are_audited_and_the_escape_hatch_wins(app):
    s = autonomy.enable(app, "partial", actor="human:alice", threshold=0.9, daily_cap=10)
    assert (s["mode"], s["partial_threshold"], s["daily_cap"]) == ("partial", 0.9, 10)
    s = autonomy.escape_hatch(app, "bad batch", actor="human:bob")
    assert s["mode"] == "supervised" and s["escape_hatch"]
    with pytest.raises(errors.PolicyDenied):
        autonomy.enable(app, "confident", actor="human:alice")
    p = pending_book(app)
    assert autonomy.maybe_auto_approve(app, p.id)["reason"] == policy.ESCAPE_HATCH
    s = autonomy.resume(app, actor="human:alice")
    assert s["mode"] == "partial" and not s["escape_hatch"]
    assert [a["action"] for a in actions_for(app)] == ["AUTONOMY_CHANGED", "ESCAPE_HATCH", "AUTONOMY_CHANGED"]


def test_auto_approval_records_actor_confidence_and_threshold(app):
    autonomy.enable(app, "partial", actor="human:alice", threshold=0.5)
    p = pending_book(app)  # the worker path asks the policy right after validation
    p = app.pipelines.get(p.id)
    assert p.state is State.APPROVED and p.approved_by == "auto:high_confidence"
    entry = actions_for(app, p.id)[-1]
    assert entry["action"] == "APPROVED" and entry["actor"] == "auto:high_confidence"
    assert entry["confidence_at_decision"] == pytest.approx(p.confidence)
    approved = [h for h in app.pipelines.history(p.id) if h["to_state"] == "approved"][0]
    assert approved["actor"] == "auto:high_confidence" and approved["detail"]["threshold"] == 0.5


@pytest.mark.parametrize("setup, reason", [
    (lambda app: None, policy.SUPERVISED),
    (lambda app: autonomy.enable(app, "partial", actor="human:a", threshold=1.0), policy.BELOW_THRESHOLD),
    (lambda app: autonomy.enable(app, "partial", actor="human:a", threshold=0.1, daily_cap=0), policy.DAILY_CAP),
])
def test_each_denial_keeps_the_book_pending(sqlite_app, setup, reason):
    setup(sqlite_app)
    p = pending_book(sqlite_app)
    assert sqlite_app.pipelines.get(p.id).state is State.PENDING_APPROVAL
    assert autonomy.maybe_auto_approve(sqlite_app, p.id)["reason"] == reason
    assert sqlite_app.pipelines.get(p.id).state is State.PENDING_APPROVAL


def test_the_daily_cap_holds_with_concurrent_approvers(app, tmp_path):
    ids = []
    for path in write_text_books(tmp_path / "books", 8):
        ids.append(pending_book(app, path).id)
    autonomy.enable(app, "partial", actor="human:a", threshold=0.01, daily_cap=3)
    # any type is fine for this test: pretend the classifier was sure they were literature
    with app.db.write() as conn:
        for pid in ids:
            app.pipelines.update_fields(pid, expect=State.PENDING_APPROVAL, values={"book_type": "literature",
                                                                                   "confidence": 0.99}, conn=conn)
    results: list[dict] = []
    barrier = threading.Barrier(4)

    def approver(chunk):
        barrier.wait()
        for pid in chunk:
            results.append(autonomy.maybe_auto_approve(app, pid))

    threads = [threading.Thread(target=approver, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    approved = [r for r in results if r["approved"]]
    assert len(approved) == 3
    assert autonomy.status(app)["auto_approvals_today"] == 3
    assert sum(app.pipelines.get(pid).state is State.APPROVED for pid in ids) == 3
