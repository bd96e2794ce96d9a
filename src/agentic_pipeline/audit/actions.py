"""Audit action names and actor conventions, defined once for the whole program."""

from __future__ import annotations

import enum
import getpass
import re
from agentic_pipeline import errors


class Action(str, enum.Enum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    ROLLED_BACK = "ROLLED_BACK"
    PRIORITY_CHANGED = "PRIORITY_CHANGED"
    BATCH_QUEUED = "BATCH_QUEUED"
    BATCH_APPROVED = "BATCH_APPROVED"
    BATCH_REJECTED = "BATCH_REJECTED"
    BATCH_RETRIED = "BATCH_RETRIED"
    BATCH_PRIORITY_CHANGED = "BATCH_PRIORITY_CHANGED"
    STUCK_RECOVERED = "STUCK_RECOVERED"
    AUTONOMY_CHANGED = "AUTONOMY_CHANGED"
    ESCAPE_HATCH = "ESCAPE_HATCH"
    RETENTION_PRUNED = "RETENTION_PRUNED"
    RETRIED = "RETRIED"
    # i18: corrections, overrides, bulk cancel and undo
    METADATA_CHANGED = "METADATA_CHANGED"
    OVERRIDDEN = "OVERRIDDEN"
    CANCELLED = "CANCELLED"
    BATCH_CANCELLED = "BATCH_CANCELLED"
    BATCH_ROLLED_BACK = "BATCH_ROLLED_BACK"

    def __str__(self) -> str:
        return self.value


# Actor conventions: "<kind>:<name>"
AUTO_HIGH_CONFIDENCE = "auto:high_confidence"
SYSTEM_AGING = "system:aging"
SYSTEM_HEALTH = "system:health_monitor"
SYSTEM_VALIDATOR = "system:validator"
SYSTEM_RETENTION = "system:retention"
SYSTEM_WORKER = "system:worker"
ACTOR_KINDS = ("human", "auto", "batch", "system", "mcp", "web")
_ACTOR = re.compile(r"^(human|auto|batch|system|mcp|web):[\w.@+\-]{1,120}$")


def default_human_actor() -> str:
    """``human:$USER``, the default actor for CLI commands."""
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database (containers): fall back
        name = "unknown"
    return f"human:{_sanitize(name)}"


def batch_actor(filter_id: str) -> str:
    return f"batch:{filter_id}"


def mcp_actor(client_name: str | None) -> str:
    return f"mcp:{_sanitize(client_name or 'unknown-client')}"


def web_actor(user: str | None) -> str:
    """``web:<user>``: a person acting through the dashboard."""
    return f"web:{_sanitize(user or 'unknown')}"


def sanitize_name(name: str) -> str:
    """``name`` with every character an actor name may not hold replaced by ``_``."""
    return _sanitize(name)


def validate_actor(actor: str) -> str:
    """Return ``actor`` if it follows ``kind:name``, else raise ``InputError`` saying the convention."""
    if not _ACTOR.match(actor or ""):
        raise errors.InputError(
            f"invalid actor {actor!r}: use <kind>:<name> with kind one of {', '.join(ACTOR_KINDS)} "
            "(e.g. human:alice)"
        )
    return actor


def _sanitize(name: str) -> str:
    cleaned = re.sub(r"[^\w.@+\-]", "_", name)[:120]
    return cleaned or "unknown"
