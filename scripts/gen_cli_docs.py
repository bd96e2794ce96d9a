"""Write docs/cli.md from the commands' own --help (tests/interfaces/test_docs.py checks it is current).

    .venv/bin/python scripts/gen_cli_docs.py
"""

from __future__ import annotations

from pathlib import Path

import click

from agentic_pipeline.interfaces.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent

HEADER = """# CLI reference

Generated from each command's `--help` by `scripts/gen_cli_docs.py`; a test fails when it is out of date.
Every command takes the global options `--db URL|PATH` (or `AGENTIC_PIPELINE_DB`) and `--debug`.
Exit codes: 0 success, 1 an error (one line on stderr), 2 bad input or usage; `health` returns 0 / 1 / 2 for
healthy / warnings / critical, and `audit verify` 1 when the chain does not verify.
"""


def _help(path: list[str]) -> str:
    settings = {**cli.context_settings, "terminal_width": 100, "max_content_width": 100}
    ctx = click.Context(cli, info_name="agentic-pipeline", **settings)
    cmd: click.Command = cli
    for name in path:
        sub = cmd.get_command(ctx, name)
        ctx = click.Context(sub, info_name=name, parent=ctx, terminal_width=100, max_content_width=100)
        cmd = sub
    return cmd.get_help(ctx)


def render() -> str:
    parts = [HEADER]
    for name in sorted(COMMANDS):
        parts.append(f"## agentic-pipeline {name}\n\n```\n{_help([name])}\n```\n")
        cmd = cli.get_command(click.Context(cli), name)
        if isinstance(cmd, click.Group):
            for sub in sorted(cmd.list_commands(click.Context(cmd))):
                parts.append(f"### agentic-pipeline {name} {sub}\n\n```\n{_help([name, sub])}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    (ROOT / "docs" / "cli.md").write_text(render(), encoding="utf-8")
    print("wrote docs/cli.md")
