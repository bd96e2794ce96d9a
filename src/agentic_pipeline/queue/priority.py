"""Priority rules (pure): the range, the claim order, and what each aging level does to a priority.

Three columns describe a book's priority: ``base_priority`` (what a person asked for, shown in
``status``), ``priority`` (the effective value workers order by) and ``aging_level`` (0 fresh,
1 after the first threshold's boost, 2 after the second threshold's promotion to 1). The
effective priority is always a function of the other two, so aging never compounds: each level is
applied once, and a manual change resets ``base_priority``, ``aging_level`` and the aging clock
(the person's new number is the new starting point).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from agentic_pipeline.db.pipelines import validate_priority
from agentic_pipeline.pipeline.states import TERMINAL, State

URGENT, NORMAL, BACKFILL = 1, 5, 10
#: the waiting queues aging applies to (a book waiting for a worker; measured from ``queued_at``)
AGING_STATES = frozenset({State.DETECTED, State.APPROVED, State.NEEDS_RETRY})
LEVEL_FRESH, LEVEL_BOOSTED, LEVEL_PROMOTED = 0, 1, 2
#: books in these states no longer wait for anything: priority changes are refused
FINISHED = TERMINAL

__all__ = ["validate_priority", "TERMINAL", "aged_priority", "aging_level_for", "claim_order_key"]


def aged_priority(priority: int, level: int, boost: int) -> int:
    """The effective priority after reaching aging ``level`` from a priority at the level below.

    Level 1 makes the book ``boost`` levels more urgent (never below 1); level 2 makes it 1.
    """
    if level >= LEVEL_PROMOTED:
        return URGENT
    if level == LEVEL_BOOSTED:
        return max(URGENT, priority - boost)
    return priority


def aging_level_for(waited: dt.timedelta, first_hours: float, second_hours: float) -> int:
    """The aging level a book has earned after waiting ``waited`` (strictly more than a threshold)."""
    hours = waited.total_seconds() / 3600.0
    if hours > second_hours:
        return LEVEL_PROMOTED
    if hours > first_hours:
        return LEVEL_BOOSTED
    return LEVEL_FRESH


def claim_order_key(row: Mapping[str, Any]) -> tuple:
    """The order workers take work in: effective priority, then oldest first, then id."""
    return (row["priority"], row["created_at"], row["id"])
