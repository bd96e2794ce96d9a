"""Many hosts against one PostgreSQL: three network namespaces, workers in each, one cut off, one skewed.

What it builds (as root; skipped with the reason otherwise, a failure under ``CI=true``):

- a throwaway PostgreSQL cluster (Debian's ``initdb``/``pg_ctl`` as the ``postgres`` user, in a temp
  directory, ``fsync=off``) listening on three veth addresses and 127.0.0.1, on a free port;
- three network namespaces ("hosts"), each joined to the root namespace by a veth pair on its own
  /24 (10.<random>.<n>.0/24: host n is .2, the database side .1), each with its own UTS namespace
  so its workers name their host; two worker processes per host, talking to the database at their
  veth address only;
- host 1's workers hold each book for 5 s in PROCESSING (the fault plan), so they are mid-book when
  its link is cut (``ip link set … down``); host 2 runs 3 minutes behind (libfaketime).

It asserts: every book is processed exactly once end to end; host 1's books are finished by the others
after their leases (6 s) expire; host 1, once its link is back, writes nothing for a book it lost (its stale
writes are refused and counted in ``workers.stale_writes``); maintenance runs on another host after
the cut; the skewed host loses no lease. Only the test's own addresses see any traffic.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import open_app
from tests.orchestrator.helpers import REPO, write_text_books

BOOKS = 240
LEASE_SECONDS = 6  # heartbeats every second: a loaded 2-core CI machine must not starve a live worker past it
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
CI = os.environ.get("CI", "").lower() == "true"

pytestmark = pytest.mark.pg


def _unavailable(reason: str):
    (pytest.fail if CI else pytest.skip)(reason)


def _run(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()[-800:]}")
    return result


def _require_root_and_tools() -> Path:
    if os.geteuid() != 0:
        _unavailable("the multi-host test needs root (ip netns, veth pairs, a PostgreSQL cluster as postgres)")
    for tool in ("ip", "unshare", "runuser"):
        if shutil.which(tool) is None:
            _unavailable(f"the multi-host test needs {tool}")
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not bins or not (Path(bins[-1]) / "initdb").exists():
        _unavailable("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (Debian's postgresql package)")
    if not Path(LIBFAKETIME).exists():
        result = _run("apt-get", "install", "-y", "-q", "faketime", check=False, timeout=600,
                      env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if not Path(LIBFAKETIME).exists():
            _unavailable(f"libfaketime is missing and apt-get install faketime failed: {result.stderr[-400:]}")
    return Path(bins[-1])


class Hosts:
    """Three network namespaces joined to the root one by veth pairs; ``cut``/``mend`` a host's link."""

    def __init__(self, count: int = 3) -> None:
        self.tag = secrets.token_hex(2)
        self.octet = random.randint(100, 250)
        self.count = count
        self.made: list[str] = []

    def ns(self, n: int) -> str:
        return f"aph{n}{self.tag}"

    def root_end(self, n: int) -> str:
        return f"apr{n}{self.tag}"

    def db_address(self, n: int) -> str:
        return f"10.{self.octet}.{n}.1"

    def __enter__(self) -> "Hosts":
        try:
            for n in range(1, self.count + 1):
                ns, rv, nv = self.ns(n), self.root_end(n), f"apn{n}{self.tag}"
                _run("ip", "netns", "add", ns)
                self.made.append(ns)
                _run("ip", "link", "add", rv, "type", "veth", "peer", "name", nv)
                _run("ip", "link", "set", nv, "netns", ns)
                _run("ip", "addr", "add", f"{self.db_address(n)}/24", "dev", rv)
                _run("ip", "link", "set", rv, "up")
                _run("ip", "-n", ns, "addr", "add", f"10.{self.octet}.{n}.2/24", "dev", nv)
                _run("ip", "-n", ns, "link", "set", nv, "up")
                _run("ip", "-n", ns, "link", "set", "lo", "up")
        except Exception as exc:
            self.__exit__()
            _unavailable(f"cannot build network namespaces here: {exc}")
        return self

    def cut(self, n: int) -> None:
        _run("ip", "link", "set", self.root_end(n), "down")

    def mend(self, n: int) -> None:
        _run("ip", "link", "set", self.root_end(n), "up")

    def __exit__(self, *exc) -> None:
        for n in range(1, self.count + 1):
            _run("ip", "link", "del", self.root_end(n), check=False)
        for ns in self.made:
            _run("ip", "netns", "del", ns, check=False)


