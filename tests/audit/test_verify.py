"""verify: intact chains pass (also after pruning); every kind of out-of-band tampering is named."""

from __future__ import annotations

import pytest

from agentic_pipeline import errors
from agentic_pipeline.audit import chain, retention, trail
from tests.audit.conftest import add, drop_guards, tamper

DOC = {"state": "pending_approval", "scores": [0.5, 0.93], "note": "caf\u00e9"}


def _trail(app, clock, n=6):
    rows = add(app, n=n, before_state=DOC, after_state={"state": "approved"}, confidence_at_decision=0.93,
               pipeline_id=7, book_id=3, reason="looks good")
    clock.advance(seconds=1)
    return rows


def test_empty_trail_verifies(app):
    result = trail.verify(app)
    assert result["ok"] and result["count"] == 0 and result["last_hash"] == chain.GENESIS


def test_intact_trail_verifies(app, clock):
    rows = _trail(app, clock)
    result = trail.verify(app)
    assert result["ok"], result
    assert (result["count"], result["first_id"], result["last_id"]) == (6, 1, 6)
    assert result["last_hash"] == rows[-1]["entry_hash"]


def test_stored_row_hashes_like_the_appended_row(app, clock):
    """What the engine hands back (JSON, floats, times) hashes to the stored entry_hash."""
    row = _trail(app, clock, n=1)[0]
    from agentic_pipeline.db.schema import approval_audit
    import sqlalchemy as sa

    with app.db.read() as conn:
        stored = dict(conn.execute(sa.select(approval_audit)).one()._mapping)
    assert chain.compute_hash(stored) == stored["entry_hash"] == row["entry_hash"]


def test_verify_after_pruning(app, clock):
    add(app, action="BATCH_APPROVED", actor="batch:f1", n=3)
    add(app, n=2)                                     # kept (365 days) between pruned runs
    add(app, action="BATCH_REJECTED", actor="batch:f1", n=2)
    clock.advance(days=100)
    add(app, n=1)
    pruned = retention.prune(app, execute=True)
    assert pruned["count"] == 5 and pruned["runs"] == 2
    result = trail.verify(app)
    assert result["ok"], result
    assert (result["count"], result["pruned_ids"]) == (4, 5)
    clock.advance(days=300)                           # now the APPROVED ones go too: runs merge
    assert retention.prune(app, execute=True)["count"] == 2   # entry 8 is only 300 days old
    add(app, n=1)
    result = trail.verify(app)
    assert result["ok"], result
    assert (result["pruned_ids"], result["first_id"], result["count"]) == (7, 8, 4)


def _problem(app):
    result = trail.verify(app)
    assert not result["ok"]
    return result["problem"]


def test_edited_entry_is_named(app, clock):
    rows = _trail(app, clock)
    drop_guards(app)
    tamper(app, "UPDATE approval_audit SET reason = 'rubber-stamped' WHERE id = 4")
    assert _problem(app)["entry_id"] == 4 and _problem(app)["kind"] == "edited"
    result = trail.verify(app)  # what was verified: the three entries before the edited one
    assert (result["count"], result["last_id"], result["last_hash"]) == (3, 3, rows[2]["entry_hash"])


@pytest.mark.parametrize("micros", [400, 1, 999])
def test_a_sub_millisecond_edit_of_the_time_is_named(app, clock, micros):
    """The hash covers whole milliseconds; a stored time moved by less than one is still an edit."""
    rows = _trail(app, clock)
    drop_guards(app)
    if app.db.is_sqlite:  # seconds since the epoch as a REAL
        tamper(app, f"UPDATE approval_audit SET performed_at = performed_at + {micros / 1e6!r} WHERE id = 4")
    else:
        tamper(app, f"UPDATE approval_audit SET performed_at = performed_at + interval '{micros} microseconds' "
                    "WHERE id = 4")
    problem = _problem(app)
    assert (problem["entry_id"], problem["kind"]) == (4, "edited"), problem
    assert "performed_at is not the whole millisecond" in problem["message"]
    result = trail.verify(app)
    assert (result["count"], result["last_id"], result["last_hash"]) == (3, 3, rows[2]["entry_hash"])


def test_a_time_moved_by_whole_milliseconds_is_named(app, clock):
    _trail(app, clock)
    drop_guards(app)
    shift = "performed_at + 0.001" if app.db.is_sqlite else "performed_at + interval '1 millisecond'"
    tamper(app, f"UPDATE approval_audit SET performed_at = {shift} WHERE id = 2")
    assert (_problem(app)["entry_id"], _problem(app)["kind"]) == (2, "edited")


def test_edited_json_document_is_named(app, clock):
    _trail(app, clock)
    drop_guards(app)
    tamper(app, "UPDATE approval_audit SET confidence_at_decision = 0.99 WHERE id = 3")
    assert _problem(app) == {"entry_id": 3, "kind": "edited", "message": _problem(app)["message"]}


def test_edit_with_recomputed_hash_breaks_the_next_link(app, clock):
    rows = _trail(app, clock)
    drop_guards(app)
    forged = dict(rows[2], reason="forged")
    tamper(app, "UPDATE approval_audit SET reason = 'forged', entry_hash = :h WHERE id = 3",
           h=chain.compute_hash(forged))
    problem = _problem(app)
    assert (problem["entry_id"], problem["kind"]) == (4, "rechained")
    assert "entry 3" in problem["message"]


def test_deleted_entry_is_named(app, clock):
    _trail(app, clock)
    drop_guards(app)
    tamper(app, "DELETE FROM approval_audit WHERE id IN (3, 4)")
    problem = _problem(app)
    assert (problem["entry_id"], problem["kind"]) == (5, "deleted")
    assert "3..4" in problem["message"]


