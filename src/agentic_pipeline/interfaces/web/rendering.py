"""The dashboard's template environment and ``render`` (the pages and the app both use them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from agentic_pipeline.interfaces.web import filters as tfilters

HERE = Path(__file__).parent


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(tfilters.FILTERS)
    return env


ENV = environment()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` with the request's CSRF token, actor and write permission in its context."""
    state = request.scope.get("state", {})
    base = {"request": request, "csrf": state.get("csrf", ""), "can_write": state.get("can_write", False),
            "actor": state.get("actor", ""), "nav": request.url.path, "partial": _is_htmx(request)}
    html = ENV.get_template(template).render(**base, **context)
    return HTMLResponse(html, status_code)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def error_page(request: Request, status: int, message: str, hint: str | None = None) -> HTMLResponse:
    return render(request, "error.html", status, status=status, message=message, hint=hint)
