"""Working the queue: process, worker, retry, pending, approve, reject, rollback, autonomy, escape-hatch."""

from __future__ import annotations

import click

from agentic_pipeline.interfaces.cli.context import ID, actor_option, console, emit, json_option, lit


@click.command("process")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--priority", type=click.IntRange(1, 10), default=5, show_default=True, help="1 urgent .. 10 backfill.")
@click.option("--wait", is_flag=True, help="Drive the book through every stage now and print where it ended.")
@actor_option
@json_option
@click.pass_obj
def process_cmd(obj, path: str, priority: int, wait: bool, actor: str, as_json: bool) -> None:
    """Queue one book; with --wait, drive it through every stage in this process.

    Without --wait the book waits in the queue for a worker. With --wait it stops at
    PENDING_APPROVAL (or COMPLETE when the autonomy policy approved it), or where it failed.
    """
    from agentic_pipeline.orchestrator import process

    import signal
    import threading

    stop = threading.Event()
    if wait:  # SIGTERM or Ctrl-C: the running stage is killed, the book released (a worker may take it), exit 130
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    import logging
    import time

    from agentic_pipeline import logs

    log = logging.getLogger("agentic_pipeline.process")
    app = obj.app()
    if wait:
        logs.start_line(log, "process", app.settings, file=path)
    started = time.monotonic()
    try:
        result = process.process_one(app, path, priority=priority, actor=actor, wait=wait,
                                     interrupted=stop.is_set)
    except process.Aborted as exc:
        logs.event(log, "process_stopped", f"stopped: {exc}", level=logging.WARNING)
        raise click.exceptions.Exit(130) from None
    if wait and result.get("waited"):
        reason = result.get("error") or (f"same content as pipeline {result['duplicate_of']}"
                                         if result.get("duplicate_of") else None)
        logs.event(log, "book_done", f"pipeline {result['id']} {result['state'].upper()} in "
                   f"{logs.seconds(time.monotonic() - started)}: {result.get('title') or path}"
                   + (f" ({reason})" if reason else ""), pipeline_id=result["id"], title=result.get("title"),
                   state=result["state"], seconds=round(time.monotonic() - started, 3), reason=reason)

    def human(d):
        if d["created"]:
            click.echo(f"Queued: pipeline {d['id']} ({d['source_path']})")
        else:
            click.echo(f"Already known: pipeline {d['id']} is {d['state']} ({d['source_path']})")
        if d.get("waited"):
            extra = f" as {d['book_type']} ({d['confidence']:.2f})" if d.get("book_type") and d.get("confidence") is not None else ""
            if d.get("duplicate_of"):
                extra = f" of pipeline {d['duplicate_of']} (same content)"
            click.echo(f"Ended in {d['state'].upper()}{extra}" + (f": {d['error']}" if d.get("error") else ""))

    emit(result, as_json, human)


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@click.option("--watch", "watch_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Queue new books appearing in DIR (it must exist, unless --create). [setting watch_dir]")
@click.option("--create", "create_watch_dir", is_flag=True, help="Create the --watch folder if it does not exist.")
@click.option("--processed-dir", type=click.Path(file_okay=False), help="Move completed books' files into DIR.")
@click.option("--until-empty", is_flag=True, help="Exit 0 once nothing is queued or in progress.")
@click.option("--health-interval", type=click.FloatRange(min=1), metavar="SECONDS",
              help="Seconds between health report refreshes (at least 1). [default: 30, setting health_interval]")
