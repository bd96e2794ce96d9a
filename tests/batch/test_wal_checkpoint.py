"""SQLite: a batch's commit leaves the WAL checkpoint to the next writer, and the connection goes back normal."""

from __future__ import annotations

import struct
from pathlib import Path

import sqlalchemy as sa

from agentic_pipeline.batch import operations as batch
from agentic_pipeline.batch.filters import make_filter
from agentic_pipeline.db import engine
from tests.batch import rows

BIG = "x" * 3000  # ~1 page per row: 1,500 rows fill more than the 1,000-page autocheckpoint threshold


def _checkpoint(app, mode: str) -> tuple[int, int, int]:
    """(busy, frames in the WAL, frames copied) from a checkpoint on a connection outside any transaction."""
    raw = app.db.engine.raw_connection()
    try:
        return raw.driver_connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    finally:
        raw.close()


def _not_copied(app) -> int:
    """WAL frames not yet copied into the database: mxFrame - nBackfill from the wal-index (the -shm file).

    Layout from https://www.sqlite.org/walformat.html: mxFrame at byte 16 of the header, nBackfill at
    byte 96, native byte order. Read without a connection, so nothing checkpoints on the way.
    """
    shm = Path(sa.engine.make_url(app.db.url).database + "-shm").read_bytes()
    (max_frame,), (backfilled,) = struct.unpack_from("=I", shm, 16), struct.unpack_from("=I", shm, 96)
    return max_frame - backfilled


def _autocheckpoints(app) -> set[int]:
    pool = app.db.engine.pool
    conns = [app.db.engine.raw_connection() for _ in range(pool.checkedin() or 1)]
    try:
        return {c.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] for c in conns}
    finally:
        for c in conns:
            c.close()


def test_deferred_commit_leaves_the_wal_and_restores_the_setting(sqlite_app, clock):
    app = sqlite_app
    ids = rows.insert(app, [rows.row(clock.now(), i, source_path=f"/books/{i}-{BIG}.pdf") for i in range(1500)])
    _checkpoint(app, "TRUNCATE")  # start from an empty WAL
    with app.db.write() as conn:
        conn.exec_driver_sql("UPDATE processing_pipelines SET source_path = source_path || '!'")
        engine.defer_wal_checkpoint(conn)
    assert _not_copied(app) > engine.SQLITE_WAL_AUTOCHECKPOINT  # the committing connection did not copy them
    with app.db.read() as conn:  # readers see the committed rows from the WAL
        assert conn.exec_driver_sql("SELECT count(*) FROM processing_pipelines WHERE source_path LIKE '%!'").scalar() == len(ids)
    assert _autocheckpoints(app) == {engine.SQLITE_WAL_AUTOCHECKPOINT}
    _checkpoint(app, "PASSIVE")
    assert _not_copied(app) == 0


def test_batch_apply_leaves_its_commit_in_the_wal(sqlite_app, clock):
    app = sqlite_app
    rows.insert(app, [rows.row(clock.now(), i, book_type="periodical", confidence=0.9,
                               source_path=f"/books/{i}-{BIG}.pdf") for i in range(1500)])
    _checkpoint(app, "TRUNCATE")
    filt = make_filter(book_type="periodical", max_count=2000)
    plan = batch.plan_batch(app, "reject", filt, reason="no")
    result = batch.apply_plan(app, plan, actor="human:alice")
    assert result["applied"] == 1500
    assert _autocheckpoints(app) == {engine.SQLITE_WAL_AUTOCHECKPOINT}
    assert _not_copied(app) > engine.SQLITE_WAL_AUTOCHECKPOINT  # the batch's commit left its pages in the WAL
