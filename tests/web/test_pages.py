"""Every page and action in process (Starlette's TestClient) on SQLite and PostgreSQL.

Actions go through the same operations as the CLI and leave the same audit entries (actor web:<user>);
writes need the CSRF token, the token off loopback, and are refused when read-only; titles are escaped.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from click.testing import CliRunner

from agentic_pipeline.db.schema import approval_audit as aa
from agentic_pipeline.interfaces.cli import cli
from agentic_pipeline.orchestrator import process
from agentic_pipeline.pipeline.states import State
from tests.approval.test_approval import W, pending_book
from tests.orchestrator.helpers import write_text_books
from tests.web.conftest import ACTOR, make_client

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def audit_rows(app, pid=None):
    with app.db.read() as conn:
        q = sa.select(aa.c.action, aa.c.actor, aa.c.pipeline_id, aa.c.reason, aa.c.before_state, aa.c.after_state,
                      aa.c.filter_used).order_by(aa.c.id)
        if pid is not None:
            q = q.where(aa.c.pipeline_id == pid)
        return [dict(r._mapping) for r in conn.execute(q)]


def pending_books(app, folder, n):
    """``n`` books waiting for approval: The Waste Land, then small generated ones (all different)."""
    books = [pending_book(app)]
    for path in write_text_books(folder, n - 1):
        books.append(pending_book(app, path))
    assert all(b.state is State.PENDING_APPROVAL for b in books)
    return [b.id for b in books]


def strip_actor(rows):
    return [{k: v for k, v in r.items() if k not in ("actor", "pipeline_id")} for r in rows]


def test_inbox_review_approve_and_reject_like_the_cli(web, tmp_path):
    app, client = web
    a, b, c = pending_books(app, tmp_path, 3)
    page = client.page("/inbox").text
    assert "(3 waiting)" in page and f'href="/review/{a}"' in page
    assert client.page("/inbox?sort=confidence&desc=1").status_code == 200
    assert "Nothing waits" in client.page("/inbox?book_type=periodical").text
    assert "unknown book type" in client.page("/inbox?book_type=nope").text
    review = client.page(f"/review/{a}").text
    for part in ("Validation: ", "Chapters (", "Samples", 'data-key="a"', 'data-key="n"', "The Waste Land"):
        assert part in review, part
    resp = client.act(f"/review/{a}/approve")
    assert resp.headers["location"].startswith("/review/") and "notice=approved" in resp.headers["location"]
    assert app.pipelines.get(a).state is State.APPROVED
    client.act(f"/review/{b}/reject", {"reason": ""}, status=400)
    client.act(f"/review/{b}/reject", {"reason": "wrong edition"})
    assert app.pipelines.get(b).state is State.REJECTED
    client.act(f"/review/{a}/approve", status=409)  # already approved: the operation's refusal, shown
    # the CLI on the third book leaves the same entries, but for the actor
    result = CliRunner().invoke(cli, ["--db", app.settings.db, "approve", str(c), "--actor", "human:cli"])
    assert result.exit_code == 0, result.output
    web_entry, cli_entry = audit_rows(app, a)[-1], audit_rows(app, c)[-1]
    assert web_entry["actor"] == ACTOR and cli_entry["actor"] == "human:cli"
    assert strip_actor([web_entry]) == strip_actor([cli_entry])
    assert [r["action"] for r in audit_rows(app, b)][-1] == "REJECTED" and audit_rows(app, b)[-1]["reason"] == "wrong edition"
    assert client.page("/inbox").text.count('href="/review/') == 0


def test_edit_metadata_through_books_edit(web):
    app, client = web
    pid = pending_book(app).id
    form = client.page(f"/books/{pid}/edit").text
    assert 'name="title" size="40" value="The Waste Land"' in form
    client.act(f"/books/{pid}/edit", {"title": "The Waste Land (1922)", "authors": "T. S. Eliot", "language": "en",
                                      "book_type": "literature", "reason": "year in the title"})
    shown = client.page(f"/review/{pid}").text
    assert "The Waste Land (1922)" in shown and "T. S. Eliot" in shown
    entry = audit_rows(app, pid)[-1]
    assert entry["action"] == "METADATA_CHANGED" and entry["actor"] == ACTOR and entry["reason"] == "year in the title"
    assert entry["after_state"]["title"] == "The Waste Land (1922)"
    assert "language" in client.act(f"/books/{pid}/edit", {"language": "not a tag!"}, status=400).text


def test_batch_preview_confirm_and_refusals(web, tmp_path):
    app, client = web
    ids = pending_books(app, tmp_path, 3)
    page = client.page("/batch?operation=approve").text
    assert 'action="/batch/preview"' in page
    preview = client.act("/batch/preview", {"operation": "approve", "max_count": "2"}, status=409).text
    assert "more than the maximum of 2" in preview and "confirm-form" not in preview
    preview = client.act("/batch/preview", {"operation": "approve"}, status=200).text
    assert '<span id="matched">3</span>' in preview
    token = preview.split('name="token" value="')[1].split('"')[0]
    form = {"operation": "approve", "state": "pending_approval", "token": token, "expected_count": "3"}
    client.act("/batch/apply", {**form, "typed_count": "2"}, status=400)  # the count typed wrong: nothing done
    assert all(app.pipelines.get(i).state is State.PENDING_APPROVAL for i in ids)
    done = client.act("/batch/apply", {**form, "typed_count": "3"}, status=200).text
    assert '<span id="applied">3</span>' in done
    assert all(app.pipelines.get(i).state is State.APPROVED for i in ids)
    entries = audit_rows(app)
    assert [e["action"] for e in entries].count("APPROVED") == 3 and entries[-1]["action"] == "BATCH_APPROVED"
    assert {e["actor"] for e in entries[-4:]} == {ACTOR}
    stale = client.act("/batch/apply", {**form, "typed_count": "3"}, status=409).text  # a token works once
    assert "already" in stale or "not issued" in stale
    assert "needs a reason" in client.act("/batch/preview", {"operation": "reject"}, status=400).text


def test_queue_priority_book_detail_retry_and_audit(web):
    app, client = web
    rejected = pending_book(app).id
    pid = app.pipelines.create(source_path="/books/a.epub", actor="human:t", priority=5).id
    page = client.page("/queue").text
    assert f'href="/books/{pid}"' in page and "(1)" in page
    assert "not run yet" in client.page(f"/review/{pid}").text  # a book not processed yet still renders
    assert client.page("/queue?order=age&state=needs_retry").status_code == 200
    client.act(f"/queue/{pid}/priority", {"priority": "2", "back": "//evil.example/"})
    assert app.pipelines.get(pid).priority == 2
    assert audit_rows(app, pid)[-1]["action"] == "PRIORITY_CHANGED" and audit_rows(app, pid)[-1]["actor"] == ACTOR
    client.act(f"/queue/{pid}/priority", {"priority": "11"}, status=400)
    client.act(f"/review/{rejected}/reject", {"reason": "bad scan"})
    assert "bad scan" in client.page("/stuck").text or "rejected" in client.page("/stuck").text
    detail = client.page(f"/books/{rejected}").text
    assert "pending_approval" in detail and "REJECTED" in detail and "bad scan" in detail
    client.act(f"/books/{rejected}/retry")
    assert app.pipelines.get(rejected).state is State.NEEDS_RETRY
    assert audit_rows(app, rejected)[-1]["action"] == "RETRIED"
    audit = client.page(f"/audit?actor=web:*&pipeline={rejected}").text.split('id="audit"')[1]
    assert "RETRIED" in audit and "REJECTED" in audit and "PRIORITY_CHANGED" not in audit
    assert "Chain intact" in client.page("/audit?verify=1").text
    assert "must be a whole number" in client.page("/audit?book=x").text
    client.page("/books/999999", status=404)
    client.page("/review/abc", status=400)


def test_stuck_book_recovered_from_the_page(web, clock):
    app, client = web
    pid = app.pipelines.create(source_path="/books/s.epub", actor="human:t").id
    p = app.pipelines.claim_next("worker-gone", lease_seconds=60)
    assert p.id == pid
    process.enter(app, p, "worker-gone")  # HASHING, under a lease nobody renews
    clock.advance(3600)  # the lease expired an hour ago: orphaned
    page = client.page("/stuck").text
    assert f'href="/books/{pid}"' in page and "orphaned" in page and "retry" in page
    client.act(f"/stuck/{pid}/recover", {"action": "reset", "reason": ""}, status=400)
    client.act(f"/stuck/{pid}/recover", {"action": "retry"})
    assert app.pipelines.get(pid).state is State.NEEDS_RETRY
    assert audit_rows(app, pid)[-1]["actor"] == ACTOR


def test_search_page(web):
    app, client = web
    p = pending_book(app)
    client.act(f"/review/{p.id}/approve")
    done = process.drive(app, app.pipelines.claim_next(W, lease_seconds=60), W, isolate=False)
    assert done.state is State.COMPLETE
    page = client.page("/search?q=April+is+the+cruellest+month").text
    assert "The Waste Land" in page and f'href="/books/{p.id}"' in page
    assert "No match" not in page
    assert 'id="results"' not in client.page("/search").text


def test_csrf_origin_read_only_and_token(app):
    pid = app.pipelines.create(source_path="/books/a.epub", actor="human:t").id
    with make_client(app) as client:
        client.page("/queue")
        resp = client.post(f"/queue/{pid}/priority", data={"priority": "3"}, follow_redirects=False)
        assert resp.status_code == 403 and "CSRF" in resp.text  # no token in the form
        resp = client.post(f"/queue/{pid}/priority", data={"priority": "3", "csrf": "forged-token-1234567"})
        assert resp.status_code == 403
        resp = client.post(f"/queue/{pid}/priority", data={"priority": "3", "csrf": client.csrf},
                           headers={"Origin": "http://evil.example"})
        assert resp.status_code == 403 and "cross-site" in resp.text
        client.act(f"/queue/{pid}/priority", {"priority": "3"},
                   headers={"X-CSRF-Token": client.csrf})  # htmx sends the header
    with make_client(app, read_only=True) as client:
        page = client.page("/queue").text
        assert "<form class=\"inline\" method=\"post\"" not in page and "read-only" in page
        client.act(f"/queue/{pid}/priority", {"priority": "4"}, status=403)
    with make_client(app, token="s3cret-token") as client:
        page = client.page("/queue").text
        assert 'href="/login"' in page and "/priority" not in page
        client.act(f"/queue/{pid}/priority", {"priority": "4"}, status=401)
        client.act(f"/queue/{pid}/priority", {"priority": "4"}, headers={"Authorization": "Bearer wrong"},
                   status=401)
        client.act("/login", {"token": "wrong", "name": "eve"}, status=401)
        client.act(f"/queue/{pid}/priority", {"priority": "4"}, headers={"Authorization": "Bearer s3cret-token"})
        client.act("/login", {"token": "s3cret-token", "name": "alice"})
        client.act(f"/queue/{pid}/priority", {"priority": "6"})
        assert audit_rows(app, pid)[-1]["actor"] == "web:alice"
    assert app.pipelines.get(pid).priority == 6
    assert [r["priority"] for r in [audit_rows(app, pid)[i]["after_state"] for i in (-2, -1)]] == [4, 6]


def test_hostile_titles_render_as_text_everywhere(web):
    app, client = web
    p = pending_book(app)
    app.pipelines.update_fields(p.id, expect=State.PENDING_APPROVAL, values={"title": HOSTILE})
    queued = app.pipelines.create(source_path="/books/<b>x</b>.epub", actor="human:t", title=HOSTILE).id
    for url in ("/inbox", f"/review/{p.id}", f"/books/{p.id}", "/queue", f"/books/{queued}"):
        page = client.page(url).text
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert "&lt;script&gt;alert(" in page, url
    preview = client.act("/batch/preview", {"operation": "approve"}, status=200).text
    assert "<script>alert" not in preview and "&lt;script&gt;" in preview
    assert "<b>x</b>" not in client.page("/queue").text


def test_overview_reflects_a_state_change(web):
    app, client = web
    pid = app.pipelines.create(source_path="/books/a.epub", actor="human:t").id
    before = client.page("/?live=1").text
    assert 'id="count-detected">1<' in before
    app.pipelines.transition(pid, State.HASHING, expect=State.DETECTED, actor="human:t")
    assert 'id="count-hashing">1<' in client.page("/?live=1").text
    assert dt.datetime  # the page renders times in UTC (see filters.when)
