"""Pathologically nested markup: 100,000 nested <div>s cost linear time, and 200 words are no book.

An adversarial 3 KB EPUB (100,000 nested ``<div>``s around 200 words) took 36 s of worker time
(lexbor's start-tag rules look down the whole stack, so parsing was quadratic) and then passed
validation as a one-section "book". Times are compared as ratios, never against a wall-clock figure.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from agentic_pipeline import errors
from agentic_pipeline.ingest import classify, strategies, validate
from agentic_pipeline.ingest.extract import extract, html
from tests.ingest.conftest import BOOKS

WORDS = 200


def nested_epub(path: Path, depth: int, *, words: int = WORDS, nested: bool = True) -> Path:
    """A valid EPUB 3 whose one document wraps ``words`` words in ``depth`` nested (or sibling) divs."""
    body = " ".join(f"word{i}" for i in range(words))
    wrapped = ("<div>" * depth + f"<p>{body}</p>" + "</div>" * depth if nested
               else "<div></div>" * depth + f"<p>{body}</p>")
    xhtml = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head>'
             f"<title>Deep</title></head><body>{wrapped}</body></html>")
    opf = ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
           '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">deep</dc:identifier>'
           "<dc:title>Deep</dc:title><dc:language>en</dc:language></metadata>"
           '<manifest><item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/></manifest>'
           '<spine><itemref idref="c1"/></spine></package>')
    container = ('<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                 '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
                 "</rootfiles></container>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", container)
        z.writestr("OEBPS/content.opf", opf)
        z.writestr("OEBPS/c1.xhtml", xhtml)
    return path


def _best_time(path: Path, runs: int = 3) -> float:
    """The fastest of a few extractions (CPU time: the machine is shared, wall time is noise)."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        book = extract(path)
        best = min(best, time.process_time() - start)
        assert book.word_count == WORDS
    return best


def test_nested_div_epubs_extract_in_linear_time(tmp_path):
    depths = (25_000, 50_000, 100_000)
    times = {d: _best_time(nested_epub(tmp_path / f"deep-{d}.epub", d)) for d in depths}
    flat = _best_time(nested_epub(tmp_path / "flat.epub", 100_000, nested=False))
    floor = 0.002  # below the timer's useful resolution, a ratio says nothing
    # linear: x2 depth costs x2 time (quadratic would be x4; lexbor alone was x4.5 and 50x over 25k->100k)
    assert times[50_000] <= 3.2 * max(times[25_000], floor), times
    assert times[100_000] <= 3.2 * max(times[50_000], floor), times
    assert times[100_000] <= 8 * max(times[25_000], floor), times
    # bounded: as cheap as the same number of divs side by side, give or take
    assert times[100_000] <= 4 * max(flat, floor), (times, flat)


def test_the_200_word_nested_epub_is_rejected_for_its_size(tmp_path):
    book = extract(nested_epub(tmp_path / "deep.epub", 100_000))
    assert book.word_count == WORDS and book.text.split() == [f"word{i}" for i in range(WORDS)]
    kind = classify.classify(book)
    result = validate.validate(book, strategies.select_strategy(kind.book_type, kind.confidence))
    assert not result.passed
    size = result.check("size")
    assert not size.passed and size.value == WORDS
    assert any(r.startswith("size: 200 words, too short for a") for r in result.reasons), result.reasons
    assert not result.retry_with_fallback  # a different split cannot make a note longer


def test_every_strategy_has_a_minimum_size_that_the_sample_books_clear():
    table = strategies.load_strategies()
    assert all(s.validation.min_words >= 500 for s in table.values())
    assert validate.check_size(499, 500, "unknown").detail == "499 words, too short for a book (at least 500)"
    assert validate.check_size(500, 500, "literature").passed


def test_flattening_keeps_the_text_of_every_sample_document(monkeypatch):
    """Flattening drops tags the text does not need: on real books the text is the same to the byte."""
    docs = []
    for book in sorted(BOOKS.glob("*.epub")):
        with zipfile.ZipFile(book) as z:
            docs += [z.read(n) for n in z.namelist() if n.endswith((".xhtml", ".html", ".htm"))]
    assert len(docs) > 50
    normal = [html.to_text(d) for d in docs]
    monkeypatch.setattr(html, "FLATTEN_DEPTH", -1)
    assert [html.to_text(d) for d in docs] == normal


def test_nesting_depth_is_an_upper_bound_that_stray_end_tags_cannot_hide():
    assert html.nesting_depth(b"<p>x</p>" * 600) == 1
    assert html.nesting_depth(b"<div>" * 600 + b"</div>" * 600) == 600
    assert html.nesting_depth(b"</div>" * 1000 + b"<div>" * 600) == 600  # end tags first do not cancel them
    assert html.nesting_depth(b"<br><img src=x>" * 600) == 0
    assert html.nesting_depth(b"<div/>" * 600) == 600  # an HTML parser opens a self-closed div


def test_markup_still_too_deep_once_flattened_is_refused_with_the_reason():
    deep = b"<html><body>" + b"<noscript>" * (html.MAX_DEPTH + 1) + b"text"
    with pytest.raises(errors.CorruptFile, match=r"^its markup nests 2,003 elements deep \(at most 2,000 are read\)$"):
        html.to_text(deep)


def test_an_epub_or_html_file_too_deep_is_refused_naming_the_file_and_document(tmp_path):
    page = "<html><body>" + "<noscript>" * 3_000 + "<p>" + "word " * 600 + "</p></body></html>"
    (tmp_path / "deep.html").write_text(page, encoding="utf-8")
    with pytest.raises(errors.CorruptFile, match=r"^corrupt or unreadable file: deep\.html: its markup nests 3,002"):
        extract(tmp_path / "deep.html")
    epub = nested_epub(tmp_path / "deep.epub", 10)
    with zipfile.ZipFile(epub) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    entries["OEBPS/c1.xhtml"] = page.encode()
    with zipfile.ZipFile(epub, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    with pytest.raises(errors.CorruptFile, match=r"^corrupt or unreadable EPUB: deep\.epub: OEBPS/c1\.xhtml: its markup"):
        extract(epub)


def test_the_pipeline_rejects_the_nested_epub_at_validation_with_the_size_reason(sqlite_app, tmp_path):
    from agentic_pipeline.orchestrator import process, queueing
    from agentic_pipeline.pipeline.states import State

    path = nested_epub(tmp_path / "deep.epub", 100_000)
    pid = queueing.queue_file(sqlite_app, path, actor="human:test")["id"]
    claimed = sqlite_app.pipelines.claim_next("worker-deep", lease_seconds=60)
    p = process.drive(sqlite_app, claimed, "worker-deep", isolate=False)
    assert p.id == pid and p.state is State.REJECTED and p.error_stage == "validating"
    assert p.row["error"].startswith("size: 200 words, too short for a"), p.row["error"]
