"""Priority and batch commands: priority, batch-queue, batch-approve, batch-reject, batch-retry, batch-priority.

Each parses, calls one operation in ``batch.operations`` / ``queue.operations``, renders. Every batch
command is a dry run unless ``--execute``: it prints the plan (matched count, the matching books,
the change); ``--execute`` applies that same plan.
"""

from __future__ import annotations

import functools

import click

from agentic_pipeline.interfaces.cli.context import ID, actor_option, console, emit, json_option, lit

execute_option = click.option("--execute", is_flag=True, help="Apply the change (without it: a dry run that only shows it).")


def criteria_options(f):
    """The filter's criteria (``books`` takes these; batch commands add --max-count and --all)."""
    for option in reversed(_options(filters_spec().FIELDS)):
        f = option(f)
    return f


def filter_options(f):
    """The one filter every batch command takes."""
    spec = filters_spec()
    for option in reversed(_options(spec.FIELDS + spec.LIMITS)):
        f = option(f)
    return f


def filters_spec():
    from agentic_pipeline.batch import filters

    return filters


def _options(fields) -> list:
    """Click options generated from ``batch.filters.FIELDS``/``LIMITS``: the design's name, then hidden old spellings.

    Values reach ``make_filter`` as typed (no click types), so its validation and messages are the
    ones every skin shows.
    """
    out = []
    for field in fields:
        if field.schema.get("type") == "boolean":
            out.append(click.option(field.option, f"{field.name}_", is_flag=True, help=field.help))
            continue
        help_text = field.help
        if "enum" in field.schema:
            help_text += " One of: " + ", ".join(field.schema["enum"]) + "."
        out.append(click.option(field.option, field.name, metavar=field.metavar, help=help_text))
        for alias in field.aliases:
            out.append(click.option(alias, f"{field.name}__{alias.strip('-').replace('-', '_')}", hidden=True,
                                    metavar=field.metavar, help=f"Old spelling of {field.option}."))
    return out


def pop_filter(kw: dict, *, limits: bool = True):
    """The validated filter from the options in ``kw`` (removed from it): aliases merged, relative input resolved."""
    import datetime as dt
    import os

    from agentic_pipeline import errors

    spec = filters_spec()
    values = {}
    for field in spec.FIELDS + (spec.LIMITS if limits else ()):
        key = f"{field.name}_" if field.schema.get("type") == "boolean" else field.name
        value = kw.pop(key, None)
        for alias in field.aliases:
            old = kw.pop(f"{field.name}__{alias.strip('-').replace('-', '_')}", None)
            if old is not None:
                if value is not None and value != old:
                    raise errors.InputError(f"{alias} is the old spelling of {field.option}: give one of them")
                value = old
        values[field.name] = value
    return spec.make_filter(**values, now=dt.datetime.now(dt.timezone.utc), base=os.getcwd())


def batch_command(name: str):
    """A batch command: the shared filter, --execute, --actor, --json, then render the plan / result."""
    def wrap(fn):
        @click.command(name)
        @filter_options
        @execute_option
        @actor_option
        @click.option("--show-all", is_flag=True, help="Print every matching book (default: one screenful).")
        @json_option
        @click.pass_obj
        @functools.wraps(fn)
        def command(obj, execute: bool, actor: str, show_all: bool, as_json: bool, **kw):
            filt = pop_filter(kw)
            result = fn(obj.app(), filt, execute=execute, actor=actor, **kw)
            emit(result, as_json, lambda d: _render(d, show_all))
        return command
    return wrap


@batch_command("batch-approve")
@click.option("--reason", help="Why, kept in the audit trail.")
def batch_approve_cmd(app, filt, *, execute, actor, reason):
    """Approve the books waiting for approval that match the filter (dry run unless --execute)."""
    from agentic_pipeline.batch import operations

    return operations.batch_approve(app, filt, actor=actor, reason=reason, execute=execute)


@batch_command("batch-reject")
@click.option("--reason", required=True, help="Why, kept in the audit trail.")
def batch_reject_cmd(app, filt, *, execute, actor, reason):
    """Reject the books waiting for approval that match the filter (dry run unless --execute)."""
    from agentic_pipeline.batch import operations

    return operations.batch_reject(app, filt, reason=reason, actor=actor, execute=execute)


