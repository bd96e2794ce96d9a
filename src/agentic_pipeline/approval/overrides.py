"""Overriding a validator's rejection: a person decides, with a reason, and the book is processed again.

A book the validator rejected (REJECTED, error stage ``validating``) lost its library rows, so every
override processes it again (REJECTED -> NEEDS_RETRY, due now, resuming at PROCESSING) with the
override written into its strategy:

- ``relax``: the named checks may fail; the book then reaches PENDING_APPROVAL with the failures
  recorded as overridden (the validation report keeps ``passed: false`` and says who overrode what);
- ``approve``: relax every check that failed and approve the book, in the person's name, as soon as it
  is validated ("approve anyway");
- ``strategy``: process it with another book type's strategy (chunking, chapter split, thresholds).

Audited OVERRIDDEN (before: the failed checks; after: the override), in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.ingest import strategies


def decide(validation: dict[str, Any] | None, *, relax: Sequence[str] = (), approve: bool = False) -> list[str]:
    """The checks to relax (pure): the named ones (each must exist), or with ``approve`` every failed one."""
    checks = {c.get("name"): c for c in (validation or {}).get("checks") or []}
    failed = [n for n, c in checks.items() if not c.get("passed") and c.get("severity", "error") == "error"]
    unknown = sorted(set(relax) - set(checks))
    if unknown:
        raise errors.InputError(f"unknown check {', '.join(unknown)}; this book's checks: {', '.join(checks) or 'none'}")
    chosen = list(dict.fromkeys([*relax, *(failed if approve else [])]))
    return chosen


def override(app, pipeline_id: int, *, actor: str, reason: str, relax: Sequence[str] = (), approve: bool = False,
             strategy: str | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Override the validator's rejection of ``pipeline_id`` (see the module docstring); returns what was done."""
    actions.validate_actor(actor)
    if not (reason or "").strip():
        raise errors.InputError("an override needs a reason (--reason)")
    if not (relax or approve or strategy):
        raise errors.InputError("say what to override: --approve (approve anyway), --relax CHECK or --strategy TYPE")
    with app.db.write() as conn:
        p = app.pipelines.get(pipeline_id, conn=conn)
        validation = p.row.get("validation_result")
        if p.state is not State.REJECTED or p.row.get("error_stage") != "validating" or not validation:
            raise errors.InvalidTransition(
                f"pipeline {p.id} is {p.state.value}"
                + ("" if p.state is not State.REJECTED else " by something other than the validator")
                + ": only a validator's rejection can be overridden",
                hint="`retry` processes a rejected book again; `show` says why it was rejected")
        relaxed = decide(validation, relax=relax, approve=approve)
        plan = dict(p.row.get("strategy") or {})
        if strategy is not None:
            table = strategies.load_strategies()
            if strategy not in table:
                raise errors.InputError(f"unknown strategy {strategy!r}; strategies: {', '.join(sorted(table))}")
            plan = table[strategy].to_json()
        moment = now or app.clock.now()
        plan["override"] = {"relax": relaxed, "approve": bool(approve), "actor": actor, "reason": reason,
                            "at": moment.isoformat()}
        failed = [c["name"] for c in validation.get("checks") or [] if not c.get("passed")]
        after = {"state": State.NEEDS_RETRY.value, "relax": relaxed, "approve": bool(approve),
                 "strategy": plan.get("name") or plan.get("book_type")}
        audit = chain.AuditEntry(action=actions.Action.OVERRIDDEN, actor=actor, pipeline_id=p.id,
                                 book_id=p.row.get("book_id"), reason=reason,
                                 confidence_at_decision=p.row.get("confidence"),
                                 before_state={"state": p.state.value, "failed_checks": failed}, after_state=after)
        app.pipelines.transition(p.id, State.NEEDS_RETRY, expect=State.REJECTED, actor=actor, audit=audit, conn=conn,
                                 updates={"strategy": plan, "retry_stage": State.PROCESSING.value, "retry_count": 0,
                                          "next_attempt_at": moment},
                                 detail={"override": after, "reason": reason})
    return {"id": p.id, "state": State.NEEDS_RETRY.value, "failed_checks": failed, **after, "actor": actor,
            "reason": reason}


def relaxed_verdict(result, override: dict[str, Any] | None) -> list[str] | None:
    """The failed checks an override covers, when it covers every one of them (pure); else None."""
    if not override or result.passed:
        return None
    failed = [c.name for c in result.checks if not c.passed and c.severity == "error"]
    return failed if failed and set(failed) <= set(override.get("relax") or []) else None
