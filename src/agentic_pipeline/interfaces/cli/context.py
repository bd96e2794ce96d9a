"""What every command shares: opening the app once, rendering output and errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from agentic_pipeline import errors


@dataclasses.dataclass
class CliContext:
    db: str | None = None
    debug: bool = False
    log_level: str | None = None
    log_format: str | None = None
    _app: Any = None
    _logging: bool = False

    def settings(self):
        from agentic_pipeline import config, logs

        if self.db is not None and not self.db.strip():
            raise errors.InputError("--db is empty: give a postgresql:// URL or a SQLite file path, or leave it out "
                                    "for the default database")
        settings = config.load({"db": self.db, "log_level": self.log_level, "log_format": self.log_format})
        if not self._logging:  # log lines on stderr, in the configured format, once per invocation
            logs.setup(settings.log_level, settings.log_format)
            self._logging = True
        return settings

    def app(self, *, check_schema: bool = True):
        """The App for this invocation, opened on first use."""
        if self._app is None:
            from agentic_pipeline.app import App

            self._app = App.open(self.settings(), check_schema=check_schema)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


def json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON for scripts, or through ``human`` for people."""
    if as_json:
        click.echo(json.dumps(data, default=json_default, indent=2, ensure_ascii=False))
    else:
        human(data)


def console():
    """Rich output for people: our own markup styles it; data goes in through ``lit`` (no emoji codes either)."""
    from rich.console import Console

    from agentic_pipeline.interfaces.cli import render

    # in a pipe or a file, a line is never wrapped at 80 columns (a path must survive grep and awk whole)
    return Console(highlight=False, emoji=False, soft_wrap=not render.is_tty())


def lit(value) -> str:
    """A value from the data (a title, path, error, reason, snippet) made literal inside Rich markup.

    A book titled "Arrays [/] and [bold]" must print as written, not style the line or fail it.
    """
    from rich.markup import escape

    return escape("" if value is None else str(value))


class _Id(click.ParamType):
    """A pipeline id: a positive whole number that fits the 64-bit id columns (help shows ``ID``, not the bound)."""

    name = "id"

    def get_metavar(self, param, ctx=None) -> str:  # click 8.1 and 8.2 signatures
        return "ID"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not an id: ids are whole numbers such as 42 (see `agentic-pipeline books`)",
                          param, ctx)
        if not 1 <= number <= 2**63 - 1:
            self.fail(f"{value} is not in the range of ids (1 to 2**63-1)", param, ctx)
        return number


#: a pipeline id (the one id users see for a book)
ID = _Id()

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text.")


def actor_option(f):
    from agentic_pipeline.audit.actions import default_human_actor

    return click.option("--actor", default=default_human_actor, show_default="human:$USER",
                        help="Who is doing this, recorded in the audit trail (kind:name).")(f)


def run(group: click.Group, argv: list[str] | None) -> int:
    """Invoke the CLI; render a ``PipelineError`` as one line (exit 2 for bad input, else 1)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        result = group.main(args=argv, prog_name="agentic-pipeline", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # commands that compute their own exit code (health, worker, audit verify)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except errors.PipelineError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return 2 if isinstance(exc, errors.InputError) else 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into one line
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        return 1
    return result if isinstance(result, int) else 0
