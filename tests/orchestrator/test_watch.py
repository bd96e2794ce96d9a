"""A real worker process: ``--watch`` queues dropped files from filesystem events, ``--processed-dir`` moves
completed sources (two files with the same name), and a drained worker leaves a health report that is current."""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from agentic_pipeline.approval import autonomy
from agentic_pipeline.db import workers_store
from agentic_pipeline.health import monitor
from agentic_pipeline import intake
from agentic_pipeline.pipeline.states import State
from tests.conftest import open_app
from tests.orchestrator.helpers import SAMPLES, run_cli, start_worker


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _registered(app) -> bool:
    with app.db.read() as conn:
        return any(t for t in [workers_store.get(conn, w) for w in _worker_ids(app)] if t and t["stopped_at"] is None)


def _worker_ids(app) -> list[str]:
    import sqlalchemy as sa

    from agentic_pipeline.db.schema import workers

    with app.db.read() as conn:
        return [r[0] for r in conn.execute(sa.select(workers.c.id))]


def _pipelines(app) -> list:
    import sqlalchemy as sa

    from agentic_pipeline.db.schema import processing_pipelines as pp

    with app.db.read() as conn:
        ids = [r[0] for r in conn.execute(sa.select(pp.c.id).order_by(pp.c.id))]
    return [app.pipelines.get(i) for i in ids]


def test_watch_queues_dropped_files_and_processed_dir_moves_them_collision_safe(sqlite_url, tmp_path):
    app = open_app(sqlite_url)
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    autonomy.enable(app, "partial", actor="human:test", threshold=0.01)  # so the books reach COMPLETE
    proc = start_worker(sqlite_url, "--watch", str(inbox), "--processed-dir", str(done))
    try:
        _wait(lambda: _registered(app), 30, "the worker to register")
        assert _pipelines(app) == []  # nothing queued before the files appear: they come from events
        (inbox / "a").mkdir()
        (inbox / "b").mkdir()
        shutil.copy(SAMPLES / "waste-land.md", inbox / "a" / "book.md")
        shutil.copy(SAMPLES / "waste-land.html", inbox / "b" / "book.html")
        shutil.copy(SAMPLES / "romeo-juliet.epub", inbox / "b" / "book.md.tmp")  # unsupported suffix: ignored
        (inbox / "b" / "book.md.tmp").rename(inbox / "b" / "renamed.epub")  # a move into place is an event too
        # a second file with the same name as the first, different content
        (inbox / "c").mkdir()
        text = (SAMPLES / "waste-land.md").read_text(encoding="utf-8") + "\n\nA closing note added for this copy.\n"
        (inbox / "c" / "book.md").write_text(text, encoding="utf-8")

        def all_complete():
            ps = _pipelines(app)
            return len(ps) == 4 and all(p.state is State.COMPLETE for p in ps) and ps

        pipelines = _wait(all_complete, 120, "four completed books")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    moved = sorted(p.name for p in done.iterdir())
    assert moved == ["book-1.md", "book.html", "book.md", "renamed.epub"], moved
    pipelines = _pipelines(app)  # read again: a book is COMPLETE a moment before its move is recorded
    for p in pipelines:  # the pipeline records where its file went, and the file is there (not in the inbox)
        assert p.source_path.startswith(str(done)) and (done / p.source_path.rsplit("/", 1)[1]).is_file()
    assert sorted(p.source_path for p in pipelines) == sorted(str(done / name) for name in moved)
    assert not [f for f in inbox.rglob("*") if f.is_file()]
    app.close()


