"""Scanned PDFs through the real CLI and the stage child process: refused with OCR off, read by OCR after
``reprocess --ocr auto``, and the library book records it; the corpus's one-page scan is read by OCR too."""

from __future__ import annotations

import json

import sqlalchemy as sa

from tests.conftest import SAMPLES, open_app
from tests.ingest.scans import make_scan
from tests.orchestrator.helpers import run_cli, worker_env

HUCK = SAMPLES / "broken" / "scan-huckfinn.pdf"  # the corpus's scanned PDF, copied into samples/


def test_scanned_pdf_is_ingested_by_ocr_after_reprocess(sqlite_url, tmp_path):
    scan = tmp_path / "scanned-ltnews.pdf"
    make_scan(SAMPLES / "books" / "ltnews36.pdf", [0, 1, 2, 3], scan)  # the whole newsletter, image only
    env = worker_env(AGENTIC_PIPELINE_OCR_MODE="off", AGENTIC_PIPELINE_DATA_DIR=str(tmp_path / "data"))
    out = run_cli(sqlite_url, "process", str(scan), "--wait", "--json", env=env)
    ended = json.loads(out.stdout)
    assert ended["state"] == "rejected" and "scanned pages need OCR" in (ended.get("error") or out.stdout)
    again = json.loads(run_cli(sqlite_url, "reprocess", str(ended["id"]), "--ocr", "auto", "--json", env=env).stdout)
    assert again["state"] == "needs_retry" and again["ocr_mode"] == "auto"
    worker = run_cli(sqlite_url, "worker", "--until-empty", "--poll", "0.1", env=env)
    assert worker.returncode == 0, worker.stderr
    app = open_app(sqlite_url)
    try:
        p = app.pipelines.get(ended["id"])
        assert p.state.value == "pending_approval", p.row.get("error")
        assert p.row["book_profile"]["ocr"]["pages"] == 4
        assert any(c["name"] == "ocr_confidence" and c["passed"] for c in p.row["validation_result"]["checks"])
        from agentic_pipeline.db.schema import books

        with app.db.read() as conn:
            row = conn.execute(sa.select(books.c.ocr_pages, books.c.ocr_confidence)).one()
        assert row.ocr_pages == 4 and row.ocr_confidence > 80
    finally:
        app.close()


def test_the_corpus_scan_is_read_by_ocr_and_judged_on_its_text(sqlite_url, tmp_path):
    env = worker_env(AGENTIC_PIPELINE_DATA_DIR=str(tmp_path / "data"))  # OCR auto, the default
    ended = json.loads(run_cli(sqlite_url, "process", str(HUCK), "--wait", "--json", env=env).stdout)
    app = open_app(sqlite_url)
    try:
        p = app.pipelines.get(ended["id"])
        assert p.row["book_profile"]["ocr"]["pages"] == 1 and p.row["book_profile"]["ocr"]["mean_confidence"] > 80
        assert p.row["book_profile"]["source_word_count"] > 150
        # one page of a novel is read, then judged like any text: too short to be a book (i17's minimum size)
        assert "no text layer" not in (p.row.get("error") or "")
    finally:
        app.close()
