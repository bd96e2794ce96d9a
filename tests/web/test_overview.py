"""Overview page and security headers, in process on both engines."""

from __future__ import annotations

from agentic_pipeline.interfaces.web import security


def test_overview_cards_queue_bars_chart_and_live_part(web):
    app, client = web
    for i in range(3):
        app.pipelines.create(source_path=f"/b/{i}.epub", actor="human:t", priority=2 + i)
    page = client.page("/").text
    assert 'id="card-queued"><span class="n">3</span> queued' in page
    assert 'hx-get="/?live=1"' in page and 'hx-trigger="every 3s"' in page
    assert "<svg" in page and "P2" in page
    live = client.page("/?live=1", headers={"HX-Request": "true"}).text
    assert "<html" not in live and 'id="card-queued"' in live


def test_security_headers_on_pages_and_probes(web):
    _, client = web
    for url in ("/", "/health", "/static/style.css", "/nope"):
        resp = client.get(url)
        assert resp.headers["content-security-policy"] == security.CSP, url
        assert "'unsafe-inline'" not in resp.headers["content-security-policy"]
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["x-content-type-options"] == "nosniff"
    assert client.get("/nope").status_code == 404


def test_vendored_htmx_and_its_licence_are_served(web):
    _, client = web
    js = client.get("/static/htmx.min.js")
    assert js.status_code == 200 and b"htmx" in js.content[:2000]
    assert "Zero-Clause BSD" in client.get("/static/htmx.LICENSE").text
