"""Approve and reject as data (pure): the columns, history detail and audit entry a decision writes.

The one source for the single-book operations (``approval.operations.approve`` / ``reject``) and
the batch path (``batch.apply.apply_decision``); both hand the result to the store's one writer
(``PipelineStore.move``: a batch of one, or a chunk). ``tests/batch/test_equivalence_and_races.py``
checks both paths leave the same columns, history and audit on both engines.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from agentic_pipeline.audit import actions, chain
from agentic_pipeline.pipeline.states import State

ACTIONS = {State.APPROVED: actions.Action.APPROVED, State.REJECTED: actions.Action.REJECTED}


def columns(to: State, *, actor: str, reason: str | None, now: dt.datetime) -> dict[str, Any]:
    """The columns besides the state: who approved and when; or the rejection reason and no library book."""
    if to is State.APPROVED:
        return {"approved_by": actor, "approved_at": now}
    if to is State.REJECTED:
        return {"error": reason, "book_id": None}
    raise ValueError(f"{to.value} is not a decision")


def detail(to: State, reason: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The history row's detail (the reason; for an automatic approval, what the policy said)."""
    if to is State.REJECTED:
        return {"reason": reason}
    return {"reason": reason, **(extra or {})} if (reason or extra) else None


def before(state: str) -> dict[str, Any]:
    """The audit entry's ``before_state``."""
    return {"state": state}


def after(to: State, *, removed: dict[str, int] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The audit entry's ``after_state``: the new state, and what a rejection removed from the library."""
    if to is State.REJECTED:
        return {"state": to.value, "removed": removed}
    return {"state": to.value, **(extra or {})}


def entry(to: State, *, actor: str, pipeline_id: int, book_id: int | None, reason: str | None,
          confidence: float | None, before_state: dict[str, Any], after_state: dict[str, Any],
          filter_used: dict[str, Any] | None = None) -> chain.AuditEntry:
    """The decision's audit entry (APPROVED / REJECTED); ``filter_used`` when a batch made it."""
    return chain.AuditEntry(action=ACTIONS[to], actor=actor, pipeline_id=pipeline_id, book_id=book_id, reason=reason,
                            confidence_at_decision=confidence, before_state=before_state, after_state=after_state,
                            filter_used=filter_used)
