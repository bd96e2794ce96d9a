"""The clock port: every decision takes ``now``; this is where ``now`` comes from.

``SystemClock`` is the real one. ``FakeClock`` is for tests and simulations: time moves only
when told to, so "a book waiting 49 hours" takes no time to test.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

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


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)
