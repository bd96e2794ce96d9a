"""Overriding a validator's rejection: relax a check or approve anyway, audited; on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest

from agentic_pipeline import errors
from agentic_pipeline.approval import overrides
from agentic_pipeline.orchestrator import process, worker
from tests.batch import rows


def _repeated_letters(path):
    """A real book whose chapters 2 and 4 are the same letter: the validator rejects it (duplicate_chapters)."""
    rnd = random.Random(5)
    words = ("the of and a to in is was it that he she for on with as his her at by from they river house "
             "garden letter morning winter said walked").split()
    para = lambda: " ".join(rnd.choice(words) for _ in range(200)).capitalize() + "."  # noqa: E731
    same = para()
    parts = ["# Repeated Letters", ""]
    for i in range(1, 6):
        parts += [f"## Letter {2 if i == 4 else i}", "", same if i in (2, 4) else para(), ""]
    path.write_text("\n".join(parts), encoding="utf-8")
    return str(path)


def _drain(app):
    w = worker.Worker(app, worker.Options(until_empty=True, isolate=False, maintenance=False, poll_seconds=0.05))
    assert w.run() == 0


def _rejected(app, tmp_path, name="letters.md"):
    out = process.process_one(app, _repeated_letters(tmp_path / name), actor="human:t", wait=True, isolate=False)
    assert out["state"] == "rejected" and "duplicate_chapters" in out["error"], out
    return out["id"]


def test_relax_a_check_then_the_book_waits_for_approval(app, tmp_path):
    pid = _rejected(app, tmp_path)
    with pytest.raises(errors.InputError, match="unknown check"):
        overrides.override(app, pid, actor="human:ann", reason="x", relax=["no_such_check"])
    with pytest.raises(errors.InputError, match="reason"):
        overrides.override(app, pid, actor="human:ann", reason=" ", relax=["duplicate_chapters"])
    done = overrides.override(app, pid, actor="human:ann", reason="the letters really repeat",
                              relax=["duplicate_chapters"])
    assert done["state"] == "needs_retry" and done["failed_checks"] == ["duplicate_chapters"]
    _drain(app)
    p = app.pipelines.get(pid)
    assert p.state.value == "pending_approval"
    report = p.row["validation_result"]
    assert report["overridden"] == {"checks": ["duplicate_chapters"], "actor": "human:ann",
                                    "reason": "the letters really repeat"}
    (entry,) = rows.audit_rows(app, "OVERRIDDEN")
    assert entry["actor"] == "human:ann" and entry["before_state"]["failed_checks"] == ["duplicate_chapters"]
    assert entry["after_state"]["relax"] == ["duplicate_chapters"] and entry["pipeline_id"] == pid
    rows.verify_chain(app)
    with pytest.raises(errors.InvalidTransition, match="only a validator's rejection"):
        overrides.override(app, pid, actor="human:ann", reason="again", approve=True)


def test_approve_anyway_approves_in_the_persons_name_and_embeds(app, tmp_path):
    pid = _rejected(app, tmp_path)
    overrides.override(app, pid, actor="human:bea", reason="a book of form letters", approve=True,
                       strategy="narrative_nonfiction")
    _drain(app)
    p = app.pipelines.get(pid)
    assert p.state.value == "complete" and p.row["approved_by"] == "human:bea"
    assert p.row["strategy"]["book_type"] == "narrative_nonfiction"
    (approved,) = rows.audit_rows(app, "APPROVED")
    assert approved["actor"] == "human:bea" and approved["reason"] == "override: a book of form letters"


def test_only_validator_rejections_can_be_overridden(app, clock):
    (pid,) = rows.insert(app, [rows.row(clock.now(), 1, state="rejected", error="not wanted", error_stage=None)])
    with pytest.raises(errors.InvalidTransition, match="other than the validator"):
        overrides.override(app, pid, actor="human:a", reason="r", approve=True)
