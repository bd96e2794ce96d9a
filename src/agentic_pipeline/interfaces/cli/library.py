"""Library commands: ``search`` and ``strategies``."""

from __future__ import annotations

import click

from agentic_pipeline.interfaces.cli.context import ID, console, emit, json_option, lit


@click.command("search")
@click.argument("query")
@click.option("--book", "pipeline_id", type=ID, metavar="ID",
              help="Only search this book: its pipeline id, as search, books and status print it.")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True, help="How many results.")
@json_option
@click.pass_obj
def search_cmd(obj, query: str, pipeline_id: int | None, limit: int, as_json: bool) -> None:
    """Search the library: full text and vector similarity, fused.

    Every word is required (then any of the content words); "quote a phrase"; -word excludes.
    Chinese and Japanese are found by any run of characters. Each hit leads with its pipeline id,
    then the book, the chapter path and the PDF pages. Tables of contents and indexes come last.
    When neither the words nor the meaning match well enough, it says no passage matches.
    Only books that completed the pipeline (approved and embedded) are searched.
    """
    from agentic_pipeline.library import search

    app = obj.app()
    results = search.search(app, query, pipeline_id=pipeline_id, limit=limit)

    def human(rows):
        out = console()
        if not rows:
            out.print(f"No passage matches {lit(repr(query))}.")
            hint = _why_nothing(app.pipelines.count_by_state())
            if hint:
                out.print(f"[dim]{hint}[/]")
            return
        from agentic_pipeline.escaping import printable

        for r in rows:  # the pipeline id leads: it is what status, show, approve and rollback take
            where = printable(r["chapter_path"] or r["chapter_title"] or "")
            if r["pages"]:
                first, last = r["pages"]
                where += f", p. {first}" if first == last else f", pp. {first}–{last}"
            out.print(f"[bold]{r['pipeline_id']}[/]  [bold]{lit(printable(r['book_title']) or '(untitled)')}[/] — "
                      f"{lit(where)} [dim](score {r['score']:.4f})[/]")
            out.print(f"   {lit(printable(r['snippet']))}")

    emit(results, as_json, human)


def _why_nothing(by_state: dict[str, int]) -> str:
    """Say what search cannot see yet, when that may be why it found nothing."""
    searchable = by_state.get("complete", 0)
    waiting = {"await approval (`agentic-pipeline pending`)": by_state.get("pending_approval", 0),
               "are approved and wait for a worker to embed them": by_state.get("approved", 0) + by_state.get("embedding", 0),
               "are still being processed or queued": sum(by_state.get(s, 0) for s in (
                   "detected", "hashing", "classifying", "selecting_strategy", "processing", "validating", "needs_retry"))}
    parts = [f"{n} {what}" for what, n in waiting.items() if n]
    if not parts:
        return "" if searchable else "The library is empty: queue books with `agentic-pipeline process` or `batch-queue`."
    book = "book is" if searchable == 1 else "books are"
    return f"{searchable} {book} searchable (search covers completed books); " + "; ".join(parts) + "."


@click.command("strategies")
@json_option
def strategies_cmd(as_json: bool) -> None:
    """List the processing strategies: one per book type, with chunking and validation settings.

    Strategies are data files shipped with the package (ingest/strategies/*.toml).
    """
    from agentic_pipeline.ingest import strategies

    data = [s.to_json() for s in strategies.load_strategies().values()]

    def human(rows):
        from agentic_pipeline.interfaces.cli import render

        yes = {True: "yes", False: "no", None: ""}
        render.table([render.Column("book type"), render.Column("tokens", justify="right"),
                      render.Column("overlap", justify="right"), render.Column("split"), render.Column("code"),
                      render.Column("tables"), render.Column("coverage", justify="right")],
                     [[s.get("book_type") or s.get("name"), s.get("chunk_tokens"), s.get("overlap_tokens"),
                       s.get("chapter_split"), yes.get(s.get("keep_code_whole"), ""),
                       yes.get(s.get("keep_tables_whole"), ""),
                       (s.get("validation") or {}).get("min_coverage", s.get("min_coverage", ""))] for s in rows])
        click.echo("tokens: chunk size; overlap: tokens shared by neighbouring chunks; code / tables: kept whole "
                   "in one chunk; coverage: share of the source's words the chapters must keep")

    emit(data, as_json, human)


@click.command("reembed")
@click.option("--book", "pipeline_id", type=ID, metavar="ID", help="Only this book: its pipeline id.")
@click.option("--dry-run", is_flag=True, help="Only say how many chunks lack vectors for the configured model.")
@json_option
@click.pass_obj
def reembed_cmd(obj, pipeline_id: int | None, dry_run: bool, as_json: bool) -> None:
    """Give completed books vectors from the configured embedding model.

    Run it after changing the `embedder` setting: search only compares vectors of the current
    model, so books embedded with another one are found by full text alone until re-embedded.
    Safe to stop and run again: each batch is its own transaction.
    """
    from agentic_pipeline.library import reembed

    app = obj.app()
    todo = reembed.plan(app, pipeline_id=pipeline_id)
    if dry_run:
        emit(todo, as_json, lambda d: click.echo(f"{d['chunks']} chunks in {len(d['books'])} books lack "
                                                 f"{d['model']} vectors"))
        return
    if as_json or not todo["chunks"]:
        result = reembed.reembed(app, pipeline_id=pipeline_id)
    else:
        from rich.progress import Progress

        with Progress(console=console()) as bar:
            task = bar.add_task(f"embedding with {todo['model']}", total=todo["chunks"])
            result = reembed.reembed(app, pipeline_id=pipeline_id, progress=lambda n: bar.advance(task, n))
    emit(result, as_json, lambda r: click.echo(f"Embedded {r['chunks_embedded']} chunks of {r['books']} books "
                                               f"with {r['model']}"))