@batch_command("batch-retry")
@click.option("--max-attempts", type=int, metavar="N", help="Also allow N attempts from now on.")
def batch_retry_cmd(app, filt, *, execute, actor, max_attempts):
    """Retry now the NEEDS_RETRY, FAILED or REJECTED books that match the filter (dry run unless --execute)."""
    from agentic_pipeline.batch import operations

    return operations.batch_retry(app, filt, actor=actor, max_attempts=max_attempts, execute=execute)


@batch_command("batch-priority")
@click.argument("priority", type=int)
def batch_priority_cmd(app, filt, *, execute, actor, priority):
    """Set the priority (1 urgent .. 10 backfill) of unfinished books matching the filter (dry run unless --execute).

    A manual change: it also resets the original priority and the aging level.
    """
    from agentic_pipeline.batch import operations

    return operations.batch_priority(app, filt, priority, actor=actor, execute=execute)


@batch_command("batch-cancel")
@click.option("--reason", required=True, help="Why, kept in the audit trail.")
def batch_cancel_cmd(app, filt, *, execute, actor, reason):
    """Cancel queued books (detected, needs_retry) matching the filter: archived unprocessed (dry run unless --execute).

    For files queued by mistake. Each book is audited CANCELLED, the batch BATCH_CANCELLED.
    """
    from agentic_pipeline.batch import operations

    return operations.batch_cancel(app, filt, reason=reason, actor=actor, execute=execute)


@batch_command("batch-rollback")
@click.option("--reason", required=True, help="Why, kept in the audit trail.")
def batch_rollback_cmd(app, filt, *, execute, actor, reason):
    """Undo approvals: complete or approved books matching the filter leave the library (dry run unless --execute).

    Each book is rolled back as `rollback ID` does (chapters, chunks and vectors removed, archived,
    audited ROLLED_BACK); the batch is audited BATCH_ROLLED_BACK.
    """
    from agentic_pipeline.batch import operations

    return operations.batch_rollback(app, filt, reason=reason, actor=actor, execute=execute)


@click.command("priority")
@click.argument("pipeline_id", type=ID)
@click.argument("priority", type=int)
@click.option("--reason", help="Why, kept in the audit trail.")
@actor_option
@json_option
@click.pass_obj
def priority_cmd(obj, pipeline_id: int, priority: int, reason, actor: str, as_json: bool) -> None:
    """Change one book's priority (1 urgent .. 10 backfill; 5 is normal).

    Sets the effective and the original priority and resets aging; audited as PRIORITY_CHANGED.
    """
    from agentic_pipeline.queue import operations

    result = operations.set_priority(obj.app(), pipeline_id, priority, actor=actor, reason=reason)

    def human(d):
        if not d["changed"]:
            click.echo(f"Pipeline {d['id']} already has priority {d['new']['priority']}")
        else:
            click.echo(f"Pipeline {d['id']}: priority {d['old']['priority']} -> {d['new']['priority']}")

    emit(result, as_json, human)


@click.command("batch-queue")
@click.argument("path", type=click.Path())  # batch_queue says what is wrong with it (missing, name too long)
@click.option("--pattern", default="*", show_default=True, help="Only files whose name matches this glob.")
@click.option("--recursive", is_flag=True, help="Also look in subfolders.")
@click.option("--priority", type=int, default=5, show_default=True, help="1 urgent .. 10 backfill.")
@execute_option
@actor_option
@json_option
@click.pass_obj
def batch_queue_cmd(obj, path, pattern, recursive, priority, execute, actor, as_json) -> None:
    """Queue every book in a folder: hashes each file, skips duplicates, reports the rest.

    Without --execute it only reports what would be queued. Duplicates are content already
    queued or in the library (or seen twice in this run); unsupported files have a suffix no
    extractor reads; unreadable ones could not be opened. None of them stop the run.
    """
    from agentic_pipeline import intake

    app = obj.app()
    with _progress(enabled=not as_json) as progress:
        result = intake.batch_queue(app, path, pattern=pattern, recursive=recursive, priority=priority,
                                    actor=actor, progress=progress, execute=execute)
    emit(result, as_json, _render_queue)


