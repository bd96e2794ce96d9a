"""Retry decisions (pure) and the ``retry`` operation.

A failure is either permanent (``BookError``: the book itself is bad, so REJECTED with the reason
and no retry) or transient (anything else, including ``StageTimeout``): NEEDS_RETRY with the
stage to resume at and a next-attempt time from exponential backoff with jitter, until
``max_attempts`` attempts have failed, then FAILED.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random as _random
from typing import Any, Callable

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.approval import operations

RandomSource = Callable[[], float]


def backoff_seconds(attempt: int, *, base: float, cap: float, random: RandomSource) -> float:
    """Delay before attempt ``attempt + 1``: ``base * 2**(attempt-1)`` capped, times a jitter in [0.5, 1).

    "Equal jitter": the delay still grows with every attempt, and workers that failed together
    do not all come back in the same second.
    """
    attempt = max(1, attempt)
    delay = min(cap, base * (2 ** (attempt - 1)))
    return delay * (0.5 + 0.5 * random())


def next_attempt_at(now: dt.datetime, attempt: int, *, base: float, cap: float, random: RandomSource) -> dt.datetime:
    return now + dt.timedelta(seconds=backoff_seconds(attempt, base=base, cap=cap, random=random))


@dataclasses.dataclass(frozen=True)
class FailureDecision:
    """Where a failed stage goes, and the columns to record on the way."""

    to: State
    updates: dict[str, Any]
    permanent: bool


def decide_failure(exc: BaseException, *, stage: State, retry_count: int, max_attempts: int, now: dt.datetime,
                   base: float, cap: float, random: RandomSource = _random.random) -> FailureDecision:
    """Decide what a failure in ``stage`` means (pure): REJECTED, NEEDS_RETRY or FAILED."""
    message = describe(exc)
    common = {"error": message, "error_stage": stage.value}
    if isinstance(exc, errors.BookError):
        return FailureDecision(State.REJECTED, common, permanent=True)
    attempts = retry_count + 1
    if attempts >= max_attempts:
        return FailureDecision(State.FAILED, {**common, "retry_count": attempts, "next_attempt_at": None},
                               permanent=False)
    return FailureDecision(State.NEEDS_RETRY, {
        **common, "retry_count": attempts, "retry_stage": stage.value,
        "next_attempt_at": next_attempt_at(now, attempts, base=base, cap=cap, random=random),
    }, permanent=False)


def describe(exc: BaseException) -> str:
    if isinstance(exc, errors.PipelineError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------- operation
def retry(app, pipeline_id: int, *, actor: str, conn=None, filter_used: dict | None = None) -> dict[str, Any]:
    """Make a book due for retry now: NEEDS_RETRY becomes due; FAILED or REJECTED go back to NEEDS_RETRY.

    A retried FAILED book gets a fresh set of attempts; a REJECTED one starts again from
    HASHING (its library rows were removed when it was rejected). ``filter_used``: the batch
    filter, recorded on the audit entry when a batch retries the book.
    """
    actions.validate_actor(actor)
    if conn is None:
        with app.db.write() as c:
            return retry(app, pipeline_id, actor=actor, conn=c, filter_used=filter_used)
    p = app.pipelines.get(pipeline_id, conn=conn)
    now = app.clock.now()
    audit = chain.AuditEntry(action=actions.Action.RETRIED, actor=actor, pipeline_id=p.id,
                             book_id=p.row.get("book_id"), reason=p.row.get("error"),
                             before_state={"state": p.state.value, "retry_count": p.row.get("retry_count")},
                             after_state={"state": State.NEEDS_RETRY.value, "next_attempt_at": now.isoformat()},
                             filter_used=filter_used)
    if p.state is State.NEEDS_RETRY:
        app.pipelines.update_fields(p.id, expect=State.NEEDS_RETRY, values={"next_attempt_at": now},
                                    audit=audit, conn=conn)
    elif p.state in (State.FAILED, State.REJECTED):
        stage = p.row.get("error_stage") if p.state is State.FAILED else None
        app.pipelines.transition(p.id, State.NEEDS_RETRY, expect=p.state, actor=actor, audit=audit, conn=conn,
                                 updates={"retry_stage": stage or State.HASHING.value, "retry_count": 0,
                                          "next_attempt_at": now})
    else:
        raise errors.InvalidTransition(
            f"pipeline {p.id} is {p.state.value}; only needs_retry, failed or rejected books can be retried")
    return {"id": p.id, "from": p.state.value, "state": State.NEEDS_RETRY.value, "next_attempt_at": now}


def retry_all_due(app, *, actor: str) -> list[dict[str, Any]]:
    """Make every NEEDS_RETRY book due now (``retry`` with no id)."""
    ids = [p["id"] for p in operations.list_by_state(app, State.NEEDS_RETRY)]
    return [retry(app, pid, actor=actor) for pid in ids]
