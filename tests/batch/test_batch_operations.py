"""Batch approve / reject / retry / priority: filters in SQL, plan then apply, limits, audit, races."""

from __future__ import annotations

import datetime as dt

import pytest

from agentic_pipeline import errors
from agentic_pipeline.batch import operations as batch
from agentic_pipeline.batch.filters import make_filter
from agentic_pipeline.pipeline.states import State
from tests.batch import rows

ACTOR = "human:alice"
DAY = dt.timedelta(days=1)


def _dataset(app, now, noise_per_field: int = 600):
    """Thousands of non-matching books first (each differs from the targets in one field), then 5 targets."""
    target = {"book_type": "periodical", "confidence": 0.92, "state": "pending_approval",
              "created_at": now - 2 * DAY}
    off = {"book_type": {"book_type": "literature"}, "confidence": {"confidence": 0.3},
           "state": {"state": "detected"}, "created": {"created_at": now - 20 * DAY},
           "path": {}}
    groups, data = {}, []
    for name, change in off.items():
        start = len(data)
        for i in range(noise_per_field):
            path = f"/library/novels/n-{name}-{i}.epub" if name == "path" else f"/library/magazines/n-{name}-{i}.pdf"
            data.append(rows.row(now, len(data), source_path=path, **{**target, **change}))
        groups[name] = (start, len(data))
    start = len(data)
    data += [rows.row(now, len(data), source_path=f"/library/magazines/issue-{i}.pdf", **target) for i in range(5)]
    ids = rows.insert(app, data)
    out = {name: set(ids[a:b]) for name, (a, b) in groups.items()}
    out["target"] = set(ids[start:])
    return out


def _ids(result) -> set[int]:
    return {r["id"] for r in result["plan"]["rows"]}


def test_each_filter_field_alone_and_combined_selects_in_sql(app, clock):
    now = clock.now()
    g = _dataset(app, now)
    everyone = set().union(*g.values())
    alone = {
        "book_type": ({"book_type": "periodical"}, everyone - g["book_type"]),
        "min_confidence": ({"min_confidence": 0.9}, everyone - g["confidence"]),
        "max_confidence": ({"max_confidence": 0.5}, g["confidence"]),
        "created_after": ({"created_after": (now - 3 * DAY).isoformat()}, everyone - g["created"]),
        "created_before": ({"created_before": now - 3 * DAY}, g["created"]),
        "source_path_pattern": ({"source_path_pattern": "/library/magazines/*.pdf"}, everyone - g["path"]),
    }
    for name, (raw, expected) in alone.items():
        got = batch.batch_priority(app, make_filter(**raw, max_count=10_000), 2)
        assert _ids(got) == expected, name
    state_only = batch.batch_priority(app, make_filter(state="detected", max_count=10_000), 2)
    assert _ids(state_only) == g["state"]
    combined = make_filter(book_type="periodical", min_confidence=0.9, max_confidence=0.95, state="pending_approval",
                           created_after=now - 3 * DAY, created_before=now, source_path_pattern="/library/magazines/*.pdf")
    result = batch.batch_approve(app, combined, actor=ACTOR, execute=True)
    assert _ids(result) == g["target"] and result["result"]["applied"] == 5
    with app.db.read() as conn:
        import sqlalchemy as sa
        from agentic_pipeline.db.schema import processing_pipelines as pp

        approved = {r.id for r in conn.execute(sa.select(pp.c.id).where(pp.c.state == "approved"))}
    assert approved == g["target"]


def test_dry_run_changes_nothing(app, clock):
    now = clock.now()
    rows.insert(app, [rows.row(now, i, state=s, confidence=0.95) for i, s in
                      enumerate(["pending_approval"] * 5 + ["failed", "needs_retry", "detected"])])
    before = rows.dump(app)
    f = make_filter(min_confidence=0.9)
    batch.batch_approve(app, f, actor=ACTOR)
    batch.batch_reject(app, f, actor=ACTOR, reason="bad scans")
    batch.batch_retry(app, f, actor=ACTOR, max_attempts=5)
    batch.batch_priority(app, f, 1, actor=ACTOR)
    plan = batch.plan_batch(app, "approve", f)
    assert plan.matched == 5
    assert rows.dump(app) == before


