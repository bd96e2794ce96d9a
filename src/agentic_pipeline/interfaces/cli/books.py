"""Books as a person sees them: ``books`` (list by filter), ``show`` (one in full), ``edit`` (correct it)."""

from __future__ import annotations

import click

from agentic_pipeline.interfaces.cli import render
from agentic_pipeline.interfaces.cli.batch import criteria_options, pop_filter
from agentic_pipeline.interfaces.cli.context import ID, actor_option, emit, json_option


@click.command("books")
@criteria_options
@click.option("--sort", default="id", show_default=True, metavar="KEY",
              help="Order by id, created, updated, state, title, type, confidence or priority; -KEY for descending.")
@click.option("--limit", type=click.IntRange(1, 10_000), metavar="N",
              help="Show at most N books (1-10000). [default: one screenful; with --json: 50]")
@click.option("--after", type=ID, metavar="ID", help="Continue after this pipeline id (the previous page's last).")
@click.option("--all", "show_all", is_flag=True, help="Show every matching book (at most 10000 per page).")
@json_option
@click.pass_obj
def books_cmd(obj, sort, limit, after, show_all, as_json, **criteria) -> None:
    """List books (every pipeline) by state, type, confidence, date or source path.

    Prints counts by state and type for the whole selection, then one page of books sorted by
    --sort. The last line says how to get the next page (--after ID). Without a filter: all books.

    \b
    Examples:
      agentic-pipeline books --state rejected
      agentic-pipeline books --state complete --sort -updated --limit 20
      agentic-pipeline books --source-path-pattern '*/Downloads/*' --json
    """
    from agentic_pipeline.books import operations

    filt = pop_filter(criteria, limits=False)
    if limit is None:
        limit = operations.MAX_LIMIT if show_all else (operations.DEFAULT_LIMIT if as_json or not render.is_tty()
                                                        else render.screen_rows(reserved=8))
    data = operations.list_books(obj.app(), filt, sort=sort, limit=limit, after=after)
    emit(data, as_json, _render_books)


def _render_books(d) -> None:
    if not d["total"]:
        click.echo("No books match.")
        return
    click.echo(f"{d['total']:,} books  " + render.counts_line("by state", d["counts"]["state"]))
    click.echo(render.counts_line("by type", d["counts"]["book_type"]))
    columns = [render.Column("id", justify="right"), render.Column("state"), render.Column("type"),
               render.Column("conf", justify="right"), render.Column("updated (UTC)"), render.Column("title", flex=True)]
    rows = [[r["id"], r["state"], r["book_type"] or "", render.conf(r["confidence"]), render.when(r["updated_at"]),
             r["title"] or r["source_path"]] for r in d["rows"]]
    render.table(columns, rows)
    if d["next_after"] is not None:
        shown = len(d["rows"])
        click.echo(f"... more after pipeline {d['next_after']} (next page: --after {d['next_after']}; "
                   f"or --limit / --all / --json); {shown:,} shown")


@click.command("show")
@click.argument("pipeline_id", type=ID)
@click.option("--all", "show_all", is_flag=True, help="Every chapter, history row and audit entry (default: the first few).")
@json_option
@click.pass_obj
def show_cmd(obj, pipeline_id: int, show_all: bool, as_json: bool) -> None:
    """Show everything about one book: metadata, type and why, validation, chapters, error, history, audit.

    The id is the pipeline id (as `books`, `pending`, `search` and `status` print it).
    """
    from agentic_pipeline.books import operations

    data = operations.show(obj.app(), pipeline_id)
    emit(data, as_json, lambda d: _render_show(d, show_all))


