"""Priority rules (pure): the range, the claim order, and aging (what each level earns and does).

Three columns describe a book's priority: ``base_priority`` (what a person asked for, shown in
``status``), ``priority`` (the effective value workers order by) and ``aging_level`` (0 fresh,
1 after the first threshold's boost, 2 after the second threshold's promotion to 1). The
effective priority is always a function of the other two, so aging never compounds: each level is
applied once, and a manual change resets ``base_priority``, ``aging_level`` and the aging clock
(the person's new number is the new starting point).

These rules are the one source for both engines' SQL: ``db/`` renders the claim's ORDER BY from
``CLAIM_ORDER`` and the aging UPDATEs from ``level_window`` and ``aged_priority`` (called with
column expressions and a SQL ``clamp``). Imports nothing from ``db/``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from agentic_pipeline import errors
from agentic_pipeline.pipeline.states import TERMINAL, State

URGENT, NORMAL, BACKFILL = 1, 5, 10
#: the order workers take work in: effective priority, then oldest first, then id
CLAIM_ORDER = ("priority", "created_at", "id")
#: the waiting queues aging applies to (a book waiting for a worker; measured from ``queued_at``)
AGING_STATES = frozenset({State.DETECTED, State.APPROVED, State.NEEDS_RETRY})
LEVEL_FRESH, LEVEL_BOOSTED, LEVEL_PROMOTED = 0, 1, 2
#: the levels aging can earn, the highest first (the order the maintenance task applies them in)
AGING_LEVELS = (LEVEL_PROMOTED, LEVEL_BOOSTED)


def validate_priority(priority: Any) -> int:
    """Priority is an integer 1 (urgent) .. 10 (backfill); 5 is normal."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not URGENT <= priority <= BACKFILL:
        raise errors.InputError(f"priority must be between {URGENT} and {BACKFILL} (got {priority!r})")
    return priority


def changeable(state: State) -> bool:
    """Whether a book's priority may still be changed (finished books wait for nothing)."""
    return state not in TERMINAL


def aged_priority(priority: Any, level: int, boost: int, clamp: Callable[[Any, Any], Any] = max) -> Any:
    """The effective priority after reaching aging ``level`` from a priority at the level below.

    Level 1 makes the book ``boost`` levels more urgent (never below 1); level 2 makes it 1.
    ``priority`` may be a number or a SQL column; ``clamp(low, value)`` is ``max`` in Python and
    a CASE in SQL.
    """
    if level >= LEVEL_PROMOTED:
        return URGENT
    if level == LEVEL_BOOSTED:
        return clamp(URGENT, priority - boost)
    return priority


def cutoffs(now: dt.datetime, first_hours: float, second_hours: float) -> dict[int, dt.datetime]:
    """Per level, the ``queued_at`` before which a waiting book has earned it."""
    return {LEVEL_BOOSTED: now - dt.timedelta(hours=first_hours),
            LEVEL_PROMOTED: now - dt.timedelta(hours=second_hours)}


def level_window(level: int, cuts: dict[int, dt.datetime]) -> tuple[dt.datetime | None, dt.datetime, int]:
    """(queued at or after, queued before, from levels below) for the books that earn ``level`` now.

    A book queued before the level's cutoff (and, for the boost, not before the promotion's)
    earns it when its ``aging_level`` is below. Each level applies once.
    """
    if level == LEVEL_PROMOTED:
        return None, cuts[LEVEL_PROMOTED], LEVEL_PROMOTED
    return cuts[LEVEL_PROMOTED], cuts[LEVEL_BOOSTED], LEVEL_BOOSTED


def earned_level(queued_at: dt.datetime, cuts: dict[int, dt.datetime]) -> int:
    """The aging level a book queued at ``queued_at`` has earned (the windows of ``level_window``)."""
    for level in AGING_LEVELS:
        low, high, _ = level_window(level, cuts)
        if queued_at < high and (low is None or queued_at >= low):
            return level
    return LEVEL_FRESH
