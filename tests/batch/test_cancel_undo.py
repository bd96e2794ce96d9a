"""Bulk cancel (queued books) and bulk undo (completed books): the same preview, max-count and audit rules."""

from __future__ import annotations

import pytest

from agentic_pipeline import errors
from agentic_pipeline.batch import operations
from agentic_pipeline.batch.filters import make_filter
from tests.batch import rows


def _states(app, ids):
    return [app.pipelines.get(i).state.value for i in ids]


def test_batch_cancel_previews_refuses_over_max_and_audits(app, clock):
    now = clock.now()
    queued = rows.insert(app, [rows.row(now, i, state="detected", book_type=None, confidence=None) for i in range(5)]
                         + [rows.row(now, i, state="needs_retry") for i in range(5, 8)])
    other = rows.insert(app, [rows.row(now, 9, state="pending_approval", source_path="/books/book-000009.pdf")])
    before = rows.dump(app)
    everything = make_filter(source_path_pattern="/books/*")
    with pytest.raises(errors.MaxCountExceeded):
        operations.batch_cancel(app, make_filter(source_path_pattern="/books/*", max_count=7), reason="oops", execute=True)
    with pytest.raises(errors.InputError, match="reason"):
        operations.batch_cancel(app, everything, reason=" ")
    dry = operations.batch_cancel(app, everything, reason="queued by mistake")
    assert dry["plan"]["matched"] == 8 and not dry["executed"] and rows.dump(app) == before
    done = operations.batch_cancel(app, everything, reason="queued by mistake", actor="human:ops", execute=True)
    assert done["result"]["applied"] == 8 and done["result"]["skipped"] == 0
    assert set(_states(app, queued)) == {"archived"} and _states(app, other) == ["pending_approval"]
    per_book = rows.audit_rows(app, "CANCELLED")
    assert sorted(e["pipeline_id"] for e in per_book) == queued
    assert all(e["actor"] == "human:ops" and e["reason"] == "queued by mistake" and e["filter_used"] for e in per_book)
    (batch,) = rows.audit_rows(app, "BATCH_CANCELLED")
    assert batch["after_state"]["count"] == 8 and sorted(batch["after_state"]["pipeline_ids"]) == queued
    rows.verify_chain(app)


def test_batch_reject_of_queued_books_points_at_batch_cancel(app):
    with pytest.raises(errors.InputError) as caught:
        operations.batch_reject(app, make_filter(state="detected"), reason="x")
    assert "batch-cancel" in str(caught.value)


def test_batch_rollback_undoes_completed_books_with_per_book_audit(app, clock):
    now = clock.now()
    done = rows.insert(app, [rows.row(now, i, state="complete", book_type="literature") for i in range(4)])
    keep = rows.insert(app, [rows.row(now, 10, state="complete", book_type="textbook")])
    filt = make_filter(state="complete", book_type="literature")
    dry = operations.batch_rollback(app, filt, reason="wrong batch approved")
    assert dry["plan"]["matched"] == 4 and set(_states(app, done)) == {"complete"}
    out = operations.batch_rollback(app, filt, reason="wrong batch approved", actor="human:ops", execute=True)
    assert out["result"]["applied"] == 4
    assert set(_states(app, done)) == {"archived"} and _states(app, keep) == ["complete"]
    per_book = rows.audit_rows(app, "ROLLED_BACK")
    assert sorted(e["pipeline_id"] for e in per_book) == done
    assert all(e["filter_used"]["book_type"] == "literature" and e["reason"] == "wrong batch approved" for e in per_book)
    assert len(rows.audit_rows(app, "BATCH_ROLLED_BACK")) == 1
    rows.verify_chain(app)
