"""SQL for alert delivery: episodes (one open per code) and the outbox of notifications.

An episode opens with an insert that the partial unique index ``ix_alert_episodes_open`` makes a
no-op when the code already has an open episode, and closes with a compare-and-set on
``cleared_at IS NULL``; only the writer whose statement changed a row enqueues the notifications,
in the same transaction. So any number of evaluators (several workers on several hosts, a
maintenance leader whose lease ran out and its successor) produce one notification per episode
and event; ``uq_alert_outbox_episode_id_event_channel`` holds it structurally too.

Delivery takes an outbox row with a compare-and-set on its ``next_attempt_at`` (pushed past the
send's time limit), so two drainers never send the same row at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from agentic_pipeline.db.schema import alert_episodes as ep
from agentic_pipeline.db.schema import alert_outbox as ob


def open_episodes(conn: sa.Connection) -> dict[str, dict[str, Any]]:
    """The open episodes by code."""
    rows = conn.execute(sa.select(ep).where(ep.c.cleared_at.is_(None)))
    return {r.code: dict(r._mapping) for r in rows}


def open_episode(conn: sa.Connection, *, code: str, severity: str, message: str, ids: list[int],
                 now: dt.datetime) -> int | None:
    """Open an episode for ``code``; its id, or None when one is already open (someone else opened it)."""
    insert = (pg_dialect.insert if conn.dialect.name == "postgresql" else sqlite_dialect.insert)(ep).values(
        code=code, severity=severity, message=message, ids=ids, started_at=now, last_seen_at=now)
    stmt = insert.on_conflict_do_nothing(index_elements=[ep.c.code], index_where=ep.c.cleared_at.is_(None))
    row = conn.execute(stmt.returning(ep.c.id)).first()
    return None if row is None else int(row.id)


def touch_episode(conn: sa.Connection, episode_id: int, *, severity: str, message: str, ids: list[int],
                  now: dt.datetime) -> None:
    """An open episode still holds: keep its latest figures (no notification)."""
    conn.execute(ep.update().where(ep.c.id == episode_id, ep.c.cleared_at.is_(None))
                 .values(severity=severity, message=message, ids=ids, last_seen_at=now))


def mark_notified(conn: sa.Connection, episode_id: int, *, now: dt.datetime) -> bool:
    """Compare-and-set: this writer queues the episode's "started" notification (False: someone else did)."""
    return conn.execute(ep.update().where(ep.c.id == episode_id, ep.c.notified_at.is_(None), ep.c.cleared_at.is_(None))
                        .values(notified_at=now)).rowcount == 1


def close_episode(conn: sa.Connection, episode_id: int, *, now: dt.datetime) -> dict[str, Any] | None:
    """Close an open episode; the closed row, or None when it was closed already."""
    row = conn.execute(ep.update().where(ep.c.id == episode_id, ep.c.cleared_at.is_(None))
                       .values(cleared_at=now).returning(*ep.c)).first()
    return None if row is None else dict(row._mapping)


def episodes(conn: sa.Connection, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(ep).order_by(ep.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def enqueue(conn: sa.Connection, *, episode_id: int, event: str, channels: list[str], payload: dict[str, Any],
            now: dt.datetime) -> int:
    """One outbox row per channel for this episode's event; how many were added."""
    if not channels:
        return 0
    conn.execute(ob.insert(), [dict(episode_id=episode_id, event=event, channel=c, payload=payload, created_at=now,
                                    next_attempt_at=now) for c in channels])
    return len(channels)


def due(conn: sa.Connection, now: dt.datetime, *, limit: int = 50) -> list[dict[str, Any]]:
    """Undelivered notifications whose next attempt is due, oldest first."""
    rows = conn.execute(sa.select(ob).where(ob.c.delivered_at.is_(None), ob.c.gave_up_at.is_(None),
                                            ob.c.next_attempt_at <= now)
                        .order_by(ob.c.next_attempt_at, ob.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


def take(conn: sa.Connection, row: dict[str, Any], *, until: dt.datetime) -> bool:
    """Claim one notification for a send: its next attempt moves to ``until`` unless someone moved it first."""
    return conn.execute(ob.update().where(ob.c.id == row["id"], ob.c.next_attempt_at == row["next_attempt_at"],
                                          ob.c.delivered_at.is_(None), ob.c.gave_up_at.is_(None))
                        .values(next_attempt_at=until, attempts=ob.c.attempts + 1)).rowcount == 1


def delivered(conn: sa.Connection, outbox_id: int, *, now: dt.datetime) -> None:
    conn.execute(ob.update().where(ob.c.id == outbox_id).values(delivered_at=now, last_error=None))


def failed(conn: sa.Connection, outbox_id: int, *, error: str, next_attempt_at: dt.datetime | None,
           now: dt.datetime) -> None:
    """A failed send: try again at ``next_attempt_at``, or give up (None)."""
    values: dict[str, Any] = {"last_error": error[:2000]}
    if next_attempt_at is None:
        values["gave_up_at"] = now
    else:
        values["next_attempt_at"] = next_attempt_at
    conn.execute(ob.update().where(ob.c.id == outbox_id).values(**values))


def outbox(conn: sa.Connection, *, limit: int = 200) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(ob).order_by(ob.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def backlog(conn: sa.Connection) -> dict[str, int]:
    """Pending and given-up notifications (for doctor and the health of delivery itself)."""
    pending = conn.execute(sa.select(sa.func.count()).select_from(ob).where(
        ob.c.delivered_at.is_(None), ob.c.gave_up_at.is_(None))).scalar_one()
    gave_up = conn.execute(sa.select(sa.func.count()).select_from(ob).where(ob.c.gave_up_at.is_not(None))).scalar_one()
    return {"pending": int(pending), "gave_up": int(gave_up)}
