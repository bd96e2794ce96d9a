"""Driving one claimed book through its stages: ``drive``, ``apply``, and ``process_one``.

A worker holds the lease while it drives a book; every stage's output is applied in the same
transaction as its lease-checked transition (``owner=worker_id``), so a worker that lost its
lease (killed, paused too long) can never write over the one that took over.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from typing import Any, Callable, Iterator

from agentic_pipeline import errors
from agentic_pipeline.approval import autonomy
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import library_store, workers_store
from agentic_pipeline.orchestrator import child, faults as faults_mod, retries, stages
from agentic_pipeline.orchestrator.heartbeat import Heartbeat
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State
import importlib
from agentic_pipeline import intake
from agentic_pipeline.approval import operations as approval


class Aborted(errors.PipelineError):
    """The worker was told to stop at once; the book was left where it was and released."""


def new_worker_id(kind: str = "worker") -> str:
    host = "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in socket.gethostname())[:60] or "host"
    return f"{kind}-{host}-{os.getpid()}-{secrets.token_hex(2)}"


def worker_actor(worker_id: str) -> str:
    return f"system:{worker_id}"


def drive(app, p, worker_id: str, *, isolate: bool = True, plan: faults_mod.FaultPlan | None = None,
          stopping: Callable[[], bool] = lambda: False, aborting: Callable[[], bool] = lambda: False,
          beat: Heartbeat | None = None):
    """Run stages on a pipeline this worker has leased until it leaves the working states.

    Stops early (leaving the book in its next working state, lease held) when ``stopping()``;
    the caller releases it. After PENDING_APPROVAL the autonomy policy may approve it (in the
    same transaction). ``beat``: the worker's heartbeat (one is started here when not given).
    """
    own = beat is None
    beat = beat or Heartbeat(app, worker_id)
    try:
        p = enter(app, p, worker_id)
        with beat.hold(p.id):
            while p.state in states.WORKING:
                p = step(app, p, worker_id, isolate=isolate, plan=plan, aborting=aborting, beat=beat)
                if stopping() and p.state in states.WORKING:
                    break
        return p
    finally:
        if own:
            beat.close()


def warm(app) -> None:
    """Import what the stages use and load the embedder in this process, so forked stages start warm."""
    for name in ("extract", "classify", "chunking", "strategies", "validate", "embed", "hashing"):
        importlib.import_module(f"agentic_pipeline.ingest.{name}")
    app.embedder.count_tokens("warm up")


@contextlib.contextmanager
def progress(app) -> Iterator[Any]:
    """A write transaction for the worker's own progress (relaxed commit on PostgreSQL: see ``relax_commit``)."""
    with app.db.write() as conn:
        workers_store.relax_commit(conn)
        yield conn


def claim(app, worker_id: str):
    """Claim the next book, move it into its stage and mark this worker busy with it: one commit.

    None when there is nothing to do (the worker row then says idle, with a fresh ``last_seen``).
    The store does it with its engine's primitive (one statement on PostgreSQL).
    """
    return app.pipelines.claim_and_enter(worker_id, lease_seconds=app.settings.lease_seconds,
                                         actor=worker_actor(worker_id))


def enter(app, p, worker_id: str, conn=None):
    """Move a claimed queue entry into its working stage (``states.entry_stage``); working states stay."""
    if conn is None:
        if states.entry_stage(p.state, p.row.get("retry_stage")) is None:
            return p
        with progress(app) as c:
            return enter(app, p, worker_id, conn=c)
    return app.pipelines.enter(p, worker_id, actor=worker_actor(worker_id), conn=conn)


def step(app, p, worker_id: str, *, isolate: bool = True, plan=None, aborting=lambda: False,
         beat: Heartbeat | None = None):
    """Run the stage ``p.state`` names and apply its outcome (or the failure decision)."""
    if beat is None:
        with Heartbeat(app, worker_id) as own, own.hold(p.id):
            return step(app, p, worker_id, isolate=isolate, plan=plan, aborting=aborting, beat=own)
    settings = app.settings
    try:
        timeout = float(settings.stage_timeouts[p.state.value])
        if isolate and p.state in stages.ISOLATED:
            outcome = child.run(run_stage, app, p, plan, timeout=timeout, memory_mb=settings.stage_memory_mb,
                                abort=lambda: aborting() or beat.lost)
        elif isolate:
            with child.alarm(timeout):
                outcome = run_stage(app, p, plan)
        else:
            outcome = run_stage(app, p, plan)
        _raise_if_lost(beat, worker_id, p)
        return apply(app, p, outcome, worker_id)
    except errors.StoreError:
        # the database failed (locked, restarted, connection cut), not the book: no attempt is spent.
        # The worker loop backs off; the book keeps its stage and is resumed there (lease released or expired).
        # Conflicts (StaleState, LeaseLost) are StoreErrors too: another worker or an operator moved the book.
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is recorded: permanent, retry or failed
        if isinstance(exc, child.ChildDied) and aborting():
            raise Aborted(f"stopped during {p.state.value}") from None
        _raise_if_lost(beat, worker_id, p)
        return fail(app, p, exc, worker_id)


