"""One plain function per stage: real files in, an ``Outcome`` (next state + what to write) out.

The functions run in the stage's child process and do the heavy work; the worker then applies
the outcome (``process.apply``): the library rows and the state change in one transaction.

What crosses stages: CLASSIFYING extracts the book and keeps only its profile (metadata, word
counts, split method) in ``book_profile``; PROCESSING extracts it again (cheap next to chunking,
and nothing large sits in the pipeline row that every claim reads) and writes chapters and
chunks to the library; VALIDATING rebuilds the book from those chapter rows and the profile,
so it checks exactly what was stored. EMBEDDING writes vectors in batches as it goes, so a
killed or retried embedding resumes with the chunks that still have no vector for this model.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable

from agentic_pipeline import errors
from agentic_pipeline.audit import actions, chain
from agentic_pipeline.db import library_store, workers_store
from agentic_pipeline.pipeline.states import State

EMBED_BATCH = 256
#: words per part when validation asks for the fallback split (by size, at paragraph breaks)
FALLBACK_PART_WORDS = 3000


@dataclasses.dataclass
class Outcome:
    """What a stage decided: the next state, pipeline columns, library rows and an audit entry."""

    to: State
    updates: dict[str, Any] = dataclasses.field(default_factory=dict)
    detail: dict[str, Any] | None = None
    library: dict[str, Any] | None = None  # {"book": {...}, "chapters": [...], "chunks": [...]}
    delete_library: bool = False
    actor: str | None = None  # None: the worker
    audit: chain.AuditEntry | None = None


# ----------------------------------------------------------------------- stages
def hashing(app, p) -> Outcome:
    """SHA-256 of the file; a live pipeline with the same content and a lower id makes this a DUPLICATE."""
    from agentic_pipeline.ingest import hashing as hashing_mod  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    digest = _read_guard(p.source_path, lambda: hashing_mod.sha256_file(p.source_path))
    with app.db.read() as conn:
        original = workers_store.live_duplicate_of(conn, p.id, digest)
    if original is not None:
        return Outcome(State.DUPLICATE, {"content_hash": digest, "duplicate_of": original},
                       detail={"duplicate_of": original})
    return Outcome(State.CLASSIFYING, {"content_hash": digest})


def classifying(app, p) -> Outcome:
    """Extract the book and classify it; keep the type, confidence, reasoning and the book's profile."""
    from agentic_pipeline.ingest import classify  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    book = extract(app, p.source_path, p.row)
    changed = source_changed(app, p)
    if changed is not None:
        return changed
    result = classify.classify(book)
    meta = book.metadata
    profile = {
        "reasoning": result.reasoning, "signals": result.signals,
        "probabilities": getattr(result, "probabilities", {}),
        "format": meta.format, "authors": list(meta.authors), "language": meta.language,
        "page_count": meta.page_count, "identifiers": list(meta.identifiers), "metadata_title": meta.title,
        "source_word_count": book.source_word_count, "word_count": book.word_count,
        "chapter_count": len(book.chapters), "split_method": book.split_method, "warnings": list(book.warnings),
        "ocr": book.ocr,
    }
    title = meta.title or Path(p.source_path).stem
    return Outcome(State.SELECTING_STRATEGY, {
        "book_type": result.book_type, "confidence": _unit(result.confidence), "title": title,
        "book_profile": profile,
    }, detail={"book_type": result.book_type, "confidence": round(float(result.confidence), 4)})


def selecting_strategy(app, p) -> Outcome:
    """Pick the processing strategy for the book's type and confidence."""
    from agentic_pipeline.ingest import strategies  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    strategy = strategies.select_strategy(p.row.get("book_type") or "unknown", float(p.row.get("confidence") or 0.0))
    data = strategy.to_json()
    return Outcome(State.PROCESSING, {"strategy": data}, detail={"strategy": data.get("name", data.get("book_type"))})


