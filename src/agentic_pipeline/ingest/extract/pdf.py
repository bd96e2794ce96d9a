"""PDF extraction with pypdfium2: page text, outline-based chapters, document info.

Chapters come from the outline (bookmarks) when there is one: the shallowest level with at
least two entries, each cut placed where its title appears on its start page, so sections
that start mid-page split there. Without an outline, numbered top-level headings ("1.
Introduction", "2 Methods") are looked for; failing that, pages are grouped. All chapter
text is sliced from the one text of all pages, which is also what ``source_word_count``
counts, independent of the split.
"""

from __future__ import annotations

import bisect
import ctypes
import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from agentic_pipeline import errors
from agentic_pipeline.ingest import metadata, model, text_stats
from agentic_pipeline.ingest.extract import chapters, ocr, pdf_headings, pdf_title, quality
from agentic_pipeline.ingest.extract.limits import Limits
import html

PAGE_SEPARATOR = "\n\n"
#: a page with fewer words than this counts as having no text layer
MIN_PAGE_WORDS = 5
_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
#: the copyright page is among the first pages: an ISBN is looked for there (labelled "ISBN" only)
ISBN_PAGES = 8
#: outline levels looked at for chapters (a deeper level is a section of a section of ...)
MAX_OUTLINE_DEPTH = 4


def read(path: Path, limits: Limits, ocr_options: ocr.OcrOptions | None = None) -> model.ExtractedBook:
    """Extract a PDF file already sniffed as PDF; pages without a text layer are OCRed per ``ocr_options``."""
    doc = _open(path)
    try:
        page_count = len(doc)
        if page_count == 0:
            raise errors.EmptyFile(f"empty file: {path.name} is a PDF with no pages", path=str(path))
        if page_count > limits.max_pages:
            raise errors.BookTooLarge(
                f"the book exceeds the configured size limits: {path.name} has {page_count} pages "
                f"(limit {limits.max_pages})",
                path=str(path),
            )
        pages, warnings = _page_texts(doc)
        read_by_ocr = _ocr_pages(doc, pages, ocr_options or ocr.OcrOptions(mode="off"), warnings)
        outline = _outline(doc, page_count)
        info = _described(doc, path)
    finally:
        doc.close()
    return _assemble(path, pages, outline, info, warnings, limits, read_by_ocr)


