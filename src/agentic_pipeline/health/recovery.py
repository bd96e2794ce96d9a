"""Recovering stuck books: pure rules per state, then a compare-and-set transition with an audit entry.

Rules (``Settings.recovery_minutes``, ``Settings.max_auto_recoveries``): a book stuck in PROCESSING
for 60 min or EMBEDDING for 30 min goes to NEEDS_RETRY; an orphan (its worker's lease expired)
goes there at once; each book gets at most ``max_auto_recoveries`` automatic recoveries, after
which only an alert is raised; every other stuck state is alert-only. A human can recover any
stuck book with ``recover_one`` (retry, reject or reset), which is not capped.

Recovery compares state, lease owner, lease expiry, ``retry_count`` and ``auto_recovery_count``
with what detection read (``db.health_store.claim_recovery``) and makes the transition in the
same transaction: a worker that wakes up later finds the state changed and its lease gone
(``StaleState`` / ``LeaseLost``) and cannot overwrite the recovered book.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.health import stuck_detector
from agentic_pipeline.pipeline import states
from agentic_pipeline.health import monitor
from agentic_pipeline.db import health_store

S = states.State
ACTIONS = ("retry", "reject", "reset")
_TARGET = {"retry": S.NEEDS_RETRY, "reject": S.REJECTED, "reset": S.DETECTED}


@dataclasses.dataclass(frozen=True)
class Decision:
    id: int
    action: str  # "retry" or "alert"
    reason: str


def decide(stuck: stuck_detector.StuckBook, settings) -> Decision:
    """What the maintenance worker does with one stuck book (pure)."""
    capped = stuck.auto_recovery_count >= settings.max_auto_recoveries
    cap_note = f"already recovered {stuck.auto_recovery_count} times (max {settings.max_auto_recoveries})"
    if stuck.reason == "orphaned":
        if capped:
            return Decision(stuck.id, "alert", f"orphaned in {stuck.state}; {cap_note}")
        return Decision(stuck.id, "retry", f"orphaned in {stuck.state}: lease of {stuck.lease_owner} expired")
    after = settings.recovery_minutes.get(stuck.state)
    if after is None:
        return Decision(stuck.id, "alert", f"no automatic recovery for {stuck.state}")
    if stuck.minutes_in_state < after:
        return Decision(stuck.id, "alert", f"recovery after {after:g} min in {stuck.state}")
    if capped:
        return Decision(stuck.id, "alert", cap_note)
    return Decision(stuck.id, "retry", f"{stuck.minutes_in_state:.0f} min in {stuck.state} (rule: {after:g} min)")


def recover_stuck(app, *, actor: str = actions.SYSTEM_HEALTH) -> dict[str, Any]:
    """Apply the rules to every stuck book; returns what was recovered, alerted and lost to races."""
    found = monitor.find_stuck(app)
    out: dict[str, Any] = {"stuck": len(found["stuck"]), "recovered": [], "alerted": [], "conflicts": []}
    for book in found["stuck"]:
        decision = decide(book, app.settings)
        if decision.action != "retry":
            out["alerted"].append({"id": book.id, "state": book.state, "reason": decision.reason})
            continue
        try:
            out["recovered"].append(_apply(app, book, "retry", actor, decision.reason))
        except errors.Conflict as exc:
            out["conflicts"].append({"id": book.id, "error": str(exc)})
    return out


def recover_one(app, pipeline_id: int, action: str = "retry", *, actor: str, reason: str | None = None,
                force: bool = False) -> dict[str, Any]:
    """Recover one book by hand: ``retry`` (NEEDS_RETRY now), ``reject`` or ``reset`` (back to DETECTED).

    ``reject`` and ``reset`` need a ``reason`` (kept in the audit entry). A book that is not stuck
    while a worker holds a live lease on it is refused unless ``force``: recovering it would take
    work away from a worker that is alive and on time (``force`` is for a worker known to be gone).
    """
    actions.validate_actor(actor)
    if action not in ACTIONS:
        raise errors.InputError(f"unknown recovery action {action!r}; use one of {', '.join(ACTIONS)}")
    reason = (reason or "").strip() or None
    if action != "retry" and reason is None:
        raise errors.InputError(f"recovering a book by hand with {action} needs a reason (--reason)")
    now = app.clock.now()
    with app.db.read() as conn:
        row = health_store.candidate(conn, pipeline_id)
    if row is None:
        raise errors.NotFound(f"no pipeline with id {pipeline_id}")
    state = S(row["state"])
    if state not in states.WORKING and state is not S.NEEDS_RETRY:
        raise errors.InvalidTransition(f"pipeline {pipeline_id} is {state.value}: only books in a working state "
                                       "or NEEDS_RETRY can be recovered")

    limits = monitor.current_thresholds(app)
    limit = limits.get(state.value) or stuck_detector._retry_threshold(row.get("retry_stage"), limits)
    in_state = (now - row["state_entered_at"]).total_seconds()
    book = stuck_detector.check(row, limits, now)
    expires = row.get("lease_expires_at")
    if book is None and row.get("lease_owner") is not None and expires is not None and expires >= now and not force:
        raise errors.PolicyDenied(
            f"pipeline {pipeline_id} is not stuck: {state.value} for {in_state / 60:.1f} min (stuck after "
            f"{limit.limit_seconds / 60:.1f} min) and worker {row['lease_owner']} holds its lease until "
            f"{expires:%Y-%m-%d %H:%M:%S} UTC; recovering it would take live work away",
            hint="wait for it, or pass --force if that worker is really gone")
    book = book or stuck_detector._stuck(row, limit, in_state, "manual")
    note = f"recovered by hand: {action}" + (f": {reason}" if reason else "")
    return _apply(app, book, action, actor, note)


def _apply(app, book: stuck_detector.StuckBook, action: str, actor: str, reason: str) -> dict[str, Any]:
    """Compare-and-set, transition, history and audit in one transaction."""
    now = app.clock.now()
    src = S(book.state)
    with app.db.write() as conn:
        if not health_store.claim_recovery(conn, book.seen, now):
            raise errors.StaleState(f"pipeline {book.id} changed since it was found stuck; not recovered",
                                    pipeline_id=book.id)
        if src is S.NEEDS_RETRY and action == "retry":
            app.pipelines.update_fields(book.id, expect=src, values={"next_attempt_at": now},
                                        audit=_audit(book, action, actor, reason, src), conn=conn)
            to = src
        else:
            to = _TARGET[action]
            app.pipelines.transition(book.id, to, expect=src, actor=actor, updates=_updates(book, action, now),
                                     detail={"recovery": action, "stuck_minutes": round(book.minutes_in_state, 2),
                                             "reason": book.reason},
                                     audit=_audit(book, action, actor, reason, to), conn=conn)
    return {"id": book.id, "from": src.value, "to": to.value, "action": action, "actor": actor,
            "stuck_minutes": round(book.minutes_in_state, 2), "reason": reason,
            "auto_recovery_count": book.auto_recovery_count + 1}


def _updates(book: stuck_detector.StuckBook, action: str, now: dt.datetime) -> dict[str, Any]:
    note = f"stuck {book.minutes_in_state:.0f} min in {book.state} ({book.reason}); recovered: {action}"
    if action == "retry":
        return {"next_attempt_at": now, "retry_stage": book.state, "error": note, "error_stage": book.state}
    if action == "reset":
        return {"retry_stage": None, "next_attempt_at": None, "error": note, "error_stage": book.state}
    return {"error": note, "error_stage": book.state}


def _audit(book: stuck_detector.StuckBook, action: str, actor: str, reason: str, to: S) -> chain.AuditEntry:
    return chain.AuditEntry(
        action=actions.Action.STUCK_RECOVERED.value, actor=actor, pipeline_id=book.id, reason=reason,
        before_state={"state": book.state, "lease_owner": book.lease_owner, "stuck_reason": book.reason,
                      "minutes_in_state": round(book.minutes_in_state, 2),
                      "expected_minutes": round(book.expected_minutes, 2),
                      "auto_recovery_count": book.auto_recovery_count},
        after_state={"state": to.value, "action": action, "auto_recovery_count": book.auto_recovery_count + 1},
    )
