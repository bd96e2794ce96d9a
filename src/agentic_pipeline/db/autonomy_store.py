"""SQL for the autonomy policy: the single ``autonomy_config`` row and the atomic daily counter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from agentic_pipeline.db.schema import autonomy_config as ac
from agentic_pipeline.db.schema import autonomy_daily as ad

CONFIG_ID = 1


def get_config(conn: sa.Connection) -> dict[str, Any] | None:
    row = conn.execute(sa.select(ac).where(ac.c.id == CONFIG_ID)).first()
    return dict(row._mapping) if row else None


def save_config(conn: sa.Connection, values: dict[str, Any]) -> None:
    """Write the config row (insert it the first time)."""
    done = conn.execute(ac.update().where(ac.c.id == CONFIG_ID).values(**values)).rowcount
    if not done:
        conn.execute(ac.insert().values(id=CONFIG_ID, **values))


def approvals_on(conn: sa.Connection, day: str) -> int:
    return conn.execute(sa.select(ad.c.auto_approvals).where(ad.c.day == day)).scalar() or 0


def take_slot(conn: sa.Connection, day: str, cap: int) -> bool:
    """Count one automatic approval for ``day`` if that stays within ``cap``; atomic on both engines.

    The conditional UPDATE is the whole decision: SQLite runs it under the writer lock, PostgreSQL
    under the row lock (a second approver re-checks the condition after the first commits).
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # lazy: each engine's own INSERT .. ON CONFLICT
    else:
        from sqlalchemy.dialects.sqlite import insert  # lazy: each engine's own INSERT .. ON CONFLICT
    conn.execute(insert(ad).values(day=day, auto_approvals=0).on_conflict_do_nothing(index_elements=["day"]))
    return bool(conn.execute(
        ad.update().where(ad.c.day == day, ad.c.auto_approvals < cap)
        .values(auto_approvals=ad.c.auto_approvals + 1)
    ).rowcount)


def day_of(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%d")
