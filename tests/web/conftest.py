"""Fixtures for the dashboard: an in-process client (Starlette's TestClient) over the ``app`` fixture."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from agentic_pipeline.interfaces.web import app as web_app
from agentic_pipeline.interfaces.web import security

ACTOR = "web:tester"


class Client(TestClient):
    """A TestClient that knows the page's CSRF token and posts forms with it."""

    csrf: str = ""

    def page(self, url: str, status: int = 200, **kw):
        resp = self.get(url, **kw)
        assert resp.status_code == status, (url, resp.status_code, resp.text[:500])
        found = re.search(r'name="csrf" value="([^"]+)"', resp.text) or re.search(
            r'"X-CSRF-Token": "([^"]+)"', resp.text)
        if found:
            self.csrf = found.group(1)
        return resp

    def act(self, url: str, data: dict | None = None, status: int = 303, **kw):
        if not self.csrf:
            self.page("/")
        resp = self.post(url, data={"csrf": self.csrf, **(data or {})}, follow_redirects=False, **kw)
        assert resp.status_code == status, (url, resp.status_code, resp.text[:800])
        return resp


def make_client(app, **options) -> Client:
    opts = security.Options(user="tester", **options)
    return Client(web_app.create_app(app, opts), base_url="http://127.0.0.1:8765")


@pytest.fixture
def web(app):
    with make_client(app) as client:
        yield app, client
