"""The ``agentic-pipeline`` command: a thin skin that parses, calls one operation, renders.

Commands are imported lazily (``COMMANDS`` maps a name to ``module:attribute``) so that
``agentic-pipeline --help`` does not import the embedding model, the MCP SDK or PDF libraries.
"""

from __future__ import annotations

import importlib
import sys

import click

from agentic_pipeline import __version__

#: command name -> "module:attribute" (relative to agentic_pipeline.interfaces.cli); help shown without importing
COMMANDS: dict[str, tuple[str, str]] = {
    # core
    "init": ("core:init_cmd", "Create the database schema, or upgrade it to this version."),
    "status": ("core:status_cmd", "Show one pipeline: state, time in state, stage history, errors, lease."),
    # working the queue (orchestrator, approval)
    "process": ("work:process_cmd", "Queue one book; with --wait, drive it through every stage now."),
    "worker": ("work:worker_cmd", "Run workers that take books through the pipeline."),
    "retry": ("work:retry_cmd", "Retry a book in NEEDS_RETRY, FAILED or REJECTED now (or every due one)."),
    "reprocess": ("reprocess:reprocess_cmd", "Read a book again from the start, e.g. with --ocr force."),
    "pending": ("work:pending_cmd", "List books waiting for approval."),
    "approve": ("work:approve_cmd", "Approve a validated book so a worker embeds it into the library."),
    "reject": ("work:reject_cmd", "Reject a book, with a reason."),
    "override": ("work:override_cmd", "Override a validator's rejection: approve anyway, relax a check, or change strategy."),
    "rollback": ("work:rollback_cmd", "Remove an approved or complete book from the library and archive it."),
    "autonomy": ("work:autonomy_group", "Show or change the automatic-approval policy."),
    "escape-hatch": ("work:escape_hatch_cmd", "Stop all automatic approvals at once (back to supervised)."),
    # library
    "search": ("library:search_cmd", "Search the library (full-text + vector hybrid)."),
    "strategies": ("library:strategies_cmd", "List the processing strategies, one per book type."),
    "reembed": ("library:reembed_cmd", "Give completed books vectors from the configured embedding model."),
    # priority queue and batch operations
    "priority": ("batch:priority_cmd", "Change one book's priority (1 urgent .. 10 backfill)."),
    "batch-queue": ("batch:batch_queue_cmd", "Queue every book in a folder (hashes, dedupes, reports)."),
    "batch-approve": ("batch:batch_approve_cmd", "Approve the books matching a filter (dry run unless --execute)."),
    "batch-reject": ("batch:batch_reject_cmd", "Reject the books matching a filter (dry run unless --execute)."),
    "batch-retry": ("batch:batch_retry_cmd", "Retry the books matching a filter (dry run unless --execute)."),
    "batch-priority": ("batch:batch_priority_cmd", "Set the priority of books matching a filter (dry run unless --execute)."),
    "batch-cancel": ("batch:batch_cancel_cmd", "Cancel queued books matching a filter (dry run unless --execute)."),
    "batch-rollback": ("batch:batch_rollback_cmd", "Roll back completed books matching a filter (dry run unless --execute)."),
    # health
    "health": ("health:health_cmd", "Show pipeline health: counts, stuck books, queue, workers, alerts."),
    "stuck": ("health:stuck_cmd", "List stuck books; recover them by the rules or one by one."),
    "serve": ("health:serve_cmd", "Serve /health and /metrics over HTTP (127.0.0.1 by default)."),
    "doctor": ("doctor:doctor_cmd", "Check this installation (database, disk, model, OCR, workers...) and say what to fix."),
    # audit
    "audit": ("audit:audit_group", "Query, verify and prune the append-only audit trail."),
    # MCP
    "mcp": ("mcp:mcp_cmd", "Run the MCP server on stdio for AI assistants."),
    # books as a person sees them (i18)
    "books": ("books:books_cmd", "List books by state, type, confidence, date or path; counts and pages."),
    "show": ("books:show_cmd", "Show one book in full: metadata, type and why, checks, chapters, error, history."),
    "edit": ("books:edit_cmd", "Correct a book's title, authors, language or type (audited)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked (or listed with --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, _short = COMMANDS[name]
        module_name, attr = target.split(":")
        module = importlib.import_module(f"agentic_pipeline.interfaces.cli.{module_name}")
        return getattr(module, attr)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        """An unknown command is a usage error that names the closest ones ("did you mean ...")."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=3, cutoff=0.6)
            close += [c for c in sorted(COMMANDS) if name in c and c not in close][:3 - len(close)]
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint} (agentic-pipeline --help lists them all)")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="agentic-pipeline")
@click.option("--db", envvar="AGENTIC_PIPELINE_DB", metavar="URL|PATH",
              help="Database: a postgresql:// URL, a SQLite file path or sqlite:/// URL. "
                   "Default: pipeline.db in the user data directory. [env: AGENTIC_PIPELINE_DB]")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              default=None, help="Least severe log lines on stderr (worker, serve, mcp, process --wait). "
                                 "[default: info, setting log_level]")
@click.option("--log-format", type=click.Choice(["text", "json"], case_sensitive=False), default=None,
              help="Log lines as text, or as JSON objects one per line (journald, Loki). "
                   "[default: text, setting log_format]")
@click.pass_context
def cli(ctx: click.Context, db: str | None, debug: bool, log_level: str | None, log_format: str | None) -> None:
    """Turn a folder of books (EPUB, PDF, text) into a searchable library, unattended.

    \b
    Quick start:
      agentic-pipeline init
      agentic-pipeline batch-queue ~/Books --recursive --execute
      agentic-pipeline worker --until-empty
      agentic-pipeline pending

    
    Shell completion (bash; zsh and fish alike with zsh_source / fish_source):
      eval "$(_AGENTIC_PIPELINE_COMPLETE=bash_source agentic-pipeline)"
    """
    from agentic_pipeline.interfaces.cli.context import CliContext

    ctx.obj = CliContext(db=db, debug=debug, log_level=log_level, log_format=log_format)
    ctx.call_on_close(ctx.obj.close)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors and meaningful exit codes."""
    from agentic_pipeline.interfaces.cli.context import run

    sys.exit(run(cli, argv))
