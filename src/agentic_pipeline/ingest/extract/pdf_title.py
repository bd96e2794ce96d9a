"""The title page of a PDF: its title, subtitle and authors, read from the sizes of the glyphs.

Most PDFs leave the Info Title and Author empty (11 of the corpus's 13 PDFs), but their title page
says both: the title is the run of lines in the largest type near the top, a subtitle may follow
in smaller type still larger than the body text, and the authors are the first line below that
reads like a list of names. Sizes are glyph box heights, not font sizes: TeX title pages often set
a 10 pt font scaled up by the text matrix, which the font size does not show. Pages 1-3 are tried
in turn (a magazine reprint starts with a subscription notice, a book with a half-title).
"""

from __future__ import annotations

import ctypes
import dataclasses
import re
import statistics

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from agentic_pipeline.ingest import metadata

#: a title longer than this is a paragraph, not a title
TITLE_MAX_WORDS = 16
SUBTITLE_MAX_WORDS = 6
#: the title's type must be at least this much larger than the body text
TITLE_OVER_BODY = 1.15
#: a subtitle's type must be at least this much larger than the body text
SUBTITLE_OVER_BODY = 1.1
PAGES_TRIED = 3
_ISSUE = re.compile(r"^(?:Issue|No\.?|Number|Vol\.?|Volume|Heft|Ausgabe|Numéro)\s*\d+", re.I)
_NOT_NAME = re.compile(r"\d|@|https?:|www\.|copyright|©|version|edition|university|press|manual|introduction|"
                       r"contents|abstract|chapter|published|department|institute|index|reference|guide|handbook|handbuch|notes|"
                       r"news|tutorial|learning|report|journal|magazine|proceedings|series|programming|language", re.I)
_NAME_TOKEN = re.compile(r"^(?:[A-ZÀ-ÖØ-Þ]\.?|[A-ZÀ-ÖØ-Þ][\w'’.-]+|von|van|de|der|den|da|di|du|le|la|the|and|und|et)$")


_ARTICLE = re.compile(r"^(?:the|das|die|der|le|la|les|el|il)\s", re.I)
_GROUP = re.compile(r"team|project|group|gruppe|projekt|developers|entwickler|community|foundation|consortium|"
                    r"society|committee|contributors", re.I)


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    size: float
    text: str


def title_page(doc: pdfium.PdfDocument) -> tuple[str | None, tuple[str, ...]]:
    """(title, authors) from the first of pages 1-3 that has a title in large type; (None, ()) if none has."""
    for index in range(min(PAGES_TRIED, len(doc))):
        lines = page_lines(doc, index)
        title, authors = parse(lines)
        if title:
            return title, authors
    return None, ()


def page_lines(doc: pdfium.PdfDocument, index: int, max_chars: int = 4000) -> list[Line]:
    """The page's text lines with their glyph size (the 90th percentile of letter box heights)."""
    try:
        page = doc[index]
        textpage = page.get_textpage()
    except (pdfium.PdfiumError, IndexError):
        return []
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    lines: list[Line] = []
    chars: list[str] = []
    heights: list[float] = []
    try:
        for i in range(min(textpage.count_chars(), max_chars)):
            ch = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i))
            if ch in "\r\n":
                _close(lines, chars, heights)
                chars, heights = [], []
                continue
            chars.append(ch)
            if ch.isalnum() and pdfium_c.FPDFText_GetCharBox(textpage.raw, i, left, right, bottom, top):
                heights.append(top.value - bottom.value)
        _close(lines, chars, heights)
    finally:
        textpage.close()
        page.close()
    return lines


def _close(lines: list[Line], chars: list[str], heights: list[float]) -> None:
    text = " ".join("".join(chars).split())
    if text and heights:
        ordered = sorted(heights)
        lines.append(Line(round(ordered[int(0.9 * (len(ordered) - 1))], 1), text))


def parse(lines: list[Line]) -> tuple[str | None, tuple[str, ...]]:
    """Title and authors of a title page given its lines (pure)."""
    if not lines:
        return None, ()
    body = statistics.median(line.size for line in lines for _ in range(max(1, len(line.text) // 10)))
    if len(lines) < 10:  # a title page with a few lines: its smallest type stands in for the body text
        body = min(body, min(line.size for line in lines))
    head = lines[:15]
    biggest = max(line.size for line in head)
    if biggest < TITLE_OVER_BODY * body:
        return None, ()
    start = next(i for i, line in enumerate(head) if line.size >= 0.9 * biggest)
    end = start
    while end < len(lines) and lines[end].size >= 0.9 * biggest:
        end += 1
    title = " ".join(line.text for line in lines[start:end])
    if len(title.split()) > TITLE_MAX_WORDS or sum(ch.isalpha() for ch in title) < 0.5 * len(title.replace(" ", "")):
        return None, ()
    rest = lines[end:end + 10]
    if len(rest) >= 2 and rest[1].size >= 0.9 * biggest and len(rest[1].text.split()) <= SUBTITLE_MAX_WORDS:
        # "LilyPond / Das Notensatzprogramm / Learning Manual": the title resumes after a tagline in smaller type
        title, rest = f"{title}: {rest[1].text}", rest[2:]
    title, used = _with_subtitle(title, rest, body)
    return metadata.title_or_none(title), _names(rest[used:])


def _with_subtitle(title: str, rest: list[Line], body: float) -> tuple[str, int]:
    """The title with an issue line ("Issue 36, November 2022") or a short subtitle in large type appended."""
    if not rest:
        return title, 0
    first = rest[0]
    if _ISSUE.match(first.text):
        return f"{title}, {first.text}", 1
    short = len(first.text.split()) <= SUBTITLE_MAX_WORDS
    if first.size >= SUBTITLE_OVER_BODY * body and short and not _looks_like_names(first.text):
        joiner = " " if title.rstrip().endswith((":", "-", "–")) else ": "
        return f"{title}{joiner}{first.text}", 1
    return title, 0


def _names(rest: list[Line]) -> tuple[str, ...]:
    """Authors: the first of the following lines that reads as names (a line starting "and" continues it)."""
    for i, line in enumerate(rest[:8]):
        if _looks_like_names(line.text):
            text = line.text
            if i + 1 < len(rest) and re.match(r"^(?:and|und|&)\s", rest[i + 1].text):
                text += " " + rest[i + 1].text
            return metadata.split_authors(text)
    return ()


def _looks_like_names(text: str) -> bool:
    """A line like "W. N. Venables, D. M. Smith" or "The R Core Team": names, no digits or sentences."""
    text = re.sub(r"^(?:by|von|par)\s+", "", text.strip(), flags=re.I)
    if not text or len(text) > 90 or _NOT_NAME.search(text):
        return False
    pieces = [p.strip() for p in re.split(r",|;|\s&\s|\s+and\s+|\s+und\s+", text) if p.strip()]
    for piece in pieces:
        if _ARTICLE.match(piece) and not _GROUP.search(piece):
            return False  # "Das Notensatzprogramm" is a subtitle; "The R Core Team" is a group of authors
        tokens = piece.split()
        if not 2 <= len(tokens) <= 5 or not all(_NAME_TOKEN.match(t) for t in tokens):
            if not (len(tokens) == 1 and "-" in tokens[0] and tokens[0][0].isupper()):  # "LilyPond-Entwicklerteam"
                return False
    return bool(pieces)
