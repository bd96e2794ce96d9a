"""The clock port: every decision takes ``now``; this is where ``now`` comes from.

``SystemClock`` is this host's clock. ``DatabaseClock`` is the database server's, the one every
host shares: an App on PostgreSQL uses it (``for_database``), so leases, heartbeats, stuck ages and
claim order mean the same on every host whatever their clocks say. ``FakeClock`` is for tests and
simulations: time moves only when told to, so "a book waiting 49 hours" takes no time to test.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Callable, Protocol

UTC = dt.timezone.utc


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock that only moves when ``advance`` (or ``sleep``) is called."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float = 0, **delta: float) -> dt.datetime:
        self._now += dt.timedelta(seconds=seconds, **delta)
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


class DatabaseClock:
    """The database server's clock: read once every ``resync_seconds``, carried forward in between by this
    host's monotonic clock.

    Workers on several hosts decide lease expiry, heartbeats, stuck ages and claim order by
    comparing times that different hosts wrote; with each host's own wall clock a host three
    minutes behind would write leases that others see as long expired. Every time here is the
    server's: ``now()`` is the server time of the last read plus the monotonic time elapsed since
    (a wall-clock step or skew on this host changes nothing; the monotonic clock drifts by parts
    per million, microseconds between reads). The read costs one query per ``resync_seconds``
    per process, not one per transaction. Until the server first answers, and while it does not,
    the time is carried forward from the last answer (this host's wall clock before any).
    """

    def __init__(self, read_server: Callable[[], "dt.datetime | tuple[dt.datetime, float]"], *,
                 resync_seconds: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic, retry_seconds: float = 2.0) -> None:
        self._read, self._monotonic = read_server, monotonic
        self.resync_seconds, self.retry_seconds = resync_seconds, retry_seconds
        self._base: tuple[dt.datetime, float] | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        m = self._monotonic()
        base = self._base
        if (base is None or m - base[1] >= self.resync_seconds) and m >= self._next_try:
            base = self.sync() or base
        if base is None:
            return dt.datetime.now(UTC)
        return base[0] + dt.timedelta(seconds=self._monotonic() - base[1])

    def sync(self) -> tuple[dt.datetime, float] | None:
        """Read the server's clock now; the new (server time, monotonic) base, or None when it did not answer.

        One reader at a time; the others carry on from the current base instead of waiting (never a
        lock wait, so a stage child forked while another thread was reading cannot hang on it).
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            before = self._monotonic()
            try:
                server = self._read()
            except Exception as exc:  # noqa: BLE001 - the database is away: keep counting from the last answer
                self._next_try = before + self.retry_seconds
                logging.getLogger(__name__).debug("could not read the database clock: %s", exc)
                return None
            after = self._monotonic()
            if isinstance(server, tuple):  # the reader timed the query itself (not the connection set-up)
                server, at = server
            else:
                at = (before + after) / 2  # the server read its clock about half way through
            self._base = (server, at)
            self._next_try = 0.0
            return self._base
        finally:
            self._lock.release()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def for_database(db) -> Clock:
    """The clock an App uses: the server's for PostgreSQL (hosts share it), this host's for SQLite (it is the server)."""
    if not db.is_postgres:
        return SystemClock()
    from agentic_pipeline.db import server_clock  # lazy: the server clock only on PostgreSQL

    return DatabaseClock(lambda: server_clock.read_timed(db))


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)
