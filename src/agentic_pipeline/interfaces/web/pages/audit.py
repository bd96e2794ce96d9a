"""Audit: the trail filtered by actor glob, action, book and days; the chain's ``verify`` on demand."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, trail
from agentic_pipeline.interfaces.web.rendering import render
from agentic_pipeline.interfaces.web.pages import common

LIMITS = (100, 500, 1000)


def audit(request: Request):
    app = common.app_of(request)
    q = request.query_params
    values = {k: q.get(k, "").strip() for k in ("actor", "action", "book", "pipeline", "days")}
    limit = common.int_arg(q.get("limit"), "limit", 100, low=1, high=max(LIMITS))
    try:
        rows = trail.query(app, actor=values["actor"] or None, action=values["action"] or None,
                           book_id=common.int_arg(values["book"], "book"),
                           pipeline_id=common.int_arg(values["pipeline"], "pipeline"),
                           last_days=common.float_arg(values["days"], "days"), limit=limit)
        error = None
    except errors.InputError as exc:
        rows, error = [], exc
    more = common.with_params(request, limit=min(limit * 5, max(LIMITS))) if len(rows) == limit < max(LIMITS) else None
    verified = trail.verify(app) if q.get("verify") == "1" else None
    return render(request, "audit.html", rows=rows, values=values, error=error, more=more, verified=verified,
                  action_names=[a.value for a in actions.Action],
                  verify_url=common.with_params(request, verify="1"))


ROUTES = [Route("/audit", audit)]
