"""A tiny read-only HTTP server: ``GET /health`` (JSON; 200 healthy or warnings, 503 critical), ``GET /metrics``.

Binds to 127.0.0.1 unless told otherwise. Other paths are 404, other methods 405. Errors are
rendered once, here: a ``PipelineError`` becomes 503 with ``{"error": ...}``.
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any

from agentic_pipeline import errors


def make_server(app, host: str = "127.0.0.1", port: int = 8765) -> http.server.ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0: an ephemeral one, see ``server.server_address``)."""
    handler = type("HealthHandler", (_Handler,), {"app": app, "lock": threading.Lock()})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def health_response(app) -> tuple[int, dict[str, Any]]:
    from agentic_pipeline.health import monitor

    report = monitor.get_health(app, save=False)
    return (503 if report["status"] == "critical" else 200), report


class _Handler(http.server.BaseHTTPRequestHandler):
    app: Any = None
    lock: threading.Lock
    server_version = "agentic-pipeline"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if path == "/health":
                status, report = health_response(self.app)
                self._send(status, json.dumps(report, default=str).encode(), "application/json")
            elif path == "/metrics":
                from agentic_pipeline.health import metrics

                body, content_type = metrics.render(self.app)
                self._send(200, body, content_type)
            else:
                self._send_json(404, {"error": f"no such path {path}; try /health or /metrics"})
        except errors.PipelineError as exc:
            self._send_json(503, {"error": str(exc), "status": "critical"})

    def _not_allowed(self) -> None:
        self._send_json(405, {"error": f"{self.command} not allowed: this endpoint is read-only (GET)"},
                        extra={"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed  # noqa: N815

    def _send_json(self, status: int, doc: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json", extra)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request is noise here
        pass
