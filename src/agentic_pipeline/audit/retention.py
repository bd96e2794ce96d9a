"""Retention: which audit entries are past their keeping period (pure), and the one path that removes them.

The policy maps an action (``APPROVED``), a glob over actions (``BATCH_*``) or ``*`` to days;
the most specific key wins. ``RETENTION_PRUNED`` entries are never pruned: they are what lets
``verify`` accept the gaps retention leaves. ``prune`` plans, then (with ``execute``) appends
the RETENTION_PRUNED record(s) and deletes through ``audit_prune_grants``, in one transaction.
The dry run renders the very plan that ``execute`` applies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import hashlib
from typing import Any, Iterable, Mapping

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import audit_store

#: entries retention keeps forever (they carry what verify needs)
PRESERVED = frozenset({actions.Action.RETENTION_PRUNED.value})
#: removed-id runs recorded per RETENTION_PRUNED entry; more runs make more entries
RUNS_PER_ENTRY = 5_000
#: hex characters of the last removed entry's hash kept per run (what the next entry's prev_hash starts with)
BOUNDARY_CHARS = 16


def validate_policy(policy: Mapping[str, Any]) -> dict[str, int]:
    """Keys: an action name, a glob over action names, or ``*``; values: whole days >= 1."""
    names = [a.value for a in actions.Action]
    out: dict[str, int] = {}
    for key, days in policy.items():
        if not any(fnmatch.fnmatchcase(name, key) for name in names):
            raise errors.ConfigError(f"retention_days key {key!r} matches no action; valid: {', '.join(names)}")
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise errors.ConfigError(f"retention_days[{key!r}] must be a whole number of days >= 1 (got {days!r})")
        out[key] = days
    return out


def days_for(action: str, policy: Mapping[str, int]) -> int | None:
    """Days to keep ``action`` (exact key, else the longest matching glob); None: kept forever."""
    if action in PRESERVED:
        return None
    if action in policy:
        return policy[action]
    globs = [k for k in policy if any(c in k for c in "*?[") and fnmatch.fnmatchcase(action, k)]
    return policy[max(globs, key=len)] if globs else None


def cutoffs(policy: Mapping[str, int], now: dt.datetime) -> dict[str, dt.datetime]:
    """For each action: entries performed before this moment are past retention."""
    out = {}
    for action in actions.Action:
        days = days_for(action.value, policy)
        if days is not None:
            out[action.value] = now - dt.timedelta(days=days)
    return out


@dataclasses.dataclass
class Plan:
    """What retention removes: counts per action, the runs of consecutive ids, a digest of their hashes."""

    now: dt.datetime
    policy: dict[str, int]
    count: int = 0
    by_action: dict[str, int] = dataclasses.field(default_factory=dict)
    runs: list[chain.Removed] = dataclasses.field(default_factory=list)
    oldest: dt.datetime | None = None
    newest: dt.datetime | None = None
    digest: str = ""

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "by_action": dict(sorted(self.by_action.items())), "runs": len(self.runs),
                "oldest": self.oldest, "newest": self.newest, "policy": self.policy,
                "cutoffs": {a: c for a, c in sorted(cutoffs(self.policy, self.now).items()) if self.by_action.get(a)}}


def plan(rows: Iterable[Any], now: dt.datetime, policy: Mapping[str, int]) -> Plan:
    """Pick the rows (id order; each with id, action, performed_at, entry_hash) past their retention."""
    limits = cutoffs(policy, now)
    result, sha = Plan(now=now, policy=dict(policy)), hashlib.sha256()
    first = last = boundary = None
    for row in rows:
        id_, action, performed_at, entry_hash = _fields(row)
        limit = limits.get(action)
        if limit is None or performed_at >= limit:
            continue
        if last is not None and id_ != last + 1:
            result.runs.append(chain.Removed(first, last, boundary))
            first = None
        first = id_ if first is None else first
        last, boundary = id_, entry_hash[:BOUNDARY_CHARS]
        sha.update(entry_hash.encode("ascii"))
        result.count += 1
        result.by_action[action] = result.by_action.get(action, 0) + 1
        result.oldest = performed_at if result.oldest is None else min(result.oldest, performed_at)
        result.newest = performed_at if result.newest is None else max(result.newest, performed_at)
    if first is not None:
        result.runs.append(chain.Removed(first, last, boundary))
    result.digest = sha.hexdigest()
    return result


def _fields(row: Any) -> tuple[int, str, dt.datetime, str]:
    if isinstance(row, Mapping):
        return row["id"], row["action"], row["performed_at"], row["entry_hash"]
    return row[0], row[1], row[2], row[3]


def records(p: Plan, actor: str) -> list[chain.AuditEntry]:
    """The RETENTION_PRUNED entries for ``p``: ranges as ``[first, last, boundary]``, chunked."""
    chunks = [p.runs[i:i + RUNS_PER_ENTRY] for i in range(0, len(p.runs), RUNS_PER_ENTRY)]
    out = []
    for n, runs in enumerate(chunks, start=1):
        after = {"removed": p.count, "by_action": dict(sorted(p.by_action.items())), "removed_sha256": p.digest,
                 "part": n, "parts": len(chunks), "ranges": [[r.first, r.last, r.boundary] for r in runs]}
        out.append(chain.AuditEntry(
            action=actions.Action.RETENTION_PRUNED.value, actor=actor, after_state=after,
            filter_used={"retention_days": p.policy},
            reason=f"retention: removed {p.count} entries past their retention period (part {n} of {len(chunks)})"))
    return out


def removed_runs(prune_records: Iterable[tuple[int, Any]]) -> list[chain.Removed]:
    """The runs recorded by RETENTION_PRUNED entries (id, after_state); malformed ones are ignored.

    A run must lie before the entry that records it; anything else cannot have been retention.
    """
    out = []
    for record_id, after in prune_records:
        for item in (after or {}).get("ranges", []) if isinstance(after, dict) else []:
            try:
                first, last, boundary = int(item[0]), int(item[1]), str(item[2])
            except (TypeError, ValueError, IndexError):
                continue
            if 0 < first <= last < record_id:
                out.append(chain.Removed(first, last, boundary))
    return out


# ----------------------------------------------------------------- the operation
def prune(app, *, execute: bool = False, actor: str = actions.SYSTEM_RETENTION) -> dict[str, Any]:
    """Plan the removal of entries past retention; with ``execute``, remove them and record it."""
    actions.validate_actor(actor)
    policy = validate_policy(app.settings.retention_days)
    now = app.clock.now()
    limits = cutoffs(policy, now)
    with app.db.write() as conn:
        audit_store.lock_chain(conn)
        rows = audit_store.prune_candidates(conn, max(limits.values()), PRESERVED) if limits else []
        p = plan(rows, now, policy)
        result: dict[str, Any] = {"execute": execute, **p.summary(), "record_ids": []}
        if not execute or not p.count:
            return result
        entries = audit_store.append_many(conn, records(p, actor), now)
        removed = audit_store.delete_ranges(conn, [(r.first, r.last) for r in p.runs])
        if removed != p.count:  # the plan and the table disagree: refuse, roll everything back
            raise errors.StoreError(f"retention planned {p.count} deletions but removed {removed}; nothing changed")
        result["record_ids"] = [e["id"] for e in entries]
    return result


def run_retention_task(app) -> dict[str, Any]:
    """The daily maintenance task: prune as ``system:retention``; returns a JSON-able summary."""
    result = prune(app, execute=True, actor=actions.SYSTEM_RETENTION)
    return {"removed": result["count"], "by_action": result["by_action"], "record_ids": result["record_ids"]}
