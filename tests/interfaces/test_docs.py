"""Docs stay in step with the code: the CLI reference is regenerated, every command is in it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from agentic_pipeline.interfaces.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current():
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == _generator().render(), "docs/cli.md is stale: run .venv/bin/python scripts/gen_cli_docs.py"


def test_every_command_is_documented_with_a_real_description():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, (_target, short) in COMMANDS.items():
        assert f"## agentic-pipeline {name}\n" in text, name
        assert len(short) > 20, name


def test_readme_links_the_docs_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for link in ("docs/architecture.md", "docs/benchmarks.md"):
        assert link in readme and (ROOT / link).exists()


def _settings_generator():
    spec = importlib.util.spec_from_file_location("gen_settings_docs", ROOT / "scripts" / "gen_settings_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_has_a_description():
    from agentic_pipeline import config

    missing = [doc.name for doc in config.describe() if len(doc.help) < 10]
    assert not missing, f"settings without a '#:' comment above their field in config.Settings: {missing}"


def test_settings_reference_in_the_guide_is_current():
    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    assert guide == _settings_generator().render(guide), \
        "docs/guide.md's settings reference is stale: run .venv/bin/python scripts/gen_settings_docs.py"


def test_the_settings_reference_names_every_setting_and_its_environment_variable():
    from agentic_pipeline import config

    reference = _settings_generator().reference()
    for doc in config.describe():
        assert f"`{doc.name}`<br>`AGENTIC_PIPELINE_{doc.name.upper()}`" in reference


def _guide_command_lines() -> list[str]:
    """Every ``agentic-pipeline ...`` line in the guide's shell blocks, without its comment."""
    import re

    text = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("agentic-pipeline "):
                lines.append(line)
    return lines


def _unparsed(ctx) -> list[str]:
    """The subcommand and its arguments a group left unparsed (click 8 keeps the name in protected_args)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # protected_args merges into args in click 9
        return [*ctx.protected_args, *ctx.args]


def test_every_command_in_the_guide_parses(tmp_path):
    """The guide's examples name commands, options and arguments that exist (parsed by click, not run)."""
    import shlex

    import click

    from agentic_pipeline.interfaces.cli import cli

    for folder in ("Books", "Inbox", "Library"):  # the folders and files the examples name, as a shell would see them
        (tmp_path / folder).mkdir()
    (tmp_path / "Books" / "new.epub").write_bytes(b"")
    lines = _guide_command_lines()
    assert len(lines) > 20
    for line in lines:
        args = [arg.replace("~/", f"{tmp_path}/") for arg in shlex.split(line)[1:]]
        command, ctx = cli, None
        try:
            ctx = cli.make_context("agentic-pipeline", list(args), resilient_parsing=False)
            while isinstance(command, click.Group) and (pending := _unparsed(ctx)):
                name, *rest = pending
                command = command.get_command(ctx, name)
                assert command is not None, f"{line}: no command {name!r}"
                ctx = command.make_context(name, rest, parent=ctx)
        except click.UsageError as exc:
            raise AssertionError(f"docs/guide.md: `{line}` does not parse: {exc.format_message()}") from None
