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
        @json_option
        @click.pass_obj
        @functools.wraps(fn)
        def command(obj, execute: bool, actor: str, as_json: bool, **kw):
            filt = pop_filter(kw)
            result = fn(obj.app(), filt, execute=execute, actor=actor, **kw)
            emit(result, as_json, _render)
        return command
    return wrap


@batch_command("batch-approve")
@click.option("--reason", help="Why, kept in the audit trail.")
def batch_approve_cmd(app, filt, *, execute, actor, reason):
    """Approve the books waiting for approval that match the filter (dry run unless --execute)."""
    from agentic_pipeline.batch import operations

    return operations.batch_approve(app, filt, actor=actor, reason=reason, execute=execute)


@batch_command("batch-reject")
@click.option("--reason", required=True, help="Why, kept in the audit trail (required).")
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
    from agentic_pipeline.batch import operations

    app = obj.app()
    with _progress(enabled=not as_json) as progress:
        result = operations.batch_queue(app, path, pattern=pattern, recursive=recursive, priority=priority,
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


def _render(data) -> None:
    from rich.table import Table

    out, plan = console(), data["plan"]
    out.print(f"[bold]{plan['matched']}[/] books match (filter {plan['filter']['filter_id']}, max {plan['max_count']})")
    if set(plan["filter"]) <= {"filter_id", "max_count"}:
        from agentic_pipeline.batch.filters import EMPTY_FILTER

        out.print(EMPTY_FILTER[0].upper() + EMPTY_FILTER[1:] + " (options above: --help).")
    if plan["rows"]:
        table = Table("id", "title", "type", "confidence", "state", "age", box=None)
        for r in plan["rows"]:
            conf = "" if r["confidence"] is None else f"{r['confidence']:.2f}"
            table.add_row(str(r["id"]), lit((r["title"] or "")[:60]), lit(r["book_type"]), conf, lit(r["state"]),
                          _age(r["age_seconds"]))
        out.print(table)
    change = lit(", ".join(f"{k}={v}" for k, v in plan["change"].items()))
    if not data["executed"]:
        if plan["rows"]:
            out.print(f"Would {plan['would']}" + (f" ({change})" if change else "")
                      + ". Run again with --execute to apply.")
        return
    res = data["result"]
    out.print(f"Applied to {res['applied']} books as {lit(res['actor'])}; skipped {res['skipped']}.")
    for s in res["skipped_details"]:
        out.print(f"  skipped {s['id']}: {lit(s['reason'])}")


def _render_queue(d) -> None:
    out = console()
    verb = "Queued" if d["executed"] else "Would queue"
    out.print(f"{verb} {d['queued_count']}, duplicates {d['duplicates_count']}, unsupported {d['unsupported_count']}, "
              f"unreadable {d['unreadable_count']}"
              + (f", refused {d['refused_count']}" if d.get("refused_count") else "")
              + f" (from {lit(d['path'])}, pattern {lit(repr(d['pattern']))}"
              f"{', recursive' if d['recursive'] else ''}, priority {d['priority']})")
    labels = {"duplicates": "duplicate", "unsupported": "unsupported", "unreadable": "unreadable", "refused": "refused"}
    for kind, label in labels.items():
        for item in d.get(kind, []):
            out.print(f"  {label}: {lit(item['path'])} ({lit(item['reason'])})")
    if not d["executed"] and d["queued_count"]:
        out.print("Run again with --execute to queue them.")
