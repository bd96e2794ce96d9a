"""The dashboard's ASGI application: routes, the security middleware, the template environment.

``create_app(app, options)`` wires the pages (``pages/``, each a thin skin: parse the request, call one
operation, render a template) and the probes (``probes.py``) around one ``agentic_pipeline.app.App``.
Pages run on Starlette's thread pool (the operations are synchronous); the probes have their own limiter.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from agentic_pipeline import errors
from agentic_pipeline.interfaces.web import pages, probes, security
from agentic_pipeline.interfaces.web.rendering import ENV, error_page, render  # noqa: F401 - the pages' names

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
PROBES = frozenset({"/health", "/metrics"})
#: the largest form body a POST may carry (the biggest is a batch filter with a reason)
MAX_FORM_BYTES = 64 * 1024


class Guard:
    """ASGI middleware: security headers on every answer; CSRF, token and read-only checks on every write."""

    def __init__(self, app, options: security.Options) -> None:
        self.app = app
        self.options = options

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        csrf = security.cookie(scope, security.CSRF_COOKIE)
        fresh = None
        if (not csrf or len(csrf) < 16) and scope["path"] not in PROBES:
            csrf = fresh = security.new_csrf()
        user = self._user(scope)
        state.update(csrf=csrf, can_write=not self.options.read_only and user is not None,
                     actor=security.Options(user=user or self.options.user).actor,
                     needs_login=self.options.token is not None and user is None,
                     read_only=self.options.read_only)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + security.HEADERS
                if fresh:
                    headers.append((b"set-cookie", f"{security.CSRF_COOKIE}={fresh}; Path=/; HttpOnly; "
                                                   "SameSite=Strict".encode()))
                message = {**message, "headers": headers}
            await send(message)

        if scope["method"] in security.SAFE_METHODS or scope["path"] in PROBES:  # the probes answer 405 themselves
            await self.app(scope, receive, send_with_headers)
            return
        body = await _read_body(receive, MAX_FORM_BYTES)
        refusal = self._refusal(scope, body, csrf if not fresh else None, user)
        if refusal is not None:
            await _send_refusal(scope, send_with_headers, *refusal)
            return
        state["body"] = body
        await self.app(scope, _replay(body), send_with_headers)

    def _user(self, scope) -> str | None:
        """Who may write: the server's user, unless a token is needed and not given."""
        if self.options.token is None:
            return self.options.user
        auth = security.header(scope, b"authorization") or ""
        if auth.startswith("Bearer ") and self.options.token_ok(auth[7:].strip()):
            return self.options.user
        return self.options.cookie_user(security.cookie(scope, security.AUTH_COOKIE))

    def _refusal(self, scope, body: bytes | None, csrf: str | None, user: str | None) -> tuple[int, str] | None:
        if body is None:
            return 413, "request body too large"
        if self.options.read_only:
            return 403, "this dashboard is read-only (started with --read-only)"
        if not security.same_origin(scope):
            return 403, "cross-site request refused"
        given = security.header(scope, b"x-csrf-token")
        if given is None:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            given = (form.get("csrf") or [None])[0]
        if csrf is None or given is None or not _equal(given, csrf):
            return 403, "missing or wrong CSRF token: reload the page and try again"
        if user is None and scope["path"] != "/login":
            return 401, "write actions need the dashboard token: log in at /login"
        return None


def _equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


async def _read_body(receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _send_refusal(scope, send, status: int, message: str) -> None:
    accept = security.header(scope, b"accept") or ""
    if "text/html" in accept and security.header(scope, b"hx-request") is None:
        body = ENV.get_template("error.html").render(
            request=None, csrf="", can_write=False, actor="", nav="", partial=False, status=status,
            message=message, hint="log in at /login" if status == 401 else None).encode()
        ctype = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": message}).encode()
        ctype = b"application/json"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_page(request, 404, f"no page at {request.url.path}", "see the links above")


async def _pipeline_error(request: Request, exc: errors.PipelineError) -> Response:
    if isinstance(exc, errors.NotFound):
        status = 404
    elif isinstance(exc, errors.InputError):
        status = 400
    elif isinstance(exc, errors.StoreError) and not isinstance(exc, errors.Conflict):
        status = 503
    else:
        status = 409  # a refusal, a lost race, a transition the state does not allow
    return error_page(request, status, exc.message, exc.hint)


def create_app(app, options: security.Options | None = None) -> Starlette:
    """The dashboard and probes over ``app`` (an ``agentic_pipeline.app.App``)."""
    options = options or security.Options()
    routes = [*probes.ROUTES, *pages.routes(),
              Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    web = Starlette(routes=routes, exception_handlers={404: _not_found, errors.PipelineError: _pipeline_error})
    web.state.pipeline_app = app
    web.state.options = options
    web.add_middleware(Guard, options=options)
    return web
