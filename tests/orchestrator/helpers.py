"""Shared helpers for orchestrator tests: small generated books, worker subprocesses, history counts."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "books"

_WORDS = ("river stone light winter morning harbour letter garden window silence road city bread market "
          "lantern mountain evening voice paper orchard bridge music candle rain station ship field "
          "thread kitchen story cloud island forest meadow clock").split()


def write_text_books(folder: Path, count: int, *, seed: int = 7, words_per_chapter: int = 220) -> list[Path]:
    """``count`` small Markdown books with three chapters each, every one with different content."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        parts = [f"# Book {n}\n"]
        for ch in range(3):
            sentences = []
            for s in range(words_per_chapter // 11):
                words = [rng.choice(_WORDS) for _ in range(10)]
                sentences.append(f"The {' '.join(words)} number {n}-{ch}-{s}.")
            parts.append(f"## Chapter {ch + 1}\n\n" + " ".join(sentences[:len(sentences) // 2]) + "\n\n"
                         + " ".join(sentences[len(sentences) // 2:]) + "\n")
        path = folder / f"book-{n:04d}.md"
        path.write_text("\n".join(parts), encoding="utf-8")
        paths.append(path)
    return paths


def worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTIC_PIPELINE_")}
    env.update({"AGENTIC_PIPELINE_EMBEDDER": "hashing", "AGENTIC_PIPELINE_LEASE_SECONDS": "3",
                "AGENTIC_PIPELINE_HEARTBEAT_SECONDS": "1", "AGENTIC_PIPELINE_RETRY_BASE_SECONDS": "0.2",
                "AGENTIC_PIPELINE_RETRY_MAX_SECONDS": "1", "PYTHONPATH": str(REPO / "src")})
    env.update(extra)
    return env


def cli_args(db_url: str, *args: str) -> list[str]:
    return [sys.executable, "-c", "from agentic_pipeline.interfaces.cli import main; main()", "--db", db_url, *args]


def start_worker(db_url: str, *args: str, env: dict[str, str] | None = None,
                 own_group: bool = False) -> subprocess.Popen:
    """A worker subprocess; ``own_group``: in a new session, so ``os.killpg(proc.pid, ...)`` reaches it and its
    stage children at once, as systemd's stop does."""
    return subprocess.Popen(cli_args(db_url, "worker", "--poll", "0.1", *args), env=env or worker_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=own_group)


def run_cli(db_url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli_args(db_url, *args), env=env or worker_env(), capture_output=True, text=True,
                          timeout=timeout)


def stage_runs(app) -> dict[tuple[int, str], int]:
    """How many times each (pipeline, stage) was entered, from the state history."""
    from agentic_pipeline.db.schema import pipeline_state_history as h

    with app.db.read() as conn:
        rows = conn.execute(sa.select(h.c.pipeline_id, h.c.to_state, sa.func.count())
                            .group_by(h.c.pipeline_id, h.c.to_state)).all()
    return {(pid, state): n for pid, state, n in rows}


def library_counts(app) -> dict[str, int]:
    from agentic_pipeline.db import library_store

    with app.db.read() as conn:
        return library_store.counts(conn)


def duplicate_rows(app) -> int:
    """Chapters or chunks stored twice for one book position (must always be 0)."""
    from agentic_pipeline.db.schema import books, chapters, chunks

    with app.db.read() as conn:
        dup_books = conn.execute(sa.select(books.c.pipeline_id).group_by(books.c.pipeline_id)
                                 .having(sa.func.count() > 1)).all()
        dup_ch = conn.execute(sa.select(chapters.c.book_id, chapters.c.chapter_index)
                              .group_by(chapters.c.book_id, chapters.c.chapter_index).having(sa.func.count() > 1)).all()
        dup_ck = conn.execute(sa.select(chunks.c.book_id, chunks.c.ordinal)
                              .group_by(chunks.c.book_id, chunks.c.ordinal).having(sa.func.count() > 1)).all()
    return len(dup_books) + len(dup_ch) + len(dup_ck)


def states_by_path(app) -> dict[str, str]:
    from agentic_pipeline.db.schema import processing_pipelines as pp

    with app.db.read() as conn:
        return {Path(p).name: s for p, s in conn.execute(sa.select(pp.c.source_path, pp.c.state))}


def wait_until(predicate, timeout: float, what: str, poll: float = 0.05):
    """Poll ``predicate`` until it returns something true (returned) or ``timeout`` seconds pass (AssertionError).

    What the tests use instead of a fixed sleep: they wait for the condition itself, never longer.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def wait_for_state(app, pid: int, state, timeout: float = 30.0) -> None:
    """Poll until pipeline ``pid`` is in ``state`` (a worker subprocess drives it); AssertionError on timeout."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.pipelines.get(pid).state is state:
            return
        time.sleep(0.05)
    raise AssertionError(f"pipeline {pid} never reached {state.value}: {app.pipelines.get(pid).state.value}")

