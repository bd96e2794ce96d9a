"""What the MCP tools answer: typed models (their output schemas) sized for a model's context window.

Every tool returns ``answer(model, summary)``: the model's JSON as structured content (validated
against the tool's output schema) and a short human summary as the text part (never the JSON
again). Every answer is at most ``MAX_BYTES`` of JSON: lists are summarised (a total and a
breakdown) and paged (the first ``DEFAULT_ROWS`` rows, ``next_after`` to continue), long strings
are clipped, and ``fit_rows`` drops rows from a page until it fits (the cursor then continues
from the last row shown, so paging still reaches every row exactly once).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import pydantic_core
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, Field

#: the largest answer (JSON of the structured content plus the text), in bytes; stated in every description
MAX_BYTES = 20_000
#: rows a list or preview shows by default, and at most
DEFAULT_ROWS = 20
MAX_ROWS = 100
#: inside pass-through documents (a health report, an audit entry): lists cut to this many items,
#: strings to this many characters
MAX_ITEMS = 20
MAX_STRING = 400

BOUND = f"The answer is at most {MAX_BYTES // 1000} KB"
M = TypeVar("M", bound=BaseModel)


class Open(BaseModel):
    """A document with the fields listed in its schema and possibly more (passed through from an operation)."""

    model_config = ConfigDict(extra="allow")


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- rows -----------------------------------------------------------------------------------------

class DecisionRow(Closed):
    """One book in a preview or list: only what a decision needs."""

    id: int = Field(description="The pipeline id (what every tool takes).")
    title: str | None
    book_type: str | None
    confidence: float | None
    state: str


class Breakdown(Closed):
    """The whole matched set by state, type and confidence band (not only the rows shown)."""

    by_state: dict[str, int]
    by_type: dict[str, int]
    by_confidence: dict[str, int] = Field(description="Bands: none, <0.5, 0.5-0.7, 0.7-0.9, 0.9-0.95, >=0.95.")


from agentic_pipeline.books.operations import CONFIDENCE_BANDS  # noqa: E402 - one list of bands


def band(confidence: float | None) -> str:
    if confidence is None:
        return "none"
    return next(label for upper, label in CONFIDENCE_BANDS if confidence < upper)


def breakdown(rows: list[dict[str, Any]]) -> Breakdown:
    by_state: dict[str, int] = {}
    by_type: dict[str, int] = {}
    by_band: dict[str, int] = {}
    for r in rows:
        by_state[r["state"]] = by_state.get(r["state"], 0) + 1
        kind = r.get("book_type") or "unclassified"
        by_type[kind] = by_type.get(kind, 0) + 1
        b = band(r.get("confidence"))
        by_band[b] = by_band.get(b, 0) + 1
    return Breakdown(by_state=by_state, by_type=by_type, by_confidence=by_band)


def decision_row(r: dict[str, Any]) -> DecisionRow:
    title = r.get("title") or (r.get("source_path") or "").rsplit("/", 1)[-1] or None
    return DecisionRow(id=r["id"], title=clip(title, 160), book_type=r.get("book_type"),
                       confidence=r.get("confidence"), state=r["state"])


# --- sizing ---------------------------------------------------------------------------------------

def clip(value: str | None, limit: int = MAX_STRING) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def compact(doc: Any, *, items: int = MAX_ITEMS, string: int = MAX_STRING) -> Any:
    """``doc`` with every list cut to ``items`` (a dict gains ``<key>_total``) and every string to ``string``."""
    if isinstance(doc, str):
        return clip(doc, string)
    if isinstance(doc, list):
        return [compact(x, items=items, string=string) for x in doc[:items]]
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            out[key] = compact(value, items=items, string=string)
            if isinstance(value, list) and len(value) > items:
                out[f"{key}_total"] = len(value)
        return out
    return doc


def size_of(doc: Any) -> int:
    return len(pydantic_core.to_json(doc))


def fit_rows(build: Callable[[list[Any]], M], rows: list[Any], *, budget: int = MAX_BYTES - 1000) -> tuple[M, int]:
    """``build(rows[:n])`` for the largest ``n`` whose JSON fits ``budget``; returns it and ``n``."""
    n = len(rows)
    model = build(rows)
    while n > 1 and size_of(model.model_dump(mode="json")) > budget:
        n = max(1, n * 3 // 4)
        model = build(rows[:n])
    return model, n


def answer(model: BaseModel, summary: str) -> CallToolResult:
    """The tool result: ``model`` as structured content, ``summary`` as the text a person or model reads."""
    data = model.model_dump(mode="json")
    size = size_of(data) + len(summary.encode())
    if size > MAX_BYTES:  # a bug in the tool's sizing, never a silent truncation
        raise RuntimeError(f"{type(model).__name__} answer is {size} bytes, over the {MAX_BYTES} bound")
    return CallToolResult(content=[TextContent(type="text", text=summary)], structured_content=data)


def paged(rows: list[dict[str, Any]], after: int | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Rows (sorted by id) after ``after``, at most ``limit``, and whether more follow."""
    start = 0
    if after is not None:
        import bisect

        start = bisect.bisect_right([r["id"] for r in rows], after)
    page = rows[start:start + limit]
    return page, start + limit < len(rows)


def count_line(counts: dict[str, int], limit: int = 6) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} {v}" for k, v in items[:limit])
    return text + (f", and {len(items) - limit} more" if len(items) > limit else "")
