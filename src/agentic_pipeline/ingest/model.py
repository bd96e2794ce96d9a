"""The one model every extractor produces and every later stage consumes."""

from __future__ import annotations

import bisect
import dataclasses
from typing import Any
from agentic_pipeline.ingest import text_stats


@dataclasses.dataclass(frozen=True, slots=True)
class Chapter:
    """One chapter (or section) of a book, in reading order."""

    index: int
    title: str
    text: str
    #: the chapter's place in the book's hierarchy, "Book One › Chapter VIII" ("" when the title says it all)
    path: str = ""
    #: (offset in ``text``, 1-based page) where each page of a PDF begins inside the chapter; () for other formats
    page_starts: tuple[tuple[int, int], ...] = ()

    @property
    def word_count(self) -> int:
        return count_words(self.text)

    def pages(self, start: int, end: int) -> tuple[int, int] | None:
        """The first and last page of ``text[start:end]`` (None when pages are not known)."""
        if not self.page_starts:
            return None
        offsets = [o for o, _ in self.page_starts]
        first = self.page_starts[max(0, bisect.bisect_right(offsets, start) - 1)][1]
        last = self.page_starts[max(0, bisect.bisect_right(offsets, max(start, end - 1)) - 1)][1]
        return first, last


@dataclasses.dataclass(frozen=True, slots=True)
class Metadata:
    title: str | None = None
    authors: tuple[str, ...] = ()
    language: str | None = None
    identifiers: tuple[str, ...] = ()
    #: "epub", "pdf", "text", "markdown" or "html"
    format: str = ""
    #: pages for a PDF, spine items for an EPUB, 1 for text
    page_count: int = 0
    #: a checksum-valid ISBN as 13 digits (from the EPUB package or the PDF's first pages), else None
    isbn: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ExtractedBook:
    """A book as read from its file: metadata, chapters in order, and the source's own word count.

    ``source_word_count`` is counted independently of the chapter split (all text the source
    holds), so validation can compare what the chapters kept against what was there.
    ``warnings`` records faults that were survived (a missing spine item, a damaged page).
    """

    metadata: Metadata
    chapters: tuple[Chapter, ...]
    source_word_count: int
    warnings: tuple[str, ...] = ()
    #: how chapters were found: "toc", "nav", "ncx", "spine", "outline", "headings", "pages", "single"
    split_method: str = ""
    #: set when pages were read by OCR: {"pages", "mean_confidence", "refused_pages", "engine", ...}
    ocr: dict[str, Any] | None = None

    @property
    def word_count(self) -> int:
        return sum(c.word_count for c in self.chapters)

    @property
    def text(self) -> str:
        return "\n\n".join(c.text for c in self.chapters)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ExtractedBook":
        meta = data["metadata"]
        return cls(
            metadata=Metadata(
                title=meta.get("title"),
                authors=tuple(meta.get("authors") or ()),
                language=meta.get("language"),
                identifiers=tuple(meta.get("identifiers") or ()),
                format=meta.get("format", ""),
                page_count=meta.get("page_count", 0),
                isbn=meta.get("isbn"),
            ),
            chapters=tuple(Chapter(index=c["index"], title=c["title"], text=c["text"], path=c.get("path") or "",
                                   page_starts=tuple((int(o), int(n)) for o, n in c.get("page_starts") or ()))
                           for c in data["chapters"]),
            source_word_count=data["source_word_count"],
            warnings=tuple(data.get("warnings") or ()),
            split_method=data.get("split_method", ""),
            ocr=data.get("ocr"),
        )


def count_words(text: str) -> int:
    """Count words in a way that also works for CJK text (each ideograph/kana counts as one word)."""
    return text_stats.count_words(text)
