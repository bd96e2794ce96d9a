"""Titles, authors and ISBNs people recognise (pure functions over strings; no I/O).

Why: a PDF's Info fields and first page are written by tools, not people. TeX drops the raised
"A" of the LaTeX logo into a separate glyph run ("LTEX3 News"), small caps come out as glyph
names, ligatures as presentation forms; the Author field holds placeholders ("[FAMILY Given]")
or nothing; the Title field holds the file name ("fsm-lyx") or "Microsoft Word - x.doc". These
functions repair what can be repaired and refuse what is not a title or a name, so the caller
falls through to its next source (XMP, Info, the first page, and only then the file name).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePath
from typing import Iterable

# ----------------------------------------------------------------------- titles
_GLYPH_NAME = re.compile(r"/([A-Za-z])\.(?:sc|alt|swash|osf)\b")
_TEX_LOGOS = [
    # LaTeX: the raised small "A" and lowered "E" are often lost or split: LTEX, LATEX, L A TEX, LaTEX
    (re.compile(r"\bL\s?A?\s?T\s?E?\s?X(?=\s?(?:2e|2ε|2|3|\b))"), "LaTeX"),
    (re.compile(r"\bL\s?a\s?T\s?e?\s?X\b"), "LaTeX"),
    (re.compile(r"\bBIB\s?TE?X\b", re.I), "BibTeX"),
    (re.compile(r"\bX\s?E\s?T\s?E?\s?X\b"), "XeTeX"),
    (re.compile(r"\bLUA\s?(?:LA)?TE?X\b"), "LuaTeX"),
    (re.compile(r"(?<![A-Za-z])T\s?E\s?X(?=book|[^A-Za-z]|$)"), "TeX"),
]
_LATEX2E = re.compile(r"LaTeX\s?2\s?(?:e|ε|ϵ)\b")
_PLACEHOLDER_TITLES = re.compile(
    r"^(?:untitled|title|no title|document\d*|microsoft word|unknown|none|null|\[.*\]|<.*>)$", re.I)
_FILE_LIKE = re.compile(r"^[\w.\-]+\.(?:tex|dvi|pdf|docx?|odt|rtf|txt|ps|eps|indd|qxd|html?|md)$", re.I)
_WORD_PREFIX = re.compile(r"^Microsoft (?:Word|PowerPoint) - ", re.I)


def repair(text: str) -> str:
    """Ligatures unfolded (NFKC), glyph names and TeX logos repaired, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _GLYPH_NAME.sub(lambda m: m.group(1).upper(), text)
    text = text.replace("\u00ad", "")
    for pattern, logo in _TEX_LOGOS:
        text = pattern.sub(logo, text)
    text = _LATEX2E.sub("LaTeX2e", text)
    return " ".join(text.split())


def title_or_none(raw: str | None, path: str | None = None) -> str | None:
    """``raw`` as a repaired title, or None when it is no title (empty, a placeholder, a file name)."""
    if not raw:
        return None
    title = repair(raw)
    if _WORD_PREFIX.match(title):  # "Microsoft Word - Thesis Draft.doc": the document's name is the title
        title = re.sub(r"\.(?:docx?|odt|rtf|pptx?)$", "", _WORD_PREFIX.sub("", title), flags=re.I)
    title = title.strip(" -_:;,.")
    if not title or _PLACEHOLDER_TITLES.match(title) or _FILE_LIKE.match(title):
        return None
    if path is not None and _same_as_stem(title, path):
        return None
    if sum(ch.isalpha() for ch in title) < 2:
        return None
    return title[:300]


def _same_as_stem(title: str, path: str) -> bool:
    stem = PurePath(path).stem
    fold = lambda s: re.sub(r"[\W_]+", "", s).casefold()  # noqa: E731
    return fold(title) == fold(stem) and (" " not in title or re.search(r"[-_]", stem) is not None)


def title_from_stem(path: str) -> str:
    """A readable title from a file name when nothing better exists: separators become spaces."""
    stem = PurePath(path).stem
    words = re.sub(r"[_]+|(?<=[a-z])-(?=[a-z])", " ", stem)
    return " ".join(words.split()) or stem


# ----------------------------------------------------------------------- authors
_PLACEHOLDER_NAME = re.compile(
    r"^(?:\[.*\]|<.*>|\{.*\}|unknown|anonymous|author|authors?\s*name|administrator|admin|user|owner|"
    r"family given|given family|surname|firstname lastname|your name|none|null|n/?a|-+|\?+)$", re.I)
_EMAIL = re.compile(r"\s*[<(]?[\w.+-]+@[\w-]+(?:\.[\w-]+)+[>)]?\s*")
_ROLE = re.compile(r"\s*\((?:eds?|editors?|hrsg|trans(?:l(?:ator)?)?|ed\.)\.?\)\s*$", re.I)


