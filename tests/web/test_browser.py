"""The dashboard in a real browser: headless Chromium from Debian driven by Playwright (one browser per module).

Overview updates without a reload; approve from the review page and the book leaves the inbox; batch approve
by filter through preview and confirm; keyboard approve. Screenshots of the overview and a review page are
made from the sample books (``UPDATE_SCREENSHOTS=1`` writes them to docs/img/ for the README).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from agentic_pipeline.approval import operations as approval
from agentic_pipeline.interfaces.web import app as web_app
from agentic_pipeline.interfaces.web import security, server as web_server
from agentic_pipeline.orchestrator import process, queueing
from agentic_pipeline.pipeline.states import State
from tests.conftest import make_db_url, open_app
from tests.orchestrator.helpers import SAMPLES, write_text_books
from tests.web import browser

REPO = Path(__file__).resolve().parents[2]
W = "worker-browser-test"
SAMPLE_BOOKS = ("waste-land.md", "romeo-juliet.epub", "live-manual-de.epub", "kusamakura-ja.epub")


@pytest.fixture(scope="module")
def chromium():
    browser.require()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(browser.CHROMIUM), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def site(tmp_path, sqlite_template, clock):
    """A real server on 127.0.0.1 over a fresh SQLite database; yields (app, base URL)."""
    url = make_db_url("sqlite", tmp_path, sqlite_template, None)
    app = open_app(url)
    srv = web_server.make_server(web_app.create_app(app, security.Options(user="browser")), "127.0.0.1", 0).start()
    yield app, f"http://127.0.0.1:{srv.address[1]}"
    srv.shutdown()
    app.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    context.close()
    assert not errors, errors  # no CSP violation, no script error


def pend(app, path: Path) -> int:
    pid = queueing.queue_file(app, path, actor="human:test")["id"]
    p = process.drive(app, app.pipelines.claim_next(W, lease_seconds=60), W, isolate=False)
    assert p.id == pid and p.state is State.PENDING_APPROVAL, (path, p.state)
    return pid


def test_overview_shows_a_state_change_without_reload(site, page):
    app, base = site
    page.goto(base + "/")
    assert page.inner_text("#card-queued .n") == "0"
    page.evaluate("window.__still_the_same_page = true")
    app.pipelines.create(source_path="/books/new.epub", actor="human:test")
    deadline = time.monotonic() + 8  # the live part polls every 3 s
    while page.inner_text("#card-queued .n") != "1":
        assert time.monotonic() < deadline, "the overview did not show the new book"
        page.wait_for_timeout(200)
    assert page.evaluate("window.__still_the_same_page === true")  # htmx swapped the part, no reload


def test_approve_from_review_page_and_by_keyboard(site, page, tmp_path):
    app, base = site
    first = pend(app, SAMPLES / "waste-land.md")
    second, third = (pend(app, p) for p in write_text_books(tmp_path / "books", 2))
    page.goto(f"{base}/review/{first}")
    assert "The Waste Land" in page.inner_text("#book-title")
    page.click("#approve")
    page.wait_for_url(re.compile(r"/review/\d+\?notice=approved"))
    assert app.pipelines.get(first).state is State.APPROVED
    page.goto(base + "/inbox")
    rows = page.locator("#inbox tbody tr")
    assert rows.count() == 2 and page.locator(f'#inbox tr[data-id="{first}"]').count() == 0
    page.goto(f"{base}/review/{second}")
    page.keyboard.press("a")  # the keyboard shortcut for approve
    page.wait_for_url(re.compile(r"notice=approved"))
    assert app.pipelines.get(second).state is State.APPROVED
    page.goto(f"{base}/review/{third}")
    page.keyboard.press("r")  # focuses the reason box: typing there does not trigger shortcuts
    page.keyboard.type("a bad scan")
    assert app.pipelines.get(third).state is State.PENDING_APPROVAL
    page.click("#reject")
    page.wait_for_url(re.compile(r"notice=rejected"))
    assert app.pipelines.get(third).state is State.REJECTED


def test_batch_approve_by_filter_through_preview_and_confirm(site, page, tmp_path):
    app, base = site
    ids = [pend(app, p) for p in write_text_books(tmp_path / "books", 3)]
    other = pend(app, SAMPLES / "waste-land.md")
    page.goto(base + "/batch?operation=approve")
    page.fill("input[name=source_path_pattern]", "*/books/book-*.md")
    page.click("#preview-button")
    page.wait_for_selector("#preview")
    assert page.inner_text("#matched") == "3"
    assert page.is_disabled("#confirm-button") is False
    page.fill("#typed-count", "2")
    assert page.is_disabled("#confirm-button")  # the count typed must match
    page.fill("#typed-count", "3")
    page.click("#confirm-button")
    page.wait_for_selector("#applied")
    assert page.inner_text("#applied") == "3"
    assert all(app.pipelines.get(i).state is State.APPROVED for i in ids)
    assert app.pipelines.get(other).state is State.PENDING_APPROVAL


def test_screenshots_from_the_sample_books(site, page, tmp_path):
    app, base = site
    ids = [pend(app, SAMPLES / name) for name in SAMPLE_BOOKS]
    approval.approve(app, ids[0], actor="human:test")  # one book all the way through, for the 24 h chart
    done = process.drive(app, app.pipelines.claim_next(W, lease_seconds=60), W, isolate=False)
    assert done.state is State.COMPLETE
    approval.reject(app, ids[3], actor="human:test", reason="wanted the English translation")
    for path in write_text_books(tmp_path / "more", 2):
        app.pipelines.create(source_path=str(path), actor="human:test", priority=3)
    app.pipelines.create(source_path="/books/later.pdf", actor="human:test", priority=7)
    out = REPO / "docs" / "img" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    page.goto(base + "/")
    page.screenshot(path=str(out / "overview.png"), full_page=True)
    page.goto(f"{base}/review/{ids[1]}")
    assert page.inner_text("#book-title")
    page.screenshot(path=str(out / "review.png"), full_page=False)
    for name in ("overview.png", "review.png"):
        assert (out / name).stat().st_size > 10_000
