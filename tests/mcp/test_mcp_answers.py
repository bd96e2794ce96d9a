"""Answers sized for a model, one filter schema, honest annotations: the real server over stdio on 10,000 matches.

One server for the module over a SQLite database holding 10,000 books waiting for approval (long
titles and paths, generated in one SQL statement) and 300 rejected ones with two causes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time

import click
import pytest

from agentic_pipeline.batch import filters
from agentic_pipeline.interfaces import cli
from agentic_pipeline.interfaces.mcp import answers
from tests.conftest import REPO, SAMPLES
from tests.mcp.client import mcp_client, server_env, text

N = 10_000
REJECTED = 300
BATCH_TOOLS = ("batch_approve", "batch_reject", "batch_retry", "batch_set_priority")
BATCH_COMMANDS = ("batch-approve", "batch-reject", "batch-retry", "batch-priority")


def fill(db) -> None:
    """10,000 pending books (8 types, confidences 0..0.999) and 300 rejected ones, in SQL."""
    now = time.time()
    types = ", ".join(f"'{t}'" for t in filters.BOOK_TYPES)
    con = sqlite3.connect(db)
    with con:
        con.execute(f"""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {N + REJECTED})
            INSERT INTO processing_pipelines (id, source_path, state, priority, base_priority, book_type, confidence,
                created_at, updated_at, state_entered_at, queued_at, title, error, error_stage)
            SELECT i, '/library/generated/' || printf('%0200d', i) || '.epub',
                   CASE WHEN i <= {N} THEN 'pending_approval' ELSE 'rejected' END, 5, 5,
                   json_extract(json_array({types}), '$[' || (i % 8) || ']'), (i % 1000) / 1000.0,
                   {now} - i, {now} - i, {now} - i, {now} - i,
                   'A generated book whose title is long enough to matter ' || i || ' ' || printf('%0300d', i),
                   CASE WHEN i <= {N} THEN NULL WHEN i % 3 = 0 THEN 'not a book, said a person'
                        ELSE 'validation failed: chapter_balance: the largest chapter holds ' || (50 + i % 50)
                             || '% of the words (at most 45%)' END,
                   CASE WHEN i > {N} AND i % 3 != 0 THEN 'validating' END
            FROM n""")
    con.close()


@pytest.fixture(scope="module")
def big(tmp_path_factory, sqlite_template):
    base = tmp_path_factory.mktemp("mcp-big")
    root = base / "books"
    root.mkdir()
    shutil.copy(SAMPLES / "books" / "waste-land.md", root / "waste-land.md")
    db = base / "pipeline.db"
    shutil.copy(sqlite_template, db)
    fill(db)
    with mcp_client(server_env(f"sqlite:///{db}", [root])) as c:
        yield c


def measured(client, name: str, **arguments) -> dict:
    """Call ``name``; assert the answer is within the bound and its text a short summary, not the JSON."""
    result = client.call(name, **arguments)
    assert not result.is_error, f"{name}: {text(result)}"
    data = result.structured_content
    size = len(json.dumps(data, ensure_ascii=False).encode()) + len(text(result).encode())
    assert size <= answers.MAX_BYTES, f"{name} answered {size} bytes"
    assert len(text(result)) < 1200 and not text(result).lstrip().startswith("{"), f"{name}: {text(result)[:200]}"
    return data


def test_every_answer_is_bounded_on_10000_matches(big):
    tools = {t.name: t for t in big.tools()}
    for tool in tools.values():
        assert f"at most {answers.MAX_BYTES // 1000} KB" in tool.description, tool.name
    health = measured(big, "get_pipeline_health", fresh=True)
    assert health["counts_by_state"]["pending_approval"] == N
    measured(big, "get_stuck_pipelines", limit=100)
    pending = measured(big, "list_pending_approvals", limit=100)
    assert pending["total"] == N and sum(pending["breakdown"]["by_confidence"].values()) == N
    assert set(pending["rows"][0]) == {"id", "title", "book_type", "confidence", "state", "seconds_in_state"}
    books = measured(big, "list_books", limit=100)
    assert books["total"] == N + REJECTED and books["next_after"] == books["rows"][-1]["id"]
    rejected = measured(big, "list_rejected_books", limit=50)
    assert rejected["total"] == REJECTED and len(rejected["causes"]) == 2
    assert {c["count"] for c in rejected["causes"]} == {REJECTED // 3, REJECTED - REJECTED // 3}
    assert any("chapter_balance" in c["cause"] and "N%" in c["cause"] for c in rejected["causes"])
    shown = measured(big, "show_book", pipeline_id=N + 1)
    assert shown["state"] == "rejected" and "chapter_balance" in shown["error"]["message"]
    measured(big, "get_pipeline_status", pipeline_id=7)
    measured(big, "list_strategies")
    measured(big, "get_autonomy_status")
    measured(big, "search_library", query="generated", limit=50)
    for tool, extra in (("batch_approve", {}), ("batch_reject", {"reason": "a test"}), ("batch_set_priority",
                                                                                          {"priority": 2})):
        preview = measured(big, tool, state="pending_approval", max_count=N, limit=100, **extra)["preview"]
        assert preview["matched"] == N and len(preview["rows"]) <= 100
        assert sum(preview["breakdown"]["by_state"].values()) == N
        assert set(preview["rows"][0]) == {"id", "title", "book_type", "confidence", "state"}
    retry = measured(big, "batch_retry", state="rejected", max_count=N)["preview"]
    assert retry["matched"] == REJECTED
    measured(big, "get_audit_log", limit=100)
    measured(big, "verify_audit_trail")


def test_an_empty_filter_matches_nothing_as_on_the_cli(big):
    preview = measured(big, "batch_retry")
    assert preview["preview"]["matched"] == 0 and preview["confirmation_token"] is None
    assert preview["preview"]["note"] == filters.EMPTY_FILTER
    everything = measured(big, "batch_retry", all=True, max_count=N)["preview"]
    assert everything["matched"] == REJECTED


def test_paging_reaches_every_row_exactly_once(big):
    literature = {i for i in range(1, N + REJECTED + 1) if filters.BOOK_TYPES[i % 8] == "literature"}
    seen: list[int] = []
    after = None
    while True:
        page = measured(big, "list_books", book_type="literature", limit=100, after=after)
        seen += [r["id"] for r in page["rows"]]
        after = page["next_after"]
        if after is None:
            break
    assert set(seen) == literature and len(seen) == len(set(seen)) == page["total"]

    args = {"book_type": "literature", "state": "pending_approval", "max_count": N}
    seen, after = [], None
    while True:
        preview = measured(big, "batch_approve", limit=100, after=after, **args)["preview"]
        seen += [r["id"] for r in preview["rows"]]
        after = preview["next_after"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == preview["matched"] == N // 8
    assert set(seen) == {i for i in range(1, N + 1) if filters.BOOK_TYPES[i % 8] == "literature"}


def test_confirming_a_paged_preview_applies_to_the_whole_set(big):
    args = {"priority": 3, "state": "pending_approval", "min_confidence": 0.5, "max_count": N}
    first = measured(big, "batch_set_priority", **args)
    second = measured(big, "batch_set_priority", **args, after=first["preview"]["next_after"])
    matched = second["preview"]["matched"]
    assert matched == N // 2 and len(second["preview"]["rows"]) == answers.DEFAULT_ROWS
    done = measured(big, "batch_set_priority", **args, execute=True, confirmation=second["confirmation_token"])
    assert done["result"]["applied"] == matched and len(done["result"]["applied_ids"]) <= 100
    log = measured(big, "get_audit_log", action="BATCH_PRIORITY_CHANGED", limit=1)
    assert log["entries"][0]["after_state"]["count"] == matched
    assert log["entries"][0]["after_state"]["pipeline_ids_total"] == matched  # the ids are cut, the total said


def test_one_filter_schema(big):
    """The CLI options, the MCP input schemas and docs/mcp.md all say what batch.filters says."""
    fields = filters.FIELDS + filters.LIMITS
    wanted = {f.name: f.json_schema() for f in fields}
    tools = {t.name: t for t in big.tools()}
    for name in BATCH_TOOLS:
        props = tools[name].input_schema["properties"]
        got = {k: {x: y for x, y in props[k].items() if x not in ("default", "title")} for k in wanted}
        assert got == wanted, name
        assert tools[name].input_schema.get("additionalProperties") is False
    for name in ("list_books", "list_pending_approvals", "list_rejected_books"):
        props = tools[name].input_schema["properties"]
        for k in set(props) & set(wanted):
            assert {x: y for x, y in props[k].items() if x not in ("default", "title")} == wanted[k], (name, k)
    for command in BATCH_COMMANDS:
        options = {o.opts[0]: o for o in command_of(command).params if isinstance(o, click.Option)}
        for f in fields:
            assert f.option in options and options[f.option].help.startswith(f.help), (command, f.name)
            assert not options[f.option].hidden
            for alias in f.aliases:
                assert options[alias].hidden, (command, alias)
    books = {o.opts[0] for o in command_of("books").params}
    assert {f.option for f in filters.FIELDS} <= books
    assert filters.markdown_table() in (REPO / "docs" / "mcp.md").read_text(encoding="utf-8")


def test_idempotent_tools_repeat_as_no_ops(big):
    tools = {t.name: t for t in big.tools()}
    idempotent = {n for n, t in tools.items() if t.annotations.idempotent_hint}
    assert idempotent == {"set_pipeline_priority", "edit_book", "process_book", "batch_queue_folder"}

    def twice(name, **arguments):
        first, second = big.ok(name, **arguments), big.ok(name, **arguments)
        return first, second

    first, second = twice("set_pipeline_priority", pipeline_id=11, priority=9)
    assert first["changed"] is True and second["changed"] is False and second["new"] == first["new"]
    first, second = twice("edit_book", pipeline_id=11, title="A corrected title", language="en")
    assert set(first["changed"]) == {"title", "language"} and second["changed"] == {}
    first, second = twice("batch_queue_folder", path=".")
    assert first["queued_count"] == 1 and second["queued_count"] == 0 and second["duplicates_count"] == 1
    first, second = twice("process_book", path="waste-land.md")
    assert first["id"] == second["id"] and first["created"] is second["created"] is False
    assert big.ok("get_audit_log", pipeline_id=11, action="METADATA_CHANGED")["count"] == 1
    # not idempotent, and annotated so: a second approval is refused
    assert big.ok("approve_book", pipeline_id=12)["state"] == "approved"
    assert "approved" in big.error("approve_book", pipeline_id=12)
    assert not tools["approve_book"].annotations.idempotent_hint


def command_of(name: str) -> click.Command:
    return cli.cli.get_command(click.Context(cli.cli), name)
