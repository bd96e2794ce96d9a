"""Plain text, Markdown and HTML: cheap readers that split on headings.

Headings: Markdown ``#`` lines, underlined titles (``===``, ``---``, ``***``... as Markdown
setext and reStructuredText/Sphinx text output use), "Chapter N" lines, and HTML h1/h2.
The shallowest heading level that occurs at least twice becomes the chapter level; a lone
top heading is the book's title. Text without headings is cut at paragraph breaks every
~5,000 words.
"""

from __future__ import annotations

import re
from pathlib import Path

from agentic_pipeline import errors
from agentic_pipeline.ingest import metadata, model, text_stats
from agentic_pipeline.ingest.extract import chapters, html, quality
from agentic_pipeline.ingest.extract.limits import Limits

_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_UNDERLINE = re.compile(r"^([=\-*~^+#])\1{2,}\s*$")
_CHAPTER = re.compile(r"^(?:chapter|book|part|kapitel|chapitre|capítulo|глава)\s+(?:[0-9]+|[IVXLCDM]+)\b.{0,80}$", re.I)
_FENCE = re.compile(r"^\s*(```|~~~)")
_H_TAG = re.compile(rb"<h([1-3])\b", re.I)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']([A-Za-z-]+)[\"']", re.I)


def read(path: Path, data: bytes, kind: str, limits: Limits) -> model.ExtractedBook:
    """Read a text-like file already sniffed as "text", "markdown" or "html"."""
    if kind == "html":
        return _read_html(path, html.utf8(data), limits)
    text = chapters.normalize(html.decode(data))
    front: dict[str, str] = {}
    if kind == "markdown":
        front, text = front_matter(text)
    quality.check_garbage(text, path, limits.max_garbage_ratio)
    headings = find_headings(text, markdown=kind == "markdown")
    level = chapters.pick_level(lvl for _, lvl, _ in headings)
    if level is not None:
        cuts = [(off, title) for off, lvl, title in headings if lvl == level]
        parts, method = chapters.split_at(text, cuts), "headings"
    else:
        parts, method = chapters.split_at(text, chapters.size_cuts(text), "Part 1"), "single"
    first_heading = next((t for _, lvl, t in headings if lvl <= (level or 1)), None)
    if first_heading and _CHAPTER.match(first_heading) and headings and headings[0][0] > 0:
        first_heading = None  # "Chapter 1" names a chapter, not the book: the line above it is the better title
    title = front.get("title") or first_heading or chapters.first_line(text)
    authors = tuple(a for a in re.split(r"\s*[;&]\s*|\s+and\s+", front.get("author", "")) if a)
    return _book(path, kind, title, front.get("lang") or front.get("language"), parts, text_stats.count_words(text),
                 method, authors)


_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_FIELD = re.compile(r"^(title|author|authors|lang|language)\s*:\s*(.+?)\s*$", re.I | re.M)


def front_matter(text: str) -> tuple[dict[str, str], str]:
    """Markdown's YAML front matter (``---`` ... ``---`` at the top): its title, author and language, and the
    text without it. Only plain ``key: value`` lines are read (no YAML library: no code runs on a book's say)."""
    match = _FRONT.match(text)
    if not match:
        return {}, text
    fields = {}
    for key, value in _FRONT_FIELD.findall(match.group(1)):
        key = {"authors": "author"}.get(key.lower(), key.lower())
        value = value.strip().strip("'\"").strip("[]").strip()
        fields.setdefault(key, value.replace('", "', "; ").replace("', '", "; "))
    return fields, text[match.end():].lstrip("\n")