def _open(path: Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        # PDFium's error code is process-global and can be stale: the file's own bytes decide
        data = path.read_bytes()
        if getattr(exc, "err_code", None) == _PASSWORD_ERROR and b"/Encrypt" in data:
            raise errors.PasswordProtected(
                f"password protected: {path.name} needs a user password to open",
                hint="remove the password (e.g. qpdf --decrypt) and add the file again",
                path=str(path),
            ) from exc
        if _NO_PAGES.search(data) and not _SOME_PAGES.search(data):
            raise errors.EmptyFile(f"empty file: {path.name} is a PDF with no pages", path=str(path)) from exc
        raise errors.CorruptFile(f"corrupt or unreadable PDF: {path.name}: {exc}", path=str(path)) from exc
    except (OSError, ValueError) as exc:
        raise errors.CorruptFile(f"corrupt or unreadable PDF: {path.name}: {exc}", path=str(path)) from exc


_NO_PAGES = re.compile(rb"/Count\s*0(?![0-9])")
_SOME_PAGES = re.compile(rb"/Count\s*[1-9]")


def _page_texts(doc: pdfium.PdfDocument) -> tuple[list[str], list[str]]:
    """Normalized text of every page; a page pdfium cannot read becomes "" plus a warning."""
    pages: list[str] = []
    bad: list[int] = []
    for i in range(len(doc)):
        try:
            page = doc[i]
            textpage = page.get_textpage()
            pages.append(chapters.normalize(textpage.get_text_range()))
            textpage.close()
            page.close()
        except pdfium.PdfiumError:
            pages.append("")
            bad.append(i + 1)
    warnings = [f"{len(bad)} unreadable page(s) skipped: {_page_list(bad)}"] if bad else []
    return pages, warnings


def _needs_ocr(text: str) -> bool:
    return len(text) < 200 and text_stats.count_words(text) < MIN_PAGE_WORDS


def _ocr_pages(doc: pdfium.PdfDocument, pages: list[str], options: ocr.OcrOptions,
               warnings: list[str]) -> dict[str, Any] | None:
    """OCR the pages that need it (auto: no text layer; force: all), in place; the OCR summary or None.

    A page OCR refuses (blank, low confidence, past its time limit) keeps its text layer (usually
    nothing). Without the engine or its language data, auto mode leaves the pages as they are (the
    text-layer check then explains) and force mode is a configuration error.
    """
    if options.mode == "off":
        return None
    todo = [i for i, text in enumerate(pages) if options.mode == "force" or _needs_ocr(text)]
    if not todo:
        return None
    missing = ocr.unavailable_reason(options)
    if missing is not None:
        if options.mode == "force":
            raise errors.ConfigError(f"OCR was forced but cannot run: {missing}")
        warnings.append(f"{len(todo)} page(s) without a text layer were not OCRed: {missing}")
        return {"mode": options.mode, "pages": 0, "mean_confidence": 0.0, "unavailable": missing}
    results: dict[int, ocr.PageResult] = {}
    cache = ocr.PageCache(options)
    with ocr.Reader(options) as reader:
        for i in todo:
            results[i] = cache.get(i) or _read_one(reader, doc, i, cache)
            if results[i].status == "ok":
                pages[i] = chapters.normalize(results[i].text)
        cache.flush()
    summary = ocr.summary(results, options, reader.engine)
    if summary["refused_pages"]:
        warnings.append(f"OCR refused {len(summary['refused_pages'])} page(s) (low confidence, not words or over "
                        f"the time limit): {_page_list(summary['refused_pages'])}")
    return summary if summary["pages"] or summary["refused_pages"] else None


def _read_one(reader: ocr.Reader, doc: pdfium.PdfDocument, index: int, cache: ocr.PageCache) -> ocr.PageResult:
    page = doc[index]
    try:
        result = reader.read_page(page)
    finally:
        page.close()
    cache.put(index, result)
    return result


def _outline(doc: pdfium.PdfDocument, page_count: int) -> list[tuple[int, str, int]]:
    """(level, title, page index) of the bookmarks at the chapter level; [] if none or broken.

    The chapter level is the shallowest one (of the first ``MAX_OUTLINE_DEPTH``) with at least
    two bookmarks that point at a page. The outline is walked one level at a time and the walk
    stops there: resolving a bookmark's destination can be slow (named destinations are looked
    up), and a reference manual has thousands of deeper entries that would never be used.
    """
    seen: set[int] = set()
    parents = [None]
    try:
        for level in range(MAX_OUTLINE_DEPTH):
            entries, children = [], []
            for parent in parents:
                for mark in _children(doc, parent, level, seen):
                    children.append(mark.raw)
                    dest = mark.get_dest()
                    index = dest.get_index() if dest is not None else None
                    title = chapters.clean_title(mark.get_title())
                    if index is not None and 0 <= index < page_count and title:
                        entries.append((level, title, index))
            if len(entries) >= 2 or not children:
                return entries if len(entries) >= 2 else []
            parents = children
    except pdfium.PdfiumError:
        return []
    return []


def _children(doc: pdfium.PdfDocument, parent, level: int, seen: set[int]):
    """The bookmarks directly under ``parent`` (None: the top level); a circular reference ends the list."""
    pointer = pdfium_c.FPDFBookmark_GetFirstChild(doc, parent)
    while pointer:
        address = ctypes.addressof(pointer.contents)
        if address in seen:
            return
        seen.add(address)
        yield pdfium.PdfBookmark(pointer, doc, level)
        pointer = pdfium_c.FPDFBookmark_GetNextSibling(doc, pointer)


def _described(doc: pdfium.PdfDocument, path: Path) -> dict[str, Any]:
    """Title and authors from the best source: the Info fields, the XMP packet, then the title page.

    Each source's values go through ``metadata`` (placeholders and file names refused, TeX logos and
    ligatures repaired), so a junk Info Title ("main.tex") falls through to the title page.
    """
    info = _info(doc)
    xmp = _xmp(path)
    title = metadata.title_or_none(info.get("Title"), str(path)) or metadata.title_or_none(xmp.get("title"), str(path))
    authors = metadata.split_authors(info.get("Author"), path=str(path)) or metadata.split_authors(
        xmp.get("creators") or None, path=str(path))
    if not title or not authors:
        page_title, page_authors = pdf_title.title_page(doc)
        title = title or page_title
        authors = authors or page_authors
    return {"title": title, "authors": authors}


_XMP = re.compile(rb"<x:xmpmeta.*?</x:xmpmeta>", re.S)
_XMP_FIELD = re.compile(r"<dc:(title|creator)>(.*?)</dc:\1>", re.S)
_RDF_LI = re.compile(r"<rdf:li[^>]*>(.*?)</rdf:li>", re.S)
#: only this much of the file's head and tail is searched for an uncompressed XMP packet
XMP_SCAN_BYTES = 4 << 20


def _xmp(path: Path) -> dict[str, Any]:
    """dc:title and dc:creator of an uncompressed XMP packet (the usual case), or {}."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(XMP_SCAN_BYTES)
    except OSError:
        return {}
    match = _XMP.search(data)
    if match is None:
        return {}
    packet = match.group(0).decode("utf-8", "replace")
    found: dict[str, Any] = {}
    for field, body in _XMP_FIELD.findall(packet):
        values = [html.unescape(v).strip() for v in _RDF_LI.findall(body)] or [html.unescape(body).strip()]
        if field == "title":
            found["title"] = values[0]
        else:
            found["creators"] = values
    return found


def _info(doc: pdfium.PdfDocument) -> dict[str, str]:
    try:
        return {k: v for k, v in doc.get_metadata_dict(skip_empty=True).items() if isinstance(v, str)}
    except (pdfium.PdfiumError, TypeError):
        return {}


def _assemble(path, pages, outline, info, warnings, limits, read_by_ocr=None) -> model.ExtractedBook:
    page_words = [text_stats.count_words(page) for page in pages]
    _check_text_layer(path, pages, page_words, warnings, read_by_ocr)
    offsets, pos = [], 0
    for page in pages:
        offsets.append(pos)
        pos += len(page) + len(PAGE_SEPARATOR)
    text = PAGE_SEPARATOR.join(pages)
    quality.check_garbage(text, path, limits.max_garbage_ratio)
    cuts, method, front = _cuts(pages, offsets, outline)
    spans = chapters.split_spans(len(text), cuts, front)
    counter = _WordsBefore(pages, offsets, page_words)
    built = chapters.build(
        [(title, text[start:end]) for title, start, end in spans],
        words=[counter(end) - counter(start) for _, start, end in spans] if counter.exact(text, spans) else None,
    )
    built = _with_pages(built, text, offsets)
    isbn = metadata.find_isbn_on_copyright_page(pages[:ISBN_PAGES])
    meta = model.Metadata(
        title=chapters.clean_title(info.get("title")) or path.stem,
        authors=tuple(info.get("authors") or ()),
        format="pdf",
        page_count=len(pages),
        identifiers=(f"urn:isbn:{isbn}",) if isbn else (),
        isbn=isbn,
    )
    return model.ExtractedBook(
        metadata=meta,
        chapters=built,
        source_word_count=sum(page_words),
        warnings=tuple(warnings),
        split_method=method if len(built) > 1 else "single",
        ocr=read_by_ocr if read_by_ocr and read_by_ocr.get("pages") else None,
    )


def _with_pages(built: tuple[model.Chapter, ...], text: str, offsets: list[int]) -> tuple[model.Chapter, ...]:
    """Record where each page begins inside each chapter, so a chunk can name its pages.

    A chapter's text is a stretch of the book text (trimmed; tiny parts joined with a blank line,
    as pages are), so it is found from where the previous one ended and the page offsets shifted.
    """
    out, cursor = [], 0
    for ch in built:
        start = text.find(ch.text[:200], cursor)
        if start < 0:
            out.append(ch)
            continue
        first = bisect.bisect_right(offsets, start) - 1
        marks = [(0, first + 1)] + [(offsets[p] - start, p + 1) for p in range(first + 1, len(offsets))
                                    if offsets[p] < start + len(ch.text)]
        out.append(dataclasses.replace(ch, page_starts=tuple(marks)))
        cursor = start + max(1, len(ch.text) // 2)
    return tuple(out)


class _WordsBefore:
    """Words in the book text before an offset, from the page counts plus one partial page.

    Counting every chapter again would be a second pass over the book; a chapter's words are
    the words before its end minus the words before its start, which holds when no cut falls
    inside a word (``exact``).
    """

    def __init__(self, pages: list[str], offsets: list[int], page_words: list[int]) -> None:
        self.pages, self.offsets = pages, offsets
        self.before = [0]
        for n in page_words:
            self.before.append(self.before[-1] + n)

    def __call__(self, offset: int) -> int:
        page = bisect.bisect_right(self.offsets, offset) - 1
        if page < 0:
            return 0
        inside = offset - self.offsets[page]
        if inside >= len(self.pages[page]):
            return self.before[page + 1]
        return self.before[page] + text_stats.count_words(self.pages[page][:inside])

    @staticmethod
    def exact(text: str, spans: list[tuple[str, int, int]]) -> bool:
        return all(0 == s or s == len(text) or text[s - 1].isspace() or text[s].isspace() for _, s, _ in spans)


def _check_text_layer(path: Path, pages: list[str], page_words: list[int], warnings: list[str],
                      read_by_ocr: dict[str, Any] | None = None) -> None:
    """NoTextLayer when (nearly) no page has text; a warning when many pages lack it."""
    empty = [i + 1 for i, (p, n) in enumerate(zip(pages, page_words)) if len(p) < 200 and n < MIN_PAGE_WORDS]
    with_text = len(pages) - len(empty)
    if with_text == 0 or (len(pages) >= 10 and with_text < 0.1 * len(pages)):
        if read_by_ocr is None:
            why, hint = "scanned pages need OCR", "OCR is off: reprocess the book with --ocr auto (or set ocr_mode)"
        elif read_by_ocr.get("unavailable"):
            why, hint = "scanned pages need OCR", read_by_ocr["unavailable"]
        else:
            why = (f"OCR found no trustworthy text ({len(read_by_ocr.get('refused_pages') or [])} page(s) refused, "
                   f"{read_by_ocr.get('blank_pages', 0)} blank)")
            hint = "the scan may be too poor, or in a language without Tesseract data (setting ocr_languages)"
        raise errors.NoTextLayer(
            f"no text layer: {why}: {path.name} ({with_text} of {len(pages)} pages have text)",
            hint=hint,
            path=str(path),
        )
    if len(empty) > 0.3 * len(pages):
        warnings.append(f"{len(empty)} of {len(pages)} pages have no text layer: {_page_list(empty)}")


def _cuts(pages, offsets, outline) -> tuple[list[tuple[int, str]], str, str]:
    """Cut points, the method that found them, and the title of the text before the first cut."""
    level = chapters.pick_level(lvl for lvl, _, _ in outline)
    if level is not None:
        chosen = [(title, page) for lvl, title, page in outline if lvl == level]
        return _outline_cuts(pages, offsets, chosen), "outline", chapters.FRONT_TITLE
    found = pdf_headings.numbered_headings(pages)
    if found:
        return [(offsets[page] + at, title) for page, at, title in found], "headings", chapters.FRONT_TITLE
    size = max(10, math.ceil(len(offsets) / 50))
    cuts = [(offsets[i], _pages_title(i, min(i + size, len(offsets)))) for i in range(size, len(offsets), size)]
    return cuts, "pages", _pages_title(0, min(size, len(offsets)))


def _outline_cuts(pages, offsets, chosen) -> list[tuple[int, str]]:
    """Cut at each entry's title on its start page (else at the page start), never going back."""
    cuts, last = [], 0
    for title, page in chosen:
        base = offsets[page]
        at = _find_title(pages[page], title, max(0, last - base))
        offset = max(base + (at if at >= 0 else 0), last)
        cuts.append((offset, title))
        last = offset
    return cuts


def _find_title(page: str, title: str, start: int) -> int:
    """Offset of the line where ``title`` stands as a heading on ``page``, or -1.

    The title must start a line and end one (a wrapped title may span lines); a
    table-of-contents line ("Introduction ..... 1") is skipped because a page number follows.
    """
    words = title.split()
    if not words:
        return -1
    body = r"\s+".join(re.escape(w) for w in words)
    match = re.compile(rf"^[ \t]*{body}[ \t]*$", re.I | re.M).search(page, start)
    return match.start() if match else -1


def _pages_title(first: int, end: int) -> str:
    return f"Pages {first + 1}–{end}"


def _authors(raw: str) -> tuple[str, ...]:
    """The PDF's Author field as names (``metadata.split_authors``)."""
    return metadata.split_authors(raw)


def _page_list(numbers: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, numbers[:limit]))
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")
