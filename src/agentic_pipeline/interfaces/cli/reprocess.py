"""reprocess: read a book again from the start, optionally with its own OCR mode."""

from __future__ import annotations

import click

from agentic_pipeline.interfaces.cli.context import ID, actor_option, emit, json_option


@click.command("reprocess")
@click.argument("pipeline_id", type=ID)
@click.option("--ocr", "ocr", type=click.Choice(["auto", "force", "off"], case_sensitive=False),
              help="This book's OCR mode from now on: auto (pages without text), force (every page), off.")
@actor_option
@json_option
@click.pass_obj
def reprocess_cmd(obj, pipeline_id: int, ocr: str | None, actor: str, as_json: bool) -> None:
    """Start a book over from hashing (detected, waiting to retry, failed, rejected or pending approval).

    Its library rows are removed and a worker reads it again; a pending book is rejected first.
    Approved or complete books must be rolled back first. Example: a scanned PDF rejected while
    OCR was off: `reprocess 12 --ocr auto`.
    """
    from agentic_pipeline.orchestrator import reprocess

    data = reprocess.reprocess(obj.app(), pipeline_id, actor=actor, ocr=ocr)
    emit(data, as_json, lambda d: click.echo(
        f"Pipeline {d['id']}: {d['from']} -> {d['state']} (OCR: {d['ocr_mode'] or 'the ocr_mode setting'}); "
        "a worker will read it again."))
