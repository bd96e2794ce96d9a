"""``run_worker``: claim books, drive them through their stages, heartbeat, stop cleanly.

One worker is one process: it registers in ``workers``, claims through the repository's safe
claim (priority order), drives the book stage by stage (each stage in a child process with a
time limit), and runs the periodic maintenance it wins. ``concurrency=N`` forks N such
processes under a supervisor that forwards signals. Signals: the first SIGTERM/SIGINT stops
claiming, lets the running stage finish and releases the book (exit 0); a second one kills the
stage at once and still releases the lease (exit 130).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

from agentic_pipeline import errors, logs
from agentic_pipeline.db import workers_store
from agentic_pipeline.orchestrator import faults, maintenance, process
from agentic_pipeline.orchestrator.heartbeat import Heartbeat
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State
from agentic_pipeline.app import App
from agentic_pipeline.orchestrator.watching import Watcher
from agentic_pipeline.orchestrator import queueing
from agentic_pipeline import __version__, config

log = logging.getLogger(__name__)
EXIT_ABORTED = 130
#: the states after which a worker writes one line about the book (where a book rests, or waits for someone)
OUTCOMES = frozenset({State.PENDING_APPROVAL, State.COMPLETE, State.REJECTED, State.FAILED, State.NEEDS_RETRY,
                      State.DUPLICATE})


@dataclasses.dataclass
class Options:
    until_empty: bool = False
    watch_dir: Path | None = None
    processed_dir: Path | None = None
    health_interval: float | None = None
    poll_seconds: float = 1.0
    isolate: bool = True
    maintenance: bool = True
    #: create a watched folder that does not exist (else that is an error: a mistyped path would wait forever)
    create_watch_dir: bool = False


#: the longest pause between retries while the database is unreachable
STORE_RETRY_MAX_SECONDS = 30.0
#: with --concurrency --watch --until-empty: how long the supervisor waits for files still being written
WATCH_SETTLE_MAX_SECONDS = 300.0
#: a second stop signal sooner than this after the first is the same request, not "abort now"
SAME_STOP_SECONDS = 1.0


class Worker:
    """One worker process's loop; ``request_stop`` is what the signal handlers call."""

    def __init__(self, app, options: Options, *, worker_id: str | None = None, plan=None) -> None:
        self.app, self.options = app, options
        self.id = worker_id or process.new_worker_id()
        self.plan = plan if plan is not None else faults.parse(app.settings.faults)
        self.stopping = threading.Event()
        self.aborting = threading.Event()
        self._stop_at = 0.0
        self.current: int | None = None
        self.done: list[int] = []
        #: how many books ended in each outcome state (the summary line on exit)
        self.outcomes: dict[str, int] = {}
        self._started = time.monotonic()
        #: writes refused since they were last added to the workers row (the book was no longer ours)
        self.stale_writes = 0
        self.beat = Heartbeat(app, self.id)
        #: the folder watcher feeding this worker, if any: a draining worker waits for its pending files
        self.watcher = None

    def request_stop(self, *_: Any) -> None:
        """First signal: stop claiming, finish the stage. A second one (a second later or more) aborts it.

        Signals within ``SAME_STOP_SECONDS`` of the first are the same request: a SIGTERM to the
        process group reaches a ``--concurrency`` worker both directly and forwarded by the supervisor.
        """
        now = time.monotonic()
        if self.stopping.is_set() and now - self._stop_at >= SAME_STOP_SECONDS:
            if not self.aborting.is_set():
                logs.event(log, "worker_aborting", f"worker {self.id}: second stop signal: killing the running stage",
                           level=logging.WARNING, worker=self.id, pipeline_id=self.current)
            self.aborting.set()
        if not self.stopping.is_set():
            self._stop_at = now
            logs.event(log, "worker_stopping", f"worker {self.id}: stopping: no new books; the running stage "
                       "finishes (stop again to abort it)", worker=self.id, pipeline_id=self.current)
        self.stopping.set()

    def run(self) -> int:
        """Work until stopped (or, with ``until_empty``, until nothing is left); returns the exit code."""
        app = self.app
        with app.db.write() as conn:
            workers_store.register(conn, self.id, host=socket.gethostname(), pid=os.getpid(), now=app.clock.now())
        ticker = maintenance.Ticker(app, self.id, health_interval=self.options.health_interval)
        failures = 0
        try:
            while not self.stopping.is_set():
                try:
                    if self.options.maintenance:
                        ticker.tick()
                    if not self.work_one():
                        if self.options.until_empty and self._drained():
                            break
                        self.stopping.wait(self.options.poll_seconds)
                    failures = 0
                except errors.StoreError as exc:  # the database is away (restart, lock timeout): wait, retry
                    failures += 1
                    pause = min(STORE_RETRY_MAX_SECONDS, self.options.poll_seconds * 2 ** min(failures, 10))
                    log.warning("worker %s: %s; retrying in %.1f s", self.id, _as_database_error(exc), pause)
                    self.stopping.wait(pause)
        except process.Aborted:
            pass
        finally:
            self._release_current()
            self.beat.close()
            try:
                once_more(lambda: self._mark_stopped())
            except errors.StoreError as exc:  # a stop must not fail on the database: the row ages out instead
                log.warning("worker %s: could not mark itself stopped (%s); it will read as gone once its "
                            "last_seen is older than the lease", self.id, exc)
            if self.options.maintenance:
                self._refresh_health()
            self._summary()
        return EXIT_ABORTED if self.aborting.is_set() else 0

    def _mark_stopped(self) -> None:
        with self.app.db.write() as conn:
            workers_store.stop(conn, self.id, now=self.app.clock.now())

    def _summary(self) -> None:
        """One line on exit: how many books, in which states, in how long."""
        took = time.monotonic() - self._started
        total = sum(self.outcomes.values())
        by_state = ", ".join(f"{n} {state}" for state, n in sorted(self.outcomes.items(), key=lambda kv: -kv[1]))
        how = "aborted" if self.aborting.is_set() else "stopped" if self.stopping.is_set() else "done"
        logs.event(log, "worker_summary", f"worker {self.id} {how}: {total} books in {logs.seconds(took)}"
                   + (f" ({by_state})" if by_state else ""), worker=self.id, books=total,
                   outcomes=dict(self.outcomes), seconds=round(took, 3), exit=how)

    def work_one(self) -> bool:
        """Claim one book (claim, stage entry and the worker row in one commit) and drive it; False when idle."""
        p = process.claim(self.app, self.id)
        if p is None:
            return False
        self.current = p.id
        started = time.monotonic()
        try:
            p = process.drive(self.app, p, self.id, isolate=self.options.isolate, plan=self.plan,
                              stopping=self.stopping.is_set, aborting=self.aborting.is_set, beat=self.beat)
            if p.state not in states.WORKING:
                self.current = None  # the transition out of the working states already cleared the lease
            if p.state in OUTCOMES:
                self.outcomes[p.state.value] = self.outcomes.get(p.state.value, 0) + 1
                book_line(p, time.monotonic() - started, worker=self.id)
            if p.state is State.COMPLETE:
                self._finished(p)
        except errors.Conflict as exc:  # another worker took over, or an operator moved the book
            log.info("worker %s gave up pipeline %s: %s", self.id, p.id, exc)
            self.stale_writes += 1
        finally:
            self._release_current()
            self._record_stale_writes()
        return True

    def _record_stale_writes(self) -> None:
        """Add the refused writes to this worker's row (kept for later while the database is away)."""
        if not self.stale_writes:
            return
        try:
            with self.app.db.write() as conn:
                workers_store.count_stale_writes(conn, self.id, self.stale_writes)
            self.stale_writes = 0
        except errors.StoreError:
            pass

    def _finished(self, p) -> None:
        self.done.append(p.id)
        if self.options.processed_dir:
            move_processed(self.app, p, Path(self.options.processed_dir))

    def _release_current(self) -> None:
        if self.current is None:
            return
        pid, self.current = self.current, None

        def release() -> None:
            with process.progress(self.app) as conn:
                self.app.pipelines.release(pid, self.id, conn=conn)
                workers_store.touch(conn, self.id, now=self.app.clock.now(), current=None)

        try:
            once_more(release)
        except errors.StoreError as exc:
            log.warning("could not release pipeline %s: %s (its lease will expire)", pid, exc)

    def _drained(self) -> bool:
        if self.watcher is not None and self.watcher.pending():
            return False
        with self.app.db.read() as conn:
            left = workers_store.outstanding(conn, self.app.clock.now())
        return left["queued"] == 0 and left["working"] == 0

    def _refresh_health(self) -> None:
        """Leave a health report that reflects this exit (``health`` right after a drain must not show the start).

        Runs after the worker row says stopped, so the report does not count this worker alive.
        """
        try:
            fn = maintenance.load_task("agentic_pipeline.health.tasks:refresh_health")
            if fn is not None:
                once_more(lambda: fn(self.app))
        except Exception as exc:  # noqa: BLE001 - exiting must not fail on a report
            log.warning("could not refresh the health report on exit: %s", exc)


