"""Pure helpers that turn extracted text and cut points into chapters.

Every format reduces to the same shape: one normalized text plus cut points (offset, title).
Slicing the one text guarantees the chapters hold exactly what the source held, so the
coverage check in validation measures the reader, not the splitter.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from agentic_pipeline.ingest import model, text_stats

#: a part with fewer words than this is folded into its neighbour (title pages, dividers)
MIN_WORDS = 40
FRONT_TITLE = "Front matter"

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff]")
_SPACE_BEFORE_NL = re.compile(r"[ \t]+\n")
_MANY_NL = re.compile(r"\n{3,}")
_WS = re.compile(r"\s+")

Part = tuple[str, str]  # (title, text)


def normalize(text: str) -> str:
    """Unify line ends, drop control characters and PDF soft-hyphen marks, squeeze blank lines.

    Each rewrite is preceded by a substring test: the tests run at memory speed, the rewrites
    (regexes above all) do not, and most pages need few of them.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\ufffe" in text:
        text = text.replace("\ufffe", "")
    if "\u00ad" in text:
        text = text.replace("\u00ad", "")
    text = _CONTROL.sub("", text)
    if " \n" in text or "\t\n" in text:
        text = text.replace(" \n", "\n")  # one trailing space per line is the common case
        if " \n" in text or "\t\n" in text:
            text = _SPACE_BEFORE_NL.sub("\n", text)
    if "\n\n\n" in text:
        text = _MANY_NL.sub("\n\n", text)
    return text.strip()


def clean_title(title: str | None, limit: int = 200) -> str:
    """One-line title: whitespace collapsed, control characters dropped, length bounded."""
    if not title:
        return ""
    return _WS.sub(" ", _CONTROL.sub("", title)).strip()[:limit]


def split_at(text: str, cuts: Iterable[tuple[int, str]], front_title: str = FRONT_TITLE) -> list[Part]:
    """Slice ``text`` at the cut offsets; text before the first cut becomes a front-matter part."""
    return [(title, text[start:end]) for title, start, end in split_spans(len(text), cuts, front_title)]


def split_spans(length: int, cuts: Iterable[tuple[int, str]], front_title: str = FRONT_TITLE) -> list[tuple[str, int, int]]:
    """(title, start, end) of the parts ``split_at`` makes of a text of ``length`` characters."""
    ordered = sorted({off: title for off, title in cuts}.items())
    spans: list[tuple[str, int, int]] = []
    start, title = 0, front_title
    for offset, next_title in ordered:
        offset = max(0, min(offset, length))
        if offset > start or (offset == start and start == 0):
            spans.append((title, start, offset))
            start = offset
        title = next_title
    spans.append((title, start, length))
    return spans


def merge_small(parts: Sequence[Part], min_words: int = MIN_WORDS, words: Sequence[int] | None = None) -> list[Part]:
    """Drop empty parts and fold tiny ones into the next part (the last one into its predecessor).

    A tiny part before a real chapter is usually a cover, title page or part divider: its words
    are kept, the real chapter's title wins. ``words`` are the parts' word counts when the
    caller already has them (counting again is a full pass over the book).
    """
    counts = words if words is not None else [text_stats.count_words(x) for _, x in parts]
    kept = [(t, x.strip(), n) for (t, x), n in zip(parts, counts) if n]
    merged: list[Part] = []
    carry, carry_words = "", 0
    for title, text, n in kept:
        text, n = (f"{carry}\n\n{text}", n + carry_words) if carry else (text, n)
        if n < min_words:
            carry, carry_words = text, n
            continue
        merged.append((title, text))
        carry, carry_words = "", 0
    if carry:
        if merged:
            title, text = merged.pop()
            merged.append((title, f"{text}\n\n{carry}"))
        else:
            merged.append((kept[-1][0] if kept else FRONT_TITLE, carry))
    return merged


def build(
    parts: Sequence[Part],
    min_words: int = MIN_WORDS,
    *,
    line_titles: bool = True,
    words: Sequence[int] | None = None,
) -> tuple[model.Chapter, ...]:
    """Chapters from parts: tiny ones merged, titles cleaned, untitled ones named "Section N".

    With ``line_titles`` an untitled part is first named after its first line, if short.
    ``words``: the parts' word counts, if known (see ``merge_small``).
    """
    chapters = []
    for i, (title, text) in enumerate(merge_small(parts, min_words, words)):
        title = clean_title(title) or (first_line(text) if line_titles else "") or f"Section {i + 1}"
        chapters.append(model.Chapter(index=i, title=title, text=text))
    return tuple(chapters)


def first_line(text: str, limit: int = 120) -> str:
    """The first non-blank line, if short enough to serve as a title."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return clean_title(line) if len(line) <= limit else ""
    return ""


def pick_level(levels: Iterable[int]) -> int | None:
    """The shallowest heading level that occurs at least twice (a lone top entry is the book title)."""
    counts = Counter(levels)
    for level in sorted(counts):
        if counts[level] >= 2:
            return level
    return None


def size_cuts(text: str, target_words: int = 5000, label: str = "Part") -> list[tuple[int, str]]:
    """Cut points at paragraph breaks roughly every ``target_words`` words, for unstructured text."""
    cuts: list[tuple[int, str]] = []
    words = 0
    pos = 0
    for para in re.finditer(r"\n\s*\n", text):
        words += text_stats.count_words(text[pos : para.start()])
        pos = para.end()
        if words >= target_words:
            cuts.append((pos, f"{label} {len(cuts) + 2}"))
            words = 0
    return cuts
