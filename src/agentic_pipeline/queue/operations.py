"""Changing one book's priority by hand (CLI ``priority``, MCP ``set_priority``).

A manual change sets both ``priority`` and ``base_priority`` to the new number, resets
``aging_level`` to 0 and restarts the aging clock (``queued_at``): the person's choice is the new
starting point, and the book ages again from it, a full threshold later (keeping the old clock
would re-apply the aging the person just overrode within the hour). Audited as PRIORITY_CHANGED with the old and new values and the actor.
"""

from __future__ import annotations

from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.pipeline import priority as rules


def set_priority(app, pipeline_id: int, priority: int, *, actor: str, reason: str | None = None,
                 conn=None) -> dict[str, Any]:
    """Set one book's priority (1 urgent .. 10 backfill); returns old and new values."""
    rules.validate_priority(priority)
    actions.validate_actor(actor)
    if conn is None:
        with app.db.write() as c:
            return set_priority(app, pipeline_id, priority, actor=actor, reason=reason, conn=c)
    current = app.pipelines.get(pipeline_id, conn=conn)
    if not rules.changeable(current.state):
        raise errors.InvalidTransition(f"pipeline {pipeline_id} is {current.state.value}: its priority no longer matters")
    old = _snapshot(current.priority, current.base_priority, current.row["aging_level"])
    new = _snapshot(priority, priority, 0)
    result = {"id": pipeline_id, "state": current.state.value, "old": old, "new": new, "changed": old != new}
    if not result["changed"]:
        return result
    entry = chain.AuditEntry(action=actions.Action.PRIORITY_CHANGED, actor=actor, pipeline_id=pipeline_id,
                             book_id=current.row.get("book_id"), reason=reason, before_state=old, after_state=new)
    app.pipelines.update_fields(pipeline_id, expect=current.state, audit=entry, conn=conn,
                                values={"priority": priority, "base_priority": priority, "aging_level": 0,
                                        "queued_at": app.clock.now()})
    return result


def _snapshot(priority: int, base: int, level: int) -> dict[str, int]:
    return {"priority": priority, "base_priority": base, "aging_level": level}
