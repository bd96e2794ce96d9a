"""Approval inbox (``books.list_books`` on PENDING_APPROVAL with the batch filter, sortable) and review pages.

The review page is ``books.show`` (type, reasoning, probabilities, checks failed first, chapters with word
counts) plus sample passages; approve / reject are ``approval.operations``; edit is ``books.edit``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from agentic_pipeline import errors
from agentic_pipeline.approval import operations as approval
from agentic_pipeline.approval import review
from agentic_pipeline.books import operations as books
from agentic_pipeline.interfaces.web.rendering import render
from agentic_pipeline.interfaces.web.pages import common

PENDING = "pending_approval"
PAGE = 50
#: the inbox's columns: (sort key of books.list_books, label)
COLUMNS = (("id", "#"), ("title", "title"), ("type", "type"), ("confidence", "confidence"),
           ("created", "queued"), ("priority", "priority"))


def inbox(request: Request):
    app = common.app_of(request)
    q = request.query_params
    sort = q.get("sort", "created")
    values = common.filter_values(q)
    try:
        data = books.list_books(app, common.make_filter(q, PENDING), sort=sort, limit=PAGE,
                                after=common.int_arg(q.get("after"), "after"))
        error = None
    except errors.InputError as exc:
        data, error = {"rows": [], "total": 0, "next_after": None, "sort": "created"}, exc
    key = data["sort"].lstrip("-")
    sort_links = {k: common.with_params(request, sort=("-" + k) if data["sort"] == k else k, after=None)
                  for k, _ in COLUMNS}
    pages = {"next": common.with_params(request, after=data["next_after"]) if data["next_after"] else None,
             "first": common.with_params(request, after=None) if q.get("after") else None}
    return render(request, "inbox.html", d=data, key=key, columns=COLUMNS, values=values, error=error,
                  sort_links=sort_links, pages=pages, book_types=_book_types())


def _book_types():
    from agentic_pipeline.batch import filters

    return filters.BOOK_TYPES


def review_page(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    book = books.show(app, pid)
    return render(request, "review.html", b=book, passages=review.sample_passages(app, pid),
                  next_id=_next_pending(app, pid))


def _next_pending(app, after: int) -> int | None:
    """The next book waiting for approval, in the inbox's default order (oldest first), after ``after``."""
    from agentic_pipeline.batch import filters

    rows = books.list_books(app, filters.make_filter(state=PENDING), sort="created", limit=2)["rows"]
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


def edit_page(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    return render(request, "edit.html", b=books.show(app, pid), book_types=_book_types(), error=None)


def edit(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    form = common.form_of(request)
    current = books.show(app, pid)
    authors = [a.strip() for a in (form.get("authors") or "").split(";") if a.strip()]
    given = {"title": (form.get("title") or "").strip() or None, "authors": authors,
             "language": (form.get("language") or "").strip() or None,
             "book_type": (form.get("book_type") or "").strip() or None}
    before = {"title": current["title"], "authors": current["authors"], "language": current["language"],
              "book_type": current["classification"]["book_type"]}
    changes = {k: v for k, v in given.items() if v is not None and v != before[k] and not (k == "authors" and not v)}
    if not changes:
        return common.back(f"/review/{pid}" if current["state"] == PENDING else f"/books/{pid}", "nothing changed")
    try:
        result = books.edit(app, pid, actor=common.actor_of(request),
                            reason=(form.get("reason") or "").strip() or None, **changes)
    except errors.InputError as exc:
        return render(request, "edit.html", 400, b=current, book_types=_book_types(), error=exc)
    changed = ", ".join(sorted(result["changed"]))
    return common.back(f"/review/{pid}" if current["state"] == PENDING else f"/books/{pid}",
                       f"#{pid}: changed {changed}")


ROUTES = [
    Route("/inbox", inbox),
    Route("/review/{id}", review_page),
    Route("/review/{id}/approve", approve, methods=["POST"]),
    Route("/review/{id}/reject", reject, methods=["POST"]),
    Route("/books/{id}/edit", edit_page),
    Route("/books/{id}/edit", edit, methods=["POST"]),
]
