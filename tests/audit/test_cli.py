"""The ``audit`` command group through click's CliRunner, exit codes included."""

from __future__ import annotations

import json

from click.testing import CliRunner

from agentic_pipeline.interfaces.cli import cli
from tests.audit.conftest import add, drop_guards, tamper


def run(app, *args):
    return CliRunner().invoke(cli, ["--db", app.settings.db, "audit", *args], catch_exceptions=False)


def test_query_json_and_text(app, clock):
    add(app, "APPROVED", "human:alice", pipeline_id=1)
    add(app, "BATCH_REJECTED", "batch:f1", pipeline_id=2, reason="bad scans")
    result = run(app, "--actor", "batch:*", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["action"], r["actor"], r["pipeline_id"]) for r in rows] == [("BATCH_REJECTED", "batch:f1", 2)]
    text = run(app, "--last", "1")
    assert text.exit_code == 0 and "BATCH_REJECTED" in text.output and "APPROVED" not in text.output
    assert "No audit entries match" in run(app, "--action", "ESCAPE_HATCH").output


def test_unknown_action_is_a_usage_error(app):
    from agentic_pipeline.interfaces.cli.context import run as run_main

    assert run_main(cli, ["--db", app.settings.db, "audit", "--action", "NOPE"]) == 2


def test_verify_exit_codes(app, clock):
    add(app, n=3)
    ok = run(app, "verify")
    assert ok.exit_code == 0 and "OK: 3 entries verified" in ok.output
    drop_guards(app)
    tamper(app, "UPDATE approval_audit SET actor = 'human:mallory' WHERE id = 2")
    bad = run(app, "verify", "--json")
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["problem"]["entry_id"] == 2
    text = run(app, "verify")
    assert text.exit_code == 1 and "entry 2" in text.output


def test_prune_dry_run_then_execute(app, clock):
    clock.advance(days=-400)      # the CLI opens its own App on the system clock: write well in the past
    add(app, "BATCH_QUEUED", "batch:f1", n=2)
    clock.advance(days=400)
    add(app, n=1)
    dry = run(app, "prune")
    assert dry.exit_code == 0 and "Would remove" in dry.output and "--execute" in dry.output
    assert len(json.loads(run(app, "--json").output)) == 3
    done = run(app, "prune", "--execute", "--actor", "human:alice", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["execute"] is True
    assert run(app, "verify").exit_code == 0


def test_verify_with_audit_key(app, clock, monkeypatch):
    """AGENTIC_PIPELINE_AUDIT_KEY set: keyed entries verify; an append forged with a recomputed plain hash is named."""
    from agentic_pipeline.audit import chain

    monkeypatch.setenv(chain.KEY_ENV, "s3cret")
    rows = add(app, n=3, after_state={"state": "approved"})
    ok = run(app, "verify", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["keyed"] is True and json.loads(ok.stdout)["count"] == 3
    assert "keyed (0 older entries unkeyed)" in run(app, "verify").output
    forged = {"id": 4, "book_id": None, "pipeline_id": 1, "action": "APPROVED", "actor": "human:mallory",
              "reason": None, "before_state": None, "after_state": None, "filter_used": None,
              "confidence_at_decision": None, "performed_at": app.clock.now(), "prev_hash": rows[-1]["entry_hash"]}
    forged["entry_hash"] = chain.compute_hash(forged)            # the forger has no key: plain SHA-256
    if app.db.is_sqlite:
        forged["performed_at"] = forged["performed_at"].timestamp()
    tamper(app, f"INSERT INTO approval_audit ({', '.join(forged)}) VALUES ({', '.join(':' + c for c in forged)})",
           **forged)
    bad = run(app, "verify", "--json")
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["problem"]["entry_id"] == 4 and json.loads(bad.stdout)["problem"]["kind"] == "unkeyed"
    text = run(app, "verify")
    assert text.exit_code == 1 and "entry 4" in text.output and "unkeyed" in text.output
    monkeypatch.delenv(chain.KEY_ENV)                             # without the key, keyed entries look edited
    assert json.loads(run(app, "verify", "--json").stdout)["problem"] == {
        "entry_id": 1, "kind": "edited", "message": json.loads(run(app, "verify", "--json").stdout)["problem"]["message"]}
