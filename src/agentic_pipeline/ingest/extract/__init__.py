"""Book extraction: any supported file in, one ``ExtractedBook`` out.

The format is decided by content (``sniff``), never by the name alone; each reader turns
driver failures into ``agentic_pipeline.errors.BookError`` subclasses whose message names
the file. Size bounds are keyword arguments; the orchestrator adds a time limit around it.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentic_pipeline import errors
from agentic_pipeline.ingest import model
from agentic_pipeline.ingest.extract import epub, ocr, pdf, sniff, text
from agentic_pipeline.ingest.extract.limits import Limits
from agentic_pipeline.ingest.extract.sniff import SUPPORTED_SUFFIXES

__all__ = ["SUPPORTED_SUFFIXES", "Limits", "detect_format", "extract"]

_DEFAULTS = Limits()


def extract(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = _DEFAULTS.max_bytes,
    max_pages: int = _DEFAULTS.max_pages,
    max_unpacked: int = _DEFAULTS.max_unpacked,
    max_garbage_ratio: float = _DEFAULTS.max_garbage_ratio,
    ocr_options: ocr.OcrOptions | None = None,
) -> model.ExtractedBook:
    """Read the book at ``path`` into metadata and chapters.

    ``ocr_options`` (PDF only): how pages without a text layer are read by OCR; None means off.
    Raises a ``BookError`` subclass for a bad book (empty, corrupt, encrypted, scanned,
    garbled, too large, unsupported) and ``InputError`` when the path is not a readable file.
    """
    path = Path(path)
    limits = Limits(max_bytes=max_bytes, max_pages=max_pages, max_unpacked=max_unpacked, max_garbage_ratio=max_garbage_ratio)
    kind, size = _detect(path)
    mismatch = sniff.mislabeled(kind, path.name)
    if mismatch is not None:
        raise errors.UnsupportedFormat(mismatch, path=str(path))
    if size > limits.max_bytes:
        raise errors.BookTooLarge(
            f"the book exceeds the configured size limits: {path.name} is {size:,} bytes (limit {limits.max_bytes:,})",
            path=str(path),
        )
    if kind == "pdf":
        return pdf.read(path, limits, ocr_options)
    if kind == "zip":
        return epub.read(path, limits)
    return text.read(path, _read_bytes(path), kind, limits)


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of the file's content: "pdf", "zip" (EPUB), "html", "markdown" or "text".

    Content only: a text file named .pdf is "text" here, and ``extract`` refuses it as mislabeled.
    """
    return _detect(Path(path))[0]


def _detect(path: Path) -> tuple[str, int]:
    try:
        with open(path, "rb") as handle:
            head = handle.read(sniff.HEAD_BYTES)
            size = os.fstat(handle.fileno()).st_size
    except IsADirectoryError as exc:
        raise errors.InputError(f"not a file: {path}", path=str(path)) from exc
    except OSError as exc:
        raise errors.InputError(f"cannot read {path}: {exc.strerror or exc}", path=str(path)) from exc
    kind = sniff.sniff(head, path.suffix)
    if kind == "empty":
        raise errors.EmptyFile(f"empty file: {path.name} is 0 bytes", path=str(path))
    if kind.startswith("binary:"):
        raise errors.UnsupportedFormat(
            f"unsupported format: {path.name} is a {kind.removeprefix('binary:')}", path=str(path)
        )
    return kind, size


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise errors.InputError(f"cannot read {path}: {exc.strerror or exc}", path=str(path)) from exc
