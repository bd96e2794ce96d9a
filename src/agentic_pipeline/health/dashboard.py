"""Read operations behind the dashboard's overview, queue and failure views (SQL in db/dashboard_store.py).

Each returns plain data; the pages render it. Lists are pages (``limit``/``offset``), never whole tables.
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any

from agentic_pipeline import errors
from agentic_pipeline.pipeline import states
from agentic_pipeline.db import dashboard_store as ds
from agentic_pipeline.health import monitor

S = states.State
#: states a failure ends in (for the throughput chart and the failures view)
FAILURE_STATES = (S.NEEDS_RETRY.value, S.FAILED.value, S.REJECTED.value)
#: how many of the newest rejected / failed books the failures view groups by cause
FAILURE_WINDOW = 500
PAGE_MAX = 200


def throughput(app, hours: int = 24) -> list[dict[str, Any]]:
    """Per hour over the last ``hours``: books completed and books that failed (retry, failed, rejected)."""
    now = app.clock.now()
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=hours - 1)
    with app.db.read() as conn:
        rows = ds.hourly_entered(conn, (S.COMPLETE.value, *FAILURE_STATES), start)
    series = [{"hour": (start + dt.timedelta(hours=i)).strftime("%H:00"), "completed": 0, "failed": 0}
              for i in range(hours)]
    for state, h, n in rows:
        if 0 <= h < hours:
            series[h]["completed" if state == S.COMPLETE.value else "failed"] += n
    return series


def overview(app) -> dict[str, Any]:
    """A fresh health report plus the 24-hour throughput and the title of each worker's current book."""
    report = monitor.get_health(app, fresh=True, save=False)  # live: the cache may be 90 s old (35-52 ms at 1M)
    ids = [w.get("current_pipeline_id") for w in report["workers"]]
    with app.db.read() as conn:
        names = ds.titles(conn, ids)
    workers = [{**w, "current_title": names.get(w.get("current_pipeline_id"))} for w in report["workers"]]
    severities = collections.Counter(a["severity"] for a in report["alerts"])
    queue = sorted((int(k), v) for k, v in report["queue_by_priority"].items())  # JSON keys are strings
    return {**report, "workers": workers, "throughput": throughput(app), "alert_severities": dict(severities),
            "queue_by_priority": queue}


def page_args(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= limit <= PAGE_MAX:
        raise errors.InputError(f"page size must be between 1 and {PAGE_MAX}, not {limit}")
    if offset < 0:
        raise errors.InputError(f"offset must be 0 or more, not {offset}")
    return limit, offset


def queue_page(app, *, state: str = S.DETECTED.value, order: str = "priority", limit: int = 50,
               offset: int = 0) -> dict[str, Any]:
    """A page of waiting books (DETECTED by default) in claim order or by age, with their ages."""
    if state not in {s.value for s in states.WAITING}:
        raise errors.InputError(f"{state!r} is not a waiting state; use one of "
                                f"{', '.join(sorted(s.value for s in states.WAITING))}")
    if order not in ("priority", "age"):
        raise errors.InputError(f"unknown order {order!r}; use priority or age")
    limit, offset = page_args(limit, offset)
    now = app.clock.now()
    with app.db.read() as conn:
        rows = ds.waiting(conn, state, order=order, limit=limit, offset=offset)
        total = ds.count_in(conn, state)
    for r in rows:
        r["age_seconds"] = (now - r["created_at"]).total_seconds()
        r["in_state_seconds"] = (now - r["state_entered_at"]).total_seconds()
    return {"state": state, "order": order, "rows": rows, "total": total, "limit": limit, "offset": offset}


def cause_of(error: str | None) -> str:
    """The cause a failure is grouped by: its error's kind (the text before the first colon)."""
    if not error:
        return "no error recorded"
    head = error.split(":", 1)[0].strip()
    return head if head and len(head) <= 60 and " " not in head.strip(".") else error[:60]


def failures(app, *, window: int = FAILURE_WINDOW) -> dict[str, Any]:
    """The newest rejected and failed books grouped by state and cause, with a hint and a few ids each."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    totals = {}
    with app.db.read() as conn:
        for state in (S.FAILED.value, S.REJECTED.value):
            totals[state] = ds.count_in(conn, state)
            for r in ds.newest_in(conn, state, window):
                key = (state, cause_of(r.get("error")))
                g = groups.setdefault(key, {"state": state, "cause": key[1], "count": 0, "books": [],
                                            "stage": r.get("error_stage"), "example": r.get("error")})
                g["count"] += 1
                if len(g["books"]) < 5:
                    g["books"].append({"id": r["id"], "title": r.get("title"), "source_path": r["source_path"]})
    ordered = sorted(groups.values(), key=lambda g: (-g["count"], g["state"], g["cause"]))
    for g in ordered:
        g["hint"] = hint_for(g["state"], g["cause"])
    return {"groups": ordered, "totals": totals, "window": window}


_HINTS = {
    "EmptyFile": "the file has no text: check the source, then reject or replace it",
    "UnsupportedFormat": "not a format the pipeline reads (EPUB, PDF, text, HTML)",
    "CorruptFile": "the file is damaged: replace the source file, then retry",
    "PasswordProtected": "remove the password (or get an unlocked copy), then retry",
    "NoTextLayer": "a scanned PDF without text: OCR it first, then retry",
    "GarbageText": "the extracted text is unreadable (bad encoding or fonts): try another edition",
    "BookTooLarge": "raise max_book_mb or split the file, then retry",
    "StageTimeout": "a stage ran past its time limit: raise stage_timeouts or retry when the machine is idle",
}


def hint_for(state: str, cause: str) -> str:
    if cause in _HINTS:
        return _HINTS[cause]
    if state == S.REJECTED.value:
        return "rejected by a person or by validation: read the reason; retry if the cause is fixed"
    return "failed after its last attempt: read the error, fix the cause, then retry"
