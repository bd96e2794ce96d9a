"""Approval inbox (pending books by the batch filter, sortable) and the review page of one book."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from agentic_pipeline import errors
from agentic_pipeline.approval import operations as approval
from agentic_pipeline.approval import review as review_ops
from agentic_pipeline.interfaces.web.app import render
from agentic_pipeline.interfaces.web.pages import common

PENDING = "pending_approval"


def _query(request: Request) -> dict:
    q = request.query_params
    return {"sort": q.get("sort", "age"), "descending": q.get("desc") == "1",
            "limit": common.int_arg(q.get("limit"), "limit", 50), "offset": common.int_arg(q.get("offset"), "offset", 0)}


def inbox(request: Request):
    app = common.app_of(request)
    args = _query(request)
    values = common.filter_values(request.query_params)
    try:
        filt = common.make_filter(request.query_params, PENDING)
        data = review_ops.inbox(app, filt, **args)
        error = None
    except errors.InputError as exc:
        data, error = {"rows": [], "total": 0, **args}, exc
    sort_links = {key: common.with_params(request, sort=key, offset=None,
                                          desc="1" if key == data["sort"] and not data["descending"] else None)
                  for key in review_ops.SORTS}
    return render(request, "inbox.html", d=data, values=values, error=error, sort_links=sort_links,
                  pages=common.page_links(request, args["offset"], args["limit"], data["total"]),
                  book_types=_book_types())


def _book_types():
    from agentic_pipeline.batch import filters

    return filters.BOOK_TYPES


def review_page(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    data = review_ops.review(app, pid)
    nxt = _next_pending(app, pid)
    return render(request, "review.html", b=data, next_id=nxt)


def _next_pending(app, after: int) -> int | None:
    """The next book in the inbox's default order after ``after`` (wrapping to the first), if any."""
    from agentic_pipeline.batch import filters

    rows = review_ops.inbox(app, filters.make_filter(state=PENDING), limit=200)["rows"]
    ids = [r["id"] for r in rows if r["id"] != after]
    return ids[0] if ids else None


def approve(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    form = common.form_of(request)
    result = approval.approve(app, pid, actor=common.actor_of(request), reason=form.get("reason") or None)
    return _after_decision(app, pid, f"approved #{pid} {result.get('title') or ''}".strip())


def reject(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    reason = (common.form_of(request).get("reason") or "").strip()
    if not reason:
        raise errors.InputError("a rejection needs a reason: say what is wrong with the book")
    approval.reject(app, pid, actor=common.actor_of(request), reason=reason)
    return _after_decision(app, pid, f"rejected #{pid}")


def _after_decision(app, pid: int, message: str):
    nxt = _next_pending(app, pid)
    return common.back(f"/review/{nxt}" if nxt else "/inbox", message)


ROUTES = [
    Route("/inbox", inbox),
    Route("/review/{id}", review_page),
    Route("/review/{id}/approve", approve, methods=["POST"]),
    Route("/review/{id}/reject", reject, methods=["POST"]),
]