def test_drained_worker_refreshes_the_cached_health_report_on_exit(sqlite_url, tmp_path):
    app = open_app(sqlite_url)
    try:
        for name in ("waste-land.md", "waste-land.html"):
            intake.queue_file(app, SAMPLES / name, actor="human:test")
        before = monitor.get_health(app, fresh=True)  # what a worker starting now would cache
        assert before["queued"] == 2 and before["pending_approval"] == 0
        out = run_cli(sqlite_url, "worker", "--until-empty", "--poll", "0.1")
        assert out.returncode == 0, out.stderr[-2000:]
        report = monitor.get_health(app)  # the cache, as `health` right after `make demo`'s worker reads it
        assert report["source"] == "cache"
        assert report["queued"] == 0 and report["pending_approval"] == 2
        assert report["workers"] == [] and report["active"] == 0  # the exiting worker marked itself stopped first
    finally:
        app.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_until_empty_with_watch_queues_the_files_already_there_first(sqlite_url, tmp_path, workers):
    """One worker, or a supervisor with two: the folder's files are queued before anyone looks at the queue."""
    app = open_app(sqlite_url)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLES / "waste-land.md", inbox / "poem.md")
    try:
        out = run_cli(sqlite_url, "worker", "--until-empty", "--poll", "0.1", "--concurrency", workers,
                      "--watch", str(inbox))
        assert out.returncode == 0, out.stderr[-2000:]
        (p,) = _pipelines(app)
        assert p.state is State.PENDING_APPROVAL and p.source_path == str(inbox / "poem.md")
    finally:
        app.close()


def test_claimed_names_are_exclusive_and_fit_the_file_system(tmp_path):
    from agentic_pipeline.orchestrator import worker

    taken = {worker.claim_free_name(tmp_path, "book.md") for _ in range(3)}
    assert taken == {tmp_path / "book.md", tmp_path / "book-1.md", tmp_path / "book-2.md"}
    long = "x" * 251 + ".md"
    first, second = worker.claim_free_name(tmp_path, long), worker.claim_free_name(tmp_path, long)
    assert first != second and first.suffix == second.suffix == ".md"
    assert len(second.name.encode()) <= 255


def test_a_move_that_fails_leaves_the_book_and_its_path_alone(sqlite_url, tmp_path, monkeypatch):
    import shutil as shutil_mod

    from agentic_pipeline.orchestrator import worker

    app = open_app(sqlite_url)
    try:
        src = tmp_path / "in" / "poem.md"
        src.parent.mkdir()
        shutil.copy(SAMPLES / "waste-land.md", src)
        p = app.pipelines.create(source_path=str(src), actor="human:t")
        path = [State.HASHING, State.CLASSIFYING, State.SELECTING_STRATEGY, State.PROCESSING, State.VALIDATING,
                State.PENDING_APPROVAL, State.APPROVED, State.EMBEDDING, State.COMPLETE]
        prev = State.DETECTED
        for to in path:
            app.pipelines.transition(p.id, to, expect=prev, actor="human:t")
            prev = to
        p = app.pipelines.get(p.id)

        def refuse(*_a, **_k):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(shutil_mod, "move", refuse)
        assert worker.move_processed(app, p, tmp_path / "done") is None  # logged, not raised
        assert src.is_file() and app.pipelines.get(p.id).source_path == str(src)
        assert list((tmp_path / "done").iterdir()) == []  # no placeholder left behind
        monkeypatch.undo()
        moved = worker.move_processed(app, p, tmp_path / "done")
        assert moved == str((tmp_path / "done" / "poem.md").resolve()) and app.pipelines.get(p.id).source_path == moved
    finally:
        app.close()


def test_processed_dir_inside_the_watched_folder_is_refused(tmp_path):
    from agentic_pipeline import errors
    from agentic_pipeline.orchestrator import worker

    (tmp_path / "in").mkdir()  # a watched folder must exist (or --create): tests/logs/test_worker_logs.py
    with pytest.raises(errors.InputError, match="inside the watched folder"):
        worker.check_folders(worker.Options(watch_dir=tmp_path / "in", processed_dir=tmp_path / "in" / "done"))
    worker.check_folders(worker.Options(watch_dir=tmp_path / "in", processed_dir=tmp_path / "done"))

def test_the_watcher_skips_the_parts_of_an_unpacked_book(tmp_path):
    from agentic_pipeline.orchestrator import watching

    root = tmp_path / "inbox"
    assert watching._inside_a_book_folder(root / "Title.epub" / "EPUB" / "part.xhtml", root)
    assert not watching._inside_a_book_folder(root / "novels" / "poem.md", root)