def test_deleted_first_entry_is_named(app, clock):
    _trail(app, clock)
    drop_guards(app)
    tamper(app, "DELETE FROM approval_audit WHERE id = 1")
    assert (_problem(app)["entry_id"], _problem(app)["kind"]) == (2, "deleted")


def test_grant_abuse_is_caught(app, clock):
    """Granting a delete by hand (without a RETENTION_PRUNED record) still shows as a deletion."""
    _trail(app, clock)
    tamper(app, "INSERT INTO audit_prune_grants (audit_id) VALUES (2)")
    tamper(app, "DELETE FROM approval_audit WHERE id = 2")
    assert (_problem(app)["entry_id"], _problem(app)["kind"]) == (3, "deleted")


def _insert(app, row):
    cols = ", ".join(row)
    tamper(app, f"INSERT INTO approval_audit ({cols}) VALUES ({', '.join(':' + c for c in row)})",
           **{k: (chain.canonical(v) if k in chain.JSON_FIELDS and v is not None else v) for k, v in row.items()})


def _forged(app, id_, prev_hash, key=None):
    row = {"id": id_, "book_id": None, "pipeline_id": 1, "action": "APPROVED", "actor": "human:mallory",
           "reason": None, "before_state": None, "after_state": None, "filter_used": None,
           "confidence_at_decision": None, "performed_at": app.clock.now(), "prev_hash": prev_hash}
    row["entry_hash"] = chain.compute_hash(row, key)
    if app.db.is_sqlite:
        row["performed_at"] = row["performed_at"].timestamp()
    return row


def test_inserted_entry_with_bad_link_is_named(app, clock):
    _trail(app, clock)
    _insert(app, _forged(app, 7, "f" * 64))          # no trigger needed: inserts are allowed
    assert (_problem(app)["entry_id"], _problem(app)["kind"]) == (7, "rechained")


def test_inserted_entry_into_a_pruned_gap_is_named(app, clock):
    add(app, action="BATCH_QUEUED", actor="batch:f1", n=3)
    clock.advance(days=91)
    add(app, n=2)
    retention.prune(app, execute=True)
    with app.db.read() as conn:
        import sqlalchemy as sa
        prune_after = conn.execute(sa.text("SELECT after_state FROM approval_audit WHERE id = 6")).scalar()
    assert prune_after
    _insert(app, _forged(app, 2, "0" * 64))
    problem = _problem(app)
    assert (problem["entry_id"], problem["kind"]) == (2, "inserted")


def test_forged_append_detected_with_a_key(app, clock, monkeypatch):
    monkeypatch.setenv(chain.KEY_ENV, "s3cret")
    rows = _trail(app, clock, n=3)
    assert trail.verify(app)["ok"]
    _insert(app, _forged(app, 4, rows[-1]["entry_hash"]))   # plain SHA-256: the forger lacks the key
    problem = _problem(app)
    assert (problem["entry_id"], problem["kind"]) == (4, "unkeyed")
    monkeypatch.delenv(chain.KEY_ENV)
    assert not trail.verify(app)["ok"]                        # without the key the keyed entries look edited


def test_key_added_later_accepts_the_unkeyed_prefix(app, clock, monkeypatch):
    _trail(app, clock, n=2)
    monkeypatch.setenv(chain.KEY_ENV, "s3cret")
    _trail(app, clock, n=2)
    result = trail.verify(app)
    assert result["ok"] and result["unkeyed"] == 2 and result["keyed"]
    strict = trail.verify(app, require_key=True)  # a trail that should be keyed from its first entry
    assert not strict["ok"] and (strict["problem"]["entry_id"], strict["problem"]["kind"]) == (1, "unkeyed")


def test_require_key_catches_a_whole_trail_rewritten_with_plain_hashes(app, clock, monkeypatch):
    if app.db.is_postgres:
        pytest.skip("a forger would also rewind the chain-head row and the id sequence there; the check is the same")
    monkeypatch.setenv(chain.KEY_ENV, "s3cret")
    _trail(app, clock, n=3)
    assert trail.verify(app, require_key=True)["ok"]
    monkeypatch.delenv(chain.KEY_ENV)
    drop_guards(app)
    tamper(app, "DELETE FROM approval_audit")
    _trail(app, clock, n=3)  # the forger rewrites the trail without the key
    monkeypatch.setenv(chain.KEY_ENV, "s3cret")
    assert trail.verify(app)["ok"]  # reads as "older, unkeyed" entries...
    assert not trail.verify(app, require_key=True)["ok"]  # ...unless the key is required from the start
    monkeypatch.delenv(chain.KEY_ENV)
    with pytest.raises(errors.InputError, match="AGENTIC_PIPELINE_AUDIT_KEY"):
        trail.verify(app, require_key=True)


@pytest.mark.parametrize("sabotage", ["ranges", "delete_record"])
def test_tampered_retention_record_is_named(app, clock, sabotage):
    add(app, action="BATCH_QUEUED", actor="batch:f1", n=2)
    clock.advance(days=91)
    add(app, n=1)
    record_id = retention.prune(app, execute=True)["record_ids"][0]
    drop_guards(app)
    if sabotage == "ranges":
        tamper(app, "UPDATE approval_audit SET reason = 'nothing to see' WHERE id = :i", i=record_id)
        assert (_problem(app)["entry_id"], _problem(app)["kind"]) == (record_id, "edited")
    else:
        tamper(app, "DELETE FROM approval_audit WHERE id = :i", i=record_id)
        assert (_problem(app)["entry_id"], _problem(app)["kind"]) == (3, "deleted")
