"""Chunks know their PDF pages and chapters their place in the book's hierarchy (for search hits)."""

from __future__ import annotations

import dataclasses

import pytest

from agentic_pipeline.ingest import chunking, extract, model
from tests.conftest import SAMPLES

from .conftest import CORPUS


def _fake_tokens(text: str) -> int:
    return len(text.split())


def test_pages_of_a_slice_come_from_the_page_starts():
    ch = model.Chapter(0, "One", "a" * 300, page_starts=((0, 4), (100, 5), (200, 6)))
    assert ch.pages(0, 50) == (4, 4)
    assert ch.pages(90, 150) == (4, 5)
    assert ch.pages(100, 300) == (5, 6)
    assert model.Chapter(0, "One", "text").pages(0, 4) is None
    book = model.ExtractedBook(model.Metadata(format="pdf"), (ch,), 1)
    assert model.ExtractedBook.from_json(book.to_json()).chapters[0] == ch  # survives the stage hand-over


def test_every_pdf_chunk_names_pages_in_order_within_the_book():
    book = extract.extract(SAMPLES / "books" / "r-intro.pdf")
    assert book.metadata.page_count > 0
    chapters = {c.index: c for c in book.chapters}
    last = 1
    for c in chunking.chunk_chapters(book.chapters, max_tokens=300, overlap_tokens=0, count_tokens=_fake_tokens):
        first, end = chapters[c.chapter_index].pages(c.start, c.end)
        assert 1 <= first <= end <= book.metadata.page_count
        assert first >= last - 1  # reading order (a chapter may start on the page the last one ended)
        last = first
    assert last > book.metadata.page_count // 2


def test_a_chunk_names_the_page_that_holds_its_text():
    import pypdfium2 as pdfium

    from agentic_pipeline.ingest.extract import pdf

    path = SAMPLES / "books" / "r-intro.pdf"
    book = extract.extract(path)
    doc = pdfium.PdfDocument(path)
    pages = [" ".join(p.split()) for p in pdf._page_texts(doc)[0]]  # the pages as the extractor read them
    doc.close()
    chapters = {c.index: c for c in book.chapters}
    chunks = chunking.chunk_chapters(book.chapters, max_tokens=200, overlap_tokens=0, count_tokens=_fake_tokens)
    checked = 0
    for c in chunks[10::7]:
        first, end = chapters[c.chapter_index].pages(c.start, c.end)
        words = " ".join(c.text.split()[:6])
        holders = [i + 1 for i, p in enumerate(pages) if words in p]
        if len(holders) == 1:  # a phrase found on one page only (not a running head or dot leaders)
            assert first <= holders[0] <= end, (first, end, words, holders)
            checked += 1
    assert checked > 10


def test_epub_chapters_carry_their_place_in_the_table_of_contents():
    book = extract.extract(SAMPLES / "books" / "romeo-juliet.epub")
    paths = {c.title: c.path for c in book.chapters}
    assert paths["SCENE I. Verona. A public place."] == "Act I › SCENE I. Verona. A public place."
    assert sum(1 for p in paths.values() if p.startswith("Act V › ")) >= 2
    assert all(not c.page_starts for c in book.chapters)


@pytest.mark.corpus
@pytest.mark.skipif(not (CORPUS / "war-and-peace.epub").exists(), reason="../shared/corpus is not present")
def test_war_and_peace_chapters_say_which_book_and_part():
    book = extract.extract(CORPUS / "war-and-peace.epub")
    viii = [c.path for c in book.chapters if c.title == "VIII"]
    assert "Book I › Part I: 1805 › VIII" in viii and len(set(viii)) == len(viii) > 5


@pytest.mark.corpus
@pytest.mark.skipif(not (CORPUS / "discrete-math.pdf").exists(), reason="../shared/corpus is not present")
@pytest.mark.parametrize("name", ["discrete-math.pdf", "intro-to-r.pdf", "cpp-annotations.pdf"])
def test_corpus_pdf_chunks_carry_page_ranges(name):
    book = extract.extract(CORPUS / name)
    chapters = {c.index: c for c in book.chapters}
    chunks = chunking.chunk_chapters(book.chapters, max_tokens=512, overlap_tokens=64, count_tokens=_fake_tokens)
    pages = [chapters[c.chapter_index].pages(c.start, c.end) for c in chunks]
    assert all(p is not None and 1 <= p[0] <= p[1] <= book.metadata.page_count for p in pages)
    assert pages[0][0] == 1 and pages[-1][1] >= book.metadata.page_count - 2
    assert dataclasses.replace(book.chapters[0]).page_starts[0] == (0, 1)
