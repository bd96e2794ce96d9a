"""``worker --watch DIR``: queue new books as they appear, from filesystem events (watchdog).

Files are queued once their size has stayed the same for ``settle`` seconds (a copy in progress
is not a book yet); names starting with "." or "~" and unsupported suffixes are ignored. At
start the folder is scanned once and ``start`` returns once those files are queued (or, for one
still being written, noted as pending), so books dropped while no worker ran are queued before
the worker first looks at the queue; ``pending()`` tells a draining worker the watcher still
holds files. ``queue_file`` makes queueing a file twice harmless.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from agentic_pipeline.audit import actions
from agentic_pipeline.ingest.extract import SUPPORTED_SUFFIXES
from agentic_pipeline import intake
from agentic_pipeline.orchestrator import queueing

log = logging.getLogger(__name__)


def _supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith((".", "~"))


def _inside_a_book_folder(path: Path, root: Path) -> bool:
    """In a folder named like a book ("Title.epub/", an unpacked EPUB): a part of one book, not a book."""
    try:
        parents = path.relative_to(root).parents
    except ValueError:
        return False
    return any(p.suffix.lower() in SUPPORTED_SUFFIXES for p in parents if p != Path("."))


class Watcher:
    """Watch ``folder`` (recursively) and queue settled files through ``queue_file``."""

    def __init__(self, app, folder: Path, *, actor: str = actions.SYSTEM_WORKER, priority: int = 5,
                 settle: float = 1.0) -> None:
        self.app, self.folder, self.actor, self.priority, self.settle = app, Path(folder), actor, priority, settle
        self._seen: dict[Path, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.queued: list[int] = []
        self.errors: list[str] = []

    def start(self) -> "Watcher":
        from watchdog.events import FileSystemEventHandler  # lazy: watchdog only for --watch
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.is_directory or event.event_type not in ("created", "modified", "moved", "closed"):
                    return
                watcher.note(Path(getattr(event, "dest_path", "") or event.src_path))

        self.folder.mkdir(parents=True, exist_ok=True)
        self._observer = Observer()
        self._observer.schedule(Handler(), str(self.folder), recursive=True)
        self._observer.start()
        for path in self._scan():
            self.note(path)
        deadline = time.monotonic() + self.settle + 1.0
        while self.pending() and time.monotonic() < deadline:  # the files already there: queued before we return
            self.flush()
            time.sleep(min(0.1, self.settle / 4) if self.pending() else 0)
        self._thread = threading.Thread(target=self._loop, name="watch-queue", daemon=True)
        self._thread.start()
        return self

    def _scan(self) -> list[Path]:
        """Every file under the folder; a folder that cannot be read (too deep to name) is logged and skipped."""
        def refused(exc: OSError) -> None:
            where = exc.filename or self.folder
            self._refuse(Path(where), queueing.path_problem(where) or exc.strerror or exc)

        found = [Path(top) / name for top, _dirs, files in os.walk(self.folder, onerror=refused) for name in files]
        return sorted(found)

    def stop(self) -> None:
        self._stop.set()
        self._observer.stop()
        self._observer.join(timeout=5)
        self._thread.join(timeout=5)

    def pending(self) -> bool:
        """Files noted but not queued yet (still settling, or being copied)."""
        with self._lock:
            return bool(self._seen)

    def note(self, path: Path) -> None:
        problem = queueing.path_problem(path)
        try:
            wanted = not problem and path.is_file() and _supported(path) and not _inside_a_book_folder(path, self.folder)
        except OSError as exc:  # the filesystem refused the name: say so, keep watching
            problem = exc.strerror or str(exc)
            wanted = False
        if problem:
            self._refuse(path, problem)
        elif wanted:
            with self._lock:
                self._seen[path] = (-1, time.monotonic())

    def _refuse(self, path: Path, problem: object) -> None:
        """One log line (and an entry in ``errors``) for a file the watcher cannot queue; it keeps going."""
        message = f"{os.fsencode(path).decode('utf-8', 'replace')}: {problem}"
        self.errors.append(message)
        log.warning("watch: not queued: %s", message)

    def _loop(self) -> None:
        while not self._stop.wait(min(0.25, self.settle / 2)):
            self.flush()

    def flush(self) -> None:
        """Queue every noted file whose size has not changed for ``settle`` seconds."""
        now = time.monotonic()
        with self._lock:
            items = list(self._seen.items())
        for path, (size, since) in items:
            try:
                current = path.stat().st_size
            except OSError:
                self._forget(path)
                continue
            if current != size:
                with self._lock:
                    self._seen[path] = (current, now)
                continue
            if now - since < self.settle:
                continue
            self._forget(path)
            try:
                self.queued.append(intake.queue_file(self.app, path, priority=self.priority, actor=self.actor)["id"])
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the watcher
                self._refuse(path, exc)

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._seen.pop(path, None)
