"""Intake: queueing books, one file (``queue_file``) or a folder (``batch_queue``). The one home of "queue a book".

``queue_file`` (the watcher and ``process``): hash the file and create its pipeline, once.
Queueing the same file twice at once yields one pipeline: the lookup and the insert run in one
write transaction (SQLite's writer lock; a transaction advisory lock keyed by the hash on
PostgreSQL). A different file with the same content is queued; HASHING marks it DUPLICATE.

``batch_queue`` (CLI ``batch-queue``, MCP ``batch_queue``): queue every book in a folder,
reporting queued / duplicates / unsupported / unreadable / refused. Walking and hashing happen
outside any transaction; queueing is one write transaction that checks the hashes against what is
already queued or in the library, inserts every new pipeline and its first history row in bulk
(``PipelineStore.create_many``), and writes one BATCH_QUEUED audit row. The same content twice in
one run (a copy, a symlink) becomes one pipeline. A file that cannot be read, or whose suffix no
extractor handles, is reported and never stops the run. With ``roots`` (the MCP server's allowed
folders) every file is resolved (symlinks, ``..``) before it is opened; one resolving outside
every root is reported as refused and never read.

(Priority, aging and the claim order are ``pipeline.priority``; the aging task and the manual
priority change are ``queue/``.)
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import audit_store, batch_store
from agentic_pipeline.ingest.extract import SUPPORTED_SUFFIXES
from agentic_pipeline.ingest.hashing import NotRegularFile, sha256_file
from agentic_pipeline.orchestrator import queueing
from agentic_pipeline.orchestrator.queueing import queue_file, unstorable_name  # noqa: F401 - one home for queueing
from agentic_pipeline.pipeline.priority import validate_priority

#: progress(done, total, path) after each file is hashed
Progress = Callable[[int, int, str], None]
OUTSIDE = "outside the allowed roots"
KINDS = ("queued", "duplicates", "unsupported", "unreadable", "refused")


def batch_queue(app, path: str | os.PathLike[str], pattern: str = "*", recursive: bool = False, priority: int = 5,
                actor: str | None = None, progress: Progress | None = None, *, execute: bool = True,
                roots: Sequence[str | os.PathLike[str]] | None = None) -> dict[str, Any]:
    """Hash and queue the books under ``path`` matching ``pattern``; with ``execute=False`` only report.

    ``roots``: when given, only files whose resolved path lies under one of them are read.
    """
    validate_priority(priority)
    actor = actions.validate_actor(actor or actions.default_human_actor())
    queueing.check_path(path)
    root = Path(path).expanduser()
    try:
        if not root.exists():
            raise errors.InputError(f"{root} does not exist")
    except OSError as exc:
        raise queueing.os_error(root, exc) from exc
    report: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    allowed = None if roots is None else [os.path.realpath(Path(r).expanduser()) for r in roots]
    candidates = _collect(root, pattern, recursive, report, allowed)
    hashed = _hash_all(candidates, report, progress)
    new = _dedupe_in_run(hashed, report)
    _queue(app, root, pattern, recursive, priority, actor, new, report, execute)
    return {"path": str(root), "pattern": pattern, "recursive": recursive, "priority": priority,
            "executed": execute, **{f"{k}_count": len(v) for k, v in report.items()}, **report}


def inside(real: str, allowed: Sequence[str]) -> bool:
    """Is the resolved path ``real`` one of the ``allowed`` roots or under one (component-wise)?"""
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in allowed)


def _collect(root: Path, pattern: str, recursive: bool, report, allowed: Sequence[str] | None) -> list[tuple[Path, str]]:
    """(file, resolved path) of supported files matching ``pattern``, each real file once; the rest reported."""
    out, seen = [], set()
    for file, real in _walk(root, recursive, report):
        if not fnmatch.fnmatchcase(file.name, pattern):
            continue
        bad_name = unstorable_name(file) or unstorable_name(real)
        if bad_name:  # reported under a name that can be printed and stored
            report["unreadable"].append({"path": os.fsencode(file).decode("utf-8", "replace"), "reason": bad_name})
            continue
        if file.suffix.lower() not in SUPPORTED_SUFFIXES:
            report["unsupported"].append({"path": str(file), "reason": f"suffix {file.suffix or '(none)'} not supported; "
                                          f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"})
            continue
        if allowed is not None and not inside(real, allowed):
            report["refused"].append({"path": str(file), "reason": f"{OUTSIDE} (resolves to {real})"})
            continue
        if real not in seen:
            seen.add(real)
            out.append((file, real))
    return out


def _walk(root: Path, recursive: bool, report) -> Iterator[tuple[Path, str]]:
    """(file, resolved path): real files before links in each folder, so a link to a listed file is dropped.

    A folder is resolved once; only symlinked files need their own ``realpath``.
    """
    if not root.is_dir():
        yield root, os.path.realpath(root)
        return

    def on_error(exc: OSError) -> None:
        reason = queueing.path_problem(exc.filename) if exc.filename else None  # "path too long: ..." over Errno 36
        report["unreadable"].append({"path": exc.filename, "reason": reason or exc.strerror or str(exc)})
    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        # a folder named like a book ("Title.epub/", an unpacked EPUB) holds the parts of one book, not books
        dirnames[:] = sorted(d for d in dirnames if Path(d).suffix.lower() not in SUPPORTED_SUFFIXES)
        real_dir = os.path.realpath(dirpath)
        entries = []
        for name in filenames:
            full = os.path.join(dirpath, name)
            link = os.path.islink(full)
            entries.append((link, name, os.path.realpath(full) if link else os.path.join(real_dir, name)))
        for _link, name, real in sorted(entries):
            yield Path(dirpath) / name, real
        if not recursive:
            return


def _hash_all(files: list[tuple[Path, str]], report, progress: Progress | None) -> list[tuple[Path, str, str]]:
    """(file, resolved path, hash): each file read through its resolved path (the one the roots check saw)."""
    hashed = []
    for done, (file, real) in enumerate(files, 1):
        try:
            hashed.append((file, real, sha256_file(real)))
        except OSError as exc:
            report["unreadable"].append({"path": str(file), "reason": _unreadable(file, exc)})
        if progress is not None:
            progress(done, len(files), str(file))
    return hashed


def _unreadable(file: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError) and file.is_symlink():
        return "broken symlink"
    if isinstance(exc, (IsADirectoryError, NotRegularFile)):
        return "not a regular file (a folder, FIFO, device or socket)"
    return exc.strerror or str(exc)


def _dedupe_in_run(hashed: list[tuple[Path, str, str]], report) -> list[tuple[Path, str, str]]:
    first: dict[str, Path] = {}
    new = []
    for file, real, digest in hashed:
        if digest in first:
            report["duplicates"].append({"path": str(file), "content_hash": digest,
                                         "reason": f"same content as {first[digest]} in this run"})
            continue
        first[digest] = file
        new.append((file, real, digest))
    return new


def _queue(app, root, pattern, recursive, priority, actor, new, report, execute: bool) -> None:
    """Against what is queued or in the library, then every new pipeline at once (one transaction)."""
    with (app.db.write() if execute else app.db.read()) as conn:
        if execute:
            batch_store.lock_queueing(conn)
        known = batch_store.existing_hashes(conn, [d for _, _, d in new])
        fresh = []
        for file, real, digest in new:
            if digest in known:
                k = known[digest]
                report["duplicates"].append({"path": str(file), "content_hash": digest, "pipeline_id": k["pipeline_id"],
                                             "reason": f"already {'in the library' if k['where'] == 'library' else 'queued'}"
                                                       f" (pipeline {k['pipeline_id']}{', ' + k['state'] if k['state'] else ''})"})
                continue
            fresh.append((file, real, digest))
        entries = [{"path": str(file), "content_hash": digest} for file, _, digest in fresh]
        report["queued"].extend(entries)
        if not execute or not entries:
            return
        now = app.clock.now()
        ids = app.pipelines.create_many(conn, [(real, digest) for _, real, digest in fresh],
                                        priority=priority, actor=actor, now=now)
        for entry, pid in zip(entries, ids):
            entry["id"] = pid
        audit_store.append(conn, chain.AuditEntry(
            action=actions.Action.BATCH_QUEUED, actor=actor,
            after_state={"count": len(entries), "path": str(root), "pattern": pattern,
                         "recursive": recursive, "priority": priority, "pipeline_ids": ids}), now)
