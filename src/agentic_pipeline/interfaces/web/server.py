"""The HTTP server under ``serve``: uvicorn (h11) with guards so that slow or hostile clients cannot blind monitoring.

An event-loop server holds a silent connection for the price of a few objects, not a thread, but uvicorn alone
still lets a client dribble a request head forever (it has no deadline before the first answer). So each
connection gets:

* a **deadline for the whole request** (head and body, ``request_timeout`` seconds from its first byte, or
  from the connection when nothing arrives): past it the connection is dropped with one log line;
* a **per-client-address cap** (``max_per_client``) and a **global cap** (``max_connections``): a connection
  over either is *probe-only*: it may ask for ``/health`` or ``/metrics`` (answered at once, on their own
  thread limiter) and gets 503 for anything else, with a short deadline (``over_cap_timeout``);
* past ``hard_limit`` connections a new one is answered 503 and closed before reading anything.

A client that goes away before its answer is written costs one log line, never a traceback.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import threading
import time
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import Server

log = logging.getLogger(__name__)

#: paths a connection over its caps may still ask for
PROBE_PATHS = frozenset({"/health", "/metrics"})
_BUSY_BODY = b'{"error": "too many connections; try again soon"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
         b"Content-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))
_FINISHED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


class Guard:
    """Connection accounting shared by every connection of one server (touched only on the event loop)."""

    def __init__(self, *, request_timeout: float = 10.0, max_per_client: int = 16, max_connections: int = 256,
                 over_cap_timeout: float = 2.0, hard_limit: int = 4096) -> None:
        self.request_timeout = request_timeout
        self.max_per_client = max_per_client
        self.max_connections = max_connections
        self.over_cap_timeout = over_cap_timeout
        self.hard_limit = hard_limit
        self.per_client: collections.Counter[str] = collections.Counter()
        self.total = 0
        self.probe_only: set[tuple[str, int]] = set()
        self.dropped = 0  # connections dropped at their deadline (for tests and /metrics readers)

    def opened(self, client: tuple[str, int] | None) -> bool:
        """Count a new connection; True when it is over a cap (probe-only)."""
        host = client[0] if client else "?"
        self.total += 1
        self.per_client[host] += 1
        over = self.per_client[host] > self.max_per_client or self.total > self.max_connections
        if over and client:
            self.probe_only.add(tuple(client))
        return over

    def closed(self, client: tuple[str, int] | None) -> None:
        host = client[0] if client else "?"
        self.total -= 1
        self.per_client[host] -= 1
        if self.per_client[host] <= 0:
            del self.per_client[host]
        if client:
            self.probe_only.discard(tuple(client))

    def is_probe_only(self, client: Any) -> bool:
        return bool(client) and tuple(client) in self.probe_only


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a whole-request deadline and the caps of a ``Guard``."""

    guard: Guard  # set on the subclass ``make_server`` builds

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._counted = False
        if self.guard.total >= self.guard.hard_limit:
            transport.write(_BUSY)
            transport.close()
            return
        self._counted = True
        over = self.guard.opened(self.client)
        self._timeout = self.guard.over_cap_timeout if over else self.guard.request_timeout
        self._arm()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self._timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state in _FINISHED:
            return
        self.guard.dropped += 1
        log.info("dropped client %s: no complete request within %gs", _who(self.client), self._timeout)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # a new request on a kept-alive connection: its own deadline
        super().data_received(data)
        if self.conn.their_state in _FINISHED:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted:
            self._counted = False
            self.guard.closed(self.client)
        if self.cycle is not None and not self.cycle.response_complete:
            log.info("client %s went away before the answer to %s %s was sent", _who(self.client),
                     self.scope.get("method"), self.scope.get("path"))
        super().connection_lost(exc)


def _who(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown"


class ProbeOnlyMiddleware:
    """ASGI middleware: a connection over its caps gets the probes and 503 for everything else."""

    def __init__(self, app, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] == "http" and scope["path"] not in PROBE_PATHS
                and self.guard.is_probe_only(scope.get("client"))):
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                    (b"content-length", str(len(_BUSY_BODY)).encode())]})
            await send({"type": "http.response.body", "body": _BUSY_BODY})
            return
        await self.app(scope, receive, send)


class WebServer:
    """A bound uvicorn server: ``address``, ``serve_forever()`` (blocks), ``start()`` / ``shutdown()`` (a thread)."""

    def __init__(self, asgi, sock: socket.socket, guard: Guard) -> None:
        self.sock = sock
        self.guard = guard
        protocol = type("Guarded", (GuardedH11Protocol,), {"guard": guard})
        config = Config(ProbeOnlyMiddleware(asgi, guard), http=protocol, ws="none", lifespan="off",
                        log_config=None, access_log=False, server_header=False, timeout_keep_alive=5,
                        h11_max_incomplete_event_size=16 * 1024, timeout_graceful_shutdown=2)
        self.server = Server(config)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def serve_forever(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 10.0) -> "WebServer":
        self._thread = threading.Thread(target=self.serve_forever, name="web-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the web server did not start")
            time.sleep(0.01)
        return self

    def shutdown(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (raises OSError / OverflowError like ``socket.bind``)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


def make_server(asgi, host: str = "127.0.0.1", port: int = 8765, *, guard: Guard | None = None) -> WebServer:
    """A server for ``asgi`` bound to ``host:port`` (port 0: an ephemeral one, see ``.address``)."""
    return WebServer(asgi, bind(host, port), guard or Guard())
