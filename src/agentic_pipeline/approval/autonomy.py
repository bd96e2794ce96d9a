"""Autonomy operations: status, enable, disable, escape hatch, resume, and the automatic approval.

Every change writes an AUTONOMY_CHANGED (or ESCAPE_HATCH) audit entry with the config before and
after, in the same transaction. The automatic approval takes a slot of the daily cap and moves
the book in one transaction, so concurrent approvers can never exceed the cap, and a lost race
on the book gives its slot back.
"""

from __future__ import annotations

from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.approval import operations, policy
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import autonomy_store
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.db import audit_store


def status(app) -> dict[str, Any]:
    """The current mode, thresholds, daily cap and today's automatic approvals."""
    now = app.clock.now()
    with app.db.read() as conn:
        row = autonomy_store.get_config(conn)
        used = autonomy_store.approvals_on(conn, autonomy_store.day_of(now))
    cfg = policy.config_from_row(row)
    return {"mode": cfg.mode, "partial_threshold": cfg.partial_threshold,
            "type_thresholds": dict(cfg.type_thresholds) if cfg.mode == "confident" else {},
            "daily_cap": cfg.daily_cap, "auto_approvals_today": used, "escape_hatch": cfg.escape_hatch,
            "escape_hatch_at": (row or {}).get("escape_hatch_at"), "escape_hatch_reason": (row or {}).get("escape_hatch_reason"),
            "updated_by": (row or {}).get("updated_by"), "updated_at": (row or {}).get("updated_at")}


def enable(app, mode: str, *, actor: str, threshold: float | None = None,
           thresholds: dict[str, float] | None = None, daily_cap: int | None = None) -> dict[str, Any]:
    """Switch to ``partial`` or ``confident`` (``supervised`` is ``disable``); refused while the escape hatch is on."""
    if mode not in policy.MODES:
        raise errors.InputError(f"unknown autonomy mode {mode!r}; valid: {', '.join(policy.MODES)}")
    if mode == "partial" and thresholds:
        raise errors.InputError("per-type thresholds apply to confident mode; partial mode uses one threshold "
                                "(--threshold)")
    if mode == "confident" and threshold is not None:
        raise errors.InputError("--threshold sets partial mode's one threshold; confident mode uses per-type "
                                "thresholds (--type-threshold TYPE=VALUE)")
    if threshold is not None and not 0 < threshold <= 1:
        raise errors.InputError(f"threshold must be in (0, 1] (got {threshold})")
    if daily_cap is not None and daily_cap < 0:
        raise errors.InputError(f"daily cap must be 0 or more (got {daily_cap})")
    for book_type, value in (thresholds or {}).items():
        if book_type not in policy.KNOWN_TYPES or not 0 < value <= 1:
            raise errors.InputError(f"bad threshold {book_type}={value}: types are {', '.join(sorted(policy.KNOWN_TYPES))}, "
                                    "values in (0, 1]")

    def change(row, doc):
        if row.get("escape_hatch_at") is not None:
            raise errors.PolicyDenied("the escape hatch is on", hint="run `agentic-pipeline autonomy resume` first")
        if threshold is not None:
            doc["partial"] = threshold
        if mode == "confident":
            doc["per_type"] = {**policy.DEFAULT_TYPE_THRESHOLDS, **(doc.get("per_type") or {}), **(thresholds or {})}
        row.update(mode=mode, **({"daily_cap": daily_cap} if daily_cap is not None else {}))

    return _change(app, actor, actions.Action.AUTONOMY_CHANGED, f"enable {mode}", change)