def split_authors(raw: str | Iterable[str] | None, *, path: str | None = None) -> tuple[str, ...]:
    """The names in an author field: split on ``;``, ``&``, "and" and commas between whole names;
    "Surname, Given" turned around; emails, roles and placeholders dropped; no duplicates.
    """
    if raw is None:
        return ()
    fields = [raw] if isinstance(raw, str) else list(raw)
    names: list[str] = []
    for field in fields:
        for name in _split_field(repair(field)):
            clean = _clean_name(name, path)
            if clean and clean.casefold() not in {n.casefold() for n in names}:
                names.append(clean)
    return tuple(names)


def _split_field(field: str) -> list[str]:
    field = _EMAIL.sub(" ", field).strip()
    field = re.sub(r"^(?:by|von|par|door)\s+", "", field, flags=re.I)
    parts = [p.strip() for p in re.split(r";|\s&\s|\s+and\s+|\s+und\s+|\s+et\s+(?!al)", field) if p.strip()]
    out: list[str] = []
    for part in parts:
        pieces = [p.strip() for p in part.split(",") if p.strip()]
        if len(pieces) == 2 and " " not in pieces[0] and len(pieces[1].split()) <= 3 and not _is_suffix(pieces[1]):
            out.append(f"{pieces[1]} {pieces[0]}")  # "Melville, Herman"
        elif len(pieces) > 1 and all(" " in p or p.lower().startswith("et al") for p in pieces):
            out += [p for p in pieces if not p.lower().startswith("et al")]
        else:
            out.append(part)
    return out


def _is_suffix(piece: str) -> bool:
    return piece.lower().rstrip(".") in {"jr", "sr", "ii", "iii", "iv", "phd", "md"}


def _clean_name(name: str, path: str | None) -> str | None:
    name = _ROLE.sub("", name).strip(" ,;:.-_")
    name = re.sub(r"\s+et\s+al\.?$", "", name, flags=re.I).strip()
    if not name or _PLACEHOLDER_NAME.match(name) or _FILE_LIKE.match(name):
        return None
    if path is not None and _same_as_stem(name, path):
        return None
    if sum(ch.isalpha() for ch in name) < 2 or len(name) > 120 or re.search(r"\d{3,}", name):
        return None
    return name


# ----------------------------------------------------------------------- ISBN
_ISBN = re.compile(r"(?:ISBN(?:-1[03])?:?\s*|urn:isbn:|isbn:)?((?:97[89][\s-]?)?(?:\d[\s-]?){9}[\dXx])\b", re.I)


def isbn_checksum_ok(digits: str) -> bool:
    """True for a valid ISBN-10 or ISBN-13 (digits only, X allowed last in ISBN-10)."""
    if len(digits) == 10 and re.fullmatch(r"\d{9}[\dX]", digits):
        total = sum((10 - i) * (10 if ch == "X" else int(ch)) for i, ch in enumerate(digits))
        return total % 11 == 0
    if len(digits) == 13 and digits.isdigit() and digits[:3] in ("978", "979"):
        total = sum((1 if i % 2 == 0 else 3) * int(ch) for i, ch in enumerate(digits))
        return total % 10 == 0
    return False


def to_isbn13(digits: str) -> str:
    if len(digits) == 13:
        return digits
    core = "978" + digits[:9]
    check = (10 - sum((1 if i % 2 == 0 else 3) * int(ch) for i, ch in enumerate(core)) % 10) % 10
    return core + str(check)


def find_isbn(texts: Iterable[str], *, labelled_only: bool = False) -> str | None:
    """The first checksum-valid ISBN in ``texts`` as ISBN-13; ``labelled_only``: only after "ISBN"."""
    for text in texts:
        for match in _ISBN.finditer(text or ""):
            if labelled_only and not re.match(r"ISBN|urn:isbn|isbn", match.group(0), re.I):
                continue
            digits = re.sub(r"[\s-]", "", match.group(1)).upper()
            if isbn_checksum_ok(digits):
                return to_isbn13(digits)
    return None


_COPYRIGHT = re.compile(r"copyright|©|\(c\)\s*\d{4}|all rights reserved|published|publisher|printed in|"
                        r"library of congress|cataloging|first edition|isbn", re.I)
#: a page citing more ISBNs than this is a bibliography or an advertisement, not a copyright page
MAX_ISBNS_ON_PAGE = 2


def find_isbn_on_copyright_page(pages: Iterable[str]) -> str | None:
    """The book's own ISBN: on a page that reads like a title or copyright page (a copyright notice, a
    publisher line) and cites at most ``MAX_ISBNS_ON_PAGE`` ISBNs; a newsletter citing books has none."""
    for page in pages:
        found = [m for m in re.finditer(r"ISBN(?:-1[03])?:?\s*[0-9][0-9Xx\s-]{8,20}", page or "", re.I)]
        if not found or len(found) > MAX_ISBNS_ON_PAGE:
            continue
        notice = _COPYRIGHT.findall(page)
        if not any(n.lower() != "isbn" for n in notice):
            continue
        isbn = find_isbn([m.group(0) for m in found], labelled_only=True)
        if isbn:
            return isbn
    return None
