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
    from rich.table import Table

    out = console()
    stuck = info.get("stuck")
    flag = f"  [bold red]STUCK[/] {stuck['minutes_in_state']:.0f} min (expected {stuck['expected_minutes']:.0f})" if stuck else ""
    out.print(f"[bold]Pipeline {info['id']}[/]  {lit(info['title'] or info['source_path'])}")
    out.print(f"State: [bold]{info['state'].upper()}[/] for {_human_seconds(info['seconds_in_state'])}{flag}")
    out.print(f"Priority: {info['priority']}" + (f" (was {info['base_priority']})" if info['priority'] != info['base_priority'] else ""))
    if info.get("book_type"):
        out.print(f"Type: {info['book_type']} (confidence {info['confidence']:.2f})")
    if info.get("duplicate_of"):
        out.print(f"Duplicate of pipeline {info['duplicate_of']} (same content)")
    if info.get("error"):
        out.print(f"Last error ({lit(info.get('error_stage') or '?')}): [red]{lit(info['error'])}[/]")
    if info.get("lease_owner"):
        out.print(f"Lease: {lit(info['lease_owner'])} until {info['lease_expires_at']:%Y-%m-%d %H:%M:%S} UTC")
    if info.get("next_attempt_at"):
        out.print(f"Next retry: {info['next_attempt_at']:%Y-%m-%d %H:%M:%S} UTC (attempt {info['retry_count'] + 1})")
    table = Table("from", "to", "at (UTC)", "time in previous", "actor", box=None)
    for h in info["history"]:
        spent = _human_seconds(h["seconds_in_previous"]) if h["seconds_in_previous"] is not None else ""
        table.add_row(h["from"] or "", h["to"], f"{h['at']:%Y-%m-%d %H:%M:%S}", spent, lit(h["actor"]))
    out.print(table)


def _human_seconds(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
