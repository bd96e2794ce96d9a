"""Queue one file: hash it and create its pipeline, once (the watcher and ``process`` use this).

Queueing the same file twice at once yields one pipeline: the lookup and the insert run in one
write transaction (SQLite's writer lock; a transaction advisory lock keyed by the hash on
PostgreSQL). A different file with the same content is queued; HASHING marks it DUPLICATE.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.audit import actions
from agentic_pipeline.db import workers_store


def unstorable_name(path: str | os.PathLike[str]) -> str | None:
    """Why this path cannot be stored as text (a name in another encoding than UTF-8), or None."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8 (written in another encoding): rename it"
    return None


def queue_file(app, path: str | os.PathLike[str], *, priority: int = 5, actor: str) -> dict[str, Any]:
    """Queue ``path`` in DETECTED (or return the live pipeline already queued for it); returns id, created."""
    from agentic_pipeline.ingest import hashing

    actions.validate_actor(actor)
    source = Path(path).expanduser()
    bad_name = unstorable_name(source)
    if bad_name:
        raise errors.InputError(f"{os.fsencode(source)!r}: {bad_name}")
    if not source.is_file():
        raise errors.InputError(f"not a file: {source}", path=str(source))
    from agentic_pipeline.ingest.extract import SUPPORTED_SUFFIXES

    if source.suffix.lower() not in SUPPORTED_SUFFIXES:  # the same rule as batch-queue and the watcher
        raise errors.InputError(f"{source.name}: suffix {source.suffix or '(none)'} is not a supported book format; "
                                f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}", path=str(source))
    source = source.resolve()
    digest = hashing.sha256_file(source)
    with app.db.write() as conn:
        workers_store.strict_commit(conn)  # queueing is durable, even from a worker
        workers_store.lock_key(conn, int(digest[:15], 16))
        existing = workers_store.live_pipeline_for_file(conn, str(source), digest)
        if existing is not None:
            state = app.pipelines.get(existing, conn=conn).state.value
            return {"id": existing, "created": False, "state": state, "source_path": str(source),
                    "content_hash": digest}
        p = app.pipelines.create(source_path=str(source), actor=actor, content_hash=digest, priority=priority,
                                 conn=conn)
    return {"id": p.id, "created": True, "source_path": str(source), "content_hash": digest}