def _as_database_error(exc: errors.StoreError) -> str:
    """The error's text, said once to be about the database ("database error: ..." is not repeated)."""
    text = str(exc)
    return text if text.startswith("database") else f"database error: {text}"


def once_more(step: Callable[[], object]) -> None:
    """Run ``step``; after a ``StoreError``, once more (a second ``StoreError`` propagates).

    For a worker's last writes: when the server terminated its connection (a restart, an operator's
    ``pg_terminate_backend``), the first statement on the dead pooled connection fails and the pool
    drops it; the retry runs on a fresh one, so the exit needs no warning at all.
    """
    try:
        step()
    except errors.StoreError:
        step()


def book_line(p, took: float, *, worker: str | None = None) -> None:
    """The one log line about a book that reached an outcome state: id, title, state, time, reason."""
    row = p.row
    reason = None
    if p.state is State.DUPLICATE:
        reason = f"same content as pipeline {row.get('duplicate_of')}"
    elif p.state in (State.REJECTED, State.FAILED, State.NEEDS_RETRY):
        reason = row.get("error")
    title = row.get("title") or Path(p.source_path).name
    level = logging.WARNING if p.state in (State.FAILED, State.NEEDS_RETRY) else logging.INFO
    logs.event(log, "book_done", f"pipeline {p.id} {p.state.value.upper()} in {logs.seconds(took)}: "
               f"{title}" + (f" ({reason})" if reason else ""), level=level, pipeline_id=p.id, title=title,
               state=p.state.value, seconds=round(took, 3), reason=reason, book_type=row.get("book_type"),
               confidence=row.get("confidence"), source_path=p.source_path, worker=worker)


