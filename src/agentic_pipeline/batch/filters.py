"""The batch filter: what it may say, how it is validated, its stable id, and its meaning (pure).

Every batch command takes the same filter. ``matches`` is the reference meaning in Python; the
SQL in ``db/batch_store.py`` must select exactly the rows it accepts (a property test checks it on
both engines). Semantics:

- ``book_type`` equal; ``state`` equal; ``min_confidence <= confidence <= max_confidence`` (a book
  with no confidence yet never matches a confidence bound);
- ``created_after <= created_at < created_before`` (aware datetimes);
- ``source_path_pattern`` is a glob over the whole source path, case-sensitive on both engines:
  ``*`` any run of characters (``/`` included), ``?`` exactly one character, everything else literal;
- an empty filter matches nothing unless ``all=True``; ``max_count`` is a limit, not a criterion.

``FIELDS`` (criteria) and ``LIMITS`` describe every input once: name, help, JSON schema, old
spellings. The CLI's options (``interfaces/cli/batch.py``), the MCP tools' input schemas
(``interfaces/mcp/batch.py``) and the table in docs/mcp.md are generated from them, and every skin
passes the raw values to ``make_filter``, so validation and its messages are the same everywhere.
Relative input is resolved here: a date may be an age (``2d``: two days before ``now``), and a
source pattern not starting with ``/``, ``*``, ``?`` or ``~`` is taken from ``base`` (the CLI's
current directory, the MCP server's first allowed root).
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
import os.path

try:  # the classifier's list is the one truth when present
    from agentic_pipeline.ingest.classify import BOOK_TYPES
except ImportError:  # pragma: no cover - same tuple as ingest.classify
    BOOK_TYPES = ("technical_tutorial", "technical_reference", "textbook", "literature",
                  "narrative_nonfiction", "periodical", "academic_paper", "unknown")

@dataclasses.dataclass(frozen=True)
class FilterField:
    """One filter input as every skin shows it: argument ``name`` (CLI ``--name-with-dashes``), help, schema."""

    name: str
    help: str
    metavar: str
    schema: dict[str, Any]
    #: older CLI spellings, still accepted, hidden from help
    aliases: tuple[str, ...] = ()

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def json_schema(self) -> dict[str, Any]:
        """What a model reads for this argument (the MCP input schema's property)."""
        return {**self.schema, "description": self.help}


_WHEN = ("an ISO date or time (UTC if no zone, e.g. 2026-01-31 or 2026-01-31T12:00+01:00) or an age: "
         "a number and s, m, h, d or w (2d = two days ago)")
FIELDS: tuple[FilterField, ...] = (
    FilterField("book_type", "Only books classified as this type.", "TYPE",
                {"type": "string", "enum": list(BOOK_TYPES)}, aliases=("--type",)),
    FilterField("min_confidence", "Only books whose classification confidence is at least this (0..1).", "X",
                {"type": "number", "minimum": 0, "maximum": 1}),
    FilterField("max_confidence", "Only books whose classification confidence is at most this (0..1).", "X",
                {"type": "number", "minimum": 0, "maximum": 1}),
    FilterField("state", "Only books in this state.", "STATE",
                {"type": "string", "enum": [s.value for s in states.State]}),
    FilterField("created_after", f"Only books queued at or after this time: {_WHEN}.", "WHEN",
                {"type": "string", "maxLength": 64}),
    FilterField("created_before", f"Only books queued before this time: {_WHEN}.", "WHEN",
                {"type": "string", "maxLength": 64}),
    FilterField("source_path_pattern",
                "Only books whose full source path matches this glob: * any characters (including /), ? one "
                "character, case-sensitive. A pattern not starting with /, *, ? or ~ is relative (to the current "
                "directory; for an assistant, to the first allowed root).", "GLOB",
                {"type": "string", "minLength": 1, "maxLength": 1000}, aliases=("--source-pattern",)),
)
LIMITS: tuple[FilterField, ...] = (
    FilterField("max_count", "Refuse (change nothing) when more books than this match; default: the "
                "batch_max_count setting (50).", "N", {"type": "integer", "minimum": 1}),
    FilterField("all", "Let an empty filter match every eligible book (without it, an empty filter matches "
                "nothing).", "", {"type": "boolean"}),
)
#: what every skin says when a filter has no criterion and no ``all``
EMPTY_FILTER = "an empty filter matches nothing: give at least one filter field, or all to act on every eligible book"
RELATIVE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)

CRITERIA = ("book_type", "min_confidence", "max_confidence", "state", "created_before", "created_after",
            "source_path_pattern")


