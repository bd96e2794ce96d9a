"""The database's clock: leases, heartbeats, stuck ages and claim order follow the server, not each host.

In-process on both engines (a worker whose host clock is 3 minutes behind, the old way and the
new), and in a real child process whose clock libfaketime sets 3 minutes behind (PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentic_pipeline import clock as clocks
from agentic_pipeline.db import server_clock
from agentic_pipeline.health import monitor
from tests.conftest import open_app

UTC = dt.timezone.utc
REPO = Path(__file__).resolve().parents[2]
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


class SkewedHostClock(clocks.SystemClock):
    """A host whose wall clock is ``offset`` seconds off (what every App used before the database clock)."""

    def __init__(self, offset: float) -> None:
        self.offset = dt.timedelta(seconds=offset)

    def now(self) -> dt.datetime:
        return super().now() + self.offset


class Ticks:
    """A monotonic clock that moves when told to."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------ the clock itself (pure, fakes at its ports)
def test_database_clock_reads_the_server_once_per_interval_and_counts_on_monotonically():
    server = [dt.datetime(2026, 5, 1, 12, 0, tzinfo=UTC)]
    reads = []

    def read():
        reads.append(1)
        return server[0]

    ticks = Ticks()
    c = clocks.DatabaseClock(read, resync_seconds=30, monotonic=ticks)
    assert c.now() == server[0] and len(reads) == 1
    ticks.t += 10
    assert c.now() == server[0] + dt.timedelta(seconds=10) and len(reads) == 1  # no read: carried forward
    server[0] += dt.timedelta(seconds=31)
    ticks.t += 21
    assert c.now() == server[0] and len(reads) == 2  # 31 s after the first read: read again


def test_database_clock_carries_on_while_the_server_is_away_and_waits_before_asking_again():
    answers = [dt.datetime(2026, 5, 1, tzinfo=UTC)]

    def read():
        if not answers:
            raise ConnectionError("network is unreachable")
        return answers.pop(0)

    ticks = Ticks()
    c = clocks.DatabaseClock(read, resync_seconds=30, monotonic=ticks, retry_seconds=5)
    first = c.now()
    ticks.t += 40  # due for a read, the server does not answer: 40 s on from the last answer
    assert c.now() == first + dt.timedelta(seconds=40)
    ticks.t += 1
    assert c.now() == first + dt.timedelta(seconds=41)


def test_database_clock_before_any_answer_is_this_hosts_clock():
    def read():
        raise ConnectionError("refused")

    before = dt.datetime.now(UTC)
    got = clocks.DatabaseClock(read).now()
    assert before <= got <= dt.datetime.now(UTC)


# ------------------------------------------------------------------ against the real databases
def test_the_app_clock_is_the_database_servers_on_both_engines(db_url):
    """PostgreSQL: the server's clock_timestamp(); SQLite (in this process): its julianday('now')."""
    with open_app(db_url) as app:
        assert isinstance(app.clock, clocks.DatabaseClock) == app.db.is_postgres
        server = server_clock.read(app.db)
        assert abs((app.clock.now() - server).total_seconds()) < 1.0


@pytest.mark.parametrize("skewed", ["host clock", "database clock"])
def test_a_worker_whose_host_is_3_minutes_behind_keeps_its_lease(db_url, skewed):
    """The old way (each host's clock) a lease written 3 minutes in the past is expired at once for everyone
    else: another worker takes the book and the health report calls it orphaned. With the database's clock
    the same worker holds its lease."""
    behind = SkewedHostClock(-180) if skewed == "host clock" else None
    with open_app(db_url, behind, lease_seconds=60) as slow, open_app(db_url, None, lease_seconds=60) as other:
        pid = slow.pipelines.create(source_path="/books/a.epub", actor="human:t").id
        mine = slow.pipelines.claim_next("w-slow", lease_seconds=60)
        assert mine.id == pid
        slow.pipelines.heartbeat(pid, "w-slow", lease_seconds=60)
        taken = other.pipelines.claim_next("w-other", lease_seconds=60)
        stuck = [s for s in monitor.find_stuck(other)["stuck"] if s.id == pid]
        if skewed == "host clock":
            assert taken is not None and taken.id == pid  # the bug this fixes: a live lease looked expired
        else:
            assert taken is None and stuck == []
            expires = slow.pipelines.get(pid).row["lease_expires_at"]
            assert 55 < (expires - server_clock.read(slow.db)).total_seconds() <= 60


def test_claim_order_and_stuck_ages_follow_the_database_clock(db_url):
    """Books queued from a host 3 minutes ahead are not older than books queued meanwhile from the right one."""
    with open_app(db_url, SkewedHostClock(+180)) as ahead_host, open_app(db_url) as right:
        first = right.pipelines.create(source_path="/books/first.epub", actor="human:t").id
        ahead = open_app(db_url)  # production clock on the skewed host: the server's
        try:
            second = ahead.pipelines.create(source_path="/books/second.epub", actor="human:t").id
        finally:
            ahead.close()
        assert right.pipelines.claim_next("w", lease_seconds=60).id == first
        assert right.pipelines.claim_next("w", lease_seconds=60).id == second
        created = right.pipelines.get(second).created_at
        assert abs((created - server_clock.read(right.db)).total_seconds()) < 5
        assert ahead_host.clock.now() - created > dt.timedelta(seconds=170)  # what the skewed host's clock says


# ------------------------------------------------------------------ a real process with a skewed clock
def _libfaketime() -> Path:
    if LIBFAKETIME.exists():
        return LIBFAKETIME
    ci = os.environ.get("CI", "").lower() == "true"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("libfaketime is not installed and installing Debian's faketime package needs root")
    result = subprocess.run(["apt-get", "install", "-y", "-q", "faketime"], capture_output=True, text=True,
                            timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not LIBFAKETIME.exists():
        (pytest.fail if ci else pytest.skip)(f"apt-get install faketime failed: {result.stderr[-500:]}")
    return LIBFAKETIME


CHILD = """
import json, sys, datetime as dt
from agentic_pipeline import config
from agentic_pipeline.app import App
app = App.open(config.load({"db": sys.argv[1], "embedder": "hashing"}, environ={}))
p = app.pipelines.claim_next("w-faked", lease_seconds=60)
print(json.dumps({"host_now": dt.datetime.now(dt.timezone.utc).isoformat(), "clock": type(app.clock).__name__,
                  "expires": p.row["lease_expires_at"].isoformat()}))
"""


@pytest.mark.pg
def test_a_process_whose_clock_libfaketime_sets_3_minutes_behind_writes_server_time(tmp_path, pg_databases):
    from tests.conftest import make_db_url

    lib = _libfaketime()
    url = make_db_url("postgresql", tmp_path, None, pg_databases)
    with open_app(url) as app:
        pid = app.pipelines.create(source_path="/books/a.epub", actor="human:t").id
    env = {**os.environ, "LD_PRELOAD": str(lib), "FAKETIME": "-3m", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", CHILD, url], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    with open_app(url) as app:
        server = server_clock.read(app.db)
        assert app.pipelines.get(pid).row["lease_owner"] == "w-faked"
    host_now, expires = dt.datetime.fromisoformat(seen["host_now"]), dt.datetime.fromisoformat(seen["expires"])
    assert seen["clock"] == "DatabaseClock"
    assert (server - host_now).total_seconds() > 170  # the child's clock really was 3 minutes behind
    assert 40 < (expires - server).total_seconds() <= 60  # yet its lease runs 60 s from the server's now
