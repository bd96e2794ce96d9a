"""Who may change what: CSRF on every state-changing request, the write token off loopback, ``--read-only``.

* **CSRF**: double submit. Every page sets a random ``ap_csrf`` cookie (SameSite=Strict, HttpOnly) and puts the
  same value in its forms (``csrf`` field) and in ``hx-headers`` (``X-CSRF-Token``); a POST whose field or
  header does not match the cookie is refused (403), as is one whose ``Origin`` is another site.
* **Write token**: when the server is bound to a non-loopback address, a POST also needs the token
  (``AGENTIC_PIPELINE_WEB_TOKEN``, or one generated and printed at start): ``Authorization: Bearer <token>``,
  or the ``ap_auth`` cookie that ``/login`` sets after the token is typed in. Reading stays open.
* **Read-only**: every POST is refused (403) and the pages show no action buttons.
* **Headers** on every answer: a CSP without inline script (``script-src 'self'``), frame denial, nosniff.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import secrets
from typing import Any

from agentic_pipeline.audit import actions

CSRF_COOKIE = "ap_csrf"
AUTH_COOKIE = "ap_auth"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


@dataclasses.dataclass(frozen=True)
class Options:
    """How the dashboard treats writes: ``user`` names the audit actor ``web:<user>``."""

    user: str = "unknown"
    read_only: bool = False
    token: str | None = None  # None: no write token needed (loopback)
    secret: bytes = dataclasses.field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def actor(self) -> str:
        return actions.web_actor(self.user)

    def auth_cookie(self, name: str) -> str:
        return f"{actions.sanitize_name(name)}.{self._sign(name)}"

    def cookie_user(self, value: str | None) -> str | None:
        """The user a valid ``ap_auth`` cookie names, else None."""
        name, _, sig = (value or "").rpartition(".")
        return name if name and hmac.compare_digest(sig, self._sign(name)) else None

    def _sign(self, name: str) -> str:
        return hmac.new(self.secret, f"auth:{self.token}:{actions.sanitize_name(name)}".encode(),
                        hashlib.sha256).hexdigest()[:32]

    def token_ok(self, given: str | None) -> bool:
        return self.token is not None and given is not None and hmac.compare_digest(given.encode(),
                                                                                    self.token.encode())


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def options_for(host: str, *, user: str, read_only: bool, token: str | None) -> tuple[Options, bool]:
    """The options for a server on ``host``; the bool says the token was generated (print it)."""
    if is_loopback(host) or read_only:
        return Options(user=user, read_only=read_only, token=None), False
    if token:
        return Options(user=user, token=token), False
    return Options(user=user, token=secrets.token_urlsafe(24)), True


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def cookie(scope: dict[str, Any], name: str) -> str | None:
    raw = header(scope, b"cookie") or ""
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def same_origin(scope: dict[str, Any]) -> bool:
    """False when the browser says the request comes from another origin (no Origin header: not a browser)."""
    origin = header(scope, b"origin")
    if origin is None:
        return True
    host = header(scope, b"host") or ""
    return origin.split("://", 1)[-1] == host
