"""Every non-broken book of ../shared/corpus extracts with full coverage, in reasonable time.

Needs the shared corpus (skipped without it); takes ~10 s on 2 cores, so it is not marked slow.
"""

from __future__ import annotations

import csv
import time

import pytest

from agentic_pipeline.ingest.extract import extract

from .conftest import CORPUS

pytestmark = pytest.mark.corpus

EXPECTED_FAILURES = {"lshort-ru.pdf", "scan-huckfinn.pdf"}  # garbled text layer, scanned page


def _books() -> list[str]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.exists():
        return []
    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return [r["file"] for r in rows if not r["file"].startswith("broken/") and r["file"] not in EXPECTED_FAILURES]


@pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").exists(), reason="../shared/corpus is not present")
@pytest.mark.parametrize("name", _books() or ["<none>"])
def test_corpus_book_extracts_with_full_coverage(name):
    started = time.perf_counter()
    book = extract(CORPUS / name)
    elapsed = time.perf_counter() - started
    assert book.word_count / book.source_word_count >= 0.9
    assert all(c.title and c.text for c in book.chapters)
    assert elapsed < 30, f"{name} took {elapsed:.1f}s"
