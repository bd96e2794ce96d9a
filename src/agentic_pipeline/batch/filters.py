"""The batch filter: what it may say, how it is validated, its stable id, and its meaning (pure).

Every batch command takes the same filter. ``matches`` is the reference meaning in Python; the
SQL in ``db/batch_store.py`` must select exactly the rows it accepts (a property test checks it on
both engines). Semantics:

- ``book_type`` equal; ``state`` equal; ``min_confidence <= confidence <= max_confidence`` (a book
  with no confidence yet never matches a confidence bound);
- ``created_after <= created_at < created_before`` (aware datetimes);
- ``source_pattern`` is a glob over the whole source path, case-sensitive on both engines:
  ``*`` any run of characters (``/`` included), ``?`` exactly one character, everything else literal;
- an empty filter matches nothing unless ``all=True``; ``max_count`` is a limit, not a criterion.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
from typing import Any, Mapping

from agentic_pipeline import errors
from agentic_pipeline.pipeline import states

try:  # the classifier's list is the one truth when present
    from agentic_pipeline.ingest.classify import BOOK_TYPES
except ImportError:  # pragma: no cover - same tuple as ingest.classify
    BOOK_TYPES = ("technical_tutorial", "technical_reference", "textbook", "literature",
                  "narrative_nonfiction", "periodical", "academic_paper", "unknown")

CRITERIA = ("book_type", "min_confidence", "max_confidence", "state", "created_before", "created_after",
            "source_pattern")


@dataclasses.dataclass(frozen=True)
class BatchFilter:
    """Which books a batch operation acts on; build it with ``make_filter`` to validate raw input."""

    book_type: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    state: states.State | None = None
    created_before: dt.datetime | None = None
    created_after: dt.datetime | None = None
    source_pattern: str | None = None
    all: bool = False
    max_count: int | None = None  # None: Settings.batch_max_count

    def __post_init__(self) -> None:
        validate(self)

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in CRITERIA)

    @property
    def filter_id(self) -> str:
        """A short stable hash of the criteria (not of ``max_count``): the same filter, the same id."""
        return hashlib.sha256(canonical_json(self.criteria()).encode()).hexdigest()[:12]

    def criteria(self) -> dict[str, Any]:
        """The JSON form of the criteria that are set (as recorded in the audit trail's ``filter_used``)."""
        doc: dict[str, Any] = {}
        for name in CRITERIA:
            value = getattr(self, name)
            if value is None:
                continue
            doc[name] = value.isoformat() if isinstance(value, dt.datetime) else getattr(value, "value", value)
        if self.all:
            doc["all"] = True
        return doc

    def to_dict(self) -> dict[str, Any]:
        return {**self.criteria(), "filter_id": self.filter_id, "max_count": self.max_count}

    def matches(self, row: Mapping[str, Any]) -> bool:
        """The reference predicate: does ``row`` (a processing_pipelines row) match?"""
        if self.is_empty:
            return self.all
        return all(check(self, row) for check in _CHECKS)


def canonical_json(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def make_filter(*, book_type: str | None = None, min_confidence: float | str | None = None,
                max_confidence: float | str | None = None, state: str | states.State | None = None,
                created_before: dt.datetime | str | None = None, created_after: dt.datetime | str | None = None,
                source_pattern: str | None = None, all: bool = False, max_count: int | str | None = None) -> BatchFilter:
    """Build a validated filter from raw values (strings from a CLI or a model are parsed here)."""
    return BatchFilter(
        book_type=_book_type(book_type), min_confidence=_number(min_confidence, "min_confidence"),
        max_confidence=_number(max_confidence, "max_confidence"),
        state=states.parse(state) if isinstance(state, str) else state,
        created_before=parse_time(created_before, "created_before"), created_after=parse_time(created_after, "created_after"),
        source_pattern=source_pattern, all=bool(all), max_count=_count(max_count),
    )


def validate(f: BatchFilter) -> None:
    """Refuse unknown values and impossible ranges, saying what is allowed."""
    if f.book_type is not None and f.book_type not in BOOK_TYPES:
        raise errors.InputError(f"unknown book type {f.book_type!r}; valid types: {', '.join(BOOK_TYPES)}")
    for name in ("min_confidence", "max_confidence"):
        value = getattr(f, name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or math.isnan(value) or not 0 <= value <= 1):
            raise errors.InputError(f"{name} must be a number between 0 and 1 (got {value!r})")
    if f.min_confidence is not None and f.max_confidence is not None and f.min_confidence > f.max_confidence:
        raise errors.InputError(f"min_confidence {f.min_confidence} is above max_confidence {f.max_confidence}")
    if f.state is not None and not isinstance(f.state, states.State):
        states.parse(str(f.state))  # raises with the list of valid states
        raise errors.InputError("state must be a State; use make_filter to parse names")
    for name in ("created_before", "created_after"):
        value = getattr(f, name)
        if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
            raise errors.InputError(f"{name} must be an aware datetime (with a time zone), got {value!r}")
    if f.created_after is not None and f.created_before is not None and f.created_after >= f.created_before:
        raise errors.InputError(f"created_after {f.created_after:%Y-%m-%d %H:%M:%S} is not before created_before "
                                f"{f.created_before:%Y-%m-%d %H:%M:%S}: nothing could match")
    if f.source_pattern is not None and (not isinstance(f.source_pattern, str) or not f.source_pattern):
        raise errors.InputError("source_pattern must be a non-empty glob such as '*/Books/*.pdf'")
    if f.max_count is not None and (isinstance(f.max_count, bool) or not isinstance(f.max_count, int) or f.max_count < 1):
        raise errors.InputError(f"max_count must be a whole number of at least 1 (got {f.max_count!r})")


def parse_time(value: dt.datetime | str | None, name: str) -> dt.datetime | None:
    """An ISO date or datetime; a date means midnight UTC, a time without zone means UTC."""
    if value is None or isinstance(value, dt.datetime):
        return value
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise errors.InputError(f"{name} must be an ISO date such as 2026-01-31 or 2026-01-31T12:00+00:00 "
                                f"(got {value!r})") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """The reference meaning of ``source_pattern``: ``*`` any run, ``?`` one character, the rest literal."""
    parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _book_type(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) else value


def _number(value: float | str | None, name: str) -> float | None:
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if value is None else float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise errors.InputError(f"{name} must be a number between 0 and 1 (got {value!r})") from None


def _count(value: int | str | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.InputError(f"max_count must be a whole number of at least 1 (got {value!r})") from None


def _in_confidence(f: BatchFilter, row: Mapping[str, Any]) -> bool:
    if f.min_confidence is None and f.max_confidence is None:
        return True
    c = row.get("confidence")
    return c is not None and (f.min_confidence is None or c >= f.min_confidence) and (
        f.max_confidence is None or c <= f.max_confidence)


_CHECKS = (
    lambda f, r: f.book_type is None or r.get("book_type") == f.book_type,
    _in_confidence,
    lambda f, r: f.state is None or r.get("state") == f.state.value,
    lambda f, r: f.created_before is None or r["created_at"] < f.created_before,
    lambda f, r: f.created_after is None or r["created_at"] >= f.created_after,
    lambda f, r: f.source_pattern is None or glob_to_regex(f.source_pattern).fullmatch(r["source_path"]) is not None,
)
