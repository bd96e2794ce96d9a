"""The import contract holds on the real tree, and the checker reports each kind of mistake (scratch trees)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.unit import import_rules

SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_real_import_graph_keeps_the_rules():
    assert import_rules.check(SRC, "agentic_pipeline") == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    base = tmp_path / "pkg"
    for rel, body in {"__init__.py": "", "db/__init__.py": "", "db/store.py": "import sqlalchemy\n",
                      "pipeline/__init__.py": "", "pipeline/states.py": "X = 1\n", "errors.py": "",
                      "health/__init__.py": "", "health/monitor.py": "", "interfaces/__init__.py": "",
                      "interfaces/cli.py": "import click\n\ndef main():\n    from pkg.health import monitor\n",
                      **files}.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body), encoding="utf-8")
    return tmp_path


def test_a_clean_scratch_tree_passes(tmp_path):
    assert import_rules.check(_tree(tmp_path, {}), "pkg") == []


@pytest.mark.parametrize(("files", "expected"), [
    ({"pipeline/states.py": "from pkg.db import store\n"}, "pkg.pipeline.states:1: pure module imports pkg.db.store"),
    ({"db/store.py": "from pkg.health.monitor import report\n"}, "pkg.db.store:1: db/ imports the feature pkg.health.monitor"),
    ({"health/monitor.py": "import click\n"}, "pkg.health.monitor:1: only interfaces/ may import click"),
    ({"health/monitor.py": "from starlette.applications import Starlette\n"},
     "pkg.health.monitor:1: only interfaces/ may import starlette"),
    ({"health/monitor.py": "def f():\n    import json\n"},
     "pkg.health.monitor:2: import inside a function without a '# lazy: <reason>' comment"),
    ({"health/monitor.py": "from pkg.health import alerts\n", "health/alerts.py": "def f():\n"
      "    from pkg.health import monitor  # lazy: dodging the circle does not hide it\n"},
     "import circle: pkg.health.alerts <-> pkg.health.monitor"),
])
def test_the_checker_reports_a_deliberately_bad_import(tmp_path, files, expected):
    assert expected in import_rules.check(_tree(tmp_path, files), "pkg")


def test_a_reasoned_lazy_import_is_allowed(tmp_path):
    files = {"health/monitor.py": "def f():\n    import numpy  # lazy: heavy, only for the report\n"}
    assert import_rules.check(_tree(tmp_path, files), "pkg") == []
