"""Core commands: ``init`` and ``status``."""

from __future__ import annotations

import click

from agentic_pipeline.interfaces.cli.context import ID, console, emit, json_option, lit


@click.command("init")
@json_option
@click.pass_obj
def init_cmd(obj, as_json: bool) -> None:
    """Create the database schema, or upgrade it to this version.

    Safe to run again: an up-to-date database is left as it is. Every other command refuses a
    database whose schema is behind and says to run this.
    """
    from agentic_pipeline.db import migrations

    app = obj.app(check_schema=False)
    before, after = migrations.upgrade(app.db)
    data = {"database": migrations.safe_url(app.db.url), "before": before, "after": after,
            "changed": before != after}

    def human(d):
        if d["changed"]:
            click.echo(f"Database {d['database']} upgraded: {d['before'] or 'empty'} -> {d['after']}")
        else:
            click.echo(f"Database {d['database']} is up to date (revision {d['after']})")

    emit(data, as_json, human)


@click.command("status")
@click.argument("pipeline_id", type=ID)
@json_option
@click.pass_obj
def status_cmd(obj, pipeline_id: int, as_json: bool) -> None:
    """Show one pipeline: state, time in state, stage history, errors, lease, next retry."""
    from agentic_pipeline.pipeline import status

    emit(status.describe(obj.app(), pipeline_id), as_json, _render_status)


def _render_status(info) -> None:
    out = console()
    stuck = info.get("stuck")
    flag = f"  [bold red]STUCK[/] {stuck['minutes_in_state']:.0f} min (expected {stuck['expected_minutes']:.0f})" if stuck else ""
    from agentic_pipeline.escaping import printable

    out.print(f"[bold]Pipeline {info['id']}[/]  {lit(printable(info['title'] or info['source_path']))}")
    out.print(f"State: [bold]{info['state'].upper()}[/] for {_human_seconds(info['seconds_in_state'])}{flag}")
    out.print(f"Priority: {info['priority']}" + (f" (was {info['base_priority']})" if info['priority'] != info['base_priority'] else ""))
    if info.get("book_type"):
        out.print(f"Type: {info['book_type']} (confidence {info['confidence']:.2f})")
    if info.get("duplicate_of"):
        out.print(f"Duplicate of pipeline {info['duplicate_of']} (same content)")
    if info.get("error"):
        entered = next((h for h in reversed(info["history"]) if h["to"] == info["state"]), None) or {}
        where = info.get("error_stage") or (entered.get("to") if entered else None) or info["state"]
        who = f" by {entered['actor']}" if entered.get("actor") and info["state"] in ("rejected", "failed") else ""
        out.print(f"Last error ({lit(where)}{lit(who)}): [red]{lit(printable(info['error']))}[/]")
        failed = [c.get("name") for c in (info.get("validation") or {}).get("checks") or []
                  if not c.get("passed") and c.get("severity", "error") == "error"]
        if failed:
            out.print(f"Failed validation checks: {lit(', '.join(failed))} (details and overrides: "
                      f"`agentic-pipeline show {info['id']}`)")
    if info.get("lease_owner"):
        out.print(f"Lease: {lit(info['lease_owner'])} until {info['lease_expires_at']:%Y-%m-%d %H:%M:%S} UTC")
    if info.get("next_attempt_at"):
        out.print(f"Next retry: {info['next_attempt_at']:%Y-%m-%d %H:%M:%S} UTC (attempt {info['retry_count'] + 1})")
    from agentic_pipeline.interfaces.cli import render

    history = info["history"]
    render.table([render.Column("at (UTC)"), render.Column("from"), render.Column("to"),
                  render.Column("took", justify="right"), render.Column("actor", flex=True)],
                 [[f"{h['at']:%Y-%m-%d %H:%M:%S}", h["from"] or "", h["to"],
                   _human_seconds(h["seconds_in_previous"]) if h["seconds_in_previous"] is not None else "", h["actor"]]
                  for h in history[-20:]],
                 more=max(0, len(history) - 20), hint="earlier rows: use --json")


def _human_seconds(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