def _raise_if_lost(beat: Heartbeat, worker_id: str, p) -> None:
    if beat.lost:
        raise errors.LeaseLost(f"worker {worker_id} lost the lease on pipeline {p.id} during {p.state.value}")


def run_stage(app, p, plan=None) -> stages.Outcome:
    """The stage function for ``p.state``, after the fault plan had its say (runs in the child)."""
    if plan is not None:
        plan.before(p.state.value, p)
    return stages.STAGES[p.state](app, p)


def apply(app, p, outcome: stages.Outcome, worker_id: str):
    """Write the outcome's library rows and move the pipeline, in one transaction.

    A book reaching PENDING_APPROVAL meets the autonomy policy in that same transaction (it
    may leave APPROVED); a COMPLETE one counts towards the worker's ``completed_count``. An
    outcome that writes nothing but the move goes to ``transition`` on its own (on PostgreSQL
    one autocommitted statement: the stages that only classify or choose cost one round trip).
    """
    updates = dict(outcome.updates)
    if outcome.to is State.COMPLETE or outcome.to is State.PENDING_APPROVAL:
        # a finished run: the attempts it used are spent, the embedding after approval gets a fresh set
        updates.update(error=None, retry_stage=None, next_attempt_at=None, retry_count=0)
    complete = outcome.to is State.COMPLETE
    vectors = (p.row.get("book_id"), app.embedder.name) if complete else None
    # a book becoming pending meets the autonomy policy in the move's transaction; where a move alone is
    # one statement (the store says so), a one-row read first spares that transaction when the policy
    # approves nothing (supervised, the default)
    approve_anyway = bool(((p.row.get("strategy") or {}).get("override") or {}).get("approve"))  # approval/overrides.py
    alone = outcome.to is not State.PENDING_APPROVAL or (app.pipelines.autocommit_moves and not approve_anyway
                                                         and not autonomy.may_auto_approve(app))
    if alone and outcome.library is None and not outcome.delete_library and outcome.audit is None:
        # the move is all there is to write: the repository makes it one statement (one round trip) on PostgreSQL
        return app.pipelines.transition(p.id, outcome.to, expect=p.state, actor=outcome.actor or worker_actor(worker_id),
                                        owner=worker_id, detail=outcome.detail, updates=updates, snapshot=p,
                                        vectors=vectors, counted=worker_id if complete else None)
    with progress(app) as conn:
        if outcome.library is not None or outcome.delete_library:
            stages.fence(app, p.id, worker_id, conn)  # the lease is still ours, and stays so until the commit
        if outcome.library is not None:
            lib = outcome.library
            updates["book_id"] = library_store.replace_book(conn, pipeline_id=p.id, book=lib["book"],
                                                            chapter_rows=lib["chapters"], chunk_rows=lib["chunks"],
                                                            now=app.clock.now())
        if outcome.delete_library:
            library_store.delete_book(conn, p.id)
            updates["book_id"] = None
        # COMPLETE: every chunk has a vector, and the worker's completed_count goes up, in the transition itself
        audit = outcome.audit
        if audit is not None and audit.book_id is None:
            audit = chain.AuditEntry(**{**audit.__dict__, "book_id": p.row.get("book_id")})
        moved = app.pipelines.transition(p.id, outcome.to, expect=p.state, actor=outcome.actor or worker_actor(worker_id),
                                         owner=worker_id, detail=outcome.detail, updates=updates, audit=audit, conn=conn,
                                         snapshot=p, vectors=vectors, counted=worker_id if complete else None)
        if moved.state is State.PENDING_APPROVAL:
            decided = (moved.row.get("strategy") or {}).get("override") or {}
            if decided.get("approve"):  # "approve anyway": the person's decision, taken when they overrode

                approval.approve(app, moved.id, actor=decided["actor"], conn=conn,
                                 reason=f"override: {decided.get('reason')}")
                moved = app.pipelines.get(moved.id, conn=conn)
            elif autonomy.maybe_auto_approve(app, moved.id, conn=conn, pipeline=moved)["approved"]:
                moved = app.pipelines.get(moved.id, conn=conn)
        return moved


