"""Benchmark: pipeline overhead per book, claims per second, end-to-end books per hour.

Not a test. Three measurements, on SQLite and (when the server answers) PostgreSQL:

* **Overhead per book**: queue, claim, every transition with its history row, one heartbeat
  beat, approval with its audit entry, the embedding claim and COMPLETE, through
  ``Worker.work_one`` with every stage a no-op. Targets: <= 5 ms SQLite,
  <= 10 ms PostgreSQL. The baseline is the same transitions called bare on the repository.
* **Claims per second** with 1, 2 and 4 worker processes racing over one queue.
* **End to end**: a worker (stages in child processes) over samples/books (and ../shared/corpus
  when present) with the configured embedder, books per hour and seconds per stage.

    .venv/bin/python bench/bench_pipeline.py [--quick]
"""

from __future__ import annotations

import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

from agentic_pipeline import config, errors
from agentic_pipeline.app import App
from agentic_pipeline.db import migrations
from agentic_pipeline.db.engine import Database
from agentic_pipeline.pipeline.states import NEXT_ON_SUCCESS, State

REPO = Path(__file__).resolve().parents[1]

SAMPLES = REPO / "samples" / "books"
CORPUS = REPO.parent / "shared" / "corpus"


_COUNTER = iter(range(1_000_000))


def _databases(tmp: Path) -> list[tuple[str, object]]:
    """(engine, factory returning a fresh migrated URL) for SQLite and, if reachable, PostgreSQL."""
    counter = _COUNTER  # one numbering per process: a second call must not reopen b0.db

    def sqlite():
        url = f"sqlite:///{tmp / f'b{next(counter)}.db'}"
        db = Database(url)
        migrations.upgrade(db)
        db.dispose()
        return url

    out = [("sqlite", sqlite)]
    from tests import pg

    if pg.server_available() is None:
        dbs = pg.PgDatabases()
        out.append(("postgresql", dbs.fresh))
    return out


def _app(url: str, **settings) -> App:
    return App.open(config.load({"db": url, "embedder": "hashing", **settings}, environ={}))


# ----------------------------------------------------------------------- overhead
def _noop(state):
    from agentic_pipeline.orchestrator import stages

    return lambda app, p: stages.Outcome(NEXT_ON_SUCCESS[state])


class RoundTrips:
    """Count what one engine sends: statements, plus BEGIN and COMMIT per transaction on PostgreSQL.

    psycopg 3 sends BEGIN as its own round trip before a transaction's first statement; a
    statement run alone (``Database.one_statement``: autocommit) is one round trip and no commit.
    The audit append runs on the raw driver connection (``audit_store._pg_append``) and is counted
    by wrapping it. SQLite's BEGIN is a statement here already (``_on_begin``) and its "round
    trips" are in-process calls. ``close()`` undoes the wrapping.
    """

    def __init__(self, *apps) -> None:
        from sqlalchemy import event

        from agentic_pipeline.db import audit_store

        self.statements = self.commits = 0
        self.postgres = apps[0].db.is_postgres
        for app in apps:
            event.listen(app.db.engine, "before_cursor_execute", self._statement)
            event.listen(app.db.engine, "commit", self._commit)
        self._raw = audit_store._pg_append

        def counted(conn, params):
            self.statements += 1
            return self._raw(conn, params)

        audit_store._pg_append = counted

    def close(self) -> None:
        from agentic_pipeline.db import audit_store

        audit_store._pg_append = self._raw

    def _statement(self, *_args) -> None:
        self.statements += 1

    def _commit(self, *_args) -> None:
        self.commits += 1

    def total(self) -> int:
        return self.statements + (2 * self.commits if self.postgres else self.commits)


#: books run before the timing starts, on both paths
WARMUP = 5


def overhead_ms(url: str, books: int) -> tuple[float, float, dict[str, float]]:
    """(ms per book through the worker with no-op stages, ms per book of the bare repository calls, counts).

    Per book: queue it, ``Worker.work_one`` (claim + HASHING in one commit, the five stages, the
    autonomy check in the VALIDATING commit), one heartbeat beat (lease + worker row), a human
    approval with its audit entry, ``work_one`` again (claim + EMBEDDING, COMPLETE). The worker
    runs on its own App with relaxed commits (as ``run_worker``); queueing and the approval on a
    second, ordinary App (as the CLI). The baseline: queue + the same 9 transitions called bare
    on the repository through the ordinary App. Counts: commits, statements and round trips per
    book (measured on 5 more books after the timing).
    """
    from agentic_pipeline.approval import operations
    from agentic_pipeline.db import workers_store
    from agentic_pipeline.orchestrator import stages, worker

    app = _app(url, heartbeat_seconds=3600, lease_seconds=7200)
    workers_store.relax_engine(app.db.engine)  # as run_worker does for its own App
    human = _app(url, heartbeat_seconds=3600, lease_seconds=7200)
    saved = dict(stages.STAGES)
    w = worker.Worker(app, worker.Options(isolate=False, maintenance=False), worker_id="w-bench")
    stages.STAGES.update({s: _noop(s) for s in saved})
    # PROCESSING lasts one heartbeat interval: the beat the heartbeat thread would make, made inline
    stages.STAGES[State.PROCESSING] = lambda app_, p: (w.beat.beat(p.id), _noop(State.PROCESSING)(app_, p))[1]
    with app.db.write() as conn:
        workers_store.register(conn, w.id, host="bench", pid=0, now=app.clock.now())

    def one_book(i: int) -> None:
        p = human.pipelines.create(source_path=f"/nowhere/{i}", actor="human:bench")
        assert w.work_one()
        operations.approve(human, p.id, actor="human:bench")
        assert w.work_one()

    try:
        for i in range(WARMUP):  # untimed: first connections, statement compilation, imports
            one_book(-1 - i)
        start = time.perf_counter()
        for i in range(books):
            one_book(i)
        full = (time.perf_counter() - start) * 1000 / books
        start = time.perf_counter()
        path = [State.HASHING, State.CLASSIFYING, State.SELECTING_STRATEGY, State.PROCESSING, State.VALIDATING,
                State.PENDING_APPROVAL, State.APPROVED, State.EMBEDDING, State.COMPLETE]
        for i in range(-WARMUP, books):
            if i == 0:
                start = time.perf_counter()
            p = human.pipelines.create(source_path=f"/bare/{i}", actor="human:bench")
            prev = State.DETECTED
            for to in path:
                human.pipelines.transition(p.id, to, expect=prev, actor="human:bench")
                prev = to
        bare = (time.perf_counter() - start) * 1000 / books
        counter = RoundTrips(app, human)
        try:
            for i in range(5):
                one_book(books + i)
        finally:
            counter.close()
        counts = {"commits": counter.commits / 5, "statements": counter.statements / 5,
                  "round_trips": counter.total() / 5}
        assert human.pipelines.count_by_state() == {"complete": 2 * (books + WARMUP) + 5}
        return full, bare, counts
    finally:
        w.beat.close()
        stages.STAGES.clear()
        stages.STAGES.update(saved)
        app.close()
        human.close()