def move_processed(app, p, folder: Path) -> str | None:
    """Move a completed book's source into ``folder`` (never overwriting) and record the new path.

    The target name is claimed atomically (``O_CREAT | O_EXCL``), so two workers finishing books
    with the same name never take the same one; the file is then moved over the claimed name. If
    recording the new path fails, the file is moved back. Any error leaves the file where it was
    (logged): a move is a courtesy, never a reason for a worker to stop. Not atomic across a
    SIGKILL between the move and the update (a file system and a database cannot share a transaction).
    """
    source = Path(p.source_path)
    folder = Path(folder).expanduser().resolve()
    if not source.is_file() or source.parent.resolve() == folder:
        return None
    target = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = claim_free_name(folder, source.name)
        shutil.move(str(source), str(target))
    except OSError as exc:
        if target is not None and target.exists() and target.stat().st_size == 0 and source.exists():
            target.unlink(missing_ok=True)  # the empty placeholder we claimed
        log.warning("could not move %s into %s: %s (left where it is)", source, folder, exc)
        return None
    try:
        app.pipelines.update_fields(p.id, expect=State.COMPLETE, values={"source_path": str(target)})
    except errors.PipelineError as exc:
        try:
            shutil.move(str(target), str(source))
        except OSError:
            log.error("moved %s to %s but could not record it (%s) nor move it back", source, target, exc)
            return None
        log.warning("could not record the move of %s (%s); moved it back", source, exc)
        return None
    return str(target)


def claim_free_name(folder: Path, name: str) -> Path:
    """Create ``folder/name`` (or ``stem-1.ext``, ``stem-2.ext``...) empty and exclusively; returns the one taken.

    Names too long for the file system are shortened in the stem, keeping the suffix.
    """
    stem, suffix = Path(name).stem, Path(name).suffix
    limit = 255 - len(suffix.encode()) - 8  # room for "-NNNNNN"
    while len(stem.encode()) > limit:
        stem = stem[:-1]
    n = 0
    while True:
        candidate = folder / (f"{stem}{suffix}" if n == 0 else f"{stem}-{n}{suffix}")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return candidate
        except FileExistsError:
            n += 1


# ----------------------------------------------------------------------- entry points
def run_worker(settings, *, concurrency: int = 1, options: Options | None = None, clock=None) -> int:
    """Run ``concurrency`` worker processes (1 runs here) until stopped or drained; returns the exit code."""
    options = options or Options()
    if concurrency < 1:
        raise errors.InputError(f"concurrency must be at least 1 (got {concurrency})")
    check_folders(options)
    start_line(settings, concurrency, options)
    if concurrency == 1:
        return _run_here(settings, options, clock)
    return _supervise(settings, concurrency, options)


