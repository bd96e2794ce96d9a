"""An audit entry lives and dies with the change it records; the trail outlives pipelines."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.audit import chain, trail
from agentic_pipeline.pipeline.states import State


def _entry(pid):
    return chain.AuditEntry(action="PRIORITY_CHANGED", actor="human:alice", pipeline_id=pid,
                            before_state={"priority": 5}, after_state={"priority": 1})


def test_rolled_back_operation_leaves_no_entry(app):
    p = app.pipelines.create(source_path="/b/1.epub", actor="human:alice")
    with pytest.raises(RuntimeError):
        with app.db.write() as conn:
            app.pipelines.update_fields(p.id, expect=State.DETECTED, values={"priority": 1},
                                        audit=_entry(p.id), conn=conn)
            raise RuntimeError("later step failed")
    assert trail.query(app) == [] and app.pipelines.get(p.id).priority == 5
    with pytest.raises(errors.StaleState):            # a lost compare-and-set writes nothing either
        app.pipelines.update_fields(p.id, expect=State.APPROVED, values={"priority": 1}, audit=_entry(p.id))
    assert trail.query(app) == []


def test_successful_operation_has_exactly_one_entry(app):
    p = app.pipelines.create(source_path="/b/1.epub", actor="human:alice")
    app.pipelines.update_fields(p.id, expect=State.DETECTED, values={"priority": 1}, audit=_entry(p.id))
    rows = trail.query(app, pipeline_id=p.id)
    assert len(rows) == 1 and rows[0]["after_state"] == {"priority": 1}
    assert trail.verify(app)["ok"]


def test_trail_survives_archived_and_deleted_pipelines(app):
    p = app.pipelines.create(source_path="/b/1.epub", actor="human:alice")
    app.pipelines.update_fields(p.id, expect=State.DETECTED, values={"priority": 2}, audit=_entry(p.id))
    with app.db.write() as conn:
        conn.execute(sa.text("UPDATE processing_pipelines SET state = 'archived' WHERE id = :i"), {"i": p.id})
        conn.execute(sa.text("DELETE FROM pipeline_state_history WHERE pipeline_id = :i"), {"i": p.id})
        conn.execute(sa.text("DELETE FROM processing_pipelines WHERE id = :i"), {"i": p.id})
    assert [r["pipeline_id"] for r in trail.query(app)] == [p.id]
    assert trail.verify(app)["ok"]
    with app.db.read() as conn:
        fks = sa.inspect(conn).get_foreign_keys("approval_audit")
    assert fks == []
