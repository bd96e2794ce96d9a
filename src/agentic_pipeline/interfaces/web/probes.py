"""``GET /health`` (JSON; 200 healthy or warnings, 503 critical) and ``GET /metrics`` (Prometheus text).

``HEAD`` answers like ``GET`` without the body; every other method is 405 (JSON, with ``Allow``). Errors are
rendered once, here: a ``PipelineError`` becomes 503 with ``{"error": ...}``, anything else 500 without
internals. The probes run on their own small thread limiter, so a dashboard busy with slow pages never makes a
monitor wait for a thread.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response

from agentic_pipeline import errors

log = logging.getLogger(__name__)

_limiter: anyio.CapacityLimiter | None = None


def health_response(app) -> tuple[int, dict[str, Any]]:
    from agentic_pipeline.health import monitor

    report = monitor.get_health(app, save=False)
    return (503 if report["status"] == "critical" else 200), report


def _health(app) -> tuple[int, bytes, str]:
    status, report = health_response(app)
    return status, json.dumps(report, default=str).encode(), "application/json"


def _metrics(app) -> tuple[int, bytes, str]:
    from agentic_pipeline.health import metrics

    body, content_type = metrics.render(app)
    return 200, body, content_type


def _json(status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(doc).encode(), status, headers=headers, media_type="application/json")


def _probe(render):
    async def endpoint(request: Request) -> Response:
        global _limiter
        if request.method not in ("GET", "HEAD"):
            return _json(405, {"error": f"{request.method} not allowed: this endpoint is read-only (GET, HEAD)"},
                         {"Allow": "GET, HEAD"})
        if _limiter is None:
            _limiter = anyio.CapacityLimiter(4)
        app = request.app.state.pipeline_app
        try:
            status, body, content_type = await anyio.to_thread.run_sync(render, app, limiter=_limiter)
        except errors.PipelineError as exc:
            return _json(503, {"error": str(exc), "status": "critical"})
        except Exception:  # noqa: BLE001 - a monitor gets a 500, the log gets the traceback
            log.exception("%s failed", request.url.path)
            return _json(500, {"error": "internal error; see the server's log", "status": "critical"})
        return Response(b"" if request.method == "HEAD" else body, status, media_type=None,
                        headers={"Content-Type": content_type, "Content-Length": str(len(body))})

    return endpoint


def _lookup(name):
    # looked up at call time, so a test can replace health_response / metrics rendering
    return lambda app: globals()[name](app)


class _AnyMethod:
    """An ASGI endpoint for every method (a function endpoint would get Starlette's plain-text 405)."""

    def __init__(self, fn) -> None:
        self.asgi = request_response(fn)

    async def __call__(self, scope, receive, send) -> None:
        await self.asgi(scope, receive, send)


ROUTES = [
    Route("/health", _AnyMethod(_probe(_lookup("_health")))),
    Route("/metrics", _AnyMethod(_probe(_lookup("_metrics")))),
]