def start_line(settings, concurrency: int, options: Options) -> None:
    """The first log line: version, database (no password), concurrency, watched and processed folders."""
    database = config.mask_password(settings.db_url)
    watch = str(options.watch_dir) if options.watch_dir else None
    logs.event(log, "worker_start", f"agentic-pipeline {__version__} worker starting: {concurrency} process"
               f"{'es' if concurrency != 1 else ''} on {database}" + (f", watching {watch}" if watch else "")
               + (", until the queue is empty" if options.until_empty else ""),
               version=__version__, database=database, concurrency=concurrency, watch=watch,
               processed=str(options.processed_dir) if options.processed_dir else None,
               until_empty=options.until_empty, pid=os.getpid())


def check_folders(options: Options) -> None:
    """Refuse a folder that can name nothing (a name too long), a watched folder that does not exist (unless
    asked to create it) and a processed folder inside the watched one: every completed book would be queued again."""
    for flag, folder in (("--watch", options.watch_dir), ("--processed-dir", options.processed_dir)):
        problem = queueing.path_problem(folder) if folder else None
        if problem:
            raise errors.InputError(f"{flag}: {problem}")
    if options.watch_dir:
        watched = Path(options.watch_dir).expanduser()
        if watched.exists() and not watched.is_dir():
            raise errors.InputError(f"--watch {watched} is a file, not a folder")
        if not watched.exists():
            if not options.create_watch_dir:
                raise errors.InputError(f"--watch {watched}: no such folder",
                                        hint="check the path, or add --create to create it")
            watched.mkdir(parents=True, exist_ok=True)
            logs.event(log, "watch_created", f"created the watched folder {watched}", watch=str(watched))
    if not (options.watch_dir and options.processed_dir):
        return
    watch = Path(options.watch_dir).expanduser().resolve()
    done = Path(options.processed_dir).expanduser().resolve()
    if done == watch or done.is_relative_to(watch):
        raise errors.InputError(f"--processed-dir {done} is inside the watched folder {watch}: every completed "
                                "book moved there would be queued again; put it outside")


def _run_here(settings, options: Options, clock=None, *, ignore_sigint: bool = False) -> int:
    with App.open(settings, clock=clock) as app:
        workers_store.relax_engine(app.db.engine)  # this process's own App: relaxed commits, no SET LOCAL
        worker = Worker(app, options)
        _warm(app)
        old = {sig: signal.signal(sig, worker.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        watcher = _start_watch(app, options)
        worker.watcher = watcher
        try:
            return worker.run()
        finally:
            if watcher:
                watcher.stop()
            for sig, handler in old.items():
                signal.signal(sig, handler)


def _warm(app) -> None:
    """Import the stage modules and load the embedder once, before any stage forks, so every child shares them."""
    process.warm(app)


def _start_watch(app, options: Options):
    if not options.watch_dir:
        return None

    return Watcher(app, Path(options.watch_dir)).start()


def _supervise(settings, concurrency: int, options: Options) -> int:
    ctx = multiprocessing.get_context("fork")
    child_options = dataclasses.replace(options, watch_dir=None)
    watcher = None
    if options.watch_dir:  # before the workers start: the files already there are queued when they first look

        watch_app = App.open(settings)
        watcher = _start_watch(watch_app, options)
        if options.until_empty:  # the workers cannot see the watcher: let files still being written settle first
            deadline = time.monotonic() + WATCH_SETTLE_MAX_SECONDS
            while watcher.pending() and time.monotonic() < deadline:
                time.sleep(0.2)
    procs = [ctx.Process(target=_child_entry, args=(settings, child_options), name=f"worker-{i}")
             for i in range(concurrency)]
    for proc in procs:
        proc.start()

    def forward(_sig, _frame):
        for proc in procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for proc in procs:
            proc.join()
    finally:
        if watcher:
            watcher.stop()
            watch_app.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    codes = [proc.exitcode or 0 for proc in procs]
    return max(codes, key=abs) if any(codes) else 0


def _child_entry(settings, options: Options) -> None:
    # the supervisor turns a terminal's Ctrl-C into SIGTERM for each child: ignore the group-wide SIGINT
    code = 1
    try:
        code = _run_here(settings, options, ignore_sigint=True)
    except BaseException as exc:  # noqa: BLE001 - report, then leave without running the parent's atexit
        log.error("worker process failed: %s", exc)
    finally:
        os._exit(code)


def drained(app) -> bool:
    """True when nothing is queued, due for retry or being worked on."""
    with app.db.read() as conn:
        left = workers_store.outstanding(conn, app.clock.now())
    return left["queued"] == 0 and left["working"] == 0

