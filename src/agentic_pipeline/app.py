"""The composition root: settings in, an ``App`` with the database, clock and embedder out.

Interfaces (CLI, MCP server, HTTP endpoint, workers) receive an ``App``; nothing opens a
connection at import time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agentic_pipeline import config
from agentic_pipeline.clock import Clock, SystemClock
from agentic_pipeline.db import migrations
from agentic_pipeline.db.engine import Database
from agentic_pipeline.db.pipelines import PipelineStore


@dataclasses.dataclass
class App:
    settings: config.Settings
    db: Database
    clock: Clock
    pipelines: PipelineStore
    _embedder: Any = None

    @classmethod
    def open(cls, settings: config.Settings | None = None, *, clock: Clock | None = None,
             check_schema: bool = True) -> "App":
        """Open the configured database; refuse one whose schema is behind unless ``check_schema`` is False."""
        settings = settings or config.load()
        clock = clock or SystemClock()
        db = Database(settings.db_url)
        if check_schema:
            try:
                migrations.check_current(db)
            except Exception:
                db.dispose()
                raise
        return cls(settings=settings, db=db, clock=clock, pipelines=PipelineStore(db, clock))

    @property
    def embedder(self):
        """The configured embedding model, loaded on first use (it is the slow import)."""
        if self._embedder is None:
            from agentic_pipeline.ingest import embed

            self._embedder = embed.load_embedder(self.settings.embedder)
        return self._embedder

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
