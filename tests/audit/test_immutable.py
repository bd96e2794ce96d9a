"""The database itself refuses UPDATE and DELETE on approval_audit, whatever tool issues them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.audit import retention, trail
from tests.audit.conftest import add, raw_connect


def _sqlalchemy_refuses(app, sql: str) -> None:
    with pytest.raises(errors.StoreError, match="append-only"):
        with app.db.write() as conn:
            conn.execute(sa.text(sql))


def _raw_refuses(app, sql: str) -> None:
    raw = raw_connect(app)
    try:
        with pytest.raises(Exception, match="append-only"):
            raw.execute(sql)
    finally:
        raw.close()


def test_audit_trail_immutable(app):
    """UPDATE and DELETE fail on both engines, through SQLAlchemy and through the raw driver."""
    add(app, n=3, reason="original")
    for sql in ("UPDATE approval_audit SET reason = 'edited' WHERE id = 2",
                "UPDATE approval_audit SET entry_hash = prev_hash",
                "DELETE FROM approval_audit WHERE id = 2",
                "DELETE FROM approval_audit"):
        _sqlalchemy_refuses(app, sql)
        _raw_refuses(app, sql)
    assert [r["reason"] for r in trail.query(app)] == ["original"] * 3
    assert trail.verify(app)["count"] == 3


def test_replace_and_upsert_are_refused(app):
    """SQLite's REPLACE deletes without firing DELETE triggers: a BEFORE INSERT guard stops it."""
    row = add(app)[0]
    cols = "id, action, actor, performed_at, prev_hash, entry_hash"
    values = f"1, 'APPROVED', 'human:mallory', 0, '{row['prev_hash']}', '{row['entry_hash']}'"
    if app.db.is_sqlite:
        _raw_refuses(app, f"INSERT OR REPLACE INTO approval_audit ({cols}) VALUES ({values})")
        _raw_refuses(app, f"REPLACE INTO approval_audit ({cols}) VALUES ({values})")
        upsert = f"INSERT INTO approval_audit ({cols}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET actor = 'x'"
    else:
        values = values.replace(", 0,", ", date_trunc('milliseconds', now()),")  # a whole ms (migration 0008)
        upsert = f"INSERT INTO approval_audit ({cols}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET actor = 'x'"
    _raw_refuses(app, upsert)
    assert trail.query(app)[0]["actor"] == "human:alice"


def test_truncate_refused_on_postgres(app):
    if not app.db.is_postgres:
        pytest.skip("SQLite has no TRUNCATE (DELETE without WHERE is refused above)")
    add(app)
    _raw_refuses(app, "TRUNCATE approval_audit")
    _sqlalchemy_refuses(app, "TRUNCATE approval_audit")
    with pytest.raises(errors.StoreError) as refused:  # its own message, not the one about DELETE
        with app.db.write() as conn:
            conn.execute(sa.text("TRUNCATE approval_audit"))
    assert "TRUNCATE is not allowed" in str(refused.value) and "DELETE" not in str(refused.value)


def test_grants_path_is_the_only_delete(app, clock):
    """Retention deletes through audit_prune_grants; the grants are gone when it commits."""
    add(app, action="BATCH_QUEUED", actor="batch:f1", n=2)
    clock.advance(days=91)
    assert retention.prune(app, execute=True)["count"] == 2
    with app.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_prune_grants")).scalar() == 0
    _raw_refuses(app, "DELETE FROM approval_audit")
