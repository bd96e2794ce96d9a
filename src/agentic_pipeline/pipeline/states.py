"""The 15 states a book's pipeline can be in, the moves between them, and the sets that matter.

Pure data: no I/O. Every state change in the program goes through
``db.pipelines.PipelineStore.transition``, which checks ``can_transition`` first.

    detected -> hashing -> classifying -> selecting_strategy -> processing -> validating
        -> pending_approval -> approved -> embedding -> complete
    beside them: duplicate, needs_retry, rejected, failed, archived
"""

from __future__ import annotations

import enum
from agentic_pipeline import errors


class State(str, enum.Enum):
    DETECTED = "detected"
    HASHING = "hashing"
    CLASSIFYING = "classifying"
    SELECTING_STRATEGY = "selecting_strategy"
    PROCESSING = "processing"
    VALIDATING = "validating"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    EMBEDDING = "embedding"
    COMPLETE = "complete"
    DUPLICATE = "duplicate"
    NEEDS_RETRY = "needs_retry"
    REJECTED = "rejected"
    FAILED = "failed"
    ARCHIVED = "archived"

    def __str__(self) -> str:
        return self.value


S = State

#: states a worker is actively running a stage in (a lease is held)
WORKING = frozenset({S.HASHING, S.CLASSIFYING, S.SELECTING_STRATEGY, S.PROCESSING, S.VALIDATING, S.EMBEDDING})
#: queues a worker claims from (NEEDS_RETRY only once its next attempt is due); a WORKING
#: pipeline whose lease is free or expired is claimable too (released or orphaned work resumes)
CLAIMABLE = frozenset({S.DETECTED, S.APPROVED, S.NEEDS_RETRY})
#: states that wait for someone: a worker (queues) or a human (approval); never "stuck"
WAITING = frozenset({S.DETECTED, S.APPROVED, S.PENDING_APPROVAL, S.NEEDS_RETRY})
#: no automatic progress leaves these
TERMINAL = frozenset({S.COMPLETE, S.DUPLICATE, S.REJECTED, S.FAILED, S.ARCHIVED})

#: the forward path of the working stages, in order
STAGE_ORDER = (S.HASHING, S.CLASSIFYING, S.SELECTING_STRATEGY, S.PROCESSING, S.VALIDATING)
#: the stage that follows each working state on success
NEXT_ON_SUCCESS = {
    S.HASHING: S.CLASSIFYING,
    S.CLASSIFYING: S.SELECTING_STRATEGY,
    S.SELECTING_STRATEGY: S.PROCESSING,
    S.PROCESSING: S.VALIDATING,
    S.VALIDATING: S.PENDING_APPROVAL,
    S.EMBEDDING: S.COMPLETE,
}

#: the stage a claimed queue entry enters (NEEDS_RETRY: see ``resume_stage``); a claimed working
#: state (an expired lease) stays where it is. ``process.enter`` and the PostgreSQL claim statement
#: (``db/postgres_store.py``, a CASE rendered from this table) both read it.
ENTRY = {S.DETECTED: S.HASHING, S.APPROVED: S.EMBEDDING}
#: where a NEEDS_RETRY book resumes when its ``retry_stage`` names no working state
RESUME_DEFAULT = S.HASHING


def resume_stage(retry_stage: str | None) -> State:
    """The stage a NEEDS_RETRY pipeline resumes at: its ``retry_stage`` when that is a working state."""
    try:
        state = State(retry_stage) if retry_stage else RESUME_DEFAULT
    except ValueError:
        return RESUME_DEFAULT
    return state if state in WORKING else RESUME_DEFAULT


def entry_stage(state: State, retry_stage: str | None = None) -> State | None:
    """The working stage a claimed pipeline in ``state`` enters; None when it stays (a working state)."""
    if state is S.NEEDS_RETRY:
        return resume_stage(retry_stage)
    return ENTRY.get(state)


_FAILURE_EXITS = {S.NEEDS_RETRY, S.REJECTED, S.FAILED, S.DETECTED}  # DETECTED: a stuck "reset"

TRANSITIONS: dict[State, frozenset[State]] = {
    S.DETECTED: frozenset({S.HASHING, S.REJECTED, S.FAILED, S.ARCHIVED}),
    S.HASHING: frozenset({S.CLASSIFYING, S.DUPLICATE} | _FAILURE_EXITS),
    S.CLASSIFYING: frozenset({S.SELECTING_STRATEGY} | _FAILURE_EXITS),
    S.SELECTING_STRATEGY: frozenset({S.PROCESSING} | _FAILURE_EXITS),
    S.PROCESSING: frozenset({S.VALIDATING} | _FAILURE_EXITS),
    # VALIDATING -> PROCESSING: one retry with a fallback chapter-splitting method
    S.VALIDATING: frozenset({S.PENDING_APPROVAL, S.PROCESSING} | _FAILURE_EXITS),
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.ARCHIVED}),
    S.APPROVED: frozenset({S.EMBEDDING, S.ARCHIVED}),
    S.EMBEDDING: frozenset({S.COMPLETE, S.NEEDS_RETRY, S.FAILED, S.DETECTED}),
    S.COMPLETE: frozenset({S.ARCHIVED}),
    S.DUPLICATE: frozenset({S.ARCHIVED}),
    # a retry resumes at the stage that failed; a reset starts over
    S.NEEDS_RETRY: frozenset(set(STAGE_ORDER) | {S.EMBEDDING, S.DETECTED, S.FAILED, S.REJECTED, S.ARCHIVED}),
    S.REJECTED: frozenset({S.NEEDS_RETRY, S.ARCHIVED}),
    S.FAILED: frozenset({S.NEEDS_RETRY, S.ARCHIVED}),
    S.ARCHIVED: frozenset(),
}


def can_transition(src: State, dst: State) -> bool:
    """True when the state machine allows moving from ``src`` to ``dst``."""
    return dst in TRANSITIONS[src]


def parse(value: str) -> State:
    """Parse a state name case-insensitively (``PENDING_APPROVAL`` or ``pending_approval``)."""
    try:
        return State(value.strip().lower())
    except ValueError:
        valid = ", ".join(s.value for s in State)
        raise errors.InputError(f"unknown state {value!r}; valid states: {valid}") from None