def test_more_matches_than_max_count_is_refused_and_nothing_changes(app, clock):
    rows.insert(app, [rows.row(clock.now(), i, confidence=0.95) for i in range(60)])
    before = rows.dump(app)
    with pytest.raises(errors.MaxCountExceeded) as info:
        batch.batch_approve(app, make_filter(min_confidence=0.9), actor=ACTOR, execute=True)
    assert info.value.count == 60 and info.value.max_count == 50
    assert "60 books match" in str(info.value) and "raise the maximum to 60 (--max-count" in str(info.value)
    assert rows.dump(app) == before
    done = batch.batch_approve(app, make_filter(min_confidence=0.9, max_count=60), actor=ACTOR, execute=True)
    assert done["result"]["applied"] == 60


def test_empty_filter_matches_nothing_unless_all(app, clock):
    rows.insert(app, [rows.row(clock.now(), i) for i in range(3)])
    assert batch.plan_batch(app, "approve", make_filter()).matched == 0
    assert batch.plan_batch(app, "approve", make_filter(all=True)).matched == 3


def test_operation_refuses_a_state_it_cannot_act_on_and_reject_needs_a_reason(app):
    with pytest.raises(errors.InputError, match="acts only on books in: pending_approval"):
        batch.plan_batch(app, "approve", make_filter(state="failed"))
    with pytest.raises(errors.InputError, match="reason"):
        batch.batch_reject(app, make_filter(all=True), reason=" ")
    with pytest.raises(errors.InputError, match="priority must be between 1 and 10"):
        batch.batch_priority(app, make_filter(all=True), 11)


def test_execute_audits_each_book_and_the_batch(app, clock):
    ids = rows.insert(app, [rows.row(clock.now(), i, confidence=0.9 + i / 100) for i in range(7)])
    f = make_filter(min_confidence=0.9)
    out = batch.batch_approve(app, f, execute=True)
    actor = f"batch:{f.filter_id}"
    assert out["result"]["actor"] == actor and out["result"]["applied_ids"] == ids
    per_book = rows.audit_rows(app, "APPROVED")
    assert [a["pipeline_id"] for a in per_book] == ids
    assert {a["actor"] for a in per_book} == {actor}
    assert per_book[0]["filter_used"]["filter_id"] == f.filter_id
    assert per_book[3]["confidence_at_decision"] == pytest.approx(0.93)
    (summary,) = rows.audit_rows(app, "BATCH_APPROVED")
    assert summary["after_state"]["count"] == 7 and summary["after_state"]["pipeline_ids"] == ids
    assert summary["filter_used"]["min_confidence"] == 0.9
    for pid in ids:
        (h,) = [h for h in app.pipelines.history(pid)]
        assert (h["from_state"], h["to_state"], h["actor"]) == ("pending_approval", "approved", actor)
        assert app.pipelines.get(pid).row["approved_by"] == actor
    from agentic_pipeline.audit import trail

    assert trail.verify(app)["ok"]


def test_a_book_that_changed_since_the_plan_is_skipped_with_the_reason(app, clock):
    ids = rows.insert(app, [rows.row(clock.now(), i) for i in range(4)])
    plan = batch.plan_batch(app, "approve", make_filter(book_type="textbook"))
    app.pipelines.transition(ids[1], State.REJECTED, expect=State.PENDING_APPROVAL, actor=ACTOR)
    result = batch.apply_plan(app, plan, actor=ACTOR, chunk_size=2)
    assert result["applied_ids"] == [ids[0], ids[2], ids[3]]
    (skip,) = result["skipped_details"]
    assert skip["id"] == ids[1] and "now rejected" in skip["reason"]
    assert app.pipelines.get(ids[1]).state is State.REJECTED
    assert [a["pipeline_id"] for a in rows.audit_rows(app, "APPROVED")] == [ids[0], ids[2], ids[3]]


