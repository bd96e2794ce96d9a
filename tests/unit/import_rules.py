"""The import contract, checked on the real import graph (the AST of every module, not text patterns).

Rules (docs/contributing.md "Import rules"):

1. **Pure modules import nothing from db/** (and no I/O framework): the decisions and data in ``PURE``.
2. **db/ imports no feature**: only db/ itself and the core it stores (``DB_MAY_IMPORT``).
3. **Only the interfaces import the interface frameworks** (``FRAMEWORKS``: click, mcp, starlette,
   uvicorn, jinja2): everything else is called by a skin, never the other way round.
4. **No circles** between modules, counting imports inside functions too (a circle dodged with a
   function-level import is still a circle).
5. **Imports inside functions only where start-up time needs them**, each with its reason on the
   line (or the line above): ``# lazy: <why>``. The interfaces (``interfaces/``: CLI commands and
   MCP tools, the entry points whose start-up ``test_cli_help_is_light`` measures) are exempt.

``check(root, package)`` returns the violations as readable strings; the tests run it on the real
tree (no violations) and on scratch trees with one deliberate mistake each (it must report it).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

PURE = {
    "errors", "pipeline.states", "pipeline.priority", "approval.policy", "approval.decision",
    "audit.chain", "audit.actions", "health.stats", "health.stuck_detector", "health.alerts", "batch.filters",
    "ingest.ranking",
}
DB_MAY_IMPORT = {"errors", "clock", "config", "pipeline.states", "pipeline.priority", "audit.chain", "audit.actions"}
FRAMEWORKS = {"click", "mcp", "starlette", "uvicorn", "jinja2"}
INTERFACES = "interfaces"
LAZY_MARKER = "# lazy:"


@dataclasses.dataclass(frozen=True)
class Edge:
    src: str          # importing module, relative to the package ("db.pipelines")
    dst: str          # imported module: relative for the package's own, absolute top name for others
    line: int
    inner: bool       # inside a function
    marked: bool      # carries a "# lazy:" reason
    own: bool         # dst is a module of the package


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root`` (alembic migrations left out), by relative dotted name."""
    base = root / package
    out = {}
    for path in sorted(base.rglob("*.py")):
        if "alembic" in path.parts:
            continue
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, package: str, known: dict[str, Path]) -> tuple[str, bool] | None:
    """(module, own) for an absolute module name; None for the package root itself."""
    if name == package:
        return None
    if name.startswith(package + "."):
        rel = name[len(package) + 1:]
        while rel and rel not in known:  # an attribute of a module (a class, a function)
            rel = rel.rpartition(".")[0]
        return (rel, True) if rel else None
    return name.split(".")[0], False


def edges(root: Path, package: str) -> list[Edge]:
    known = modules(root, package)
    out = []
    for rel, path in known.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        inner_nodes = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for sub in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from . import x
                    here = rel.split(".") if path.name == "__init__.py" else rel.split(".")[:-1]
                    base = ".".join([package] + here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                names = [f"{base}.{alias.name}" for alias in node.names] if base else []
            else:
                continue
            marked = any(LAZY_MARKER in lines[i - 1] for i in (node.lineno, node.lineno - 1) if i >= 1)
            inner = id(node) in inner_nodes
            for name in names:
                target = _resolve(name, package, known)
                if target is None and isinstance(node, ast.ImportFrom):  # from agentic_pipeline import errors
                    continue
                if target is not None and target[0] != rel:
                    out.append(Edge(rel, target[0], node.lineno, inner, marked, target[1]))
    return out


def _in(module: str, group: str) -> bool:
    return module == group or module.startswith(group + ".")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def check(root: Path, package: str) -> list[str]:
    """Every violation of the rules above, as ``module:line: what``."""
    problems = []
    all_edges = edges(root, package)
    for e in all_edges:
        where = f"{package}.{e.src}:{e.line}"
        if e.own and e.src in PURE and _in(e.dst, "db"):
            problems.append(f"{where}: pure module imports {package}.{e.dst}")
        if e.own and _in(e.src, "db") and not _in(e.dst, "db") and e.dst not in DB_MAY_IMPORT:
            problems.append(f"{where}: db/ imports the feature {package}.{e.dst}")
        if not e.own and e.dst in FRAMEWORKS and not _in(e.src, INTERFACES):
            problems.append(f"{where}: only {INTERFACES}/ may import {e.dst}")
        if e.inner and not e.marked and not _in(e.src, INTERFACES):
            problems.append(f"{where}: import inside a function without a '{LAZY_MARKER} <reason>' comment")
    graph: dict[str, set[str]] = {}
    for e in all_edges:
        if e.own:
            graph.setdefault(e.src, set()).add(e.dst)
    for component in _cycles(graph):
        problems.append(f"import circle: {' <-> '.join(f'{package}.{m}' for m in component)}")
    return problems
