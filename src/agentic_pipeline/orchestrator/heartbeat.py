"""A thread that keeps a worker's lease (and its ``workers.last_seen``) fresh while a stage runs."""

from __future__ import annotations

import threading

from agentic_pipeline import errors
from agentic_pipeline.db import workers_store


class Heartbeat:
    """Extend the lease every ``interval`` seconds; ``lost`` turns True when another worker took it."""

    def __init__(self, app, pipeline_id: int, worker_id: str) -> None:
        self.app, self.pipeline_id, self.worker_id = app, pipeline_id, worker_id
        self.interval = max(0.05, float(app.settings.heartbeat_seconds))
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{pipeline_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except errors.LeaseLost:
                self.lost = True
                return
            except errors.StoreError:
                continue  # the database blinked; the lease has slack for a missed beat

    def beat(self) -> None:
        store = self.app.pipelines
        store.heartbeat(self.pipeline_id, self.worker_id, lease_seconds=self.app.settings.lease_seconds)
        with self.app.db.write() as conn:
            workers_store.touch(conn, self.worker_id, now=self.app.clock.now())
