"""Strategies as data: every book type has a parseable TOML strategy with values in range."""

from __future__ import annotations

import importlib.resources
import tomllib

import pytest

from agentic_pipeline.errors import ConfigError
from agentic_pipeline.ingest import strategies
from agentic_pipeline.ingest.classify import BOOK_TYPES

FOLDER = importlib.resources.files("agentic_pipeline.ingest") / "strategies"


def test_every_book_type_has_a_strategy() -> None:
    assert set(strategies.load_strategies()) == set(BOOK_TYPES)


@pytest.mark.parametrize("book_type", BOOK_TYPES)
def test_file_parses_and_values_are_in_range(book_type: str) -> None:
    text = (FOLDER / f"{book_type}.toml").read_text(encoding="utf-8")
    assert text.lstrip().startswith("#"), "each strategy file opens with a comment saying why"
    s = strategies.parse_strategy(tomllib.loads(text), f"{book_type}.toml")
    assert s.book_type == book_type
    assert 64 <= s.chunk_tokens <= 4096 and 0 <= s.overlap_tokens < s.chunk_tokens / 2
    assert s.chapter_split in strategies.SPLIT_METHODS and s.fallback_split in strategies.SPLIT_METHODS
    v = s.validation
    assert v.min_chapters >= 1
    for name in ("min_coverage", "max_garbage_ratio", "max_empty_chapter_ratio",
                 "max_duplicate_chapter_ratio", "max_chapter_imbalance"):
        assert 0.0 <= getattr(v, name) <= 1.0, name


def test_values_really_differ_between_types() -> None:
    table = strategies.load_strategies()
    assert table["technical_reference"].chunk_tokens < table["technical_tutorial"].chunk_tokens
    assert table["technical_tutorial"].chunk_tokens < table["literature"].chunk_tokens
    assert table["technical_reference"].keep_code_whole and not table["literature"].keep_code_whole
    assert len({s.chunk_tokens for s in table.values()}) >= 6


def test_low_confidence_falls_back_to_unknown() -> None:
    assert strategies.select_strategy("literature", 0.95).book_type == "literature"
    assert strategies.select_strategy("literature", 0.2).book_type == "unknown"
    assert strategies.select_strategy("no_such_type", 0.99).book_type == "unknown"


def test_to_json_round_trips_the_values() -> None:
    data = strategies.select_strategy("textbook", 0.9).to_json()
    assert data["book_type"] == "textbook"
    assert data["validation"]["min_chapters"] >= 1
    assert isinstance(data["validation"]["expected_languages"], list)


def test_out_of_range_values_are_refused_with_the_file_named() -> None:
    data = tomllib.loads((FOLDER / "unknown.toml").read_text(encoding="utf-8"))
    data["validation"]["min_coverage"] = 1.5
    with pytest.raises(ConfigError, match="broken.toml.*min_coverage"):
        strategies.parse_strategy(data, "broken.toml")
    del data["chunk_tokens"]
    with pytest.raises(ConfigError, match="chunk_tokens"):
        strategies.parse_strategy(data, "broken.toml")
