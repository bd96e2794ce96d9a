"""The audit trail's two read operations: ``query`` (CLI ``audit``, MCP ``get_audit_log``) and ``verify``.

Appending lives in ``db.audit_store.append`` because every writer calls it inside its own
transaction; the chain itself (hashing, the verify walk) is pure, in ``audit.chain``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain, retention
from agentic_pipeline.db import audit_scan, audit_store

MAX_LIMIT = 10_000


def validate_action(action: str) -> str:
    """The canonical action name (case-insensitive), or ``InputError`` listing the valid ones."""
    try:
        return actions.Action(action.strip().upper()).value
    except ValueError:
        valid = ", ".join(a.value for a in actions.Action)
        raise errors.InputError(f"unknown action {action!r}; valid actions: {valid}") from None


def _validate(limit: int, last_days: float | None, book_id, pipeline_id) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise errors.InputError(f"limit must be between 1 and {MAX_LIMIT} (got {limit!r})")
    if last_days is not None and (isinstance(last_days, bool) or not isinstance(last_days, (int, float))
                                  or last_days <= 0):
        raise errors.InputError(f"last_days must be a positive number of days (got {last_days!r})")
    for name, value in (("book_id", book_id), ("pipeline_id", pipeline_id)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise errors.InputError(f"{name} must be an integer (got {value!r})")


def query(app, *, actor: str | None = None, action: str | None = None, book_id: int | None = None,
          pipeline_id: int | None = None, last_days: float | None = None, limit: int = 100,
          before_id: int | None = None) -> list[dict[str, Any]]:
    """Audit entries matching every given filter, newest first, at most ``limit`` (``before_id``: older
    than that entry, the next page).

    ``actor`` is exact or a glob (``batch:*``, ``human:*``; ``*`` and ``?``), case-sensitive.
    ``action`` is one of ``actions.Action``. ``last_days`` counts back from the app clock.
    """
    _validate(limit, last_days, book_id, pipeline_id)
    since = app.clock.now() - dt.timedelta(days=last_days) if last_days is not None else None
    with app.db.one_statement(write=False) as conn:
        return audit_store.query(conn, actor=actor or None, action=validate_action(action) if action else None,
                                 book_id=book_id, pipeline_id=pipeline_id, since=since, limit=limit,
                                 before_id=before_id)


def verify(app, *, key: bytes | None = None, require_key: bool = False) -> dict[str, Any]:
    """Walk the whole chain in id order; the count when intact, else the first entry that does not match.

    ``require_key``: every entry must be keyed (a trail keyed from its first entry; refused
    without a key). ``key`` defaults to ``AGENTIC_PIPELINE_AUDIT_KEY``; with a key, entries written without it
    after keyed ones are reported as forged.
    """
    key = chain.audit_key() if key is None else key
    if require_key and key is None:
        raise errors.InputError("--require-key needs the key: set AGENTIC_PIPELINE_AUDIT_KEY")
    with app.db.snapshot() as conn:
        removed = retention.removed_runs(audit_store.pruned_records(conn))
        with contextlib.closing(audit_scan.scan(conn, key)) as rows:  # closes the cursor when the walk stops early
            verdict = chain.verify_rows(rows, removed, key, audit_scan.FullRows(conn), require_key=require_key)
    problem = verdict.problem
    return {
        "ok": verdict.ok, "count": verdict.count, "first_id": verdict.first_id, "last_id": verdict.last_id,
        "last_hash": verdict.last_hash, "pruned_ids": verdict.pruned_ids, "keyed": verdict.keyed,
        "unkeyed": verdict.unkeyed,
        "problem": None if problem is None else {"entry_id": problem.entry_id, "kind": problem.kind,
                                                  "message": problem.message},
    }
