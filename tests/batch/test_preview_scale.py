"""Outputs that scale: a 10,000-book preview prints one screenful; piped text is never wrapped."""

from __future__ import annotations

from click.testing import CliRunner

from agentic_pipeline.interfaces.cli import cli
from tests.batch import rows


def test_a_10000_row_preview_prints_at_most_one_screen(sqlite_app, clock):
    now = clock.now()
    rows.insert(sqlite_app, [rows.row(now, i) for i in range(10_000)])
    url = str(sqlite_app.db.url)
    env = {"LINES": "24", "COLUMNS": "80"}
    out = CliRunner().invoke(cli, ["--db", url, "batch-approve", "--state", "pending_approval", "--max-count", "20000"],
                             env=env)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert len(lines) <= 24, len(lines)
    assert lines[0].startswith("10,000 books match") and any("... 9,9" in line and "more" in line for line in lines)
    done = CliRunner().invoke(cli, ["--db", url, "batch-approve", "--state", "pending_approval", "--max-count", "20000",
                                    "--execute"], env=env)
    assert done.exit_code == 0 and len(done.output.splitlines()) <= 24
    assert "Applied to 10,000 of 10,000 books" in done.output
    everything = CliRunner().invoke(cli, ["--db", url, "books", "--state", "approved", "--all"], env=env)
    assert len(everything.output.splitlines()) == 10_000 + 3  # two summary lines, the header, every book


def test_piped_tables_are_one_record_per_line_with_long_paths_whole(sqlite_app, clock):
    long_path = "/library/" + "/".join(["a-rather-long-folder-name"] * 11) + "/book.pdf"
    assert len(long_path) >= 280
    rows.insert(sqlite_app, [rows.row(clock.now(), 1, source_path=long_path, title=None)])
    out = CliRunner().invoke(cli, ["--db", str(sqlite_app.db.url), "batch-approve", "--state", "pending_approval"],
                             env={"COLUMNS": "80"})
    assert out.exit_code == 0
    assert any(line.endswith(long_path.rsplit("/", 1)[-1]) for line in out.output.splitlines())
    shown = CliRunner().invoke(cli, ["--db", str(sqlite_app.db.url), "show", "1"], env={"COLUMNS": "80"})
    assert long_path in shown.output.splitlines()[3]  # the File line, whole
    listed = CliRunner().invoke(cli, ["--db", str(sqlite_app.db.url), "books"], env={"COLUMNS": "80"})
    assert listed.output.splitlines()[-1].endswith("\t" + long_path)  # a book without a title shows its path
