"""reprocess: a book starts over from HASHING with its own OCR mode; finished books are refused."""

from __future__ import annotations

import pytest

from agentic_pipeline import errors
from agentic_pipeline.approval import operations
from agentic_pipeline.orchestrator import process, reprocess
from agentic_pipeline.pipeline.states import State
from tests.orchestrator.helpers import SAMPLES, library_counts


def test_pending_book_is_rejected_then_queued_again_with_its_ocr_mode(app):
    ended = process.process_one(app, str(SAMPLES / "waste-land.md"), actor="human:t", wait=True, isolate=False)
    assert ended["state"] == "pending_approval"
    out = reprocess.reprocess(app, ended["id"], actor="human:t", ocr="force")
    assert out == {**out, "from": "pending_approval", "state": "needs_retry", "ocr_mode": "force"}
    p = app.pipelines.get(ended["id"])
    assert p.row["ocr_mode"] == "force" and p.row["retry_stage"] == "hashing" and p.row["book_id"] is None
    assert library_counts(app)["books"] == 0
    assert [h["to_state"] for h in app.pipelines.history(p.id)][-2:] == ["rejected", "needs_retry"]


def test_complete_book_and_bad_mode_are_refused(app):
    ended = process.process_one(app, str(SAMPLES / "waste-land.md"), actor="human:t", wait=True, isolate=False)
    with pytest.raises(errors.InputError, match="invalid OCR mode"):
        reprocess.reprocess(app, ended["id"], actor="human:t", ocr="sometimes")
    operations.approve(app, ended["id"], actor="human:t")
    with pytest.raises(errors.InvalidTransition, match="rollback"):
        reprocess.reprocess(app, ended["id"], actor="human:t")
    assert app.pipelines.get(ended["id"]).state is State.APPROVED
