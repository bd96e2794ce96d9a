"""Relevance decisions over search candidates (pure): the no-match floor, front matter, the query's script.

* **Nothing matches**: when full text finds no chunk (all words, then any content word), vector
  hits alone are shown only if the best cosine reaches ``VECTOR_FLOOR``. Static word vectors
  always return *something*: over 11,775 real corpus chunks the best cosine of 16 nonsense or
  absent-name queries ("zzzxqv", "Tweedledum", "foo bar baz"…) was 0.26–0.52, of the 28 gold
  questions 0.23–0.83; the gold questions all share words with their answers, so full text catches
  them, and a floor above every nonsense query measured makes "no passage matches" honest.
* **Front matter**: table-of-contents, index and front-matter chunks (a "Contents" chapter, lines
  of dot leaders and page numbers: "Algebras . . . 47") match many words and used to rank first.
  They are ranked after every other hit (still shown when nothing else matches).
* **Script**: a vector-only hit written in another script than the query (an English question
  and a Chinese manual) is dropped: a mean of static word vectors across scripts is noise.
  Full-text hits hold the query's words, whatever their script.
"""

from __future__ import annotations

import re

#: best vector cosine needed when full text found nothing (calibrated above; docs/embedding.md)
VECTOR_FLOOR = 0.55

_TOC_TITLES = re.compile(
    r"^\s*(table of )?contents?\s*$|^\s*(index|inhalt|inhaltsverzeichnis|sommaire|"
    r"table des mati[eè]res|indice|[íi]ndice|contenido|目次|目录|目錄|copyright|title page|imprint)\s*$",
    re.IGNORECASE)
_LEADER_ENTRY = re.compile(r"(?:\s?\.){3,}\s*\d{1,4}\b|\s{2,}\d{1,4}\s*$", re.MULTILINE)
#: "3.2 Vectors and assignment 8": an optional section number, words without digits, a page number
_LINE_PAGE = re.compile(r"(\d+(\.\d+)*\.?\s+)?[^\W\d][^\d]{2,80}?\s\d{1,4}")
_WORD = re.compile(r"\w+")
_ENDS_IN_NUMBER = re.compile(r"\d\s*$", re.MULTILINE)


def is_front_matter(text: str, chapter_title: str | None) -> bool:
    """A table of contents, an index or front matter: by its chapter title or its shape."""
    if chapter_title and _TOC_TITLES.search(chapter_title.strip()):
        return True
    lines = text.count("\n") + 1
    if text.count(". .") < 4 and len(_ENDS_IN_NUMBER.findall(text)) < max(6, lines // 2):
        return False  # the common case, decided without the slower patterns below
    words = len(_WORD.findall(text))
    if words == 0:
        return False
    leaders = len(_LEADER_ENTRY.findall(text))
    if leaders >= 4 and leaders * 12 >= words:  # an entry with dot leaders every dozen words or less
        return True
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) >= 6:
        paged = sum(1 for ln in lines if _LINE_PAGE.fullmatch(ln.strip()))
        return paged >= 0.5 * len(lines)
    return False


_SCRIPTS = {
    "cjk": re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"),
    "latin": re.compile("[A-Za-z\u00c0-\u024f]"),
    "cyrillic": re.compile("[\u0400-\u052f]"),
    "greek": re.compile("[\u0370-\u03ff]"),
    "arabic": re.compile("[\u0600-\u06ff]"),
    "hebrew": re.compile("[\u0590-\u05ff]"),
}


def script_family(text: str, sample: int = 600) -> str:
    """The dominant writing system of ``text``: latin, cjk, cyrillic, greek, arabic, hebrew or other.

    A CJK character counts three letters: it carries about a word, a Latin letter a fraction of one.
    Only the first ``sample`` characters are read (this runs on every vector-only candidate).
    """
    head = text[:sample]
    counts = {name: len(rx.findall(head)) * (3 if name == "cjk" else 1) for name, rx in _SCRIPTS.items()}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else "other"


def keep_vector_hit(query_script: str, text: str) -> bool:
    """A vector-only hit is kept when its text is in the query's writing system."""
    return query_script == "other" or script_family(text) == query_script


def nothing_matches(full_text_hits: int, best_vector_cosine: float | None) -> bool:
    """True when neither retriever clears its bar: no full-text match and no vector close enough."""
    return full_text_hits == 0 and (best_vector_cosine is None or best_vector_cosine < VECTOR_FLOOR)
