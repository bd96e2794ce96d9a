"""A tiny read-only HTTP server: ``GET /health`` (JSON; 200 healthy or warnings, 503 critical), ``GET /metrics``.

Binds to 127.0.0.1 unless told otherwise. ``HEAD`` answers like ``GET`` without the body; other
paths are 404, every other method 405 (JSON, with ``Allow``). Errors are rendered once, here: a
``PipelineError`` becomes 503 with ``{"error": ...}``, anything else 500 without internals. A
client gets ``REQUEST_TIMEOUT`` seconds per read or write (a slow or silent one is dropped, not
kept waiting on a thread), and at most ``MAX_CONNECTIONS`` are served at once (more get 503 at once).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import socket
import threading
from typing import Any

from agentic_pipeline import errors

log = logging.getLogger(__name__)

#: seconds a client may take to send its request (or to read the answer) before it is dropped
REQUEST_TIMEOUT = 10.0
#: connections served at once; one more is answered 503 and closed
MAX_CONNECTIONS = 32
_BUSY_BODY = b'{"error": "too many connections; try again soon"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
         b"Content-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))


class _Server(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on the connections served at once."""

    daemon_threads = True

    def __init__(self, address, handler, max_connections: int = MAX_CONNECTIONS) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):  # best effort: a client we turn away may already be gone
                request.settimeout(1.0)
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_server(app, host: str = "127.0.0.1", port: int = 8765, *,
                max_connections: int = MAX_CONNECTIONS) -> http.server.ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0: an ephemeral one, see ``server.server_address``)."""
    handler = type("HealthHandler", (_Handler,), {"app": app})
    return _Server((host, port), handler, max_connections)


def health_response(app) -> tuple[int, dict[str, Any]]:
    from agentic_pipeline.health import monitor

    report = monitor.get_health(app, save=False)
    return (503 if report["status"] == "critical" else 200), report


class _Handler(http.server.BaseHTTPRequestHandler):
    app: Any = None
    server_version = "agentic-pipeline"
    timeout = REQUEST_TIMEOUT

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
        except (socket.timeout, ConnectionError):
            raise  # the client went away or stalled: nothing to answer
        except Exception:  # noqa: BLE001 - a monitor gets a 500, the log gets the traceback
            log.exception("health endpoint failed on %s", path)
            self._send_json(500, {"error": "internal error; see the server's log", "status": "critical"})

    do_HEAD = do_GET  # noqa: N815 - the same answer, without the body (``_send``)

    def _not_allowed(self) -> None:
        self._send_json(405, {"error": f"{self.command} not allowed: this endpoint is read-only (GET, HEAD)"},
                        extra={"Allow": "GET, HEAD"})

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method without a do_<METHOD> with 501; every method but GET and HEAD is 405 here
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

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
