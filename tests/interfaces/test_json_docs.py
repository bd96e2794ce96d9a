"""docs/json.md shows the real ``--json`` output of every command: same keys, same value types."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIX = "run .venv/bin/python scripts/gen_json_docs.py to regenerate docs/json.md"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_json_docs", ROOT / "scripts" / "gen_json_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _generator()


@pytest.fixture(scope="module")
def real(gen) -> dict[str, Any]:
    return dict(gen.collect())


@pytest.fixture(scope="module")
def docs(gen) -> dict[str, Any]:
    return gen.documented((ROOT / "docs" / "json.md").read_text(encoding="utf-8"))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def shape_differences(doc: Any, real: Any, path: str = "$") -> list[str]:
    """Where ``real`` does not have the shape of ``doc`` (null in either matches anything; lists by their first item)."""
    if doc is None or real is None:
        return []
    if _kind(doc) != _kind(real):
        return [f"{path}: documented {_kind(doc)}, got {_kind(real)}"]
    if isinstance(doc, dict):
        found = [f"{path}.{key}: documented, not in the output" for key in doc.keys() - real.keys()]
        found += [f"{path}.{key}: in the output, not documented" for key in real.keys() - doc.keys()]
        for key in doc.keys() & real.keys():
            found += shape_differences(doc[key], real[key], f"{path}.{key}")
        return found
    if isinstance(doc, list) and doc and real:  # items differ by kind (audit actions): the scenario is fixed,
        return shape_differences(doc[0], real[0], f"{path}[0]")  # so its first item is the one documented
    return []


def test_the_shape_checker_reports_a_missing_key_an_extra_key_and_a_changed_type():
    doc = {"id": 1, "title": "t", "tags": [{"name": "x"}], "note": None}
    assert shape_differences(doc, {"id": 2, "title": "u", "tags": [{"name": "y"}], "note": "n"}) == []
    found = shape_differences(doc, {"id": "2", "tags": [{"name": 3}], "note": None, "extra": 1})
    assert sorted(found) == ["$.extra: in the output, not documented", "$.id: documented number, got string",
                             "$.tags[0].name: documented string, got number", "$.title: documented, not in the output"]


def test_every_documented_output_has_the_shape_of_the_real_one(real, docs):
    assert list(real) == list(docs), f"docs/json.md lists other commands than the scenario runs: {FIX}"
    problems = {shown: d for shown in real if (d := shape_differences(docs[shown], real[shown]))}
    assert not problems, f"--json output differs from docs/json.md ({FIX}): {problems}"


def _json_commands(command: click.Command, prefix: str = "") -> list[str]:
    name = f"{prefix} {command.name}".strip()
    found = [name] if any(p.name == "as_json" for p in command.params) else []
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for sub in command.list_commands(ctx):
            found += _json_commands(command.get_command(ctx, sub), name)
    return found


def test_every_command_with_json_output_is_documented(docs):
    from agentic_pipeline.interfaces.cli import cli

    ctx = click.Context(cli)
    commands = [c for name in cli.list_commands(ctx) for c in _json_commands(cli.get_command(ctx, name))]
    shown = {s.split(" ")[0] if not s.startswith(("audit ", "autonomy ")) else " ".join(s.split(" ")[:2])
             for s in docs}
    missing = [c for c in commands if c not in shown]
    assert not missing, f"commands with --json missing from docs/json.md (add them to the scenario): {missing}"
