"""The fast paths stay exact: the server-hashed append, the chain head, the database-built verify payloads."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.audit import chain, trail
from agentic_pipeline.db import audit_store, migrations
from agentic_pipeline.db.engine import Database
from agentic_pipeline.db.schema import approval_audit
from tests.audit.conftest import add, drop_guards, tamper
from tests.conftest import make_db_url

#: documents with unsorted keys, nesting, non-ASCII, floats, escapes: what canonical text must get right
ODD = [
    dict(before_state={"state": "pending_approval", "priority": 5, "z": [1, 2.5, None]},
         after_state={"note": "caf\u00e9 \u2603 \"quoted\" back\\slash\nline"}, confidence_at_decision=0.93),
    dict(reason="na\u00efve \U0001f600", confidence_at_decision=1.0, filter_used={"min": 1e-05, "max": 1e16}),
    dict(reason="tab\there", book_id=2**40, pipeline_id=7, confidence_at_decision=0.1 + 0.2),
    dict(after_state=[], before_state={}, filter_used="just a string", confidence_at_decision=None),
]


def _stored(app) -> list[dict]:
    with app.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(approval_audit).order_by(approval_audit.c.id))]


def test_payload_parts_rebuild_the_payload(clock):
    row = {"id": 41, "prev_hash": "ab" * 32, "action": "APPROVED", "actor": "human:a\"b",
           "performed_at": clock.now(), **ODD[0]}
    rest, tail = chain.payload_parts(row)
    assert "[41" + rest + "ab" * 32 + tail == chain.payload_of(row)


def test_appended_hash_is_the_python_hash(app, clock):
    """PostgreSQL hashes the appended entry itself: it must agree with ``chain.compute_hash`` byte for byte."""
    returned = [add(app, "APPROVED", "human:\u00e9lise", **fields)[0] for fields in ODD]
    stored = _stored(app)
    assert [r["entry_hash"] for r in returned] == [r["entry_hash"] for r in stored]
    for row in stored:
        assert chain.compute_hash(row) == row["entry_hash"]
    assert stored[0]["before_state"] == ODD[0]["before_state"]
    result = trail.verify(app)
    assert result["ok"] and result["count"] == len(ODD), result


def test_keyed_single_and_batch_appends_chain(app, clock, monkeypatch):
    monkeypatch.setenv(chain.KEY_ENV, "s3cret")
    add(app, n=2, **ODD[0])
    with app.db.write() as conn:
        audit_store.append_many(conn, [chain.AuditEntry(action="BATCH_QUEUED", actor="batch:f1", **f) for f in ODD],
                                clock.now())
    add(app, n=1)
    result = trail.verify(app)
    assert result["ok"] and result["count"] == 3 + len(ODD) and result["unkeyed"] == 0, result
    monkeypatch.delenv(chain.KEY_ENV)
    add(app, n=1)                                              # unkeyed after keyed: the forger's view
    monkeypatch.setenv(chain.KEY_ENV, "s3cret")
    assert trail.verify(app)["problem"]["kind"] == "unkeyed"


def test_concurrent_appends_make_one_chain(app):
    """Writers on separate connections at once: ids 1..n with no gap or fork (the head lock serialises them)."""
    failures = []

    def writer(i):
        try:
            add(app, "PRIORITY_CHANGED", f"human:w{i}", n=15)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    result = trail.verify(app)
    assert result["ok"] and (result["count"], result["last_id"]) == (60, 60), result


def test_missing_head_row_is_a_clear_error(app):
    if app.db.is_sqlite:
        pytest.skip("SQLite reads the head from the primary key")
    with app.db.write() as conn:
        conn.execute(sa.text("DELETE FROM audit_chain_head"))
    with pytest.raises(errors.StoreError, match="audit_chain_head"):
        add(app)


@pytest.mark.parametrize("edit, kind", [
    ("confidence_at_decision = 0.9300000000000002", "edited"),      # SQLite prints 15 digits: "0.93"
    ("reason = 'looks g\u00f6od'", "edited"),                         # non-ASCII: the engine quotes it raw
    ("book_id = '3x'", "edited"),                                     # SQLite keeps it as TEXT (not a number)
    ("actor = 'human:alice '", "edited"),
])
def test_database_built_payload_never_accepts_an_edit(app, clock, edit, kind):
    if "book_id" in edit and not app.db.is_sqlite:
        pytest.skip("PostgreSQL columns are typed")
    add(app, n=3, book_id=3, reason="looks good", confidence_at_decision=0.93, **{k: v for k, v in ODD[0].items()
                                                                               if k != "confidence_at_decision"})
    drop_guards(app)
    tamper(app, f"UPDATE approval_audit SET {edit} WHERE id = 2")
    problem = trail.verify(app)["problem"]
    assert (problem["entry_id"], problem["kind"]) == (2, kind)


def test_document_reformatted_out_of_band_is_the_same_value(app, clock):
    """Whitespace or key order changed in a stored document: same JSON value, still verifies (the slow path)."""
    add(app, n=2, after_state={"b": 1, "a": [1, 2]})
    drop_guards(app)
    tamper(app, "UPDATE approval_audit SET after_state = '{\"a\": [1, 2],  \"b\": 1}' WHERE id = 1")
    assert trail.verify(app)["ok"]
    if app.db.is_sqlite:                                    # PostgreSQL's json type refuses invalid text
        tamper(app, "UPDATE approval_audit SET after_state = '{\"a\": [1, 2], \"b\": 1' WHERE id = 2")
        assert trail.verify(app)["problem"] == {"entry_id": 2, "kind": "edited",
                                                "message": trail.verify(app)["problem"]["message"]}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_at_0003(request, tmp_path, sqlite_template, pg_databases):
    from alembic import command

    url = make_db_url(request.param, tmp_path, sqlite_template, pg_databases, migrated=False)
    db = Database(url.replace("postgresql://", "postgresql+psycopg://"))
    with db.write() as conn:
        command.upgrade(migrations._config(conn), "0003")
    yield db
    db.dispose()


#: JSONB stores numbers as numeric: a float written as 1e16 came back as the integer 10000000000000000,
#: so such a pre-0004 row never verified on PostgreSQL (documented in docs/audit.md); json keeps it
LEGACY = ODD[:1] + [dict(ODD[1], filter_used={"min": 1e-05, "max": 12.5})] + ODD[2:]


def test_chain_written_before_0004_still_verifies(db_at_0003, clock):
    """Rows written while the documents were JSONB (re-formatted by the server) verify after the upgrade."""
    db, prev = db_at_0003, chain.GENESIS
    with db.write() as conn:
        for i, fields in enumerate(LEGACY, start=1):
            row = {"id": i, "action": "APPROVED", "actor": "human:alice", "performed_at": clock.now(),
                   "prev_hash": prev, "book_id": None, "pipeline_id": None, "reason": None,
                   "before_state": None, "after_state": None, "filter_used": None,
                   "confidence_at_decision": None, **fields}
            row["performed_at"] = chain.truncate_to_millis(row["performed_at"])
            row["entry_hash"] = prev = chain.compute_hash(row)
            conn.execute(approval_audit.insert(), [row])         # JSONB (PostgreSQL) or JSON text (SQLite)
    migrations.upgrade(db)
    from agentic_pipeline import config
    from agentic_pipeline.app import App

    app = App.open(config.load({"db": db.url, "embedder": "hashing"}, environ={}), clock=clock)
    try:
        add(app, n=2)                                            # the head migration 0004 recorded
        result = trail.verify(app)
        assert result["ok"] and result["count"] == len(LEGACY) + 2, result
        drop_guards(app)
        tamper(app, "UPDATE approval_audit SET reason = 'forged' WHERE id = 2")
        assert trail.verify(app)["problem"]["entry_id"] == 2
    finally:
        app.close()


def test_row_inserted_out_of_band_stops_the_next_append(app, clock):
    """PostgreSQL: the head does not know the forged row, so the next append collides on its id (a StoreError)."""
    if app.db.is_sqlite:
        pytest.skip("SQLite reads the head from the table itself")
    rows = add(app, n=2)
    forged = {"id": 3, "book_id": None, "pipeline_id": None, "action": "APPROVED", "actor": "human:mallory",
              "reason": None, "before_state": None, "after_state": None, "filter_used": None,
              "confidence_at_decision": None, "performed_at": clock.now(), "prev_hash": rows[-1]["entry_hash"]}
    forged["entry_hash"] = chain.compute_hash(forged)
    with app.db.write() as conn:
        conn.execute(approval_audit.insert(), [forged])
    with pytest.raises(errors.StoreError, match="duplicate key|approval_audit"):
        add(app)
    with app.db.write() as conn:
        audit_store.rebuild_head(conn)
    assert add(app)[0]["id"] == 4 and trail.verify(app)["ok"]     # undetectable without a key: see docs


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_before_0008(request, tmp_path, sqlite_template, pg_databases):
    from alembic import command

    url = make_db_url(request.param, tmp_path, sqlite_template, pg_databases, migrated=False)
    db = Database(url.replace("postgresql://", "postgresql+psycopg://"))
    with db.write() as conn:
        command.upgrade(migrations._config(conn), "0008-1")
    yield db
    db.dispose()


def test_chain_written_before_0008_still_verifies_and_new_times_are_whole_milliseconds(db_before_0008, clock):
    """0008 changes no stored entry: a chain appended before it verifies; the database then refuses a sub-ms time."""
    import datetime as dt

    from agentic_pipeline import config
    from agentic_pipeline.app import App
    from agentic_pipeline.db import audit_store

    db = db_before_0008
    clock.advance(seconds=0.1234567)  # appends truncate this to the millisecond, as every version did
    with db.write() as conn:
        for n in range(3):
            audit_store.append(conn, chain.AuditEntry(action="APPROVED", actor="human:alice", reason=f"r{n}"),
                               clock.now())
    migrations.upgrade(db)
    app = App.open(config.load({"db": db.url, "embedder": "hashing"}, environ={}), clock=clock)
    try:
        add(app, n=2)
        result = trail.verify(app)
        assert result["ok"] and result["count"] == 5, result
        row = dict(add(app)[0], id=99, performed_at=clock.now().replace(microsecond=123456) + dt.timedelta(days=1))
        with pytest.raises(errors.StoreError, match="whole millisecond|approval_audit_whole_millisecond"):
            with app.db.write() as conn:
                conn.execute(approval_audit.insert(), [row])
    finally:
        app.close()