def find_headings(text: str, *, markdown: bool = False) -> list[tuple[int, int, str]]:
    """(offset of the heading line, level, title) for every heading in normalized text.

    ``#`` headings and ``` / ~~~ code fences count only in Markdown: in plain text "#" starts
    shell comments and "~~~" underlines titles.
    """
    found: list[tuple[int, int, str]] = []
    styles: dict[str, int] = {}
    offset, prev, prev_offset, fenced = 0, "", 0, False
    for line in text.split("\n"):
        stripped = line.strip()
        if markdown and _FENCE.match(line):
            fenced = not fenced
        elif not fenced and not (markdown and _indented_code(line)):
            heading = _heading(stripped, prev, styles, markdown)
            if heading is not None:
                at = prev_offset if heading[2] else offset
                found.append((at, heading[0], heading[1]))
        prev, prev_offset = stripped, offset
        offset += len(line) + 1
    return _without_running_heads(found)


#: a heading whose exact title comes back this many times is a page's running head, not a chapter
RUNNING_HEAD_REPEATS = 3


def _without_running_heads(found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Drop headings repeated verbatim (text saved from a PDF repeats "Chapter 1: Introduction 3" on every
    page; real chapter titles are each used once). Page numbers at the end are ignored when comparing."""
    def key(title: str) -> str:  # a trailing page number goes, but not the number of a short "Chapter 3"
        title = title.strip().lower()
        bare = re.sub(r"\s+\d+\s*$", "", title)
        return bare if len(bare.split()) >= 3 else title

    seen: dict[str, int] = {}
    for _off, _lvl, title in found:
        seen[key(title)] = seen.get(key(title), 0) + 1
    return [h for h in found if seen[key(h[2])] < RUNNING_HEAD_REPEATS]


def _indented_code(line: str) -> bool:
    """Markdown: a line indented by four spaces (or a tab) is code, and its ``# comment`` no heading."""
    head = line[:len(line) - len(line.lstrip(" \t"))]
    return "\t" in head or len(head) >= 4


def _heading(line: str, prev: str, styles: dict[str, int], markdown: bool) -> tuple[int, str, bool] | None:
    """(level, title, on_previous_line) when ``line`` is, or completes, a heading."""
    if markdown and (atx := _ATX.match(line)):
        return len(atx.group(1)), atx.group(2), False
    if _UNDERLINE.match(line) and prev and not _UNDERLINE.match(prev) and len(prev) <= 120:
        if len(line) >= 0.5 * len(prev):
            level = 10 + styles.setdefault(line[0], len(styles))
            return level, prev, True
    if _CHAPTER.match(line):
        return 10 + styles.setdefault("chapter", len(styles)), line, False
    return None


def _read_html(path: Path, markup: bytes, limits: Limits) -> model.ExtractedBook:
    level = chapters.pick_level(int(m.group(1)) for m in _H_TAG.finditer(markup))
    marked = html.mark_tags(markup, [f"h{level}"]) if level else markup
    try:
        text, heading, words = html.to_text(marked)
    except errors.CorruptFile as exc:
        raise errors.CorruptFile(f"corrupt or unreadable file: {path.name}: {exc}", path=str(path)) from exc
    plain = text.replace(html.MARK, "")
    quality.check_garbage(plain, path, limits.max_garbage_ratio)
    segments = text.split(html.MARK)
    parts = [(chapters.FRONT_TITLE, segments[0])] + [(chapters.first_line(s), s) for s in segments[1:]]
    title_match = _HTML_TITLE.search(markup)
    title = chapters.clean_title(html.to_text(title_match.group(1)).text) if title_match else heading
    lang = _HTML_LANG.search(markup[:4000])
    language = lang.group(1).decode("ascii") if lang else None
    method = "headings" if level else "single"
    return _book(path, "html", title or heading, language, parts, words, method)


def _book(path, fmt, title, language, parts, source_words, method, authors=()) -> model.ExtractedBook:
    built = chapters.build(parts)
    if len(built) <= 1:
        method = "single"
    meta = model.Metadata(title=chapters.clean_title(metadata.title_or_none(title) or title) or path.stem,
                          authors=metadata.split_authors(authors, path=str(path)) if authors else (), language=language,
                          format=fmt, page_count=1)
    return model.ExtractedBook(metadata=meta, chapters=built, source_word_count=source_words, split_method=method)
