"""Architecture rules that must not erode: only the repository writes state; SQL lives in db/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "agentic_pipeline"
#: the pipeline store: the shared moves and its two engine adapters (db/store.py names the Protocol)
STATE_WRITERS = {SRC / "db" / name for name in ("pipelines.py", "sqlite_store.py", "postgres_store.py")}
RAW_STATE_SQL = re.compile(r"\bSET\s+state\s*=", re.IGNORECASE)


def _py_files():
    return [p for p in SRC.rglob("*.py") if "alembic" not in p.parts]


def test_only_the_repository_writes_state():
    offenders = []
    for path in _py_files():
        if path in STATE_WRITERS:
            continue
        text = path.read_text(encoding="utf-8")
        if RAW_STATE_SQL.search(text):
            offenders.append(f"{path}: raw SQL sets state")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            # .values(state=...), a values dict built as dict(state=...) or values.update(state=...)
            if name in ("values", "update", "dict") and any(k.arg == "state" for k in node.keywords):
                offenders.append(f"{path}:{node.lineno}: {name}(state=...)")
    assert offenders == []


def test_sql_lives_in_db():
    offenders = []
    for path in _py_files():
        if SRC / "db" in path.parents:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\b(sa\.text|exec_driver_sql|\.execute\()", text):
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == [], f"SQL outside db/: {offenders}"
