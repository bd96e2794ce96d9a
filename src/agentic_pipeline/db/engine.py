"""Opening the database: one ``Database`` per process, with each engine's transaction discipline.

SQLite: WAL, ``foreign_keys=ON`` and a busy timeout on every connection; write transactions
start with ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock upgrade, reads start
``BEGIN DEFERRED`` and run beside the writer under WAL. PostgreSQL: psycopg 3, READ COMMITTED,
row locks (``FOR UPDATE SKIP LOCKED``) and advisory locks where a decision must be serialised.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event

from agentic_pipeline import errors
from agentic_pipeline.config import mask_password

BUSY_TIMEOUT_MS = 30_000
#: SQLite page cache per connection, in KiB (``Settings.sqlite_cache_kib``): a write transaction that
#: touches thousands of scattered rows (batch operations on a 1M-row table) keeps its dirty table and
#: index pages here instead of spilling them to the WAL mid-transaction. Allocated only as used.
#: Measured: 16 MiB and 128 MiB gave the same batch times, but when several connections take turns
#: writing (a worker beside the CLI), each sees the other's commits by resetting its cache, and the
#: larger cache and a 1 GiB mmap cost ~1 ms per book (5.8 -> 4.9 ms, bench/bench_pipeline.py).
SQLITE_CACHE_KIB = 16_384
#: memory-mapped reads (``Settings.sqlite_mmap``); off by default (see above; also an I/O error under mmap
#: arrives as SIGBUS)
SQLITE_MMAP_BYTES = 0
#: WAL pages after which a committing connection copies the WAL into the database (SQLite's default)
SQLITE_WAL_AUTOCHECKPOINT = 1000
_NO_AUTOCHECKPOINT = "wal_autocheckpoint_off"


class Database:
    """An engine plus the two ways in: ``write()`` and ``read()`` transactions."""

    def __init__(self, url: str, *, echo: bool = False, sqlite_cache_kib: int = SQLITE_CACHE_KIB,
                 sqlite_mmap: int = SQLITE_MMAP_BYTES) -> None:
        self.url = url
        self.engine = _create_engine(url, echo=echo, cache_kib=int(sqlite_cache_kib), mmap_bytes=int(sqlite_mmap))
        self.dialect = self.engine.dialect.name
        self._pid = os.getpid()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction; commits on success, rolls back on any exception."""
        self._after_fork()
        with translate_errors(), self.engine.connect() as conn:
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only transaction (``BEGIN DEFERRED`` on SQLite: it does not block writers)."""
        self._after_fork()
        with translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="DEFERRED")
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def one_statement(self, *, write: bool = True) -> Iterator[sa.Connection]:
        """A connection for exactly one statement, which is its own transaction.

        PostgreSQL: autocommit, so the statement is one round trip instead of three (psycopg sends
        BEGIN and COMMIT as round trips of their own); a single statement is atomic by itself,
        CTEs and all. SQLite: an ordinary ``write()`` (or ``read()``) transaction, which costs no
        round trips. Only the stores in ``db/`` use this, around one ``execute`` they wrote as
        one statement; anything that needs two statements to agree takes ``write()``.
        """
        if not self.is_postgres:
            with (self.write() if write else self.read()) as conn:
                yield conn
            return
        self._after_fork()
        with translate_errors(), self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sa.Connection]:
        """One consistent view for a long read (REPEATABLE READ on PostgreSQL; a SQLite read is a snapshot)."""
        if not self.is_postgres:
            with self.read() as conn:
                yield conn
            return
        self._after_fork()
        with translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def checkpoint(self) -> dict[str, int] | None:
        """SQLite: copy what the WAL holds into the database file without waiting for anyone (PASSIVE).

        Returns SQLite's answer (``busy``, ``wal_pages``, ``checkpointed``), or None on PostgreSQL,
        which checkpoints by itself. Commits that deferred their checkpoint (``defer_wal_checkpoint``)
        leave the copy to the next writer; the maintenance task that calls this does it first, off
        every request path. PASSIVE never blocks readers or writers: pages a reader still needs stay
        in the WAL for the next run.
        """
        if not self.is_sqlite:
            return None
        self._after_fork()
        with translate_errors(), self.engine.connect() as conn:
            # outside any transaction (the driver connection is in autocommit: isolation_level=None)
            busy, log, done = conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return {"busy": busy, "wal_pages": log, "checkpointed": done}

    def dispose(self) -> None:
        self.engine.dispose()

    def _after_fork(self) -> None:
        # connections must never cross a fork: a child process gets a fresh pool
        if os.getpid() != self._pid:
            self.engine.dispose(close=False)
            self._pid = os.getpid()


def _create_engine(url: str, *, echo: bool, cache_kib: int, mmap_bytes: int) -> sa.Engine:
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url, echo=echo, cache_kib=cache_kib, mmap_bytes=mmap_bytes)
        if url.startswith("postgresql"):
            return sa.create_engine(url, echo=echo, pool_pre_ping=False, pool_recycle=1800, pool_size=5,
                                     max_overflow=10)
    except (ValueError, sa.exc.ArgumentError) as exc:  # a malformed URL (a port that is not a number...)
        raise errors.ConfigError(f"invalid database URL {mask_password(url)!r}: {exc}".replace(url, "<url>")) from None
    raise errors.ConfigError(f"unsupported database URL {mask_password(url)!r}")


def _sqlite_engine(url: str, *, echo: bool, cache_kib: int, mmap_bytes: int) -> sa.Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.ConfigError(f"cannot create the database directory for {path}: {exc}") from exc
    engine = sa.create_engine(url, echo=echo, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute(f"PRAGMA cache_size = -{cache_kib}")
        cur.execute(f"PRAGMA mmap_size = {mmap_bytes}")
        cur.execute("PRAGMA temp_store = MEMORY")
        cur.close()

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn, record):
        if record.info.pop(_NO_AUTOCHECKPOINT, False) and dbapi_conn is not None:
            dbapi_conn.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def defer_wal_checkpoint(conn: sa.Connection) -> None:
    """This transaction's commit leaves the WAL checkpoint to the next writer (SQLite; no-op elsewhere).

    A commit that leaves more than ``SQLITE_WAL_AUTOCHECKPOINT`` pages in the WAL copies them into
    the database before it returns: 0.2-0.4 s after a batch of 10,000 scattered books (20,000 pages).
    With this the batch returns once its commit is in the WAL; the next commit on any other
    connection (or the last connection's close) does the copy. Readers see the committed data
    either way (from the WAL). The setting is restored when the connection goes back to the pool.
    """
    if conn.dialect.name != "sqlite":
        return
    conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
    conn.connection.info[_NO_AUTOCHECKPOINT] = True


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Driver errors never escape the store: they become ``StoreError`` with the cause attached."""
    try:
        yield
    except errors.PipelineError:
        raise
    except sa.exc.OperationalError as exc:
        raise errors.StoreError(f"database error: {_first_line(exc)}") from exc
    except sa.exc.IntegrityError as exc:
        raise errors.StoreError(f"database refused the change: {_first_line(exc)}") from exc
    except sa.exc.DBAPIError as exc:
        raise errors.StoreError(f"database error: {_first_line(exc)}") from exc


def _first_line(exc: sa.exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]


# --- driver log noise (issue 17) -------------------------------------------------------------------
class _LostPipelineNoise(logging.Filter):
    """Drop psycopg's "error ignored terminating <psycopg.Pipeline [BAD]>" warning.

    psycopg logs it when a pipeline (its ``executemany``) is closed on a connection the server
    terminated; the error that ended the pipeline is raised all the same and becomes the one
    ``StoreError`` line the caller logs, so the warning only repeated it, with an object address.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error ignored terminating")


LOST_PIPELINE_NOISE = _LostPipelineNoise()
logging.getLogger("psycopg").addFilter(LOST_PIPELINE_NOISE)
