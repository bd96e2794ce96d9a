"""``agentic-pipeline mcp`` over stdio with the SDK's client: the tool list, and every tool on real sample books."""

from __future__ import annotations

import re

import pytest

from agentic_pipeline.interfaces.mcp import server as mcp_server
from tests.conftest import REPO
from tests.mcp.client import CLIENT_NAME

ACTOR = f"mcp:{CLIENT_NAME}"
READ_ONLY = {"get_pipeline_health", "get_stuck_pipelines", "get_pipeline_status", "list_pending_approvals",
             "get_audit_log", "verify_audit_trail", "get_autonomy_status", "search_library", "list_strategies",
             "show_book", "list_books", "list_rejected_books"}
DESTRUCTIVE = {"recover_stuck_pipeline", "reject_book", "rollback_book", "batch_reject"}


def documented_tools(path) -> set[str]:
    """The tool names listed in the "## MCP" section's table (README) or the tools table (docs/mcp.md)."""
    text = path.read_text(encoding="utf-8")
    if path.name == "README.md":
        text = text.split("\n## MCP", 1)[1]
    else:
        text = text.split("\n## Tools", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)`", text, flags=re.MULTILINE))


def test_lists_exactly_the_documented_tools(client):
    tools = {t.name: t for t in client.tools()}
    assert set(tools) == {s.fn.__name__ for s in mcp_server.tool_specs()}
    assert set(tools) == documented_tools(REPO / "README.md")
    assert set(tools) == documented_tools(REPO / "docs" / "mcp.md")
    for name, tool in tools.items():
        assert tool.description and len(tool.description) > 40, name
        assert tool.output_schema is not None, f"{name} has no structured output"
        for param, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{name}.{param} has no description for the model"
        hints = tool.annotations
        assert hints.read_only_hint is (name in READ_ONLY), name
        if name not in READ_ONLY:
            assert hints.destructive_hint is (name in DESTRUCTIVE), name


@pytest.fixture(scope="module")
def books(client, library):
    """The sample books queued through batch_queue_folder and processed with process_book(wait=true)."""
    queued = client.ok("batch_queue_folder", path=str(library["root"]), priority=4)
    assert queued["queued_count"] == 5 and queued["duplicates_count"] == 0
    ids = {row["path"].rsplit("/", 1)[-1]: row["id"] for row in queued["queued"]}
    for name in ids:
        done = client.ok("process_book", path=name, wait=True)
        assert done["id"] == ids[name] and done["created"] is False
        assert done["state"] == "pending_approval", done
    return ids


def test_watching_the_pipeline(client, books):
    health = client.ok("get_pipeline_health", fresh=True)
    assert health["status"] in {"healthy", "warning", "critical"}
    stuck = client.ok("get_stuck_pipelines")
    assert stuck["count"] == 0 and stuck["rows"] == []
    assert client.ok("get_autonomy_status")["mode"] == "supervised"
    strategies = client.ok("list_strategies")["strategies"]
    assert strategies
    status = client.ok("get_pipeline_status", pipeline_id=books["romeo-juliet.epub"])
    assert status["state"] == "pending_approval" and status["priority"] == 4
    assert [h["to"] for h in status["history"]][-1] == "pending_approval"
    pending = client.ok("list_pending_approvals")
    assert {b["id"] for b in pending["rows"]} == set(books.values()) and pending["total"] == len(books)
    listed = client.ok("list_books", state="pending_approval", source_path_pattern="*.epub")
    assert {b["id"] for b in listed["rows"]} == {books["waste-land.epub"], books["romeo-juliet.epub"]}
    shown = client.ok("show_book", pipeline_id=books["waste-land.epub"])
    assert shown["authors"] and shown["classification"]["reasoning"] and shown["validation"]["passed"]
    edited = client.ok("edit_book", pipeline_id=books["waste-land.md"], title="The Waste Land (Markdown)")
    assert edited["changed"]["title"]["new"] == "The Waste Land (Markdown)"


def test_deciding_one_book_at_a_time(client, books):
    poem = books["waste-land.epub"]
    assert client.ok("approve_book", pipeline_id=poem, reason="a classic")["state"] == "approved"
    embedded = client.ok("process_book", path="waste-land.epub", wait=True)  # drives the approved book on
    assert embedded["state"] == "complete"
    found = client.ok("search_library", query="April is the cruellest month", limit=3)
    assert found["results"] and found["results"][0]["pipeline_id"] == poem
    assert client.ok("rollback_book", pipeline_id=poem, reason="test rollback")["state"] == "archived"
    gone = client.ok("search_library", query="April is the cruellest month")
    assert gone["results"] == [] and gone["message"].startswith("no passage matches")

    news = books["ltnews36.pdf"]
    assert client.ok("reject_book", pipeline_id=news, reason="newsletter, not a book")["state"] == "rejected"
    assert client.ok("retry_book", pipeline_id=news)["state"] == "needs_retry"
    moved = client.ok("set_pipeline_priority", pipeline_id=news, priority=1)
    assert moved["new"]["priority"] == 1 and moved["old"]["priority"] == 4
    assert "needs a reason" in client.error("recover_stuck_pipeline", pipeline_id=news, action="reset")
    recovered = client.ok("recover_stuck_pipeline", pipeline_id=news, action="reset", reason="start over")
    assert client.ok("get_pipeline_status", pipeline_id=news)["state"] == "detected", recovered


def test_deciding_by_filter(client, books):
    pending = client.ok("list_pending_approvals")["rows"]
    expected = {b["id"] for b in pending if b["book_type"] == "literature" and b["confidence"] >= 0.9}
    assert {books["romeo-juliet.epub"], books["waste-land.md"]} <= expected  # the two literary samples
    preview = client.ok("batch_approve", min_confidence=0.9, book_type="literature")
    assert {r["id"] for r in preview["preview"]["rows"]} == expected
    done = client.ok("batch_approve", min_confidence=0.9, book_type="literature", execute=True,
                     confirmation=preview["confirmation_token"])
    assert set(done["result"]["applied_ids"]) == expected

    rest = {b["id"] for b in client.ok("list_pending_approvals")["rows"]}
    assert rest == {b["id"] for b in pending} - expected and rest
    args = {"max_confidence": 1.0, "reason": "not wanted in this library"}
    preview = client.ok("batch_reject", **args)
    done = client.ok("batch_reject", **args, execute=True, confirmation=preview["confirmation_token"])
    assert set(done["result"]["applied_ids"]) == rest
    causes = client.ok("list_rejected_books")
    assert causes["total"] == len(rest) and causes["causes"][0]["cause"] == "not wanted in this library"

    preview = client.ok("batch_retry", state="rejected")
    assert {r["id"] for r in preview["preview"]["rows"]} == rest
    client.ok("batch_retry", state="rejected", execute=True, confirmation=preview["confirmation_token"])
    preview = client.ok("batch_set_priority", priority=3, state="needs_retry")
    done = client.ok("batch_set_priority", priority=3, state="needs_retry", execute=True,
                     confirmation=preview["confirmation_token"])
    assert set(done["result"]["applied_ids"]) == rest


def test_the_audit_trail_names_the_client(client, books):
    log = client.ok("get_audit_log", actor="mcp:*", limit=100)
    actions = {e["action"] for e in log["entries"]}
    assert {"APPROVED", "REJECTED", "ROLLED_BACK", "PRIORITY_CHANGED", "BATCH_QUEUED", "BATCH_APPROVED",
            "BATCH_REJECTED", "BATCH_RETRIED", "BATCH_PRIORITY_CHANGED", "STUCK_RECOVERED", "RETRIED"} <= actions
    assert {e["actor"] for e in log["entries"]} == {ACTOR}
    about_poem = client.ok("get_audit_log", pipeline_id=books["waste-land.epub"])
    assert [e["action"] for e in about_poem["entries"]][:2] == ["ROLLED_BACK", "APPROVED"]
    verified = client.ok("verify_audit_trail")
    assert verified["ok"] is True and verified["count"] >= len(log["entries"])


def test_every_tool_was_called(client):
    assert client.called == {t.name for t in client.tools()}
