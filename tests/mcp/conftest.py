"""One MCP server subprocess per module over a fresh database, with sample books under an allowed root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLES
from tests.mcp.client import mcp_client, server_env

#: small real books: two EPUBs of literature, a technical PDF, a periodical PDF, a Markdown poem
BOOKS = ("waste-land.epub", "romeo-juliet.epub", "fsm-drivers.pdf", "ltnews36.pdf", "waste-land.md")


@pytest.fixture(scope="module")
def library(tmp_path_factory, sqlite_template) -> dict[str, Path]:
    """``root`` (allowed, holding the sample books), ``outside`` (not allowed), ``db`` (migrated SQLite)."""
    base = tmp_path_factory.mktemp("mcp")
    root, outside, later = base / "books", base / "outside", base / "books" / "later"
    for folder in (root, outside, later):
        folder.mkdir(parents=True)
    for name in BOOKS:
        shutil.copy(SAMPLES / "books" / name, root / name)
    shutil.copy(SAMPLES / "books" / "zoo-jss.pdf", outside / "zoo-jss.pdf")
    shutil.copy(SAMPLES / "books" / "live-manual-de.epub", later / "live-manual-de.epub")
    db = base / "pipeline.db"
    shutil.copy(sqlite_template, db)
    return {"root": root, "outside": outside, "later": later, "db": db, "base": base}


@pytest.fixture(scope="module")
def client(library):
    with mcp_client(server_env(f"sqlite:///{library['db']}", [library["root"]])) as c:
        yield c
