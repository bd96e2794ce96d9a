"""Crash test: SIGKILL a worker at random moments, 20+ times, then drain; the end matches an undisturbed run."""

from __future__ import annotations

import random
import shutil
import signal
import time

import pytest

from agentic_pipeline import intake
from tests.conftest import open_app
from tests.orchestrator.helpers import (SAMPLES, duplicate_rows, library_counts, run_cli, start_worker,
                                        states_by_path, worker_env, write_text_books)

ROUNDS = 20


def make_folder(folder):
    write_text_books(folder, 6, seed=11)
    for name in ("waste-land.md", "waste-land.epub", "fsm-drivers.pdf"):
        shutil.copy(SAMPLES / name, folder / name)
    shutil.copy(SAMPLES / "waste-land.md", folder / "waste-land-copy.md")  # a duplicate
    shutil.copy(SAMPLES.parent / "broken" / "password.pdf", folder / "password.pdf")  # rejected


def prepare(db_url, folder):
    app = open_app(db_url)
    for path in sorted(folder.iterdir()):
        intake.queue_file(app, path, actor="human:test")
    out = run_cli(db_url, "autonomy", "enable", "partial", "--threshold", "0.3", "--daily-cap", "100")
    assert out.returncode == 0, out.stderr
    return app


@pytest.mark.slow  # dozens of SIGKILLs, each followed by a worker start-up
def test_sigkilled_workers_lose_nothing(tmp_path, sqlite_template):
    folder = tmp_path / "books"
    make_folder(folder)
    urls = []
    for name in ("calm", "crashy"):
        shutil.copy(sqlite_template, tmp_path / f"{name}.db")
        urls.append(f"sqlite:///{tmp_path / name}.db")
    calm, crashy = (prepare(url, folder) for url in urls)
    try:
        env = worker_env(AGENTIC_PIPELINE_LEASE_SECONDS="2")
        assert run_cli(urls[0], "worker", "--until-empty", "--poll", "0.05", env=env).returncode == 0
        rng = random.Random(2024)
        for _ in range(ROUNDS):
            proc = start_worker(urls[1], env=env)
            time.sleep(rng.uniform(0.6, 2.2))  # start-up is ~0.6 s: kills land in every stage
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert run_cli(urls[1], "worker", "--until-empty", "--poll", "0.05", env=env).returncode == 0
        expected = states_by_path(calm)
        assert set(expected.values()) >= {"complete", "duplicate", "rejected"}, expected
        assert states_by_path(crashy) == expected
        assert library_counts(crashy) == library_counts(calm)
        assert duplicate_rows(crashy) == 0
    finally:
        calm.close()
        crashy.close()