# ----------------------------------------------------------------------- claims
def _claimer(url: str, seconds: float, out) -> None:
    app = _app(url)
    n = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        p = app.pipelines.claim_next(f"w{id(out)}", lease_seconds=60)
        if p is None:
            break
        app.pipelines.transition(p.id, State.ARCHIVED, expect=State.DETECTED, actor="system:bench", owner=f"w{id(out)}")
        n += 1
    app.close()
    out.put(n)


def claims_per_second(url: str, workers: int, seconds: float, queue_size: int) -> float:
    app = _app(url)
    with app.db.write() as conn:
        for i in range(queue_size):
            app.pipelines.create(source_path=f"/q/{i}", actor="human:bench", conn=conn)
    app.close()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(url, seconds, out)) for _ in range(workers)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total / (time.perf_counter() - start)


# ----------------------------------------------------------------------- end to end
def end_to_end(url: str, folder: Path, embedder: str) -> tuple[int, float, dict[str, float]]:
    """(books, seconds, seconds per stage) for one worker over ``folder`` with auto-approval on."""
    from agentic_pipeline import intake
    from agentic_pipeline.approval import autonomy
    from agentic_pipeline.orchestrator import worker

    app = _app(url, embedder=embedder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    ids = []
    for path in files:
        try:
            ids.append(intake.queue_file(app, path, actor="human:bench")["id"])
        except errors.PipelineError as exc:  # unreadable or unsupported: not a book to time
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
    autonomy.enable(app, "partial", actor="human:bench", threshold=0.01, daily_cap=100_000)
    start = time.perf_counter()
    worker.process.warm(app)
    worker.Worker(app, worker.Options(until_empty=True, poll_seconds=0.05, maintenance=False)).run()
    elapsed = time.perf_counter() - start
    split = {}
    for pid in ids:
        for h in app.pipelines.history(pid):
            if h["from_state"] and h["duration_seconds"] is not None:
                split[h["from_state"]] = split.get(h["from_state"], 0.0) + h["duration_seconds"]
    n = len(files)
    app.close()
    return n, elapsed, split


def run(quick: bool = False) -> list[dict]:
    rows: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        for engine, fresh in _databases(tmp):
            target = 5.0 if engine == "sqlite" else 10.0
            full, bare, counts = overhead_ms(fresh(), 50 if quick else 300)
            trips = f"{counts['round_trips']:g} round trips" if engine == "postgresql" else "statements with BEGIN"
            rows.append({"name": f"overhead_per_book_{engine}", "value": round(full, 2), "unit": "ms",
                         "baseline": round(bare, 2), "ratio": round(full / bare, 2),
                         "note": f"target <= {target} ms; baseline = the 9 bare transitions; per book: "
                                 f"{counts['commits']:g} commits, {counts['statements']:g} statements, {trips}"})
            one = None
            for workers in (1, 2, 4):
                rate = claims_per_second(fresh(), workers, 1.0 if quick else 3.0, 3000 if quick else 20000)
                one = one or rate
                rows.append({"name": f"claims_per_s_{engine}_{workers}w", "value": round(rate), "unit": "claims/s",
                             "baseline": round(one), "ratio": round(rate / one, 2)})
        folders = [SAMPLES] + ([] if quick or not CORPUS.is_dir() else [CORPUS])
        for folder in folders:
            url = _databases(tmp)[0][1]()
            n, secs, split = end_to_end(url, folder, "hashing" if quick else "wordllama")
            rows.append({"name": f"books_per_hour_{folder.name}", "value": round(n * 3600 / secs), "unit": "books/h",
                         "note": f"{n} files in {secs:.1f}s, 1 worker; s by stage (summed over books; detected, "
                                 "pending_approval and approved are waits): "
                                 + ", ".join(f"{k} {v:.2f}" for k, v in split.items())})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
