"""``doctor``: a thin skin over agentic_pipeline.health.doctor."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import click

from agentic_pipeline import errors
from agentic_pipeline.interfaces.cli.context import emit, json_option

CHECK_NAMES = ("clock", "disk", "embedding", "ocr", "watch_folder", "workers", "audit", "search_index",
               "alert_delivery")


@click.command("doctor")
@json_option
@click.option("--skip", "skip", multiple=True, type=click.Choice(CHECK_NAMES), metavar="CHECK",
              help=f"Leave a check out (repeatable): {', '.join(CHECK_NAMES)}.")
@click.option("--watch-dir", type=click.Path(path_type=Path), default=None,
              help="The folder the workers watch (default: the watch_dir setting).")
@click.pass_context
def doctor_cmd(ctx, as_json: bool, skip: tuple[str, ...], watch_dir: Path | None) -> None:
    """Check this installation and say what to fix.

    Checks: the database (reachable, schema current), this host's clock against the database
    server's, free disk space, the embedding model (loads offline and embeds), OCR (engine and
    languages; optional), the watch folder (readable; processed folder writable), workers (alive
    while books wait), the audit chain (verifies), the search index (every completed book has
    vectors of the configured model; the full-text index matches), alert delivery (nothing
    given up). Run it on each host: disk, model, OCR and folders are this machine's.

    Exit code 0 when all is well, 1 with a warning, 2 when something is critical, 3 when a check
    could not tell (the database is down, so the checks that need it are unknown).
    """
    from agentic_pipeline.health import doctor

    try:
        settings = ctx.obj.settings()
    except errors.ConfigError as exc:
        report = doctor.config_failure(exc)
    else:
        report = doctor.run(settings, skip=skip, watch_dir=watch_dir)
    emit(report, as_json, render)
    ctx.exit(report["exit_code"])


LABELS = {"ok": "ok", "warning": "WARNING", "critical": "CRITICAL", "unknown": "unknown"}
COLOURS = {"ok": "green", "warning": "yellow", "critical": "red", "unknown": "magenta"}


def render(report) -> None:
    width = max(60, min(100, shutil.get_terminal_size((80, 24)).columns))
    counts = {}
    for c in report["checks"]:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    tally = ", ".join(f"{n} {s}" for s, n in counts.items())
    click.echo(click.style(f"Installation check: {LABELS[report['status']]}", bold=True,
                           fg=COLOURS[report["status"]]) + f"  ({tally})")
    indent = " " * 27  # "  " + status (9) + " " + check name (14) + " "
    for c in report["checks"]:
        label = click.style(f"{LABELS[c['status']]:<9}", fg=COLOURS[c["status"]])
        lines = textwrap.wrap(_plain(c["summary"]), width - len(indent)) or [""]
        click.echo(f"  {label} {c['name']:<14} {lines[0]}")
        for line in lines[1:]:
            click.echo(indent + line)
        for line in textwrap.wrap("fix: " + _plain(c["fix"]), width - len(indent)) if c.get("fix") else []:
            click.echo(indent + line)


def _plain(text: str) -> str:
    """Control characters from paths or server messages shown as escapes, never acted on by the terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in str(text))
