"""Benchmark: OCR speed and accuracy (``agentic_pipeline.ingest.extract.ocr``) on rendered pages with known text.

Not a test. Pages of corpus PDFs that have a good text layer (single-column prose and code: An
Introduction to R, the zoo paper, Discrete Mathematics) are rendered by PDFium and read by
Tesseract; the text layer is the reference. Conditions:

* clean: 300 dpi greyscale, as a scanner at 300 dpi would deliver;
* degraded: 150 dpi, rotated 1.5 degrees (skew), Gaussian noise (sigma 25 grey levels) and 0.5 %
  salt-and-pepper specks.

Character error rate = edit distance / reference characters, whitespace folded (reading order of
running heads differs a little between the text layer and OCR, which counts against OCR). Pages/s
is wall time of recognition (render + blank check + Tesseract + gate), one thread
(OMP_THREAD_LIMIT=1), the ratio is degraded against clean. Uses ../shared/corpus when present,
else samples/books (r-intro and zoo only).

    .venv/bin/python -m bench.run ocr [--quick]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
SAMPLES = REPO / "samples" / "books"
#: (file, page indexes): prose and code pages whose text layer reads cleanly
PAGES = [("r-intro.pdf", (7, 8, 12, 20, 30, 45)), ("zoo-jss.pdf", (1, 3, 5, 8)),
         ("discrete-math.pdf", (10, 25, 60, 120))]
SKEW_DEGREES = 1.5


def _source(name: str) -> Path | None:
    for folder in (CORPUS, SAMPLES):
        if (folder / name).is_file():
            return folder / name
    return None


def degrade(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Skew (nearest-neighbour rotation about the centre), Gaussian noise and salt-and-pepper specks."""
    h, w = gray.shape
    angle = np.deg2rad(SKEW_DEGREES)
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h / 2, w / 2
    sx = (np.cos(angle) * (xx - cx) + np.sin(angle) * (yy - cy) + cx).round().astype(int)
    sy = (-np.sin(angle) * (xx - cx) + np.cos(angle) * (yy - cy) + cy).round().astype(int)
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    out = np.full_like(gray, 255)
    out[inside] = gray[sy[inside], sx[inside]]
    noisy = out.astype(np.float32) + rng.normal(0, 25, out.shape)
    specks = rng.random(out.shape)
    noisy[specks < 0.0025] = 0
    noisy[specks > 0.9975] = 255
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _measure(reader, images) -> tuple[float, float, list[float]]:
    from agentic_pipeline.ingest.extract import ocr

    edits = chars = 0.0
    seconds = 0.0
    per_page = []
    for gray, dpi, reference in images:
        started = time.perf_counter()
        result = reader.read_image(gray, dpi)
        seconds += time.perf_counter() - started
        cer = ocr.character_error_rate(reference, result.text)
        n = len(" ".join(reference.split()))
        edits += cer * n
        chars += n
        per_page.append(cer)
    return len(images) / seconds, edits / chars, per_page


def run(quick: bool = False) -> list[dict]:
    import pypdfium2 as pdfium

    from agentic_pipeline.ingest.extract import ocr

    rng = np.random.default_rng(0)
    clean, degraded = [], []
    for name, indexes in PAGES:
        path = _source(name)
        if path is None:
            continue
        doc = pdfium.PdfDocument(str(path))
        for index in indexes[: 2 if quick else None]:
            page = doc[index]
            reference = page.get_textpage().get_text_range()
            clean.append((ocr.render(page, 300), 300, reference))
            degraded.append((degrade(ocr.render(page, 150), rng), 150, reference))
            page.close()
        doc.close()
    with ocr.Reader(ocr.OcrOptions()) as reader:
        clean_rate, clean_cer, clean_pages = _measure(reader, clean)
        bad_rate, bad_cer, bad_pages = _measure(reader, degraded)
    note = f"{len(clean)} pages from {', '.join(n for n, _ in PAGES if _source(n))}; {reader.engine}, tessdata_fast eng"
    return [
        {"name": "clean 300 dpi: pages/s", "value": clean_rate, "unit": "pages/s", "note": note},
        {"name": "clean 300 dpi: CER", "value": clean_cer, "unit": "fraction",
         "note": f"target <= 0.03; worst page {max(clean_pages):.3f}"},
        {"name": "degraded 150 dpi + skew + noise: pages/s", "value": bad_rate, "unit": "pages/s",
         "baseline": clean_rate, "ratio": bad_rate / clean_rate, "note": "ratio = degraded / clean speed"},
        {"name": "degraded 150 dpi + skew + noise: CER", "value": bad_cer, "unit": "fraction",
         "note": f"target <= 0.08; worst page {max(bad_pages):.3f}"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