def disable(app, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Back to supervised: every book waits for a human."""
    return _change(app, actor, actions.Action.AUTONOMY_CHANGED, reason or "disable",
                   lambda row, doc: row.update(mode="supervised"))


def escape_hatch(app, reason: str, *, actor: str) -> dict[str, Any]:
    """Stop all automatic approvals now (supervised), remembering the mode for ``resume``."""
    if not (reason or "").strip():
        raise errors.InputError("the escape hatch needs a reason")

    def change(row, doc):
        if row.get("mode") != "supervised":
            doc["resume_mode"] = row.get("mode")
        row.update(mode="supervised", escape_hatch_at=app.clock.now(), escape_hatch_reason=reason)

    return _change(app, actor, actions.Action.ESCAPE_HATCH, reason, change)


def resume(app, *, actor: str) -> dict[str, Any]:
    """Clear the escape hatch and return to the mode in force before it."""
    def change(row, doc):
        row.update(mode=doc.pop("resume_mode", None) or row.get("mode") or "supervised",
                   escape_hatch_at=None, escape_hatch_reason=None)

    return _change(app, actor, actions.Action.AUTONOMY_CHANGED, "resume", change)


def _change(app, actor: str, action: actions.Action, reason: str, change) -> dict[str, Any]:
    actions.validate_actor(actor)
    now = app.clock.now()
    with app.db.write() as conn:
        before = autonomy_store.get_config(conn) or {"mode": "supervised", "daily_cap": policy.DEFAULT_DAILY_CAP,
                                                     "thresholds": {}, "escape_hatch_at": None}
        row = {k: before.get(k) for k in ("mode", "daily_cap", "escape_hatch_at", "escape_hatch_reason")}
        doc = dict(before.get("thresholds") or {})
        change(row, doc)
        row.update(thresholds=doc, updated_at=now, updated_by=actor)
        autonomy_store.save_config(conn, row)

        audit_store.append(conn, chain.AuditEntry(action=action, actor=actor, reason=reason,
                                                  before_state=_public(before), after_state=_public(row)), now)
    return status(app)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    at = row.get("escape_hatch_at")
    return {"mode": row.get("mode"), "daily_cap": row.get("daily_cap"), "thresholds": row.get("thresholds"),
            "escape_hatch": at is not None}


def may_auto_approve(app) -> bool:
    """Whether the policy in force could approve any book now (one read; False in the default supervised mode).

    A worker asks before making a book pending: when False, the move alone is its whole commit.
    Stale by the time it returns, but only towards failing closed: a book made pending just as
    autonomy was enabled waits for a human, as one made pending a moment earlier would.
    """
    with app.db.one_statement(write=False) as conn:
        return policy.may_approve_any(policy.config_from_row(autonomy_store.get_config(conn)))


def maybe_auto_approve(app, pipeline_id: int, *, conn=None, pipeline=None) -> dict[str, Any]:
    """Approve a PENDING_APPROVAL book as ``auto:high_confidence`` if the policy allows; else say why not.

    With ``conn`` it joins the caller's transaction (the worker decides in the commit that makes
    the book pending); ``pipeline``: the row as that transaction just wrote it (saves a read).
    """
    if conn is None:
        with app.db.write() as c:
            return maybe_auto_approve(app, pipeline_id, conn=c, pipeline=pipeline)
    day = autonomy_store.day_of(app.clock.now())
    cfg = policy.config_from_row(autonomy_store.get_config(conn))
    p = pipeline if pipeline is not None else app.pipelines.get(pipeline_id, conn=conn)
    if p.state is not State.PENDING_APPROVAL:
        return {"approved": False, "reason": f"not pending ({p.state.value})"}
    if not policy.may_approve_any(cfg):  # the default (supervised): no need to count today's approvals
        return {"approved": False, "reason": policy.ESCAPE_HATCH if cfg.escape_hatch else policy.SUPERVISED,
                "threshold": None}
    validation = p.row.get("validation_result") or {}
    decision = policy.decide(cfg, book_type=p.row.get("book_type"), confidence=p.row.get("confidence"),
                             validation_passed=validation.get("passed"),
                             approvals_today=autonomy_store.approvals_on(conn, day))
    if not decision.approve:
        return {"approved": False, "reason": decision.reason, "threshold": decision.threshold}
    if not autonomy_store.take_slot(conn, day, cfg.daily_cap):
        return {"approved": False, "reason": policy.DAILY_CAP, "threshold": decision.threshold}
    operations.approve(app, pipeline_id, actor=actions.AUTO_HIGH_CONFIDENCE, conn=conn,
                       reason=f"confidence {p.row.get('confidence'):.3f} >= threshold {decision.threshold:.3f} "
                              f"({cfg.mode} mode)",
                       extra={"threshold": decision.threshold, "mode": cfg.mode})
    return {"approved": True, "reason": "approved", "threshold": decision.threshold}