@dataclasses.dataclass(frozen=True)
class BatchFilter:
    """Which books a batch operation acts on; build it with ``make_filter`` to validate raw input."""

    book_type: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    state: states.State | None = None
    created_before: dt.datetime | None = None
    created_after: dt.datetime | None = None
    source_path_pattern: str | None = None
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
                source_path_pattern: str | None = None, all: bool | None = False, max_count: int | str | None = None,
                now: dt.datetime | None = None, base: str | None = None) -> BatchFilter:
    """Build a validated filter from raw values (strings from a CLI or a model are parsed here).

    ``now`` resolves ages (``2d``; default: the wall clock); ``base`` resolves a relative
    ``source_path_pattern`` (default: taken as given).
    """
    if all is not None and not isinstance(all, bool):
        raise errors.InputError(f"all must be true or false (got {all!r})")
    return BatchFilter(
        book_type=_book_type(book_type), min_confidence=_number(min_confidence, "min_confidence"),
        max_confidence=_number(max_confidence, "max_confidence"),
        state=_state(state),
        created_before=parse_time(created_before, "created_before", now),
        created_after=parse_time(created_after, "created_after", now),
        source_path_pattern=resolve_pattern(source_path_pattern, base), all=bool(all), max_count=_count(max_count),
    )


def resolve_pattern(pattern: str | None, base: str | None) -> str | None:
    """A relative glob (not starting with /, *, ? or ~) joined to ``base``; ``~`` is the user's home."""
    if not isinstance(pattern, str) or not pattern:
        return pattern
    if pattern.startswith("~"):
        return os.path.expanduser(pattern)
    if base is None or pattern.startswith(("/", "*", "?")):
        return pattern
    relative = pattern[2:] if pattern.startswith("./") else pattern
    return os.path.join(str(base), relative)


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
    if f.source_path_pattern is not None and (not isinstance(f.source_path_pattern, str) or not f.source_path_pattern):
        raise errors.InputError("source_path_pattern must be a non-empty glob such as '*/Books/*.pdf'")
    if f.max_count is not None and (isinstance(f.max_count, bool) or not isinstance(f.max_count, int) or f.max_count < 1):
        raise errors.InputError(f"max_count must be a whole number of at least 1 (got {f.max_count!r})")


def parse_time(value: dt.datetime | str | None, name: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """An ISO date or datetime (a date means midnight UTC, a time without zone means UTC), or an age
    such as ``2d`` / ``12h`` / ``30m`` / ``90s`` / ``1w`` meaning that long before ``now``."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise errors.InputError(f"{name} must be an ISO date such as 2026-01-31 or an age such as 2d (got {value!r})")
    age = _AGE.match(value)
    if age:
        now = now or dt.datetime.now(dt.timezone.utc)
        return now - dt.timedelta(seconds=float(age.group(1)) * RELATIVE_UNITS[age.group(2).lower()])
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise errors.InputError(f"{name} must be an ISO date such as 2026-01-31 or 2026-01-31T12:00+00:00, or an "
                                f"age such as 2d, 12h, 30m (got {value!r})") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """The reference meaning of ``source_path_pattern``: ``*`` any run, ``?`` one character, the rest literal."""
    parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _state(value: Any) -> states.State | None:
    if value is None or isinstance(value, states.State):
        return value
    if not isinstance(value, str):
        raise errors.InputError(f"state must be a state name (got {value!r})")
    return states.parse(value)


def _book_type(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) else value


def _number(value: float | str | None, name: str) -> float | None:
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if value is None else float(value)
    if not isinstance(value, str):
        raise errors.InputError(f"{name} must be a number between 0 and 1 (got {value!r})")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise errors.InputError(f"{name} must be a number between 0 and 1 (got {value!r})") from None


def _count(value: int | str | None) -> int | None:
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (bool, float)):
        raise errors.InputError(f"max_count must be a whole number of at least 1 (got {value!r})")
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
    lambda f, r: f.source_path_pattern is None or glob_to_regex(f.source_path_pattern).fullmatch(r["source_path"]) is not None,
)


def markdown_table() -> str:
    """The filter's fields as the table in docs/mcp.md (a test keeps the doc equal to this)."""
    lines = ["| field (MCP argument) | CLI option | old CLI spelling (hidden) | meaning |", "|---|---|---|---|"]
    for f in FIELDS + LIMITS:
        choices = " One of: " + ", ".join(f"`{v}`" for v in f.schema["enum"]) + "." if "enum" in f.schema else ""
        old = ", ".join(f"`{a}`" for a in f.aliases)
        lines.append(f"| `{f.name}` | `{f.option}` | {old} | {f.help}{choices} |")
    return "\n".join(lines)
