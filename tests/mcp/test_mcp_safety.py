"""The MCP server's safety rails, through the SDK's stdio client: two-step batches, path roots, errors."""

from __future__ import annotations

import json
import os
import re
import sqlite3

import pytest

from tests.mcp.client import CLIENT_NAME, mcp_client, server_env


@pytest.fixture(scope="module")
def safety_root(library):
    """Links inside the root that point outside it, kept in their own subfolder."""
    links = library["root"] / "links"
    links.mkdir(exist_ok=True)
    os.symlink(library["outside"] / "zoo-jss.pdf", links / "escape.pdf")
    os.symlink(library["outside"], links / "escape-dir")
    return library


@pytest.fixture(scope="module")
def queued(client, safety_root):
    """The sample books queued (state detected) through the tool, once for the module."""
    out = client.ok("batch_queue_folder", path=str(safety_root["root"]))
    assert out["queued_count"] == 5 and out["unreadable_count"] == 0
    return {row["path"]: row["id"] for row in out["queued"]}


def fresh_token(error_text: str) -> tuple[str, int]:
    """The new confirmation token and the count of matches carried by a stale-confirmation error (no rows)."""
    found = re.search(r"(\d+) books match now; new confirmation_token: (\S+) ", error_text)
    assert found, error_text
    return found.group(2), int(found.group(1))


def test_batch_needs_preview_then_the_exact_token(client, safety_root, queued):
    root = safety_root["root"]
    args = {"priority": 2, "state": "detected", "source_path_pattern": f"{root}/*.epub"}
    preview = client.ok("batch_set_priority", **args)
    assert preview["executed"] is False
    epubs = sorted(i for p, i in queued.items() if p.endswith(".epub"))
    assert sorted(r["id"] for r in preview["preview"]["rows"]) == epubs
    token = preview["confirmation_token"]

    # execute without a token: refused, nothing changed
    assert "confirmation token" in client.error("batch_set_priority", **args, execute=True)
    # a made-up token: refused with a fresh preview
    assert "new confirmation_token" in client.error("batch_set_priority", **args, execute=True,
                                                    confirmation="0" * 32)

    # the match set changes (one more EPUB under the root): the old token is stale
    added = client.ok("batch_queue_folder", path="later")
    assert added["queued_count"] == 1
    stale = client.error("batch_set_priority", **args, execute=True, confirmation=token)
    assert "changed" in stale and "Next:" in stale
    new_token, matched = fresh_token(stale)
    assert new_token != token and matched == len(epubs) + 1
    for pid in queued.values():
        assert client.ok("get_pipeline_status", pipeline_id=pid)["priority"] == 5

    done = client.ok("batch_set_priority", **args, execute=True, confirmation=new_token)
    assert len(done["result"]["applied_ids"]) == matched and set(epubs) < set(done["result"]["applied_ids"])
    for path, pid in queued.items():
        assert client.ok("get_pipeline_status", pipeline_id=pid)["priority"] == (2 if path.endswith(".epub") else 5)
    log = client.ok("get_audit_log", action="BATCH_PRIORITY_CHANGED")
    assert log["entries"][0]["actor"] == f"mcp:{CLIENT_NAME}"
    # a token works once: replaying it (the same books still match) changes nothing more
    assert "already used" in client.error("batch_set_priority", **args, execute=True, confirmation=new_token)
    assert len(client.ok("get_audit_log", action="BATCH_PRIORITY_CHANGED")["entries"]) == 1


@pytest.mark.parametrize("tool", ["batch_queue_folder", "process_book"])
def test_paths_outside_the_roots_are_refused(client, safety_root, tool):
    root, outside = safety_root["root"], safety_root["outside"]
    book = "zoo-jss.pdf"
    attempts = [
        f"../outside/{book}" if tool == "process_book" else "../outside",  # relative .. (from the root)
        str(root / ".." / "outside" / book),                                 # absolute with ..
        str(outside / book),                                                 # absolute outside
        str(root / "links" / "escape.pdf"),                                  # symlink to a file outside
        str(root / "links" / "escape-dir" / book),                           # through a symlinked folder
    ]
    for path in attempts:
        text = client.error(tool, path=path)
        assert "outside the allowed roots" in text, (path, text)
        if str(outside) not in path:  # a link's target is not told
            assert str(outside) not in text, text
    for path in ("/proc/self/exe", "~root/x"):  # where a link or another account's home leads is not told
        text = client.error(tool, path=path)
        assert "outside the allowed roots" in text and "python" not in text and "/root" not in text, text


