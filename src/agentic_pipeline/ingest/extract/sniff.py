"""Decide a file's format from its first bytes (and, only for text, its suffix).

Pure and cheap: the caller reads ``HEAD_BYTES`` and passes them in. Content wins over the
name when the content is a real book format: a PDF named ``.epub`` is a PDF, an EPUB named
``.txt`` is an EPUB. The reverse is refused (``mislabeled``): a text file named ``.pdf`` is
almost always a mistake (a download that saved an error page, a renamed file), so reading it
as text would hide the problem behind a "successful" book.
"""

from __future__ import annotations

SUPPORTED_SUFFIXES = frozenset({".epub", ".pdf", ".txt", ".text", ".md", ".markdown", ".html", ".htm", ".xhtml"})
HEAD_BYTES = 8192

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})

# Binary formats people drop into book folders, named so the error says what the file is.
_KNOWN_BINARY = (
    (0, b"\x1f\x8b", "gzip archive"),
    (0, b"Rar!", "RAR archive"),
    (0, b"7z\xbc\xaf", "7-Zip archive"),
    (0, b"AT&TFORM", "DjVu document"),
    (0, b"{\\rtf", "RTF document"),
    (0, b"\xd0\xcf\x11\xe0", "MS Office (OLE) document"),
    (60, b"BOOKMOBI", "MOBI/AZW e-book"),
    (0, b"\x89PNG", "PNG image"),
    (0, b"\xff\xd8\xff", "JPEG image"),
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")

# suffixes that promise a binary book format: (what the name claims, the evidence that is missing)
_CLAIMED = {".pdf": ("a PDF", "no %PDF header"), ".epub": ("an EPUB", "not a zip archive")}
_TEXT_KINDS = {
    "text": ("plain text", ".txt", "text"),
    "markdown": ("plain text", ".txt", "text"),
    "html": ("an HTML document", ".html", "HTML"),
}


def sniff(head: bytes, suffix: str = "") -> str:
    """Return "pdf", "zip", "html", "markdown", "text", or "binary:<what>" for unreadable kinds.

    "zip" means "try it as an EPUB": whether it holds an OPF package is decided by the EPUB
    reader, which has to open the archive anyway. ``head`` empty means an empty file: "empty".
    """
    suffix = suffix.lower()
    if not head:
        return "empty"
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    for offset, magic, what in _KNOWN_BINARY:
        if head[offset : offset + len(magic)] == magic:
            return f"binary:{what}"
    if not _looks_textual(head):
        return "binary:unknown binary data"
    return _text_kind(head, suffix)


def _looks_textual(head: bytes) -> bool:
    """Text has (almost) no NUL or C0 control bytes, unless it is UTF-16 with a BOM."""
    if head.startswith(_BOMS[1:]):
        return True
    sample = head[:4096]
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return b"\x00" not in sample and controls <= len(sample) // 100


def _text_kind(head: bytes, suffix: str) -> str:
    start = head[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")) or (start.startswith(b"<?xml") and b"<html" in start):
        return "html"
    if suffix in HTML_SUFFIXES and start.startswith(b"<"):
        return "html"
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    return "text"


def mislabeled(kind: str, name: str) -> str | None:
    """Why a file whose suffix claims a book format but whose content ``kind`` is text cannot be read.

    ``None`` when the name and the content agree (or the content is itself a book format).
    The message names the file, the missing evidence and the rename that would make it readable.
    """
    claimed = _CLAIMED.get(name[name.rfind(".") :].lower()) if "." in name else None
    actual = _TEXT_KINDS.get(kind)
    if claimed is None or actual is None:
        return None
    what, evidence = claimed
    is_a, suffix, as_what = actual
    return f"not {what}: {name} is {is_a} ({evidence}); rename it to {suffix} to ingest it as {as_what}"