# ----------------------------------------------------------------------- rendering
def _progress(enabled: bool):
    """A Rich progress bar on a terminal; nothing otherwise (yields the callback or None)."""
    import contextlib
    import sys

    if not (enabled and sys.stderr.isatty()):
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def bar():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("hashing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=True, console=console().__class__(stderr=True)) as p:
            task = p.add_task("hash", total=None)
            yield lambda done, total, _path: p.update(task, completed=done, total=total)

    return bar()


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _render(data, show_all: bool = False) -> None:
    """The plan: a summary (counts by state and type), one screenful of books, the change; then the result."""
    from agentic_pipeline.escaping import printable
    from agentic_pipeline.interfaces.cli import render

    plan = data["plan"]
    rows = plan["rows"]
    click.echo(f"{plan['matched']:,} books match (filter {plan['filter']['filter_id']}, max {plan['max_count']:,})")
    if set(plan["filter"]) <= {"filter_id", "max_count"}:
        from agentic_pipeline.batch.filters import EMPTY_FILTER

        click.echo(EMPTY_FILTER[0].upper() + EMPTY_FILTER[1:] + " (options above: --help).")
    if rows:
        by_state: dict[str, int] = {}
        by_type: dict[str, int] = {}
        for r in rows:
            by_state[r["state"]] = by_state.get(r["state"], 0) + 1
            by_type[r["book_type"] or "unclassified"] = by_type.get(r["book_type"] or "unclassified", 0) + 1
        if len(rows) > 1:
            click.echo(render.counts_line("by state", dict(sorted(by_state.items(), key=lambda kv: -kv[1])))
                       + "   " + render.counts_line("by type", dict(sorted(by_type.items(), key=lambda kv: -kv[1]))))
        shown = rows if show_all else rows[:render.screen_rows(reserved=10)]
        render.table([render.Column("id", justify="right"), render.Column("state"), render.Column("type"),
                      render.Column("conf", justify="right"), render.Column("age", justify="right"),
                      render.Column("title", flex=True)],
                     [[r["id"], r["state"], r["book_type"] or "", render.conf(r["confidence"]), _age(r["age_seconds"]),
                       r["title"] or ""] for r in shown],
                     more=len(rows) - len(shown), hint="use --show-all / --json")
    change = printable(", ".join(f"{k}={v}" for k, v in plan["change"].items()))
    if not data["executed"]:
        if rows:
            click.echo(f"Would {plan['would']}" + (f" ({change})" if change else "")
                       + ". Run again with --execute to apply.")
        return
    res = data["result"]
    click.echo(f"Applied to {res['applied']:,} of {res['matched']:,} books as {printable(res['actor'])}; "
               f"skipped {res['skipped']:,}.")
    for reason, ids in _skips_by_reason(res["skipped_details"]).items():
        listed = ", ".join(map(str, ids[:10])) + (f", ... {len(ids) - 10:,} more" if len(ids) > 10 else "")
        click.echo(f"  skipped {len(ids):,} ({printable(reason)}): pipeline{'s' if len(ids) > 1 else ''} {listed}")


def _skips_by_reason(skipped) -> dict[str, list[int]]:
    """Skipped books grouped by why ("state changed since the preview: was pending_approval, now approved")."""
    out: dict[str, list[int]] = {}
    for s in skipped:
        out.setdefault(s["reason"], []).append(s["id"])
    return out


def _render_queue(d) -> None:
    out = console()
    verb = "Queued" if d["executed"] else "Would queue"
    out.print(f"{verb} {d['queued_count']}, duplicates {d['duplicates_count']}, unsupported {d['unsupported_count']}, "
              f"unreadable {d['unreadable_count']}"
              + (f", refused {d['refused_count']}" if d.get("refused_count") else "")
              + f" (from {lit(d['path'])}, pattern {lit(repr(d['pattern']))}"
              f"{', recursive' if d['recursive'] else ''}, priority {d['priority']})")
    from agentic_pipeline.escaping import printable
    from agentic_pipeline.interfaces.cli import render

    labels = {"duplicates": "duplicate", "unsupported": "unsupported", "unreadable": "unreadable", "refused": "refused"}
    room = render.screen_rows(reserved=8)
    for kind, label in labels.items():
        items = d.get(kind, [])
        for item in items[:room]:
            click.echo(f"  {label}: {printable(item['path'])} ({printable(item['reason'])})")
        if len(items) > room:
            click.echo(f"  ... {len(items) - room:,} more {kind} (use --json)")
    if not d["executed"] and d["queued_count"]:
        out.print("Run again with --execute to queue them.")
