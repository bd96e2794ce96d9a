"""One throwaway PostgreSQL database per benchmark run, shared by every bench module.

    with throwaway_database("audit") as db:
        if not db: return unavailable(db.reason)    # no server: the caller reports "skipped"
        bench(db.url)                 # plain postgresql:// URL; db.sqlalchemy_url for SQLAlchemy

The database is dropped (WITH FORCE) when the block ends, whatever happened inside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from typing import Iterator

ADMIN_URL = os.environ.get("AGENTIC_PIPELINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclasses.dataclass(frozen=True)
class PgDatabase:
    name: str
    url: str

    @property
    def sqlalchemy_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+psycopg://", 1)


@dataclasses.dataclass(frozen=True)
class Unreachable:
    """What ``throwaway_database`` yields when there is no server to use: false, with the reason."""

    reason: str

    def __bool__(self) -> bool:
        return False


def unavailable(reason: str, label: str = "PostgreSQL") -> list[dict]:
    """The row a benchmark reports instead of its PostgreSQL figures."""
    return [{"name": label, "value": None, "unit": "", "note": f"skipped: {reason.splitlines()[0][:120]}"}]


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[PgDatabase | Unreachable]:
    """Yield a new empty database, or an ``Unreachable`` (false) saying why the server cannot be used."""
    import psycopg

    name = f"ap_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:  # no server, refused, auth: the benchmark reports it skipped
        yield Unreachable(str(exc))
        return
    try:
        yield PgDatabase(name, ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