def processing(app, p) -> Outcome:
    """Split into chapters (the fallback split when validation asked for it) and chunk them."""
    from agentic_pipeline.ingest import chunking  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    started = time.monotonic()
    strategy = p.row.get("strategy") or {}
    book = extract(app, p.source_path, p.row)
    changed = source_changed(app, p)
    if changed is not None:
        return changed
    if strategy.get("fallback"):
        book = fallback_split(book, strategy.get("fallback_split") or "pages")
    chunks = chunking.chunk_chapters(
        book.chapters, max_tokens=int(strategy.get("chunk_tokens", 384)),
        overlap_tokens=int(strategy.get("overlap_tokens", 48)), count_tokens=app.embedder.count_tokens,
        keep_code_whole=bool(strategy.get("keep_code_whole")), keep_tables_whole=bool(strategy.get("keep_tables_whole")),
    )
    meta = book.metadata
    by_index = {c.index: c for c in book.chapters}
    library = {
        "book": {"content_hash": p.row.get("content_hash") or "", "title": p.row.get("title") or meta.title,
                 "authors": list(meta.authors), "language": _language(meta.language, book.text),
                 "book_type": p.row.get("book_type"),
                 "source_path": p.source_path, "word_count": book.word_count,
                 "metadata": {"format": meta.format, "split_method": book.split_method},
                 **ocr_columns(book.ocr)},
        "chapters": [{"chapter_index": c.index, "title": c.title, "text": c.text, "word_count": c.word_count,
                      "path": c.path or None} for c in book.chapters],
        "chunks": [_chunk_row(c, by_index[c.chapter_index]) for c in chunks],
    }
    result = {"chapters": len(book.chapters), "chunks": len(chunks), "split_method": book.split_method,
              "fallback": bool(strategy.get("fallback")), "seconds": round(time.monotonic() - started, 3)}
    return Outcome(State.VALIDATING, {"processing_result": result}, detail=result, library=library)


def validating(app, p) -> Outcome:
    """Check what PROCESSING stored; pass, retry once with the fallback split, or reject with the reasons."""
    from agentic_pipeline.approval import overrides  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer
    from agentic_pipeline.ingest import validate

    book, chunk_texts = stored_book(app, p)
    strategy = p.row.get("strategy") or {}
    result = validate.validate(book, strategy_object(strategy), chunk_texts=chunk_texts)
    report = result.to_json()
    if result.passed:
        return Outcome(State.PENDING_APPROVAL, {"validation_result": report}, detail={"passed": True})
    overridden = overrides.relaxed_verdict(result, strategy.get("override"))
    if overridden:  # a person relaxed exactly these checks for this book (approval/overrides.py)
        who = strategy["override"]
        report["overridden"] = {"checks": overridden, "actor": who.get("actor"), "reason": who.get("reason")}
        return Outcome(State.PENDING_APPROVAL, {"validation_result": report},
                       detail={"passed": False, "overridden": overridden, "by": who.get("actor")})
    if getattr(result, "retry_with_fallback", False) and not strategy.get("fallback"):
        fallback = {**strategy, "fallback": True}
        return Outcome(State.PROCESSING, {"validation_result": report, "strategy": fallback},
                       detail={"passed": False, "retry_with_fallback": True, "reasons": list(result.reasons)})
    reason = "; ".join(result.reasons) or "validation failed"
    audit = chain.AuditEntry(action=actions.Action.REJECTED, actor=actions.SYSTEM_VALIDATOR, pipeline_id=p.id,
                             reason=reason, confidence_at_decision=p.row.get("confidence"),
                             before_state={"state": State.VALIDATING.value}, after_state={"state": "rejected"})
    return Outcome(State.REJECTED, {"validation_result": report, "error": reason, "error_stage": "validating"},
                   detail={"passed": False, "reasons": list(result.reasons)}, delete_library=True,
                   actor=actions.SYSTEM_VALIDATOR, audit=audit)


