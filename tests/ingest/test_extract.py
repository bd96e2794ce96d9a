"""Every readable sample extracts with sensible chapters, metadata and full coverage."""

from __future__ import annotations

import pytest

from agentic_pipeline.ingest import model
from agentic_pipeline.ingest.extract import extract

from .conftest import BOOKS, BROKEN

# file -> (format, minimum chapters, split method, language or None)
READABLE = {
    "waste-land.epub": ("epub", 5, "nav", "en-US"),
    "romeo-juliet.epub": ("epub", 20, "ncx", "en"),
    "live-manual-de.epub": ("epub", 15, "ncx", "de"),
    "kusamakura-ja.epub": ("epub", 10, "nav", "ja-jp"),
    "fsm-drivers.pdf": ("pdf", 2, "pages", None),
    "zoo-jss.pdf": ("pdf", 4, "headings", None),
    "ltnews36.pdf": ("pdf", 5, "outline", None),
    "r-lang-protected.pdf": ("pdf", 10, "outline", None),
    "r-intro.pdf": ("pdf", 15, "outline", None),
}


@pytest.fixture(scope="module")
def extracted():
    return {name: extract(BOOKS / name) for name in READABLE}


@pytest.mark.parametrize("name", list(READABLE))
def test_readable_sample_has_sensible_chapters(extracted, name):
    book = extracted[name]
    fmt, min_chapters, method, language = READABLE[name]
    assert book.metadata.format == fmt
    assert book.split_method == method
    assert len(book.chapters) >= min_chapters
    assert [c.index for c in book.chapters] == list(range(len(book.chapters)))
    assert all(c.title.strip() for c in book.chapters)
    assert all(c.word_count > 0 for c in book.chapters)
    assert book.metadata.language == language
    assert book.metadata.page_count >= 1


@pytest.mark.parametrize("name", list(READABLE))
def test_chapters_cover_the_source(extracted, name):
    book = extracted[name]
    assert book.source_word_count > 1000
    assert book.word_count / book.source_word_count >= 0.9


def test_epub_metadata_and_titles_come_from_the_package(extracted):
    romeo = extracted["romeo-juliet.epub"]
    assert romeo.metadata.title == "Romeo and Juliet"
    assert romeo.metadata.authors == ("William Shakespeare",)
    assert romeo.metadata.identifiers
    assert romeo.metadata.page_count == 30
    assert any(c.title.startswith("SCENE I.") for c in romeo.chapters)
    waste = extracted["waste-land.epub"]
    assert [c.title for c in waste.chapters][:2] == ["I. THE BURIAL OF THE DEAD", "II. A GAME OF CHESS"]


def test_epub_fragment_spine_is_deduplicated(extracted):
    manual = extracted["live-manual-de.epub"]
    assert manual.metadata.page_count == 190  # raw spine entries, many pointing at one file
    titles = [c.title for c in manual.chapters]
    assert len(titles) == len(set(titles)) and len(titles) < 60
    assert "1. Über dieses Handbuch" in titles


def test_japanese_epub_counts_cjk_words(extracted):
    book = extracted["kusamakura-ja.epub"]
    assert book.metadata.title == "草枕"
    assert book.source_word_count > 50_000  # each kanji/kana counts as a word
    assert book.chapters[1].title == "一"
    assert book.warnings == ()  # the absent audio files are not text and not missed


def test_pdf_outline_chapters_and_info(extracted):
    r_intro = extracted["r-intro.pdf"]
    assert r_intro.metadata.page_count == 113
    assert "1 Introduction and preliminaries" in [c.title for c in r_intro.chapters]
    news = extracted["ltnews36.pdf"]
    assert [c.title for c in news.chapters][1:3] == ["Introduction", "Auto-detecting key/value arguments"]
    zoo = extracted["zoo-jss.pdf"]
    assert zoo.metadata.title.startswith("zoo: An S3 Class")
    assert zoo.chapters[1].title == "1. Introduction"


def test_owner_password_only_pdf_opens(extracted):
    book = extracted["r-lang-protected.pdf"]
    assert book.chapters[1].title == "1 Introduction"
    assert "soft hyphen" not in book.text and "\ufffe" not in book.text


def test_missing_spine_item_is_skipped_with_a_warning():
    book = extract(BROKEN / "missing-spine.epub")
    assert any("customizing-contents.xhtml" in w for w in book.warnings)
    assert len(book.chapters) > 10
    assert book.word_count / book.source_word_count >= 0.9


def test_extracted_book_round_trips_through_json(extracted):
    book = extracted["waste-land.epub"]
    assert model.ExtractedBook.from_json(book.to_json()) == book
