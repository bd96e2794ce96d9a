"""Maintenance leader rows: one runner per task per interval; missing task functions are skipped."""

from __future__ import annotations

import threading

from agentic_pipeline.db import workers_store
from agentic_pipeline.orchestrator import maintenance

COUNTER = {"n": 0}
LOCK = threading.Lock()


def counting_task(app):
    with LOCK:
        COUNTER["n"] += 1
    return {"ok": True}


TASKS = (("count", "tests.orchestrator.test_maintenance:counting_task", 60.0),
         ("missing", "agentic_pipeline.nowhere.tasks:nothing", 60.0))


def test_only_one_worker_runs_each_due_task(app, clock):
    COUNTER["n"] = 0
    ran = [maintenance.run_due(app, f"worker-{i}", tasks=TASKS) for i in range(3)]
    assert COUNTER["n"] == 1 and sum("count" in r for r in ran) == 1
    assert ran[0]["missing"]["skipped"].startswith("agentic_pipeline.nowhere")
    clock.advance(30)
    assert maintenance.run_due(app, "worker-1", tasks=TASKS) == {}
    clock.advance(31)
    assert "count" in maintenance.run_due(app, "worker-2", tasks=TASKS) and COUNTER["n"] == 2
    with app.db.read() as conn:
        rows = {r["name"]: r for r in workers_store.tasks(conn)}
    assert rows["count"]["holder"] is None and rows["count"]["last_result"]["ok"] is True


def test_concurrent_workers_elect_one_runner(sqlite_app):
    COUNTER["n"] = 0
    barrier = threading.Barrier(4)

    def go(i):
        barrier.wait()
        maintenance.run_due(sqlite_app, f"worker-{i}", tasks=TASKS[:1])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert COUNTER["n"] == 1


def test_the_real_task_list_runs_without_error(app):
    ran = maintenance.run_due(app, "worker-1")
    assert set(ran) == {name for name, _t, _i in maintenance.TASKS}
    assert not [name for name, r in ran.items() if "error" in r], ran


def test_the_checkpoint_task_empties_a_deferred_wal_on_sqlite_and_is_a_no_op_on_postgresql(app):
    from agentic_pipeline.db import engine
    from agentic_pipeline.health import tasks

    with app.db.write() as conn:
        engine.defer_wal_checkpoint(conn)
        for i in range(300):
            app.pipelines.create(source_path=f"/wal/{i}", actor="human:test", conn=conn)
    result = tasks.checkpoint_wal(app)
    if app.db.is_postgres:
        assert "skipped" in result
        return
    assert result["busy"] == 0 and result["wal_pages"] > 0 and result["checkpointed"] == result["wal_pages"]
    assert app.pipelines.count_by_state() == {"detected": 300}  # nothing lost by the copy
