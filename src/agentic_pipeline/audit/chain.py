"""The hash chain: each entry's hash covers its content and the previous entry's hash (pure).

``entry_hash = sha256(canonical JSON of the entry, including id and prev_hash)``. Changing,
removing or inserting a row out of band breaks the chain at that row, which ``verify`` reports.
Times enter the hash as integer milliseconds since the epoch, so the value survives both
engines' storage exactly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any, Mapping

GENESIS = "0" * 64


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One decision or system action, as the caller describes it (id and hashes come at append)."""

    action: str
    actor: str
    pipeline_id: int | None = None
    book_id: int | None = None
    reason: str | None = None
    before_state: Any = None
    after_state: Any = None
    filter_used: Any = None
    confidence_at_decision: float | None = None


HASHED_FIELDS = ("id", "book_id", "pipeline_id", "action", "actor", "reason", "before_state",
                 "after_state", "filter_used", "confidence_at_decision", "performed_at", "prev_hash")


def to_millis(moment: dt.datetime) -> int:
    return int(round(moment.timestamp() * 1000))


def truncate_to_millis(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def compute_hash(row: Mapping[str, Any]) -> str:
    """The hash of a stored (or about to be stored) row: every field in ``HASHED_FIELDS``."""
    doc = {name: row.get(name) for name in HASHED_FIELDS}
    doc["performed_at"] = to_millis(row["performed_at"])
    if doc["confidence_at_decision"] is not None:
        doc["confidence_at_decision"] = float(doc["confidence_at_decision"])
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
