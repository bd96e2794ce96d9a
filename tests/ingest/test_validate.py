"""Validation of real sample books: good extractions pass; books crafted from real sample text with
duplicated chapters, an empty chapter, lost text or garbage fail, naming the right check."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from agentic_pipeline.ingest import classify, strategies, validate
from agentic_pipeline.ingest.extract import extract
from agentic_pipeline.ingest.model import Chapter, ExtractedBook

from tests.ingest.conftest import BOOKS, BROKEN

GOOD = sorted(p.name for p in BOOKS.iterdir() if p.suffix in {".epub", ".pdf"})


@functools.cache
def _book(name: str) -> ExtractedBook:
    return extract(BOOKS / name)


def _strategy(book_type: str) -> strategies.Strategy:
    return strategies.load_strategies()[book_type]


def _with_chapters(book: ExtractedBook, chapters: list[Chapter], **changes) -> ExtractedBook:
    renumbered = tuple(Chapter(i, c.title, c.text) for i, c in enumerate(chapters))
    return dataclasses.replace(book, chapters=renumbered, **changes)


@pytest.mark.parametrize("name", GOOD)
def test_good_samples_pass_with_their_classified_strategy(name: str) -> None:
    book = _book(name)
    kind = classify.classify(book)
    result = validate.validate(book, strategies.select_strategy(kind.book_type, kind.confidence))
    assert result.passed, result.reasons
    assert not result.retry_with_fallback
    assert {c.name for c in result.checks} >= {
        "coverage", "chapter_count", "chapter_balance", "garbage_ratio",
        "duplicate_chapters", "empty_chapters", "language",
    }


def test_duplicated_chapters_fail_duplicate_check() -> None:
    book = _book("r-intro.pdf")
    chapters = list(book.chapters)
    doubled = chapters + chapters[:8]
    crafted = _with_chapters(book, doubled, source_word_count=sum(c.word_count for c in doubled))
    result = validate.validate(crafted, _strategy("technical_tutorial"))
    assert not result.passed
    assert [r.split(":")[0] for r in result.reasons] == ["duplicate_chapters"]
    assert result.check("duplicate_chapters").value > 0.05


def test_reflowed_copy_counts_as_duplicate() -> None:
    text = _book("romeo-juliet.epub").chapters[3].text
    check = validate.check_duplicates([text, "  " + text.upper().replace("\n", " \n  ")], 0.0)
    assert not check.passed and check.value == 0.5


def test_an_empty_chapter_fails_empty_check() -> None:
    book = _book("romeo-juliet.epub")
    chapters = list(book.chapters)
    chapters[2:2] = [Chapter(0, "Act II", " \n ")]
    result = validate.validate(_with_chapters(book, chapters), _strategy("literature"))
    assert not result.passed
    assert "empty_chapters" in [r.split(":")[0] for r in result.reasons]


def test_low_coverage_fails_coverage_check() -> None:
    book = _book("zoo-jss.pdf")
    crafted = dataclasses.replace(book, source_word_count=book.word_count * 2)
    result = validate.validate(crafted, _strategy("academic_paper"))
    assert not result.passed
    assert result.check("coverage").value == pytest.approx(0.5, abs=0.01)
    assert any(r.startswith("coverage:") for r in result.reasons)
    assert not result.retry_with_fallback


def test_garbage_text_fails_garbage_check() -> None:
    # The real mojibake of lshort-ru, as read without extraction's own garbage guard.
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(BROKEN / "garbled-ru.pdf"))
    pages = [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    doc.close()
    book = _book("r-intro.pdf")
    chapters = [Chapter(i, f"page {i + 1}", text) for i, text in enumerate(pages)]
    crafted = _with_chapters(book, chapters, source_word_count=sum(c.word_count for c in chapters))
    result = validate.validate(crafted, _strategy("technical_tutorial"))
    assert not result.passed
    assert "garbage_ratio" in [r.split(":")[0] for r in result.reasons]
    assert result.check("garbage_ratio").value > 0.3


def test_one_giant_chapter_asks_for_fallback_split() -> None:
    book = _book("r-intro.pdf")
    merged = [Chapter(0, "all", book.text)]
    crafted = _with_chapters(book, merged, split_method="single")
    result = validate.validate(crafted, _strategy("technical_tutorial"))
    assert not result.passed
    assert {r.split(":")[0] for r in result.reasons} == {"chapter_count", "chapter_balance"}
    assert result.retry_with_fallback and result.fallback_split == "headings"


def test_language_mismatch_with_metadata_is_a_warning_not_a_failure() -> None:
    # live-manual-de.epub is tagged "de" but its text is the untranslated English manual.
    book = _book("live-manual-de.epub")
    result = validate.validate(book, _strategy("technical_tutorial"))
    check = result.check("language")
    assert result.passed and not check.passed and check.severity == "warning"
    assert "detected en" in check.detail and result.warnings


def test_expected_language_mismatch_fails() -> None:
    book = _book("kusamakura-ja.epub")
    base = _strategy("literature")
    strict = dataclasses.replace(base, validation=dataclasses.replace(base.validation, expected_languages=("en",)))
    result = validate.validate(book, strict)
    assert not result.passed and result.reasons[0].startswith("language:")


def test_chunk_coverage_is_checked_when_chunks_are_given() -> None:
    book = _book("zoo-jss.pdf")
    halves = [c.text[: len(c.text) // 3] for c in book.chapters]
    result = validate.validate(book, _strategy("academic_paper"), chunk_texts=halves)
    assert not result.check("chunk_coverage").passed
    full = validate.validate(book, _strategy("academic_paper"), chunk_texts=[c.text for c in book.chapters])
    assert full.passed and full.check("chunk_coverage").value == pytest.approx(1.0, abs=0.01)


def test_result_serialises() -> None:
    result = validate.validate(_book("ltnews36.pdf"), _strategy("periodical"))
    data = result.to_json()
    assert data["passed"] is True and len(data["checks"]) == len(result.checks)
    assert {"name", "value", "threshold", "passed", "detail"} <= set(data["checks"][0])


def test_a_short_book_needs_fewer_chapters_than_a_long_one():
    from agentic_pipeline.ingest import validate as v

    assert v.check_chapter_count(2, 3, words=3_000).passed  # two sections of a short tutorial
    assert not v.check_chapter_count(1, 3, words=100_000).passed  # a long book in one piece: split it
    assert v.check_chapter_count(2, 3, words=4_000).threshold == 2
    assert not v.check_chapter_count(2, 3).passed  # without a word count: the strategy's number