def test_odd_paths_and_files_are_refused_cleanly(client, safety_root):
    root = safety_root["root"]
    loops = root / "loops"
    loops.mkdir(exist_ok=True)
    if not (loops / "a.pdf").is_symlink():
        os.symlink(loops / "b.pdf", loops / "a.pdf")
        os.symlink(loops / "a.pdf", loops / "b.pdf")
        os.mkfifo(loops / "pipe.pdf")
    assert "NUL" in client.error("process_book", path="book\x00.pdf")
    assert "symlink loop" in client.error("process_book", path=str(loops / "a.pdf"))
    # a folder holding a symlink loop and a FIFO is still queued: both are reported unreadable, nothing hangs
    out = client.ok("batch_queue_folder", path="loops")
    reasons = {os.path.basename(u["path"]): u["reason"] for u in out["unreadable"]}
    assert "not a regular file" in reasons["pipe.pdf"] and "symbolic links" in reasons["a.pdf"], reasons


@pytest.mark.parametrize("tool", ["process_book", "batch_queue_folder"])
def test_a_300_character_name_is_an_input_error_that_says_so(client, safety_root, tool):
    """Before: "Error executing tool process_book" and a logged ``OSError: [Errno 36] File name too long``."""
    long = "n" * 300 + (".epub" if tool == "process_book" else "")
    for path in (long, str(safety_root["root"] / long), f"later/{long}/book.epub"):
        text = client.error(tool, path=path)
        assert "file name too long" in text and "at most 255 bytes" in text, text
        assert "Next: fix the argument" in text and "Errno" not in text and "Traceback" not in text, text


def test_a_folder_with_links_leading_out_is_refused(client, safety_root):
    text = client.error("batch_queue_folder", path="links")
    assert "links to files outside the allowed roots" in text and "escape.pdf" in text
    text = client.error("batch_queue_folder", path=str(safety_root["root"]), recursive=True)
    assert "escape.pdf" in text


def test_inputs_are_validated_with_clear_messages(client, queued):
    pid = next(iter(queued.values()))
    assert "less than or equal to 10" in client.error("set_pipeline_priority", pipeline_id=pid, priority=11)
    assert "greater than or equal to 1" in client.error("set_pipeline_priority", pipeline_id=pid, priority=0)
    missing = client.error("get_pipeline_status", pipeline_id=999_999)
    assert "999999" in missing and "Next:" in missing
    assert "less than or equal to" in client.error("get_pipeline_status", pipeline_id=10**30)
    for loose in (True, "1", 1.0):  # ids and priorities are JSON integers, nothing that converts to one
        assert "valid integer" in client.error("get_pipeline_status", pipeline_id=loose), loose
    assert "valid integer" in client.error("set_pipeline_priority", pipeline_id=pid, priority="3")
    assert "technical_tutorial" in client.error("batch_approve", min_confidence=0.9, book_type="cookbook")
    # the filter's messages are the CLI's (make_filter), whatever the skin
    assert "min_confidence must be a number between 0 and 1" in client.error("batch_approve", min_confidence=1.5)
    assert "unknown state 'done'" in client.error("batch_retry", state="done")
    assert "created_after must be an ISO date" in client.error("list_books", created_after="yesterday")
    assert "extra" in client.error("batch_retry", source_pattern="*").lower()  # unknown arguments are refused
    assert "reason" in client.error("batch_reject", book_type="literature")
    assert "APPROVED" in client.error("get_audit_log", action="NOPE")
    assert "does not exist" in client.error("process_book", path="no-such-book.epub")
    assert "empty" in client.error("search_library", query="  ")
    too_many = client.error("batch_set_priority", priority=3, source_path_pattern="*", max_count=1)
    assert "more than the maximum of 1" in too_many and "max_count" in too_many


def test_no_roots_a_missing_database_and_one_behind(tmp_path):
    """Without roots the path tools say how to configure them; a missing database and an old schema each
    say which they are."""
    env = server_env(f"sqlite:///{tmp_path / 'missing.db'}", roots=None)
    with mcp_client(env) as c:
        for tool in ("process_book", "batch_queue_folder"):
            assert "AGENTIC_PIPELINE_MCP_ROOTS" in c.error(tool, path=str(tmp_path))
        text = c.error("get_pipeline_status", pipeline_id=1)
        assert "there is no database at" in text and "AGENTIC_PIPELINE_DB" in text
        assert "agentic-pipeline init" in text and "behind" not in text
    old = tmp_path / "old.db"
    sqlite3.connect(old).close()  # a database file with no schema: behind every migration
    with mcp_client(server_env(f"sqlite:///{old}", roots=None)) as c:
        text = c.error("get_pipeline_status", pipeline_id=1)
        assert "schema is behind" in text and "agentic-pipeline init" in text and "no database" not in text
