"""Queue: waiting books by priority (claim order) or age, a page at a time; change a book's priority."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from agentic_pipeline.health import dashboard
from agentic_pipeline.interfaces.web.rendering import render
from agentic_pipeline.interfaces.web.pages import common
from agentic_pipeline.queue import operations as queue_ops


def queue(request: Request):
    q = request.query_params
    data = dashboard.queue_page(common.app_of(request), state=q.get("state", "detected"),
                                order=q.get("order", "priority"), limit=common.int_arg(q.get("limit"), "limit", 50),
                                offset=common.int_arg(q.get("offset"), "offset", 0))
    order_links = {o: common.with_params(request, order=o, offset=None) for o in ("priority", "age")}
    state_links = {s: common.with_params(request, state=s, offset=None)
                   for s in ("detected", "needs_retry", "approved", "pending_approval")}
    return render(request, "queue.html", d=data, order_links=order_links, state_links=state_links,
                  pages=common.page_links(request, data["offset"], data["limit"], data["total"]))


def set_priority(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    form = common.form_of(request)
    priority = common.int_arg(form.get("priority"), "priority", low=1, high=10)
    if priority is None:
        from agentic_pipeline import errors

        raise errors.InputError("give a priority from 1 (urgent) to 10 (backfill)")
    result = queue_ops.set_priority(app, pid, priority, actor=common.actor_of(request),
                                    reason=(form.get("reason") or "").strip() or None)
    message = (f"#{pid}: priority {result['old']['priority']} → {result['new']['priority']}" if result["changed"]
               else f"#{pid} already had priority {priority}")
    return common.back(common.local_url(form.get("back"), "/queue"), message)


ROUTES = [
    Route("/queue", queue),
    Route("/queue/{id}/priority", set_priority, methods=["POST"]),
]