def fail(app, p, exc: BaseException, worker_id: str):
    """Record a failure: REJECTED (permanent, with an audit entry), NEEDS_RETRY with backoff, or FAILED."""
    s = app.settings
    decision = retries.decide_failure(exc, stage=p.state, retry_count=p.row.get("retry_count") or 0,
                                      max_attempts=p.row.get("max_attempts") or s.max_attempts, now=app.clock.now(),
                                      base=s.retry_base_seconds, cap=s.retry_max_seconds)
    audit = None
    with progress(app) as conn:
        if decision.to is State.REJECTED:
            library_store.delete_book(conn, p.id)
            decision.updates["book_id"] = None
            # bad input is refused by the validator, whichever worker found it (the history row names the worker)
            audit = chain.AuditEntry(action=actions.Action.REJECTED, actor=actions.SYSTEM_VALIDATOR, pipeline_id=p.id,
                                     reason=decision.updates["error"], before_state={"state": p.state.value},
                                     after_state={"state": "rejected"})
        return app.pipelines.transition(p.id, decision.to, expect=p.state, actor=worker_actor(worker_id), owner=worker_id,
                                        updates=decision.updates, audit=audit, conn=conn, snapshot=p,
                                        detail={"error": decision.updates["error"], "stage": p.state.value,
                                                **({"hint": exc.hint} if getattr(exc, "hint", None) else {})})


# ----------------------------------------------------------------------- process_one
def process_one(app, path: str, *, priority: int = 5, actor: str, wait: bool = False, isolate: bool = True,
                plan: faults_mod.FaultPlan | None = None, interrupted: Callable[[], bool] = lambda: False
                ) -> dict[str, Any]:
    """Queue one book; with ``wait``, drive it here through every stage (and embedding if auto-approved).

    ``interrupted()`` turning True (the CLI's SIGTERM / Ctrl-C) kills the running stage, releases
    the book (a worker may take it at once, at the same stage) and raises ``Aborted``.
    """
    queued = intake.queue_file(app, path, priority=priority, actor=actor)
    if not wait:
        return {**queued, "waited": False}
    worker_id = new_worker_id("process")
    if isolate:
        warm(app)
    p = app.pipelines.get(queued["id"])
    plan = plan if plan is not None else faults_mod.parse(app.settings.faults)
    try:
        while p.state in states.CLAIMABLE or p.state in states.WORKING:
            if p.state is State.NEEDS_RETRY:
                break
            if not _claim(app, p.id, worker_id):
                raise errors.LeaseLost(f"pipeline {p.id} is being worked on by {p.row.get('lease_owner')}; "
                                       "see `agentic-pipeline status`")
            p = drive(app, app.pipelines.get(p.id), worker_id, isolate=isolate, plan=plan, stopping=interrupted,
                      aborting=interrupted)
            if interrupted():
                raise Aborted(f"stopped; pipeline {p.id} is {p.state.value} and a worker can take it from there")
    except BaseException:  # stopped, Ctrl-C, a crash: give the book back, a worker may take it now
        _release_quietly(app, p.id, worker_id)
        raise
    return {**queued, "waited": True, "state": p.state.value, "title": p.row.get("title"),
            "book_type": p.row.get("book_type"), "confidence": p.row.get("confidence"), "error": p.row.get("error"),
            "duplicate_of": p.row.get("duplicate_of"),
            "next_attempt_at": p.row.get("next_attempt_at") if p.state is State.NEEDS_RETRY else None}


def _release_quietly(app, pipeline_id: int, worker_id: str) -> None:
    try:
        app.pipelines.release(pipeline_id, worker_id)
    except errors.StoreError:
        pass  # the lease expires instead


def _claim(app, pipeline_id: int, worker_id: str) -> bool:
    with progress(app) as conn:
        return workers_store.claim_pipeline(conn, pipeline_id, worker_id, now=app.clock.now(),
                                            lease_seconds=app.settings.lease_seconds)