@click.option("--poll", "poll_seconds", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds to wait when the queue is empty.")
@click.pass_obj
def worker_cmd(obj, concurrency, watch_dir, create_watch_dir, processed_dir, until_empty, health_interval,
               poll_seconds) -> None:
    """Run workers that take books through the pipeline.

    Logs on stderr: a start line, one line per book when it reaches PENDING_APPROVAL, COMPLETE,
    REJECTED, FAILED, NEEDS_RETRY or DUPLICATE (id, title, state, time, reason), warnings, and a
    summary on exit (--log-level, --log-format text|json before the command name).

    SIGTERM or Ctrl-C: stop claiming, finish the running stage, release the book, exit 0.
    A second signal stops at once (the book is released and resumes elsewhere).
    """
    from pathlib import Path

    from agentic_pipeline.orchestrator import worker

    settings = obj.settings()
    options = worker.Options(until_empty=until_empty, watch_dir=Path(watch_dir) if watch_dir else settings.watch_dir,
                             processed_dir=Path(processed_dir) if processed_dir else settings.processed_dir,
                             health_interval=health_interval, poll_seconds=poll_seconds,
                             create_watch_dir=create_watch_dir)
    obj.app()  # refuse a database whose schema is behind before forking anything
    obj.close()
    raise SystemExit(worker.run_worker(settings, concurrency=concurrency, options=options))


@click.command("retry")
@click.argument("pipeline_id", type=ID, required=False)
@actor_option
@json_option
@click.pass_obj
def retry_cmd(obj, pipeline_id, actor: str, as_json: bool) -> None:
    """Retry a book now (NEEDS_RETRY, FAILED or REJECTED); without an id, every book waiting to retry."""
    from agentic_pipeline.orchestrator import retries

    app = obj.app()
    data = [retries.retry(app, pipeline_id, actor=actor)] if pipeline_id is not None else retries.retry_all_due(app, actor=actor)
    emit(data, as_json, lambda d: click.echo("\n".join(f"Pipeline {r['id']}: {r['from']} -> due now" for r in d)
                                             or "Nothing waiting to retry."))


@click.command("pending")
@click.option("--book-type", "book_type", metavar="TYPE", help="Only books of this type.")
@click.option("--type", "old_type", hidden=True, help="Old spelling of --book-type.")
@click.option("--limit", type=click.IntRange(1), metavar="N",
              help="At most N books. [default: one screenful; with --json or --all: every one]")
@click.option("--all", "show_all", is_flag=True, help="Print every pending book.")
@json_option
@click.pass_obj
def pending_cmd(obj, book_type, old_type, limit, show_all, as_json: bool) -> None:
    """List books waiting for approval, oldest first: id, type, confidence, age, validation, title.

    Prints how many wait in all, then one screenful (--limit N, --all or --json for more).
    """
    from agentic_pipeline.approval import operations
    from agentic_pipeline.interfaces.cli import render

    book_type = book_type or old_type
    app = obj.app()
    if as_json:
        emit(operations.list_pending(app, limit=limit, book_type=book_type), True, None)
        return
    if limit is None and not show_all:
        limit = render.screen_rows(reserved=4)
    rows = operations.list_pending(app, limit=limit, book_type=book_type)
    total = len(rows) if limit is None or len(rows) < limit else operations.count_pending(app, book_type=book_type)
    _render_pending(rows, total)


def _render_pending(rows, total: int) -> None:
    from agentic_pipeline.interfaces.cli import render
    from agentic_pipeline.interfaces.cli.core import _human_seconds

    if not rows:
        click.echo("No books waiting for approval.")
        return
    click.echo(f"{total:,} book{'s' if total != 1 else ''} waiting for approval (oldest first)")
    render.table([render.Column("id", justify="right"), render.Column("type"), render.Column("conf", justify="right"),
                  render.Column("age", justify="right"), render.Column("checks"), render.Column("title", flex=True)],
                 [[r["id"], r["book_type"] or "", render.conf(r["confidence"]), _human_seconds(r["age_seconds"]),
                   r["validation"], r["title"] or r["source_path"]] for r in rows],
                 more=total - len(rows))


@click.command("approve")
@click.argument("pipeline_id", type=ID)
@click.option("--reason", help="Why (recorded in the audit trail).")
@actor_option
@json_option
@click.pass_obj
def approve_cmd(obj, pipeline_id: int, reason, actor: str, as_json: bool) -> None:
    """Approve a validated book; a worker then embeds it into the library."""
    from agentic_pipeline.approval import operations

    data = operations.approve(obj.app(), pipeline_id, actor=actor, reason=reason)
    emit(data, as_json, lambda d: click.echo(f"Approved pipeline {d['id']}; a worker will embed it."))


@click.command("reject")
@click.argument("pipeline_id", type=ID)
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
@actor_option
@json_option
@click.pass_obj
def reject_cmd(obj, pipeline_id: int, reason: str, actor: str, as_json: bool) -> None:
    """Reject a book, with a reason; its chapters and chunks are removed."""
    from agentic_pipeline.approval import operations

    data = operations.reject(obj.app(), pipeline_id, actor=actor, reason=reason)
    emit(data, as_json, lambda d: click.echo(f"Rejected pipeline {d['id']} (removed {d['removed']['chunks']} chunks)."))


@click.command("rollback")
@click.argument("pipeline_id", type=ID)
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
@actor_option
@json_option
@click.pass_obj
def rollback_cmd(obj, pipeline_id: int, reason: str, actor: str, as_json: bool) -> None:
    """Remove an approved or complete book's chapters, chunks and vectors; archive the pipeline."""
    from agentic_pipeline.approval import operations

    data = operations.rollback(obj.app(), pipeline_id, actor=actor, reason=reason)
    emit(data, as_json, lambda d: click.echo(f"Rolled back pipeline {d['id']} (removed {d['removed']['chunks']} chunks)."))


@click.group("autonomy", invoke_without_command=True)
@json_option
@click.pass_context
def autonomy_group(ctx, as_json: bool) -> None:
    """Show or change the automatic-approval policy (supervised, partial, confident).

    Without a subcommand: the status (as `autonomy status`).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(autonomy_status_cmd, as_json=as_json)
    elif as_json:
        ctx.meta["autonomy_json"] = True


def _render_autonomy(d) -> None:
    hatch = f"  ESCAPE HATCH ON since {d['escape_hatch_at']:%Y-%m-%d %H:%M} UTC: {d['escape_hatch_reason']}" if d["escape_hatch"] else ""
    click.echo(f"Mode: {d['mode']}{hatch}")
    if d["mode"] == "partial":
        click.echo(f"Threshold: {d['partial_threshold']:.2f} for every known type")
    for book_type, value in sorted(d["type_thresholds"].items()):
        click.echo(f"  {book_type}: {value:.2f}")
    click.echo(f"Automatic approvals today: {d['auto_approvals_today']} of {d['daily_cap']}")


@autonomy_group.command("status")
@json_option
@click.pass_obj
def autonomy_status_cmd(obj, as_json: bool = False) -> None:
    """Show the mode, thresholds, daily cap and today's automatic approvals."""
    from agentic_pipeline.approval import autonomy

    emit(autonomy.status(obj.app()), _group_json(as_json), _render_autonomy)


def _group_json(as_json: bool) -> bool:
    """``autonomy --json SUBCOMMAND`` means the same as ``autonomy SUBCOMMAND --json``."""
    return as_json or click.get_current_context().meta.get("autonomy_json", False)


@autonomy_group.command("enable")
@click.argument("mode", type=click.Choice(["partial", "confident"]))
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), help="partial: the one threshold (default 0.95).")
@click.option("--type-threshold", "type_thresholds", multiple=True, metavar="TYPE=VALUE",
              help="confident: a per-type threshold (repeatable).")
