"""The composition root: settings in, an ``App`` with the database, clock and embedder out.

Interfaces (CLI, MCP server, HTTP endpoint, workers) receive an ``App``; nothing opens a
connection at import time.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from agentic_pipeline import config, errors
from agentic_pipeline import clock as clocks
from agentic_pipeline.clock import Clock
from agentic_pipeline.db import migrations
from agentic_pipeline.db.engine import Database
from agentic_pipeline.db.store import PipelineStore, open_store
import sqlalchemy as sa


@dataclasses.dataclass
class App:
    settings: config.Settings
    db: Database
    clock: Clock
    pipelines: PipelineStore
    _embedder: Any = None
    _vector_index: Any = None

    @classmethod
    def open(cls, settings: config.Settings | None = None, *, clock: Clock | None = None,
             check_schema: bool = True) -> "App":
        """Open the configured database; refuse one whose schema is behind unless ``check_schema`` is False."""
        settings = settings or config.load()
        if check_schema:
            missing = _missing_sqlite_file(settings.db_url)
            if missing is not None:  # say so, rather than create an empty file (and folders) at a mistyped path
                raise errors.NoDatabase(f"there is no database at {missing}",
                                          hint="create it with `agentic-pipeline init`, or check --db / AGENTIC_PIPELINE_DB")
        db = Database(settings.db_url, sqlite_cache_kib=settings.sqlite_cache_kib, sqlite_mmap=settings.sqlite_mmap)
        if check_schema:
            try:
                migrations.check_current(db)
            except Exception:
                db.dispose()
                raise
        clock = clock or clocks.for_database(db)  # PostgreSQL: the server's clock, shared by every host
        return cls(settings=settings, db=db, clock=clock, pipelines=open_store(db, clock))

    @property
    def embedder(self):
        """The configured embedding model, loaded on first use (it is the slow import)."""
        if self._embedder is None:
            from agentic_pipeline.ingest import embed  # lazy: the embedder loads the model's libraries; only what embeds pays for them

            self._embedder = embed.load_embedder(self.settings.embedder)
        return self._embedder

    @property
    def vector_index(self):
        """The vector index (library.vector_index), opened on first use and kept: long-running processes load it once."""
        if self._vector_index is None:
            from agentic_pipeline.library import vector_index  # lazy: it imports numpy and usearch; only search pays for them

            self._vector_index = vector_index.open_index(self.db, self.settings, self.embedder)
        return self._vector_index

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database file that does not exist (None for PostgreSQL, memory, or a file that does)."""
    if not url.startswith("sqlite"):
        return None

    path = sa.engine.make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return None if Path(path).exists() else path
