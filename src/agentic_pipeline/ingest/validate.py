"""Validate an extracted book against its source and its strategy's thresholds (pure, no I/O).

Each check records its measured value, the threshold it was held to, whether it passed and a
human-readable detail, so a rejected book says exactly why. Structural failures (too few chapters,
one chapter holding nearly everything) set ``retry_with_fallback``: re-splitting the same text by the
strategy's fallback method (headings or pages) is likely to fix them, unlike garbage or lost text.
A language mismatch with the metadata is a warning only: metadata is often wrong (the German
live-manual EPUB in the corpus is English text tagged ``de``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from typing import Any

from agentic_pipeline.ingest import language, text_stats
from agentic_pipeline.ingest.model import ExtractedBook
from agentic_pipeline.ingest.strategies import Strategy

#: A chapter with fewer words than this counts as empty (a title page, a lone heading).
EMPTY_WORDS = 3
#: Chapters shorter than this are not compared for duplication (repeated "Notes" stubs are normal).
DUPLICATE_MIN_WORDS = 20
#: Checks whose failure a different chapter-splitting method may repair.
STRUCTURAL = frozenset({"chapter_count", "chapter_balance"})


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """One validation check: what was measured, against what, and the verdict."""

    name: str
    value: float
    threshold: float | str
    passed: bool
    detail: str
    #: "error" fails the book; "warning" is reported but does not
    severity: str = "error"


@dataclasses.dataclass(frozen=True, slots=True)
class ValidationResult:
    """All checks, the overall verdict, the failure reasons, and whether a fallback split could help."""

    checks: list[Check]
    passed: bool
    reasons: list[str]
    retry_with_fallback: bool
    fallback_split: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate(book: ExtractedBook, strategy: Strategy, *, chunk_texts: Sequence[str] | None = None) -> ValidationResult:
    """Run every check on ``book`` (and its chunks, when given) against ``strategy.validation``."""
    counts = [c.word_count for c in book.chapters]
    checks = [
        check_size(book.word_count, strategy.validation.min_words, strategy.book_type),
        check_coverage(book.word_count, book.source_word_count, strategy.validation.min_coverage),
        check_chapter_count(len(book.chapters), strategy.validation.min_chapters, book.word_count),
        check_balance(counts, strategy.validation.max_chapter_imbalance),
        check_garbage(book.text, strategy.validation.max_garbage_ratio),
        check_duplicates([c.text for c in book.chapters], strategy.validation.max_duplicate_chapter_ratio),
        check_empty(counts, strategy.validation.max_empty_chapter_ratio),
        check_language(book.text, book.metadata.language, strategy.validation.expected_languages),
    ]
    if book.ocr:
        checks.append(check_ocr(book.ocr, strategy.validation.min_ocr_confidence))
    if chunk_texts is not None:
        chunk_words = sum(text_stats.count_words(t) for t in chunk_texts)
        checks.append(check_chunk_coverage(chunk_words, book.word_count, strategy.validation.min_coverage))
    return summarise(checks, book.split_method, strategy.fallback_split)


def summarise(checks: list[Check], split_method: str, fallback_split: str) -> ValidationResult:
    """Combine checks into a verdict; suggest the fallback split when only structure is wrong."""
    failed = [c for c in checks if not c.passed and c.severity == "error"]
    structural = bool(failed) and all(c.name in STRUCTURAL for c in failed)
    retry = structural and split_method != fallback_split
    return ValidationResult(
        checks=checks,
        passed=not failed,
        reasons=[f"{c.name}: {c.detail}" for c in failed],
        retry_with_fallback=retry,
        fallback_split=fallback_split if retry else None,
        warnings=[f"{c.name}: {c.detail}" for c in checks if not c.passed and c.severity == "warning"],
    )


def check_coverage(kept_words: int, source_words: int, minimum: float) -> Check:
    """Share of the source's words that the chapters kept."""
    if source_words <= 0:
        return Check("coverage", 0.0, minimum, False, "the source has no words at all")
    value = round(kept_words / source_words, 4)
    return Check("coverage", value, minimum, value >= minimum,
                 f"chapters keep {kept_words} of {source_words} source words ({value:.0%}, need {minimum:.0%})")


def check_size(words: int, minimum: int, book_type: str) -> Check:
    """Enough words to be a book of this type: a short note or a stub is refused, whatever its structure."""
    kind = "book" if book_type == "unknown" else f"{book_type.replace('_', ' ')}"
    return Check("size", float(words), minimum, words >= minimum,
                 f"{words:,} words, too short for a {kind} (at least {minimum:,})" if words < minimum
                 else f"{words:,} words (at least {minimum:,})")


