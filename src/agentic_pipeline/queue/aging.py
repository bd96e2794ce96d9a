"""Priority aging against starvation: the decision (pure) and the hourly maintenance task.

A book waiting in a queue (DETECTED, APPROVED, NEEDS_RETRY) for more than ``aging_first_hours``
becomes ``aging_boost`` levels more urgent (never below 1); after ``aging_second_hours`` it becomes
priority 1. Waiting is measured from ``queued_at``, which is set whenever a book enters a queue.
Each threshold applies once (``aging_level`` records how far a book has aged), so running the
task every hour, or twice in a row, never compounds. ``base_priority`` keeps the original.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Iterable, Mapping

from agentic_pipeline.audit import actions, chain
from agentic_pipeline.pipeline import priority as rules
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.db import audit_store, queue_store


@dataclasses.dataclass(frozen=True)
class AgingChange:
    pipeline_id: int
    old_priority: int
    new_priority: int
    old_level: int
    new_level: int
    base_priority: int


def plan_aging(rows: Iterable[Mapping[str, Any]], now: dt.datetime, settings) -> list[AgingChange]:
    """Which waiting rows age now, and to what; rows need id, state, priority, base_priority, aging_level, queued_at."""
    cuts = cutoffs(now, settings)
    changes = []
    for row in rows:
        if State(row["state"]) not in rules.AGING_STATES:
            continue
        level = rules.earned_level(row["queued_at"], cuts)
        if level <= row["aging_level"]:
            continue
        new = rules.aged_priority(row["priority"], level, settings.aging_boost)
        changes.append(AgingChange(row["id"], row["priority"], new, row["aging_level"], level, row["base_priority"]))
    return changes


def cutoffs(now: dt.datetime, settings) -> dict[int, dt.datetime]:
    """Per level, queued before its cutoff earns it (``priority.cutoffs`` with the configured hours)."""
    return rules.cutoffs(now, settings.aging_first_hours, settings.aging_second_hours)


def run_aging(app) -> dict[str, Any]:
    """Age every waiting book that crossed a threshold: one UPDATE per threshold plus audit rows, one transaction."""
    now = app.clock.now()
    cuts = cutoffs(now, app.settings)
    with app.db.write() as conn:
        before = {r["id"]: r for r in queue_store.aging_candidates(conn, cuts)}
        planned = {c.pipeline_id: c for c in plan_aging(before.values(), now, app.settings)}
        aged = {level: queue_store.age_waiting(conn, level, cuts, boost=app.settings.aging_boost, now=now)
                for level in rules.AGING_LEVELS}
        promoted, boosted = aged[rules.LEVEL_PROMOTED], aged[rules.LEVEL_BOOSTED]
        # the database's answer is the truth; the plan is what we expected it to be
        done = [_change(before[r["id"]], r) for r in promoted + boosted if r["id"] in before]
        audit_store.append_many(conn, [_audit(c, app.settings) for c in done], now)
    return {
        "aged": len(done), "boosted": len(boosted), "promoted": len(promoted),
        "unexpected": sorted(set(planned) ^ {c.pipeline_id for c in done}),
        "changes": [dataclasses.asdict(c) for c in done], "at": now,
    }


def run_aging_task(app) -> dict[str, Any]:
    """The maintenance worker's hourly entry point: run aging, return a short summary."""
    result = run_aging(app)
    return {k: result[k] for k in ("aged", "boosted", "promoted", "at")}


def _change(old: Mapping[str, Any], new: Mapping[str, Any]) -> AgingChange:
    return AgingChange(old["id"], old["priority"], new["priority"], old["aging_level"], new["aging_level"],
                       old["base_priority"])


def _audit(change: AgingChange, settings) -> chain.AuditEntry:
    hours = settings.aging_second_hours if change.new_level == rules.LEVEL_PROMOTED else settings.aging_first_hours
    return chain.AuditEntry(
        action=actions.Action.PRIORITY_CHANGED, actor=actions.SYSTEM_AGING, pipeline_id=change.pipeline_id,
        reason=f"waited more than {hours:g} h in the queue",
        before_state={"priority": change.old_priority, "aging_level": change.old_level,
                      "base_priority": change.base_priority},
        after_state={"priority": change.new_priority, "aging_level": change.new_level,
                     "base_priority": change.base_priority},
    )
