"""Tables that scale: a screenful on a terminal, one unwrapped record per line in a pipe.

On a TTY a table is drawn by Rich at the terminal's width: short columns (ids, states, dates,
numbers) never wrap or get cut, the one flexible column (a title, a path, a reason) takes the rest:
a title is cut with "…" so one book is one line, a reason wraps at word boundaries. When stdout is not a TTY nothing is wrapped or truncated: a header
line, then one record per line with tab-separated fields, so grep, cut and awk work. Either way
every field goes through ``escaping.printable`` (a title with a newline cannot forge a row).

How many rows: a command shows at most ``screen_rows()`` rows by default and says how many it
left out ("... 9,980 more (use --limit / --all / --json)").
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from typing import Any, Iterable, Sequence

import click

from agentic_pipeline.escaping import printable

#: rows a table shows by default when the terminal's height is unknown (a pipe: LINES or 24 lines)
FALLBACK_LINES = 24


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: ``flex`` columns share the width left by the others and wrap at words."""

    name: str
    flex: bool = False
    justify: str = "left"
    #: a flex column on a terminal: wrap at words (reasons), or one line cut with "…" (titles: one row, one line)
    wrap: bool = False


def is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def screen_rows(reserved: int = 6) -> int:
    """How many table rows fit on one screen beside ``reserved`` lines of header and summary (at least 5)."""
    lines = shutil.get_terminal_size((80, FALLBACK_LINES)).lines
    return max(5, lines - reserved)


def width() -> int:
    return shutil.get_terminal_size((80, FALLBACK_LINES)).columns


def table(columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, more: int = 0,
          hint: str = "use --limit / --all / --json") -> None:
    """Print ``rows`` (already limited by the caller), then "... N more" when ``more`` were left out."""
    rows = [[printable(v) for v in row] for row in rows]
    if is_tty():
        _rich_table(columns, rows)
    else:
        out = ["\t".join(c.name for c in columns)]
        out.extend("\t".join(row) for row in rows)
        click.echo("\n".join(out))
    if more > 0:
        click.echo(f"... {more:,} more ({hint})")


def _rich_table(columns: Sequence[Column], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(box=None, pad_edge=False, show_edge=False)
    for i, c in enumerate(columns):
        if c.flex:
            t.add_column(c.name, ratio=1, justify=c.justify, no_wrap=not c.wrap,
                         overflow="fold" if c.wrap else "ellipsis")
        else:
            longest = max([len(c.name)] + [len(r[i]) for r in rows])
            t.add_column(c.name, no_wrap=True, min_width=longest, justify=c.justify)
    for row in rows:
        t.add_row(*[Text(v) for v in row])
    Console(highlight=False, emoji=False, width=width()).print(t)


def lines(items: Iterable[str]) -> None:
    """Print each item on its own line, control characters escaped."""
    click.echo("\n".join(printable(i) for i in items))


def counts_line(label: str, counts: dict[str, int]) -> str:
    """``"state: complete 12, rejected 3"`` (largest first, as given)."""
    return f"{label}: " + ", ".join(f"{printable(k)} {v:,}" for k, v in counts.items()) if counts else f"{label}: none"


def when(moment) -> str:
    """A UTC time as ``2026-12-03 09:14`` (16 columns, never wraps)."""
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def conf(value) -> str:
    return "" if value is None else f"{value:.2f}"