def test_confirmation_binds_the_exact_set_and_is_issued_once(app, clock):
    from agentic_pipeline.batch.confirmations import Confirmations

    confirmations = Confirmations()
    rows.insert(app, [rows.row(clock.now(), i) for i in range(3)])
    f = make_filter(book_type="textbook")
    plan = batch.plan_batch(app, "reject", f, reason="duplicates")
    assert batch.plan_batch(app, "reject", f, reason="duplicates").digest == plan.digest
    assert batch.plan_batch(app, "reject", f, reason="other").digest != plan.digest
    shown = batch.preview(app, "reject", f, confirmations, reason="duplicates")
    assert shown["matched"] == 3 and shown["confirmation_token"] != plan.digest
    # the digest itself is not a token: it can be computed without asking for a preview
    with pytest.raises(errors.StaleConfirmation, match="not issued by this server"):
        batch.execute_confirmed(app, "reject", f, plan.digest, confirmations=confirmations, actor=ACTOR,
                                reason="duplicates")
    rows.insert(app, [rows.row(clock.now(), 9)])
    with pytest.raises(errors.StaleConfirmation, match="changed") as info:
        batch.execute_confirmed(app, "reject", f, shown["confirmation_token"], confirmations=confirmations,
                                actor=ACTOR, reason="duplicates")
    assert info.value.preview["matched"] == 4 and rows.audit_rows(app) == []
    fresh = info.value.preview["confirmation_token"]
    done = batch.execute_confirmed(app, "reject", f, fresh, confirmations=confirmations, actor=ACTOR,
                                   reason="duplicates")
    assert done["result"]["applied"] == 4
    with pytest.raises(errors.StaleConfirmation, match="already used"):  # single use
        batch.execute_confirmed(app, "reject", f, fresh, confirmations=confirmations, actor=ACTOR,
                                reason="duplicates")


def test_batch_retry_requeues_failed_rejected_and_makes_waiting_ones_due(app, clock):
    later = clock.now() + dt.timedelta(hours=5)
    ids = rows.insert(app, [rows.row(clock.now(), 0, state="failed", error_stage="processing", retry_count=3),
                            rows.row(clock.now(), 1, state="rejected", retry_count=0),
                            rows.row(clock.now(), 2, state="needs_retry", next_attempt_at=later, retry_count=2),
                            rows.row(clock.now(), 3, state="pending_approval", retry_count=0)])
    out = batch.batch_retry(app, make_filter(book_type="textbook"), actor=ACTOR, max_attempts=7, execute=True)
    assert out["result"]["applied_ids"] == ids[:3]
    for pid in ids[:3]:
        p = app.pipelines.get(pid)
        assert p.state is State.NEEDS_RETRY and p.row["next_attempt_at"] == clock.now()
        # "7 attempts from now": failed and rejected books start again at 0; the waiting one has used 2
        assert p.row["max_attempts"] - (p.row["retry_count"] or 0) == 7
    assert app.pipelines.get(ids[0]).row["retry_stage"] == "processing"
    assert len(rows.audit_rows(app, "RETRIED")) == 3 and len(rows.audit_rows(app, "BATCH_RETRIED")) == 1


def test_batch_priority_is_a_manual_change_per_book(app, clock):
    ids = rows.insert(app, [rows.row(clock.now(), i, state="detected", priority=3, base_priority=7, aging_level=1)
                            for i in range(3)] + [rows.row(clock.now(), 5, state="complete")])
    out = batch.batch_priority(app, make_filter(book_type="textbook"), 9, actor=ACTOR, execute=True)
    assert out["result"]["applied_ids"] == ids[:3]  # complete books are not eligible
    for pid in ids[:3]:
        p = app.pipelines.get(pid)
        assert (p.priority, p.base_priority, p.row["aging_level"]) == (9, 9, 0)
    audit = rows.audit_rows(app, "PRIORITY_CHANGED")
    assert [(a["before_state"]["priority"], a["after_state"]["priority"]) for a in audit] == [(3, 9)] * 3
    assert rows.audit_rows(app, "BATCH_PRIORITY_CHANGED")[0]["after_state"]["change"] == {"priority": 9}


def test_a_book_that_left_and_came_back_is_a_new_decision_the_plan_never_saw(app, clock):
    (pid,) = rows.insert(app, [rows.row(clock.now(), 0)])  # pending approval, confidence as a textbook
    plan = batch.plan_batch(app, "approve", make_filter(book_type="textbook"))
    assert plan.ids == [pid]
    clock.advance(60)  # rejected, retried, reprocessed: pending again, with a confidence the plan never saw
    for to, expect in ((State.REJECTED, State.PENDING_APPROVAL), (State.NEEDS_RETRY, State.REJECTED),
                       (State.PROCESSING, State.NEEDS_RETRY), (State.VALIDATING, State.PROCESSING),
                       (State.PENDING_APPROVAL, State.VALIDATING)):
        app.pipelines.transition(pid, to, expect=expect, actor=ACTOR, updates={"confidence": 0.2})
    result = batch.apply_plan(app, plan, actor=ACTOR)
    assert result["applied_ids"] == [] and "came back" in result["skipped_details"][0]["reason"]
    assert app.pipelines.get(pid).state is State.PENDING_APPROVAL
