"""The dashboard's pages, one module per area; each route parses, calls one operation, renders a template."""

from __future__ import annotations

from starlette.routing import Route

from agentic_pipeline.interfaces.web.pages import audit, batch, books, inbox, overview, queue, search, stuck


def routes() -> list[Route]:
    out: list[Route] = []
    for module in (overview, inbox, batch, queue, stuck, books, audit, search):
        out.extend(module.ROUTES)
    return out
