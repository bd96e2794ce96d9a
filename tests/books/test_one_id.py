"""One id for a book: the id search prints is the pipeline id, and every command that takes a book takes it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from agentic_pipeline.approval import operations as approval
from agentic_pipeline.interfaces.cli import cli
from agentic_pipeline.orchestrator import process, retries
from tests.conftest import open_app
from tests.orchestrator.helpers import SAMPLES, run_cli

PHRASE = "April is the cruellest month"


def _cli(url, *args):
    result = CliRunner().invoke(cli, ["--db", url, *args], env={"AGENTIC_PIPELINE_EMBEDDER": "hashing"})
    return result


def test_the_id_search_prints_names_the_same_book_everywhere(sqlite_url):
    app = open_app(sqlite_url)
    try:
        waste = process.process_one(app, str(SAMPLES / "waste-land.epub"), actor="human:t", wait=True, isolate=False)
        other = process.process_one(app, str(SAMPLES / "fsm-drivers.pdf"), actor="human:t", wait=True, isolate=False)
        pid = waste["id"]
        # reprocessing gives the book a new library row: the library and pipeline ids now differ
        approval.reject(app, pid, actor="human:t", reason="try again")
        retries.retry(app, pid, actor="human:t")
    finally:
        app.close()
    assert run_cli(sqlite_url, "worker", "--until-empty", "--poll", "0.1").returncode == 0
    assert _cli(sqlite_url, "approve", str(pid)).exit_code == 0
    assert run_cli(sqlite_url, "worker", "--until-empty", "--poll", "0.1").returncode == 0

    hits = json.loads(_cli(sqlite_url, "search", PHRASE, "--json").output)
    assert hits[0]["pipeline_id"] == pid and list(hits[0])[0] == "pipeline_id"
    assert hits[0]["library_book_id"] != pid  # the ids really differ
    text = _cli(sqlite_url, "search", PHRASE).output
    printed = int(text.split()[0])  # the text leads with the pipeline id
    assert printed == pid

    status = json.loads(_cli(sqlite_url, "status", str(printed), "--json").output)
    assert status["title"] == "The Waste Land" and status["state"] == "complete"
    only = json.loads(_cli(sqlite_url, "search", "river", "--book", str(printed), "--json").output)
    assert only and {h["pipeline_id"] for h in only} == {pid}
    not_searchable = _cli(sqlite_url, "search", "river", "--book", str(other["id"]))
    assert not_searchable.exit_code == 1 and f"pipeline {other['id']} is not a searchable book" in str(
        not_searchable.exception)
    entries = json.loads(_cli(sqlite_url, "audit", "--book-id", str(printed), "--json").output)
    assert {e["pipeline_id"] for e in entries} == {pid}
    assert {"REJECTED", "APPROVED", "RETRIED"} <= {e["action"] for e in entries}
    dry = json.loads(_cli(sqlite_url, "reembed", "--book", str(printed), "--dry-run", "--json").output)
    assert dry["chunks"] == 0
    rolled = json.loads(_cli(sqlite_url, "rollback", str(printed), "--reason", "wrong edition", "--json").output)
    assert rolled["id"] == pid and rolled["state"] == "archived" and rolled["title"] == "The Waste Land"