class Cluster:
    """A throwaway PostgreSQL cluster: initdb as postgres into a temp dir, listening on ``addresses``."""

    def __init__(self, bin_dir: Path, addresses: list[str], clients: str) -> None:
        self.bin, self.addresses, self.clients = bin_dir, addresses, clients
        self.root = Path(tempfile.mkdtemp(prefix="ap-multihost-"))
        self.data = self.root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def __enter__(self) -> "Cluster":
        os.chmod(self.root, 0o755)
        shutil.chown(self.root, "postgres", "postgres")
        as_pg = ("runuser", "-u", "postgres", "--")
        _run(*as_pg, str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
             "--no-sync", timeout=120)
        with open(self.data / "pg_hba.conf", "a") as hba:  # the hosts' veth addresses, and nobody else's
            hba.write(f"host all postgres {self.clients} trust\n")
        options = (f"-c listen_addresses='{','.join(self.addresses)}' -p {self.port} "
                   f"-c unix_socket_directories='{self.root}' -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=100 -c shared_buffers=64MB")
        _run(*as_pg, str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60",
             "-o", options, "start", timeout=90)
        _run(*as_pg, str(self.bin / "createdb"), "-h", str(self.root), "-p", str(self.port), "-U", "postgres",
             "pipeline", timeout=60)
        return self

    def url(self, address: str = "127.0.0.1") -> str:
        return f"postgresql://postgres@{address}:{self.port}/pipeline"

    def __exit__(self, *exc) -> None:
        _run("runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
             "stop", check=False, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


HOST_WRAPPER = ("import os, socket, sys; socket.sethostname(sys.argv[1]); "
                "os.execv(sys.executable, [sys.executable, '-m', 'agentic_pipeline.interfaces.cli', *sys.argv[2:]])")


def start_worker(hosts: Hosts, n: int, url: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """A worker process on host ``n``: in its network namespace, with its own host name; stderr to ``log``."""
    cmd = ["ip", "netns", "exec", hosts.ns(n), "unshare", "--uts", "--", sys.executable, "-c", HOST_WRAPPER,
           f"host{n}", "--db", url, "worker", "--poll", "0.1"]
    with open(log, "ab") as err:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


LOGS: list[Path] = []


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tails = "".join(f"\n--- {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in LOGS if log.exists())
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{tails}")


def rows(app, sql: str, **params) -> list[dict]:
    with app.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def library_digest(app, pipeline_ids: list[int]) -> str:
    """Everything the library holds for these books (chapters, chunks, vectors), hashed."""
    found = rows(app, "SELECT b.pipeline_id, c.ordinal, c.text, c.embedding, c.embedding_model FROM chunks c "
                      "JOIN books b ON b.id = c.book_id WHERE b.pipeline_id = ANY(:ids) ORDER BY 1, 2", ids=pipeline_ids)
    h = hashlib.sha256()
    for r in found:
        h.update(repr((r["pipeline_id"], r["ordinal"], r["text"], bytes(r["embedding"] or b""),
                       r["embedding_model"])).encode())
    return h.hexdigest()


def test_workers_on_three_hosts_one_cut_off_one_skewed(tmp_path):
    pg_bin = _require_root_and_tools()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        hosts = stack.enter_context(Hosts())
        cluster = stack.enter_context(Cluster(pg_bin, [hosts.db_address(n) for n in (1, 2, 3)] + ["127.0.0.1"],
                                              clients=f"10.{hosts.octet}.0.0/16"))
        here = cluster.url()
        init = subprocess.run([sys.executable, "-m", "agentic_pipeline.interfaces.cli", "--db", here, "init"],
                              env={**os.environ, "PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True)
        assert init.returncode == 0, init.stderr
        app = stack.enter_context(open_app(here, lease_seconds=LEASE_SECONDS, heartbeat_seconds=1))
        from agentic_pipeline.approval import autonomy
        from agentic_pipeline import intake

        autonomy.enable(app, "partial", actor="human:test", threshold=0.01, daily_cap=10 * BOOKS)  # all the way to COMPLETE
        folder = tmp_path / "books"
        write_text_books(folder, BOOKS, words_per_chapter=400)  # over every strategy's min_words (1,000)
        intake.batch_queue(app, folder, actor="human:test", execute=True)
        assert len(rows(app, "SELECT id FROM processing_pipelines")) == BOOKS

        base_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTIC_PIPELINE_")}
        base_env.update({"PYTHONPATH": str(REPO / "src"), "AGENTIC_PIPELINE_EMBEDDER": "hashing",
                         "AGENTIC_PIPELINE_LEASE_SECONDS": str(LEASE_SECONDS),
                         "AGENTIC_PIPELINE_HEARTBEAT_SECONDS": "1", "AGENTIC_PIPELINE_HEALTH_INTERVAL": "1",
                         "AGENTIC_PIPELINE_MAINTENANCE_LEASE_SECONDS": "6",
                         "AGENTIC_PIPELINE_RETRY_BASE_SECONDS": "0.2", "AGENTIC_PIPELINE_RETRY_MAX_SECONDS": "1"})
        env = {1: {**base_env, "AGENTIC_PIPELINE_FAULTS": json.dumps({"processing": {"kind": "sleep", "seconds": 5}})},
               2: {**base_env, "LD_PRELOAD": LIBFAKETIME, "FAKETIME": "-3m", "FAKETIME_DONT_FAKE_MONOTONIC": "1"},
               3: base_env}
        procs: dict[int, list[subprocess.Popen]] = {}

        def log(n: int, i: int) -> Path:
            LOGS.append(tmp_path / f"host{n}-worker{i}.log")
            return LOGS[-1]

        def stop_all():
            for group in procs.values():
                for p in group:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGTERM)
            for group in procs.values():
                for p in group:
                    try:
                        p.wait(30)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)

        stack.callback(stop_all)

        def workers_of(n: int) -> set[str]:
            return {r["id"] for r in rows(app, "SELECT id FROM workers WHERE host = :h", h=f"host{n}")}

        def runner_host(task: str) -> str | None:
            found = rows(app, "SELECT last_result FROM maintenance_tasks WHERE name = :t", t=task)
            runner = (found[0]["last_result"] or {}).get("runner") if found else None
            return None if runner is None else next((f"host{n}" for n in (1, 2, 3) if runner in workers_of(n)), "?")

        # host 1 alone first: it leads maintenance and holds books mid-PROCESSING
        procs[1] = [start_worker(hosts, 1, cluster.url(hosts.db_address(1)), env[1], log(1, i)) for i in range(2)]
        wait_for(lambda: len(workers_of(1)) == 2 and runner_host("refresh_health") == "host1", 120,
                 "host 1's two workers to start and one of them to run the maintenance")
        procs[2] = [start_worker(hosts, 2, cluster.url(hosts.db_address(2)), env[2], log(2, i)) for i in range(2)]
        procs[3] = [start_worker(hosts, 3, cluster.url(hosts.db_address(3)), env[3], log(3, i)) for i in range(2)]
        host1 = workers_of(1)

        def held_by_host1():
            held = rows(app, "SELECT id, lease_owner FROM processing_pipelines WHERE state = 'processing' "
                             "AND lease_owner = ANY(:w)", w=list(host1))
            return held if len(held) == len(host1) else None

        def host1_between_transactions():
            # cut while host 1 holds its books but has no transaction open: a cut in the middle of one leaves
            # its row locks until the server drops the connection, which is docs/guide.md's server settings'
            # business, not this test's (the others skip locked books when they claim)
            busy = rows(app, "SELECT count(*) AS n FROM pg_stat_activity WHERE client_addr = CAST(:a AS inet) "
                             "AND xact_start IS NOT NULL", a=f"10.{hosts.octet}.1.2")
            return held_by_host1() if busy[0]["n"] == 0 else None

        wait_for(lambda: len(workers_of(2)) == 2 and len(workers_of(3)) == 2 and host1_between_transactions(), 120,
                 "all six workers, and both of host 1's in the middle of a book")
        lost = [r["id"] for r in held_by_host1()]
        cut_at = app.clock.now()
        hosts.cut(1)

        # the others take host 1's books over once their leases expire, and finish them
        def finished(ids):
            done = rows(app, "SELECT id FROM processing_pipelines WHERE id = ANY(:ids) AND state = 'complete'", ids=ids)
            return len(done) == len(ids)

        try:
            wait_for(lambda: finished(lost), 120, "host 1's books to be finished by the other hosts")
        except AssertionError as exc:
            seen = rows(app, "SELECT id, state, lease_owner, lease_expires_at, clock_timestamp() AS server_now "
                             "FROM processing_pipelines WHERE id = ANY(:ids)", ids=lost)
            activity = rows(app, "SELECT client_addr::text, state, wait_event, now() - xact_start AS xact_age, "
                                 "left(query, 100) AS query FROM pg_stat_activity WHERE datname = 'pipeline' "
                                 "AND state <> 'idle'")
            raise AssertionError(f"{exc}\nlost books: {seen}\nactivity: {activity}") from None
        wait_for(lambda: (runner_host("refresh_health") in ("host2", "host3")), 90,
                 "the maintenance to run on another host")
        maintenance_after_cut = rows(app, "SELECT name, last_run_at, last_result FROM maintenance_tasks "
                                          "WHERE last_run_at > :t", t=cut_at)
        before_mend = library_digest(app, lost)
        mended_at = app.clock.now()
        hosts.mend(1)

        # host 1 comes back: its late writes for the books it lost are refused, and counted
        def host1_refused():
            counted = rows(app, "SELECT coalesce(sum(stale_writes), 0) AS n FROM workers WHERE host = 'host1'")[0]["n"]
            return counted >= 1 and counted

        refused = wait_for(host1_refused, 120, "host 1's stale writes to be refused and counted")
        def all_complete():
            counts = rows(app, "SELECT state, count(*) AS n FROM processing_pipelines GROUP BY state")
            progress.append(counts)
            return counts == [{"state": "complete", "n": BOOKS}]

        progress: list = []
        try:
            wait_for(all_complete, 300, f"all {BOOKS} books to complete")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast counts: {progress[-1]}") from None
        stop_all()

        # --- every book exactly once, end to end
        states = rows(app, "SELECT state, count(*) AS n FROM processing_pipelines GROUP BY state")
        assert states == [{"state": "complete", "n": BOOKS}], states
        completions = rows(app, "SELECT pipeline_id, count(*) AS n FROM pipeline_state_history "
                                "WHERE to_state = 'complete' GROUP BY pipeline_id HAVING count(*) <> 1")
        assert completions == []
        library = rows(app, "SELECT count(*) AS books, count(DISTINCT pipeline_id) AS pipelines FROM books")[0]
        assert library == {"books": BOOKS, "pipelines": BOOKS}
        assert rows(app, "SELECT count(*) AS n FROM chunks WHERE embedding IS NULL")[0]["n"] == 0
        # --- host 1's books: finished by the others; nothing from host 1 for them after the cut
        finishers = rows(app, "SELECT pipeline_id, actor FROM pipeline_state_history WHERE to_state = 'complete' "
                              "AND pipeline_id = ANY(:ids)", ids=lost)
        assert all(not any(w in r["actor"] for w in host1) for r in finishers), finishers
        late = rows(app, "SELECT pipeline_id, to_state, actor, at FROM pipeline_state_history "
                         "WHERE pipeline_id = ANY(:ids) AND at > :t", ids=lost, t=cut_at)
        assert not [r for r in late if any(w in r["actor"] for w in host1)], late
        assert library_digest(app, lost) == before_mend
        assert refused >= 1
        # --- maintenance moved off host 1
        assert maintenance_after_cut and all(
            not any(w == (r["last_result"] or {}).get("runner") for w in host1) for r in maintenance_after_cut)
        # --- the skewed host held its leases (the database's clock): no write of its was refused
        skewed = rows(app, "SELECT id, stale_writes, completed_count, last_seen FROM workers WHERE host = 'host2'")
        assert len(skewed) == 2 and sum(r["stale_writes"] for r in skewed) == 0, skewed
        assert sum(r["completed_count"] for r in skewed) > 0, skewed
        host1_done = rows(app, "SELECT coalesce(sum(completed_count), 0) AS n FROM workers WHERE host = 'host1'")
        print(f"\nmulti-host: {BOOKS} books in {time.monotonic() - started:.1f} s; host 1 lost {len(lost)} "
              f"(refused {refused} stale writes after the mend at {mended_at:%H:%M:%S}); host 1 completed "
              f"{host1_done[0]['n']}, host 2 (3 min behind) {sum(r['completed_count'] for r in skewed)}")

