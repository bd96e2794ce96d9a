"""Stuck books (with what the recovery rule would do, and retry / reset / reject) and failures by cause."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from agentic_pipeline.health import dashboard, monitor, recovery
from agentic_pipeline.interfaces.web.rendering import render
from agentic_pipeline.interfaces.web.pages import common
from agentic_pipeline.orchestrator import retries


def stuck(request: Request):
    app = common.app_of(request)
    found = monitor.find_stuck(app)
    books = [{"s": s, "rule": recovery.decide(s, app.settings)} for s in found["stuck"]]
    return render(request, "stuck.html", books=books, failures=dashboard.failures(app))


def recover(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    form = common.form_of(request)
    action = form.get("action", "retry")
    result = recovery.recover_one(app, pid, action, actor=common.actor_of(request),
                                  reason=(form.get("reason") or "").strip() or None, force=form.get("force") == "1")
    return common.back("/stuck", f"#{pid}: {result.get('from', '')} → {result.get('to', action)}")


def retry(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    retries.retry(app, pid, actor=common.actor_of(request))
    return common.back(common.local_url(common.form_of(request).get("back"), f"/books/{pid}"),
                       f"#{pid} sent to retry")


ROUTES = [
    Route("/stuck", stuck),
    Route("/stuck/{id}/recover", recover, methods=["POST"]),
    Route("/books/{id}/retry", retry, methods=["POST"]),
]
