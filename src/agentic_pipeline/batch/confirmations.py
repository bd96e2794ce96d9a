"""Confirmation tokens for batch operations a model asks for: issued by the server, single use, short-lived.

The MCP batch tools act in two calls: a preview, then the same call with ``execute=true`` and the
token the preview returned. A token is a random string the server remembers with the digest of
the plan it was issued for (``operations.plan_digest``: operation, filter, change, the exact books) and
the time it was issued. It cannot be computed from the request (a model must ask for the preview),
it works once (a retry that re-matches the same books needs a new preview), and it expires after
``TTL_SECONDS``. The store lives in the server process that issued the token; ``now`` is passed in.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading

from agentic_pipeline import errors

#: how long a preview's token stays good
TTL_SECONDS = 600.0
#: tokens kept at most (the oldest go first): a model looping on previews cannot grow the store
MAX_TOKENS = 1000


class Confirmations:
    """The tokens one server has issued and not yet redeemed."""

    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_tokens: int = MAX_TOKENS) -> None:
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.max_tokens = max_tokens
        self._issued: dict[str, tuple[str, dt.datetime]] = {}
        self._lock = threading.Lock()

    def issue(self, digest: str, now: dt.datetime) -> str:
        """A new token for the plan with ``digest``."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._forget_expired(now)
            while len(self._issued) >= self.max_tokens:
                self._issued.pop(next(iter(self._issued)))
            self._issued[token] = (digest, now)
        return token

    def redeem(self, token: str, digest: str, now: dt.datetime) -> None:
        """Use ``token`` for the plan with ``digest`` (the fresh plan); raises ``StaleConfirmation`` if it cannot be.

        The token is spent whatever the outcome: unknown, already used, expired, or issued for a
        different set of books all refuse, and the caller offers a fresh preview with a new token.
        """
        with self._lock:
            entry = self._issued.pop(token, None)
        if entry is None:
            raise errors.StaleConfirmation("this confirmation token was not issued by this server or was already "
                                           "used; nothing was changed")
        issued_for, issued_at = entry
        if now - issued_at > self.ttl:
            raise errors.StaleConfirmation(f"this confirmation token expired (older than "
                                           f"{self.ttl.total_seconds() / 60:g} minutes); nothing was changed")
        if issued_for != digest:
            raise errors.StaleConfirmation("the books matching this filter changed since the preview; nothing was "
                                           "changed")

    def _forget_expired(self, now: dt.datetime) -> None:
        for token in [t for t, (_d, at) in self._issued.items() if now - at > self.ttl]:
            del self._issued[token]