def check_ocr(summary: dict[str, Any], minimum: float) -> Check:
    """A book read by OCR: its mean word confidence must reach ``minimum``; refused pages are a warning."""
    mean = float(summary.get("mean_confidence") or 0.0)
    pages = int(summary.get("pages") or 0)
    refused = list(summary.get("refused_pages") or ())
    if mean < minimum:
        return Check("ocr_confidence", mean, minimum, False,
                     f"{pages} page(s) read by OCR with mean confidence {mean:.0f} (need {minimum:g})")
    detail = f"{pages} page(s) read by OCR, mean confidence {mean:.0f}"
    if refused:
        return Check("ocr_confidence", mean, minimum, False,
                     f"{detail}; {len(refused)} page(s) refused as unreadable", "warning")
    return Check("ocr_confidence", mean, minimum, True, detail)


def check_chunk_coverage(chunk_words: int, book_words: int, minimum: float) -> Check:
    """Share of the chapters' words that reached the chunks (overlap may push it above 1)."""
    value = round(chunk_words / book_words, 4) if book_words else 0.0
    return Check("chunk_coverage", value, minimum, value >= minimum,
                 f"chunks hold {chunk_words} words for {book_words} chapter words ({value:.0%}, need {minimum:.0%})")


#: a book needs the strategy's chapter count only if it has this many words per chapter to fill them
WORDS_PER_EXPECTED_CHAPTER = 2_000


def check_chapter_count(count: int, minimum: int, words: int | None = None) -> Check:
    """At least ``minimum`` chapters, scaled down for short books (a 3,000-word tutorial in two sections is fine)."""
    if words is not None:
        minimum = max(1, min(minimum, words // WORDS_PER_EXPECTED_CHAPTER))
    return Check("chapter_count", float(count), minimum, count >= minimum,
                 f"{count} chapter(s), need at least {minimum}")


def check_balance(word_counts: Sequence[int], maximum: float) -> Check:
    """Largest chapter's share of all words: near 1.0 means the split found no real chapters."""
    total = sum(word_counts)
    share = round(max(word_counts) / total, 4) if total else 1.0
    return Check("chapter_balance", share, maximum, share <= maximum,
                 f"the largest chapter holds {share:.0%} of the words (at most {maximum:.0%})")


def check_garbage(text: str, maximum: float) -> Check:
    """Share of mis-decoded tokens (``text_stats.garbage_ratio`` on an even sample of the text)."""
    value = round(text_stats.garbage_ratio(text_stats.sample_text(text)), 4)
    return Check("garbage_ratio", value, maximum, value <= maximum,
                 f"{value:.1%} of tokens look mis-decoded (at most {maximum:.1%})")


def normalised_hash(text: str) -> str:
    """Hash of the text with case and whitespace folded, so re-flowed copies compare equal."""
    folded = re.sub(r"\s+", " ", text).strip().casefold()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def check_duplicates(texts: Sequence[str], maximum: float) -> Check:
    """Share of substantial chapters whose normalised text repeats an earlier chapter."""
    seen: set[str] = set()
    substantial = duplicates = 0
    for text in texts:
        if text_stats.count_words(text) < DUPLICATE_MIN_WORDS:
            continue
        substantial += 1
        digest = normalised_hash(text)
        duplicates += digest in seen
        seen.add(digest)
    value = round(duplicates / substantial, 4) if substantial else 0.0
    return Check("duplicate_chapters", value, maximum, value <= maximum,
                 f"{duplicates} of {substantial} chapters repeat an earlier one ({value:.0%}, at most {maximum:.0%})")


def check_empty(word_counts: Sequence[int], maximum: float) -> Check:
    empty = sum(1 for n in word_counts if n < EMPTY_WORDS)
    value = round(empty / len(word_counts), 4) if word_counts else 1.0
    return Check("empty_chapters", value, maximum, value <= maximum,
                 f"{empty} of {len(word_counts)} chapters are empty ({value:.0%}, at most {maximum:.0%})")


def check_language(text: str, declared: str | None, expected: Sequence[str]) -> Check:
    """Detected language vs the strategy's expected languages (error) and the metadata tag (warning)."""
    found = language.detect_language(language_sample(text))
    meta = language.normalise_language(declared)
    if expected and found.language not in expected:
        return Check("language", found.confidence, ",".join(expected), False,
                     f"detected {found.language}, the strategy expects {', '.join(expected)}")
    if found.language == "und" or meta is None:
        return Check("language", found.confidence, meta or "", True,
                     f"detected {found.language}; metadata says {meta or 'nothing'}", "warning")
    agree = found.language == meta
    return Check("language", found.confidence, meta, agree,
                 f"detected {found.language}, metadata says {meta}", "warning")


def language_sample(text: str) -> str:
    """An even sample of the text, so the front matter's language does not decide for the whole book."""
    return text_stats.sample_text(text, budget=100_000, slices=20)
