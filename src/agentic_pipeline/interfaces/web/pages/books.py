"""Book detail: state history as a timeline, audit entries, errors; and the dashboard's login form."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from agentic_pipeline import errors
from agentic_pipeline.books import operations as books
from agentic_pipeline.interfaces.web import security
from agentic_pipeline.interfaces.web.rendering import render
from agentic_pipeline.interfaces.web.pages import common


def book(request: Request):
    app = common.app_of(request)
    pid = common.int_arg(request.path_params["id"], "book id")
    return render(request, "book.html", b=books.show(app, pid))


def login_page(request: Request):
    return render(request, "login.html", error=None)


def login(request: Request):
    options: security.Options = request.app.state.options
    form = common.form_of(request)
    if options.token is None:
        return common.back("/", "no token is needed here")
    if not options.token_ok((form.get("token") or "").strip()):
        return render(request, "login.html", 401, error=errors.InputError("wrong token"))
    name = (form.get("name") or "").strip() or options.user
    response = RedirectResponse("/", 303)
    response.set_cookie(security.AUTH_COOKIE, options.auth_cookie(name), httponly=True, samesite="strict")
    return response


ROUTES = [
    Route("/books/{id}", book),
    Route("/login", login_page),
    Route("/login", login, methods=["POST"]),
]
