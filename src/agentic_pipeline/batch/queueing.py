"""``batch-queue``: queue every book in a folder, reporting queued / duplicates / unsupported / unreadable.

Walking and hashing happen outside any transaction; queueing is one write transaction that checks
the hashes against what is already queued or in the library and writes one BATCH_QUEUED audit
row. The same content twice in one run (a copy, a symlink) becomes one pipeline. A file that
cannot be read, or whose suffix no extractor handles, is reported and never stops the run.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import audit_store, batch_store
from agentic_pipeline.ingest.extract import SUPPORTED_SUFFIXES
from agentic_pipeline.ingest.hashing import sha256_file
from agentic_pipeline.queue.priority import validate_priority

#: progress(done, total, path) after each file is hashed
Progress = Callable[[int, int, str], None]


def batch_queue(app, path: str | os.PathLike[str], pattern: str = "*", recursive: bool = False, priority: int = 5,
                actor: str | None = None, progress: Progress | None = None, *, execute: bool = True) -> dict[str, Any]:
    """Hash and queue the books under ``path`` matching ``pattern``; with ``execute=False`` only report."""
    validate_priority(priority)
    actor = actions.validate_actor(actor or actions.default_human_actor())
    root = Path(path).expanduser()
    if not root.exists():
        raise errors.InputError(f"{root} does not exist")
    report: dict[str, list[dict[str, Any]]] = {"queued": [], "duplicates": [], "unsupported": [], "unreadable": []}
    candidates = _collect(root, pattern, recursive, report)
    hashed = _hash_all(candidates, report, progress)
    new = _dedupe_in_run(hashed, report)
    _queue(app, root, pattern, recursive, priority, actor, new, report, execute)
    return {"path": str(root), "pattern": pattern, "recursive": recursive, "priority": priority,
            "executed": execute, **{f"{k}_count": len(v) for k, v in report.items()}, **report}


def _collect(root: Path, pattern: str, recursive: bool, report) -> list[Path]:
    """Supported files matching ``pattern`` (by name), each real file once; the rest go to the report."""
    out, seen = [], set()
    for file in _walk(root, recursive, report):
        if not fnmatch.fnmatchcase(file.name, pattern):
            continue
        if file.suffix.lower() not in SUPPORTED_SUFFIXES:
            report["unsupported"].append({"path": str(file), "reason": f"suffix {file.suffix or '(none)'} not supported; "
                                          f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"})
            continue
        real = os.path.realpath(file)
        if real not in seen:
            seen.add(real)
            out.append(file)
    return out


def _walk(root: Path, recursive: bool, report) -> Iterator[Path]:
    if root.is_file():
        yield root
        return

    def on_error(exc: OSError) -> None:
        report["unreadable"].append({"path": exc.filename, "reason": exc.strerror or str(exc)})
    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames.sort()
        # real files before links, so a link to a file already listed is the one dropped
        for name in sorted(filenames, key=lambda n: (os.path.islink(os.path.join(dirpath, n)), n)):
            yield Path(dirpath) / name
        if not recursive:
            return


def _hash_all(files: list[Path], report, progress: Progress | None) -> list[tuple[Path, str]]:
    hashed = []
    for done, file in enumerate(files, 1):
        try:
            if not file.is_file():
                raise OSError(2, "broken symlink" if file.is_symlink() else "not a regular file", str(file))
            hashed.append((file, sha256_file(file)))
        except OSError as exc:
            report["unreadable"].append({"path": str(file), "reason": exc.strerror or str(exc)})
        if progress is not None:
            progress(done, len(files), str(file))
    return hashed


def _dedupe_in_run(hashed: list[tuple[Path, str]], report) -> list[tuple[Path, str]]:
    first: dict[str, Path] = {}
    new = []
    for file, digest in hashed:
        if digest in first:
            report["duplicates"].append({"path": str(file), "content_hash": digest,
                                         "reason": f"same content as {first[digest]} in this run"})
            continue
        first[digest] = file
        new.append((file, digest))
    return new


def _queue(app, root, pattern, recursive, priority, actor, new, report, execute: bool) -> None:
    with (app.db.write() if execute else app.db.read()) as conn:
        if execute:
            batch_store.lock_queueing(conn)
        known = batch_store.existing_hashes(conn, [d for _, d in new])
        for file, digest in new:
            if digest in known:
                k = known[digest]
                report["duplicates"].append({"path": str(file), "content_hash": digest, "pipeline_id": k["pipeline_id"],
                                             "reason": f"already {'in the library' if k['where'] == 'library' else 'queued'}"
                                                       f" (pipeline {k['pipeline_id']}{', ' + k['state'] if k['state'] else ''})"})
                continue
            entry = {"path": str(file), "content_hash": digest}
            if execute:
                entry["id"] = app.pipelines.create(source_path=str(file.resolve()), actor=actor, content_hash=digest,
                                                   priority=priority, conn=conn).id
            report["queued"].append(entry)
        if execute and report["queued"]:
            audit_store.append(conn, chain.AuditEntry(
                action=actions.Action.BATCH_QUEUED, actor=actor,
                after_state={"count": len(report["queued"]), "path": str(root), "pattern": pattern,
                             "recursive": recursive, "priority": priority,
                             "pipeline_ids": [q["id"] for q in report["queued"]]}), app.clock.now())