@click.option("--daily-cap", type=click.IntRange(0), help="Most automatic approvals per UTC day.")
@actor_option
@json_option
@click.pass_obj
def autonomy_enable_cmd(obj, mode, threshold, type_thresholds, daily_cap, actor, as_json) -> None:
    """Let high-confidence books be approved automatically."""
    from agentic_pipeline import errors
    from agentic_pipeline.approval import autonomy

    parsed = {}
    for item in type_thresholds:
        name, _, value = item.partition("=")
        try:
            parsed[name.strip()] = float(value)
        except ValueError:
            raise errors.InputError(f"--type-threshold wants TYPE=VALUE, got {item!r}") from None
    data = autonomy.enable(obj.app(), mode, actor=actor, threshold=threshold, thresholds=parsed, daily_cap=daily_cap)
    emit(data, _group_json(as_json), _render_autonomy)


@autonomy_group.command("disable")
@actor_option
@json_option
@click.pass_obj
def autonomy_disable_cmd(obj, actor, as_json) -> None:
    """Back to supervised: every book waits for a human."""
    from agentic_pipeline.approval import autonomy

    emit(autonomy.disable(obj.app(), actor=actor), _group_json(as_json), _render_autonomy)


@autonomy_group.command("resume")
@actor_option
@json_option
@click.pass_obj
def autonomy_resume_cmd(obj, actor, as_json) -> None:
    """Clear the escape hatch and return to the mode in force before it."""
    from agentic_pipeline.approval import autonomy

    emit(autonomy.resume(obj.app(), actor=actor), _group_json(as_json), _render_autonomy)


@click.command("escape-hatch")
@click.argument("reason")
@actor_option
@json_option
@click.pass_obj
def escape_hatch_cmd(obj, reason: str, actor: str, as_json: bool) -> None:
    """Stop all automatic approvals at once (back to supervised) until `autonomy resume`."""
    from agentic_pipeline.approval import autonomy

    emit(autonomy.escape_hatch(obj.app(), reason, actor=actor), as_json, _render_autonomy)


@click.command("override")
@click.argument("pipeline_id", type=ID)
@click.option("--reason", required=True, help="Why the validator is wrong here, kept in the audit trail.")
@click.option("--approve", is_flag=True, help="Approve anyway: relax every failed check, approve once processed.")
@click.option("--relax", multiple=True, metavar="CHECK",
              help="Let this check fail (repeatable), e.g. chapter_balance; the book then waits for approval.")
@click.option("--strategy", metavar="TYPE", help="Process it again with this book type's strategy (see `strategies`).")
@actor_option
@json_option
@click.pass_obj
def override_cmd(obj, pipeline_id: int, reason: str, approve: bool, relax, strategy, actor: str, as_json: bool) -> None:
    """Override the validator's rejection of a book: approve it anyway, relax a check, or change the strategy.

    The book is processed again at once by a worker (its chapters were removed when it was
    rejected), with the override applied; audited OVERRIDDEN. `show ID` lists the failed checks.
    """
    from agentic_pipeline.approval import overrides

    data = overrides.override(obj.app(), pipeline_id, actor=actor, reason=reason, relax=list(relax),
                              approve=approve, strategy=strategy)

    def human(d):
        what = "approve once processed" if d["approve"] else "wait for approval"
        relaxed = ", ".join(d["relax"]) or "none"
        click.echo(f"Pipeline {d['id']}: will be processed again (strategy {d['strategy']}), checks relaxed: "
                   f"{relaxed}; then {what}. A worker takes it now.")

    emit(data, as_json, human)
