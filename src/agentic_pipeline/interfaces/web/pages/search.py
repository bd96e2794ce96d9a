"""Search: a query box over the library; results with book, chapter, snippet and a link to the book."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from agentic_pipeline import errors
from agentic_pipeline.interfaces.web.rendering import render
from agentic_pipeline.interfaces.web.pages import common
from agentic_pipeline.library import search as library_search

LIMIT = 20


def search(request: Request):
    query = (request.query_params.get("q") or "").strip()
    results, error = [], None
    if query:
        try:
            results = library_search.search(common.app_of(request), query, limit=LIMIT)
        except errors.InputError as exc:
            error = exc
    return render(request, "search.html", q=query, results=results, error=error)


ROUTES = [Route("/search", search)]
