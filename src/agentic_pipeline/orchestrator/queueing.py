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
from agentic_pipeline.ingest import hashing
from agentic_pipeline.ingest.extract import SUPPORTED_SUFFIXES


#: the longest name of one file or folder that Linux filesystems take (ext4, XFS, btrfs, tmpfs: 255 bytes)
NAME_MAX = 255
#: the longest path the kernel takes in one call (PATH_MAX, counting the closing NUL)
PATH_MAX = 4096


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` can name no file at all (a name or the whole path too long, a NUL), in words; or None.

    Checked before the filesystem is asked, which would only answer ``OSError: [Errno 36]``.
    """
    raw = os.fsencode(path)
    if b"\x00" in raw:
        return "the path contains a NUL character"
    for part in raw.split(b"/"):
        if len(part) > NAME_MAX:
            shown = part[:40].decode("utf-8", "replace")
            return (f"file name too long: a name in the path ({shown}…) is {len(part):,} bytes; a file or "
                    f"folder name can have at most {NAME_MAX} bytes")
    if len(raw) >= PATH_MAX:
        return f"path too long: {len(raw):,} bytes; a path can have at most {PATH_MAX - 1:,} bytes"
    return None


def check_path(path: str | os.PathLike[str]) -> None:
    """``InputError`` saying what is wrong with ``path`` if it can name no file (``path_problem``)."""
    problem = path_problem(path)
    if problem:
        raise errors.InputError(problem, path=os.fsencode(path).decode("utf-8", "replace"))


def os_error(path: str | os.PathLike[str], exc: OSError) -> errors.InputError:
    """The ``InputError`` for a path the filesystem refused (a folder in it unreadable, a name too long...)."""
    return errors.InputError(f"{os.fsencode(path).decode('utf-8', 'replace')}: cannot be read: {exc.strerror}",
                             path=os.fsencode(path).decode("utf-8", "replace"))


def unstorable_name(path: str | os.PathLike[str]) -> str | None:
    """Why this path cannot be stored as text (a name in another encoding than UTF-8), or None."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8 (written in another encoding): rename it"
    return None


def queue_file(app, path: str | os.PathLike[str], *, priority: int = 5, actor: str) -> dict[str, Any]:
    """Queue ``path`` in DETECTED (or return the live pipeline already queued for it); returns id, created."""
    actions.validate_actor(actor)
    check_path(path)
    source = Path(path).expanduser()
    bad_name = unstorable_name(source)
    if bad_name:
        raise errors.InputError(f"{os.fsencode(source)!r}: {bad_name}")
    try:
        if not source.is_file():
            raise errors.InputError(f"not a file: {source}", path=str(source))
    except OSError as exc:
        raise os_error(source, exc) from exc

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
