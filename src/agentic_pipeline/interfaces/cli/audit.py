"""The ``audit`` command group: query the trail, ``verify`` the chain, ``prune`` past retention."""

from __future__ import annotations

import click

from agentic_pipeline.interfaces.cli.context import ID, actor_option, emit, json_option


@click.group("audit", invoke_without_command=True)
@click.option("--last", "limit", type=click.IntRange(1, 10_000), default=20, show_default=True, metavar="N",
              help="Show at most N entries (1-10000; --json for machine use).")
@click.option("--actor", help="Only this actor; globs work: 'human:*', 'mcp:*' (case-sensitive).")
@click.option("--action", help="Only this action, e.g. APPROVED, BATCH_REJECTED (case-insensitive).")
@click.option("--book-id", "--pipeline-id", "pipeline_id", type=ID, metavar="ID",
              help="Only entries about this book: its pipeline id, as books, search and status print it.")
@click.option("--library-book-id", "book_id", type=ID, metavar="ID", hidden=True,
              help="Only entries naming this internal library row id.")
@click.option("--last-days", type=float, help="Only entries from the last D days.")
@json_option
@click.pass_context
def audit_group(ctx, limit, actor, action, book_id, pipeline_id, last_days, as_json) -> None:
    """Query, verify and prune the append-only audit trail (newest entries first).

    \b
    Examples:
      agentic-pipeline audit --last 50
      agentic-pipeline audit --actor 'mcp:*' --last-days 7
      agentic-pipeline audit --action REJECTED --json
      agentic-pipeline audit verify
      agentic-pipeline audit prune            (dry run)
      agentic-pipeline audit prune --execute
    """
    if ctx.invoked_subcommand is not None:
        given = [name for name, value, default in (("--last", limit, 20), ("--actor", actor, None),
                 ("--action", action, None), ("--library-book-id", book_id, None), ("--book-id", pipeline_id, None),
                 ("--last-days", last_days, None)) if value != default]
        if given:
            raise click.UsageError(f"{', '.join(given)} filter the listing (`audit` alone), not "
                                   f"`audit {ctx.invoked_subcommand}`")
        ctx.meta["audit_json"] = as_json  # `audit --json verify` means the same as `audit verify --json`
        return
    from agentic_pipeline.audit import trail

    rows = trail.query(ctx.obj.app(), actor=actor, action=action, book_id=book_id, pipeline_id=pipeline_id,
                       last_days=last_days, limit=limit)
    emit(rows, as_json, _render_entries)


def _render_entries(rows) -> None:
    from agentic_pipeline.interfaces.cli import render

    if not rows:
        click.echo("No audit entries match.")
        return
    # the pipeline id names the book (as every command takes it); reasons wrap at words, never cut
    render.table([render.Column("id", justify="right"), render.Column("when (UTC)"), render.Column("action"),
                  render.Column("actor"), render.Column("pipeline", justify="right"), render.Column("reason", flex=True, wrap=True)],
                 [[r["id"], render.when(r["performed_at"]), r["action"], r["actor"], r["pipeline_id"] or "",
                   r["reason"] or ""] for r in rows])


@audit_group.command("verify")
@click.option("--require-key", is_flag=True,
              help="Every entry must be keyed with AGENTIC_PIPELINE_AUDIT_KEY (a trail keyed from its first entry).")
@json_option
@click.pass_context
def verify_cmd(ctx, require_key: bool, as_json: bool) -> None:
    """Walk the hash chain; exit 0 with the count when intact, 1 naming the first bad entry.

    Detects entries edited, deleted or inserted out of band (e.g. after the append-only triggers
    were dropped). Set AGENTIC_PIPELINE_AUDIT_KEY to also detect appends forged without the key;
    with --require-key, a trail rewritten whole with plain hashes is detected too.
    """
    from agentic_pipeline.audit import trail

    result = trail.verify(ctx.obj.app(), require_key=require_key)
    emit(result, as_json or ctx.meta.get("audit_json", False), _render_verify)
    if not result["ok"]:
        raise click.exceptions.Exit(1)


def _render_verify(r) -> None:
    if r["ok"]:
        extra = f", {r['pruned_ids']} removed by retention" if r["pruned_ids"] else ""
        keyed = f", keyed ({r['unkeyed']} older entries unkeyed)" if r["keyed"] else ""
        click.echo(f"OK: {r['count']} entries verified{extra}{keyed}; head {r['last_id']} {r['last_hash']}")
    else:
        click.echo(f"TAMPERED at entry {r['problem']['entry_id']} ({r['problem']['kind']}): "
                   f"{r['problem']['message']}", err=True)


@audit_group.command("prune")
@click.option("--execute", is_flag=True, help="Really remove the entries (default: dry run).")
@actor_option
@json_option
@click.pass_context
def prune_cmd(ctx, execute: bool, actor: str, as_json: bool) -> None:
    """Remove entries past their retention period (dry run unless --execute).

    The policy is the retention_days setting (APPROVED 365, REJECTED 365, ROLLED_BACK 730,
    BATCH_* 90, others 365 days). The removal is recorded in a RETENTION_PRUNED entry so
    `audit verify` keeps validating the chain.
    """
    from agentic_pipeline.audit import retention

    emit(retention.prune(ctx.obj.app(), execute=execute, actor=actor), as_json or ctx.meta.get("audit_json", False),
         _render_prune)


def _render_prune(r) -> None:
    verb = "Removed" if r["execute"] else "Would remove"
    click.echo(f"{verb} {r['count']} entries past retention" + ("" if r["execute"] else " (dry run)"))
    for action, n in r["by_action"].items():
        click.echo(f"  {action:<24} {n:>9}  (before {r['cutoffs'][action]:%Y-%m-%d})")
    if r["execute"] and r["record_ids"]:
        click.echo(f"Recorded in RETENTION_PRUNED entr{'y' if len(r['record_ids']) == 1 else 'ies'} "
                   f"{', '.join(map(str, r['record_ids']))}")
    elif r["count"]:
        click.echo("Run again with --execute to remove them.")
