"""books / show / edit: the operations on SQLite and PostgreSQL, and their CLI skins."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from agentic_pipeline import errors
from agentic_pipeline.batch.filters import make_filter
from agentic_pipeline.books import operations
from agentic_pipeline.interfaces.cli import cli
from tests.batch import rows
from tests.orchestrator.helpers import SAMPLES, run_cli, worker_env


def _seed(app, clock):
    now = clock.now()
    states = ["complete"] * 5 + ["rejected"] * 3 + ["duplicate"] * 2 + ["pending_approval"] * 4
    made = [rows.row(now + dt.timedelta(seconds=i), i, state=s, book_type="textbook" if i % 2 else "literature",
                     confidence=round(0.1 + i / 20, 2), title=f"Book {i:02d}",
                     updated_at=now + dt.timedelta(seconds=100 - i))
            for i, s in enumerate(states)]
    return rows.insert(app, made)


def test_list_books_filters_counts_sorts_and_pages(app, clock):
    ids = _seed(app, clock)
    everything = operations.list_books(app, None, limit=5)
    assert everything["total"] == 14
    assert everything["counts"]["state"] == {"complete": 5, "pending_approval": 4, "rejected": 3, "duplicate": 2}
    assert sum(everything["counts"]["book_type"].values()) == 14
    assert [r["id"] for r in everything["rows"]] == ids[:5] and everything["next_after"] == ids[4]

    rejected = operations.list_books(app, make_filter(state="rejected"))
    assert rejected["total"] == 3 and {r["state"] for r in rejected["rows"]} == {"rejected"}
    assert rejected["next_after"] is None

    # keyset pages over a descending sort with ties broken by id: every row once, in order
    seen, after = [], None
    while True:
        page = operations.list_books(app, make_filter(book_type="textbook"), sort="-confidence", limit=2, after=after)
        seen += page["rows"]
        after = page["next_after"]
        if after is None:
            break
    confidences = [r["confidence"] for r in seen]
    assert len(seen) == 7 and confidences == sorted(confidences, reverse=True)
    assert len({r["id"] for r in seen}) == 7

    by_updated = operations.list_books(app, None, sort="-updated", limit=3)
    assert [r["id"] for r in by_updated["rows"]] == ids[:3]  # the seed made older ids more recently updated


def test_list_books_refuses_bad_input(app):
    with pytest.raises(errors.InputError, match="sort by one of"):
        operations.list_books(app, None, sort="colour")
    with pytest.raises(errors.InputError, match="limit"):
        operations.list_books(app, None, limit=0)
    with pytest.raises(errors.NotFound, match="continue after"):
        operations.list_books(app, None, after=999_999)


@pytest.fixture
def processed(app):
    """The Waste Land, really processed to PENDING_APPROVAL (in process, hashing embedder)."""
    from agentic_pipeline.orchestrator import process

    result = process.process_one(app, str(SAMPLES / "waste-land.epub"), actor="human:tester", wait=True, isolate=False)
    assert result["state"] == "pending_approval", result
    return result["id"]


def test_show_has_everything_to_decide(app, processed):
    d = operations.show(app, processed)
    assert d["id"] == processed and d["title"] == "The Waste Land"
    assert d["authors"] and "Eliot" in " ".join(d["authors"])
    assert d["language"] == "en" and d["format"] == "epub"
    c = d["classification"]
    assert c["book_type"] and c["reasoning"] and abs(sum(c["probabilities"].values()) - 1) < 0.01
    assert d["validation"]["passed"] and d["validation"]["checks"]
    assert d["chapters"] and all(ch["words"] >= 0 for ch in d["chapters"])
    assert [h["to"] for h in d["history"]][-1] == "pending_approval"
    assert d["library_book_id"] is not None and d["error"] is None
    json.dumps(d, default=str)  # plain data


def test_edit_is_audited_and_keeps_a_type_label(app, processed):
    from agentic_pipeline.db import books_store

    before = operations.show(app, processed)
    out = operations.edit(app, processed, title="The Waste Land (1922)", authors=["T. S. Eliot"], language="en-GB",
                          book_type="academic_paper", actor="human:alice", reason="first edition")
    assert set(out["changed"]) == {"title", "authors", "book_type"}  # language was already en
    assert out["changed"]["title"] == {"old": "The Waste Land", "new": "The Waste Land (1922)"}
    after = operations.show(app, processed)
    assert after["title"] == "The Waste Land (1922)" and after["authors"] == ["T. S. Eliot"]
    assert after["classification"]["book_type"] == "academic_paper"
    assert after["classification"]["human_label"]["previous_type"] == before["classification"]["book_type"]
    entry = next(a for a in after["audit"] if a["action"] == "METADATA_CHANGED")
    assert entry["actor"] == "human:alice" and entry["reason"] == "first edition"
    assert entry["before_state"]["title"] == "The Waste Land" and entry["after_state"]["book_type"] == "academic_paper"
    with app.db.read() as conn:
        labels = books_store.labels(conn)
    assert [(lab["pipeline_id"], lab["book_type"]) for lab in labels] == [(processed, "academic_paper")]
    assert labels[0]["content_hash"] == before["content_hash"]
    # the same values again: nothing changes, nothing is recorded
    again = operations.edit(app, processed, title="The Waste Land (1922)", actor="human:alice")
    assert again["changed"] == {}
    assert sum(a["action"] == "METADATA_CHANGED" for a in operations.show(app, processed)["audit"]) == 1


def test_edit_refuses_bad_values_and_busy_books(app, clock):
    (pid,) = rows.insert(app, [rows.row(clock.now(), 1, state="pending_approval")])
    with pytest.raises(errors.InputError, match="unknown book type"):
        operations.edit(app, pid, book_type="cookbook", actor="human:a")
    with pytest.raises(errors.InputError, match="language"):
        operations.edit(app, pid, language="english!", actor="human:a")
    with pytest.raises(errors.InputError, match="title"):
        operations.edit(app, pid, title="   ", actor="human:a")
    with pytest.raises(errors.InputError, match="nothing to change"):
        operations.edit(app, pid, actor="human:a")
    (busy,) = rows.insert(app, [rows.row(clock.now(), 2, state="processing")])
    with pytest.raises(errors.InvalidTransition, match="still deriving"):
        operations.edit(app, busy, title="X", actor="human:a")


def test_cli_books_piped_is_one_record_per_line(sqlite_app, clock):
    long_path = "/books/" + "d" * 280 + "/book.pdf"
    rows.insert(sqlite_app, [rows.row(clock.now(), 1, source_path=long_path, title="Line\nforged: ERROR", state="rejected")]
                + [rows.row(clock.now(), i) for i in range(2, 80)])
    url = str(sqlite_app.db.url)
    out = CliRunner().invoke(cli, ["--db", url, "books", "--state", "rejected"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any("Line\\nforged: ERROR" in line for line in lines) and not any(line == "forged: ERROR" for line in lines)
    wide = CliRunner().invoke(cli, ["--db", url, "books", "--sort", "id", "--limit", "1"])
    assert "... more after pipeline" in wide.output
    full = CliRunner().invoke(cli, ["--db", url, "show", "1"])
    assert long_path in full.output  # a 300-character path survives a pipe whole
    data = json.loads(CliRunner().invoke(cli, ["--db", url, "books", "--json", "--limit", "10"]).output)
    assert data["total"] == 79 and len(data["rows"]) == 10 and data["next_after"] == data["rows"][-1]["id"]


def test_show_names_the_hint_and_who_rejected(sqlite_url):
    ocr_off = worker_env(AGENTIC_PIPELINE_OCR_MODE="off")  # with OCR on (the default) the scan is read, not rejected
    out = run_cli(sqlite_url, "process", str(SAMPLES.parent / "broken" / "scan-huckfinn.pdf"), "--wait", "--json",
                  env=ocr_off)
    assert out.returncode == 0, out.stderr
    pid = json.loads(out.stdout)["id"]
    shown = run_cli(sqlite_url, "show", str(pid), env=ocr_off)
    assert shown.returncode == 0, shown.stderr
    assert "by system:validator" in shown.stdout and "What to do: OCR is off" in shown.stdout
    d = json.loads(run_cli(sqlite_url, "show", str(pid), "--json", env=ocr_off).stdout)
    assert d["error"]["hint"].startswith("OCR is off") and "(OCR is off" not in d["error"]["message"]
