"""Priority processing order by a real worker process: books enter HASHING in claim order."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import sqlalchemy as sa

from agentic_pipeline.db.schema import pipeline_state_history as history
from tests.conftest import open_app

PRIORITIES = [7, 2, 5, 2, 9, 1, 5, 10, 3, 1]


def _book(folder, i: int):
    path = folder / f"book-{i}.md"
    chapters = "\n\n".join(f"# Chapter {c}\n\n" + " ".join(f"word{i}x{c}y{w}" for w in range(120)) for c in range(3))
    path.write_text(f"# Book {i}\n\n{chapters}\n", encoding="utf-8")
    return path


def test_a_real_worker_takes_books_in_priority_order(sqlite_url, tmp_path):
    env = {**os.environ, "AGENTIC_PIPELINE_DB": sqlite_url, "AGENTIC_PIPELINE_EMBEDDER": "hashing"}
    cli = [sys.executable, "-m", "agentic_pipeline.interfaces.cli"]
    ids = []
    for i, priority in enumerate(PRIORITIES):
        out = subprocess.run(cli + ["process", str(_book(tmp_path, i)), "--priority", str(priority), "--json"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        ids.append(json.loads(out.stdout)["id"])
    done = subprocess.run(cli + ["worker", "--until-empty", "--poll", "0.1"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with open_app(sqlite_url) as app, app.db.read() as conn:
        started = [pid for (pid,) in conn.execute(
            sa.select(history.c.pipeline_id).where(history.c.to_state == "hashing").order_by(history.c.id))]
    expected = [pid for _p, _i, pid in sorted(zip(PRIORITIES, range(len(ids)), ids))]
    assert started == expected