def _render_show(d, show_all: bool) -> None:
    from agentic_pipeline.escaping import printable as p
    from agentic_pipeline.interfaces.cli.core import _human_seconds

    few = 10**9 if show_all else 10
    echo = click.echo
    echo(f"Pipeline {d['id']}: {p(d['title'] or '(no title yet)')}")
    echo(f"  Authors:  {p(', '.join(d['authors'])) or '-'}")
    echo(f"  Language: {p(d['language']) or '-'}   Format: {p(d['format']) or '-'}   "
         f"Words: {d['words'] or '-'}" + (f"   Pages: {d['pages']}" if d.get("pages") else ""))
    echo(f"  File:     {p(d['source_path'])}")
    echo(f"  State:    {d['state'].upper()} for {_human_seconds(d['seconds_in_state'])}   Priority: {d['priority']}")
    if d["duplicate_of"]:
        echo(f"  Duplicate of pipeline {d['duplicate_of']} (same content)")
    if d["library_book_id"]:
        echo(f"  Library row: book {d['library_book_id']} (internal id; commands take the pipeline id {d['id']})")
    c = d["classification"]
    if c["book_type"]:
        echo(f"Type: {c['book_type']} (confidence {render.conf(c['confidence'])})"
             + (f"   strategy: {p(d['strategy'])}" if d.get("strategy") else ""))
        if c["human_label"]:
            lab = c["human_label"]
            echo(f"  Corrected by {p(lab['actor'])} from {lab['previous_type'] or '-'}"
                 + (f": {p(lab['reason'])}" if lab["reason"] else ""))
        if c["reasoning"]:
            echo(f"  Why: {p(c['reasoning'])}")
        if c["probabilities"]:
            top = list(c["probabilities"].items())[:4]
            echo("  Probabilities: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    v = d["validation"]
    if v:
        verdict = "passed" if v["passed"] else "FAILED: " + ", ".join(v["failed"])
        echo(f"Validation: {verdict}" + (f" (overridden by {p(v['overridden'].get('actor'))})" if v.get("overridden") else ""))
        for check in v["checks"][:few]:
            mark = "ok  " if check.get("passed") else ("WARN" if check.get("severity") == "warning" else "FAIL")
            echo(f"  {mark} {check['name']}: {p(check.get('detail'))}")
    e = d["error"]
    if e:
        who = f" by {p(e['actor'])}" if e.get("actor") else ""
        echo(f"Error ({e.get('stage') or d['state']}{who}): {p(e['message'] or e.get('reason'))}")
        if e.get("hint"):
            echo(f"  What to do: {p(e['hint'])}")
        if d["state"] == "rejected" and v and not v["passed"]:
            echo(f"  To override: agentic-pipeline override {d['id']} --reason TEXT --approve "
                 f"(or --relax {v['failed'][0] if v['failed'] else 'CHECK'}, or --strategy TYPE)")
    if d["next_attempt_at"]:
        echo(f"Next retry: {render.when(d['next_attempt_at'])} UTC (attempt {(d['retry_count'] or 0) + 1})")
    if d["warnings"]:
        echo("Warnings: " + "; ".join(p(w) for w in d["warnings"][:few]))
    if d["chapters"]:
        echo(f"Chapters ({len(d['chapters'])}):")
        render.table([render.Column("#", justify="right"), render.Column("words", justify="right"),
                      render.Column("title", flex=True)],
                     [[ch["index"] + 1, f"{ch['words']:,}", ch["title"]] for ch in d["chapters"][:few]],
                     more=max(0, len(d["chapters"]) - few), hint="use --all or --json")
    echo("History:")
    render.table([render.Column("at (UTC)"), render.Column("from"), render.Column("to"), render.Column("took", justify="right"),
                  render.Column("actor", flex=True)],
                 [[f"{h['at']:%Y-%m-%d %H:%M:%S}", h["from"] or "", h["to"],
                   _human_seconds(h["seconds_in_previous"]) if h["seconds_in_previous"] is not None else "", h["actor"]]
                  for h in d["history"][-few:]],
                 more=max(0, len(d["history"]) - few), hint="earlier rows: use --all or --json")
    if d["audit"]:
        echo("Audit:")
        render.table([render.Column("at (UTC)"), render.Column("action"), render.Column("actor"),
                      render.Column("reason", flex=True)],
                     [[render.when(a["performed_at"]), a["action"], a["actor"], a.get("reason") or ""]
                      for a in d["audit"][:few]],
                     more=max(0, len(d["audit"]) - few), hint="use --all or --json")


@click.command("edit")
@click.argument("pipeline_id", type=ID)
@click.option("--title", help="The correct title.")
@click.option("--author", "authors", multiple=True, help="An author (repeat for several; replaces the list).")
@click.option("--no-authors", is_flag=True, help="Clear the author list.")
@click.option("--language", help="ISO 639 language code (en, de, pt-BR: the primary subtag is kept).")
@click.option("--book-type", help="The correct type; also kept as a label the classifier learns from.")
@click.option("--reason", help="Why, kept in the audit trail.")
@actor_option
@json_option
@click.pass_obj
def edit_cmd(obj, pipeline_id, title, authors, no_authors, language, book_type, reason, actor, as_json) -> None:
    """Correct a book's title, authors, language or type (audited METADATA_CHANGED, old -> new).

    Allowed once the worker is done deriving them: pending approval, approved, complete, rejected,
    failed, duplicate or archived.
    """
    from agentic_pipeline import errors
    from agentic_pipeline.books import operations

    if no_authors and authors:
        raise errors.InputError("give --author or --no-authors, not both")
    author_list = [] if no_authors else (list(authors) if authors else None)
    data = operations.edit(obj.app(), pipeline_id, title=title, authors=author_list, language=language,
                           book_type=book_type, actor=actor, reason=reason)
    emit(data, as_json, _render_edit)


def _render_edit(d) -> None:
    from agentic_pipeline.escaping import printable as p

    if not d["changed"]:
        click.echo(f"Pipeline {d['id']}: nothing changed (the values are already so).")
        return
    click.echo(f"Pipeline {d['id']} changed:")
    for field, change in d["changed"].items():
        old, new = change["old"], change["new"]
        fmt = (lambda x: (", ".join(x) or "-") if isinstance(x, list) else ("-" if x is None else str(x)))
        click.echo(f"  {field}: {p(fmt(old))} -> {p(fmt(new))}")
    if d["label_id"]:
        click.echo("  (the type correction is kept as a label for the classifier)")
