"""Processing strategies as data: one TOML file per book type under ``ingest/strategies/``.

Why data: chunk sizes and validation thresholds are editorial decisions that need a comment saying why
(each file has one), and people should be able to tune them without reading code. ``select_strategy``
is pure: a type the classifier is unsure about gets the conservative ``unknown`` strategy.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import tomllib
from typing import Any

from agentic_pipeline.errors import ConfigError
from agentic_pipeline.ingest.classify import BOOK_TYPES

#: Below this classification confidence, the type is not trusted and ``unknown`` is used instead.
MIN_CONFIDENCE = 0.5
SPLIT_METHODS = ("toc", "headings", "pages")


@dataclasses.dataclass(frozen=True, slots=True)
class Thresholds:
    """What validation demands of a book processed with this strategy."""

    min_coverage: float
    max_garbage_ratio: float
    min_chapters: int
    max_empty_chapter_ratio: float
    max_duplicate_chapter_ratio: float
    max_chapter_imbalance: float
    #: fewer words than this is no book of this type (a 200-word file is a note, not a book)
    min_words: int
    expected_languages: tuple[str, ...] = ()
    #: a book read by OCR needs at least this mean word confidence (0-100)
    min_ocr_confidence: float = 70.0


@dataclasses.dataclass(frozen=True, slots=True)
class Strategy:
    """How to chunk and validate one type of book."""

    book_type: str
    chunk_tokens: int
    overlap_tokens: int
    chapter_split: str
    fallback_split: str
    keep_code_whole: bool
    keep_tables_whole: bool
    validation: Thresholds

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["validation"]["expected_languages"] = list(self.validation.expected_languages)
        return data


def parse_strategy(data: dict[str, Any], source: str) -> Strategy:
    """Build and check a Strategy from parsed TOML; ``ConfigError`` names the file and the bad value."""
    try:
        checks = dict(data["validation"])
        checks["expected_languages"] = tuple(checks.get("expected_languages", ()))
        strategy = Strategy(
            book_type=data["book_type"],
            chunk_tokens=int(data["chunk_tokens"]),
            overlap_tokens=int(data["overlap_tokens"]),
            chapter_split=data["chapter_split"],
            fallback_split=data.get("fallback_split", "pages"),
            keep_code_whole=bool(data["keep_code_whole"]),
            keep_tables_whole=bool(data["keep_tables_whole"]),
            validation=Thresholds(**{**checks, "min_words": int(checks["min_words"])}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"strategy {source}: missing or invalid field: {exc}") from exc
    for problem in _problems(strategy):
        raise ConfigError(f"strategy {source}: {problem}")
    return strategy


def _problems(s: Strategy) -> list[str]:
    """List what is out of range in a strategy (empty when it is sound)."""
    v = s.validation
    problems = [
        f"book_type {s.book_type!r} is not one of {BOOK_TYPES}" if s.book_type not in BOOK_TYPES else "",
        f"chunk_tokens {s.chunk_tokens} not in 64..4096" if not 64 <= s.chunk_tokens <= 4096 else "",
        f"overlap_tokens {s.overlap_tokens} must be >= 0 and < chunk_tokens / 2"
        if not 0 <= s.overlap_tokens < s.chunk_tokens / 2 else "",
        f"chapter_split {s.chapter_split!r} not in {SPLIT_METHODS}" if s.chapter_split not in SPLIT_METHODS else "",
        f"fallback_split {s.fallback_split!r} not in {SPLIT_METHODS}" if s.fallback_split not in SPLIT_METHODS else "",
        f"min_chapters {v.min_chapters} must be >= 1" if v.min_chapters < 1 else "",
        f"min_words {v.min_words} must be >= 1" if v.min_words < 1 else "",
    ]
    for name in ("min_coverage", "max_garbage_ratio", "max_empty_chapter_ratio",
                 "max_duplicate_chapter_ratio", "max_chapter_imbalance"):
        value = getattr(v, name)
        problems.append(f"{name} {value} not in 0..1" if not 0.0 <= value <= 1.0 else "")
    return [p for p in problems if p]


@functools.cache
def load_strategies() -> dict[str, Strategy]:
    """Read every ``strategies/*.toml`` shipped with the package, keyed by book type; all types must be there."""
    folder = importlib.resources.files("agentic_pipeline.ingest") / "strategies"
    strategies: dict[str, Strategy] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"strategy {entry.name}: not valid TOML: {exc}") from exc
        strategy = parse_strategy(data, entry.name)
        if entry.name != f"{strategy.book_type}.toml":
            raise ConfigError(f"strategy {entry.name}: declares book_type {strategy.book_type!r}")
        strategies[strategy.book_type] = strategy
    missing = [t for t in BOOK_TYPES if t not in strategies]
    if missing:
        raise ConfigError(f"no strategy file for book types: {', '.join(missing)}")
    return strategies


def select_strategy(book_type: str, confidence: float, *, min_confidence: float = MIN_CONFIDENCE,
                    strategies: dict[str, Strategy] | None = None) -> Strategy:
    """Pick the strategy for a classified book; unknown types or low confidence get the ``unknown`` one."""
    table = strategies if strategies is not None else load_strategies()
    if book_type not in table or confidence < min_confidence:
        return table["unknown"]
    return table[book_type]
