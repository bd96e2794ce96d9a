"""Overview: the design's cards, queue by priority, 24-hour throughput, workers; the live part polls."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from agentic_pipeline.health import dashboard
from agentic_pipeline.interfaces.web.rendering import render
from agentic_pipeline.interfaces.web.pages.common import app_of

#: seconds between two refreshes of the live part (the issue asks for at most 5)
POLL_SECONDS = 3


def overview(request: Request):
    data = dashboard.overview(app_of(request))
    template = "overview_live.html" if request.query_params.get("live") else "overview.html"
    return render(request, template, d=data, poll=POLL_SECONDS)


ROUTES = [Route("/", overview, name="overview")]
