"""Find numbered top-level headings in PDF page text, for PDFs without an outline.

A heading is a short line "N Title" or "N. Title" (title starting with a capital, a quote or
a non-Latin letter), and the numbers must run 1, 2, 3... in reading order. Lines repeated on
three or more pages once digits are removed are running headers/footers and never count.
At least ``MIN_HEADINGS`` must be found, or the heuristic gives up.
"""

from __future__ import annotations

import re
from collections import Counter

MIN_HEADINGS = 3
_NUMBERED = re.compile(r"^(\d{1,2})\.?\s+([A-Z\"“'‘\u00c0-\u024f\u0370-\uffff][^\n]{1,78})$")
_LEADER = re.compile(r"(\.\s?){3,}|\s\d+$")  # table-of-contents lines: "Intro ..... 3"


def numbered_headings(pages: list[str]) -> list[tuple[int, int, str]]:
    """(page index, offset in page, title) of sequential numbered headings, or []."""
    running = _running_lines(pages)
    found: list[tuple[int, int, str]] = []
    expected = 1
    for page_index, page in enumerate(pages):
        offset = 0
        for line in page.split("\n"):
            stripped = line.strip()
            match = _NUMBERED.match(stripped)
            if match and int(match.group(1)) == expected and _plausible(stripped, running):
                found.append((page_index, offset, stripped))
                expected += 1
            offset += len(line) + 1
    return found if len(found) >= MIN_HEADINGS else []


def _plausible(line: str, running: set[str]) -> bool:
    return not _LEADER.search(line) and _shape(line) not in running


def _running_lines(pages: list[str]) -> set[str]:
    counts: Counter[str] = Counter()
    for page in pages:
        counts.update({_shape(line) for line in page.split("\n") if line.strip()})
    return {shape for shape, n in counts.items() if n >= 3}


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip().lower())