def embedding(app, p) -> Outcome:
    """Embed, in batches, every chunk of the book that has no vector for the current model."""
    from agentic_pipeline.ingest import embed  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    model = app.embedder
    book_id = p.row.get("book_id")
    if book_id is None:
        raise errors.TransientError(f"pipeline {p.id} has no library book to embed; it needs processing again")
    done = 0
    while True:
        with app.db.read() as conn:
            batch = library_store.chunks_without_vectors(conn, book_id, model.name, limit=EMBED_BATCH)
        if not batch:
            break
        vectors = model.embed([text for _cid, text in batch])
        with app.db.write() as conn:
            fence(app, p.id, p.row.get("lease_owner"), conn)
            done += library_store.set_embeddings(conn, [(cid, embed.to_blob(v)) for (cid, _t), v in zip(batch, vectors)],
                                                 model=model.name, dim=model.dim)
    return Outcome(State.COMPLETE, detail={"embedded": done, "model": model.name})


def fence(app, pipeline_id: int, owner: str | None, conn) -> None:
    """Write only while the lease is ours: a worker cut off from the database past its lease, whose book another
    worker took over, must not write for it when it comes back (``LeaseLost``; the transaction rolls back).

    First in the transaction that writes library rows: it extends the lease (a beat), and on PostgreSQL
    the row stays locked until the commit, so nobody takes the book over half way through the write.
    """
    if owner is not None:
        app.pipelines.heartbeat(pipeline_id, owner, lease_seconds=app.settings.lease_seconds, conn=conn)


STAGES: dict[State, Callable[[Any, Any], Outcome]] = {
    State.HASHING: hashing, State.CLASSIFYING: classifying, State.SELECTING_STRATEGY: selecting_strategy,
    State.PROCESSING: processing, State.VALIDATING: validating, State.EMBEDDING: embedding,
}


#: stages that run third-party parsers or the model over a whole book: a forked child with a hard
#: time limit and a memory cap. The others (hashing a file, picking a strategy, checking stored
#: text) are our own bounded Python and run in the worker under an alarm-based time limit; a fork
#: per stage costs ~30 ms, which would triple the per-book cost of small books.
ISOLATED = frozenset({State.CLASSIFYING, State.PROCESSING, State.EMBEDDING})


# ----------------------------------------------------------------------- helpers
def _chunk_row(c, chapter) -> dict[str, Any]:
    """A chunk's library row, with the PDF pages it spans (chapter.pages: None for other formats)."""
    pages = chapter.pages(c.start, c.end) or (None, None)
    return {"chapter_index": c.chapter_index, "ordinal": c.ordinal, "position": c.position, "text": c.text,
            "token_count": c.token_count, "page_start": pages[0], "page_end": pages[1]}


def _language(declared: str | None, text: str) -> str | None:
    """The book's language as a primary subtag ("ja", not "ja-JP"): what it declares, else what its text is in
    (PDFs, text and Markdown rarely declare one)."""
    from agentic_pipeline.ingest import language  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    tag = language.normalise_language(declared)
    if tag:
        return tag
    found = language.detect_language(text)
    return None if found.language == "und" else found.language


def source_changed(app, p) -> Outcome | None:
    """Back to DETECTED when the file no longer has the content HASHING saw; None when it does.

    Checked right after a stage has read the file: a book replaced between stages would otherwise be
    classified as one file and chunked as another. Starting over re-hashes it (and dedupes it) as
    the new content it now is.
    """
    from agentic_pipeline.ingest import hashing as hashing_mod  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    expected = p.row.get("content_hash")
    if not expected:
        return None
    digest = _read_guard(p.source_path, lambda: hashing_mod.sha256_file(p.source_path))
    if digest == expected:
        return None
    return Outcome(State.DETECTED, {"content_hash": None}, delete_library=True,
                   detail={"reason": "the file changed since it was hashed: starting over", "was": expected,
                           "now": digest})


def extract(app, path: str, row: dict[str, Any] | None = None):
    """Extract the book at ``path``; ``row`` (the pipeline) supplies the book's own OCR mode and its content hash."""
    from agentic_pipeline.ingest import extract as extract_mod  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    options = ocr_options(app.settings, row or {})
    return _read_guard(path, lambda: extract_mod.extract(path, max_bytes=int(app.settings.max_book_mb) * 1024 * 1024,
                                                         ocr_options=options))


def ocr_options(settings, row: dict[str, Any]):
    """The OCR options for one book: the settings, the book's own mode (``reprocess --ocr``) over the default."""
    from agentic_pipeline.ingest.extract import ocr  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    digest = row.get("content_hash")
    cache = str(Path(settings.data_dir) / "ocr-cache" / f"{digest}.json") if digest else ""
    return ocr.OcrOptions(mode=row.get("ocr_mode") or settings.ocr_mode, languages=settings.ocr_languages,
                          dpi=int(settings.ocr_dpi), page_seconds=float(settings.ocr_page_seconds),
                          min_confidence=float(settings.ocr_min_confidence), tessdata_dir=settings.ocr_tessdata,
                          cache_file=cache)


def ocr_columns(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The library book's OCR columns: pages read by OCR and their mean confidence (None when none were)."""
    if not summary or not summary.get("pages"):
        return {"ocr_pages": None, "ocr_confidence": None}
    return {"ocr_pages": int(summary["pages"]), "ocr_confidence": float(summary["mean_confidence"])}


def _read_guard(path: str, fn):
    """A vanished source is a TransientError (a remount may bring it back); max_attempts ends it in FAILED."""
    if not os.path.isfile(path):
        raise errors.TransientError(f"the source file {path} does not exist (moved or deleted?)", path=path)
    return fn()


def fallback_split(book, method: str = "pages"):
    """Re-split the whole text at paragraph breaks every ~FALLBACK_PART_WORDS words (the fallback method).

    The extractors pick their own split; the fallback cuts the same text by size, which is what
    "pages" means for a text stream, and is recorded under the strategy's fallback name so the
    validator does not ask for it again.
    """
    from agentic_pipeline.ingest.extract import chapters as chapters_mod  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    text = "\n\n".join(c.text for c in book.chapters)
    parts = chapters_mod.split_at(text, chapters_mod.size_cuts(text, FALLBACK_PART_WORDS), front_title="Part 1")
    return dataclasses.replace(book, chapters=chapters_mod.build(parts), split_method=method)


def stored_book(app, p):
    """The book as PROCESSING stored it (chapters from the library, metadata from the profile), and its chunk texts."""
    from agentic_pipeline.ingest import model  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    book_id = p.row.get("book_id")
    if book_id is None:
        raise errors.TransientError(f"pipeline {p.id} has no library rows to validate; it needs processing again")
    with app.db.read() as conn:
        rows = library_store.load_chapters(conn, book_id)
        texts = library_store.chunk_texts(conn, book_id)
    prof = p.row.get("book_profile") or {}
    meta = model.Metadata(title=p.row.get("title"), authors=tuple(prof.get("authors") or ()),
                          language=prof.get("language"), format=prof.get("format", ""),
                          page_count=prof.get("page_count", 0))
    chapters = tuple(model.Chapter(index=r["chapter_index"], title=r["title"], text=r["text"]) for r in rows)
    split = (p.row.get("processing_result") or {}).get("split_method", prof.get("split_method", ""))
    book = model.ExtractedBook(metadata=meta, chapters=chapters, source_word_count=prof.get("source_word_count", 0),
                               warnings=tuple(prof.get("warnings") or ()), split_method=split,
                               ocr=prof.get("ocr"))
    return book, texts


def strategy_object(data: dict[str, Any]):
    """The ``Strategy`` a stored strategy JSON describes (the validator wants the object)."""
    from agentic_pipeline.ingest import strategies  # lazy: parsers and the model load in the worker that runs the stage (process.warm), not in every importer

    return strategies.parse_strategy(data, source="the pipeline's stored strategy")


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
