"""(X)HTML to plain text with selectolax, keeping paragraph breaks and optional cut marks.

Block boundaries are marked in the markup before parsing (one regex pass, cheaper than walking
the tree), whitespace is then collapsed as a browser would, and ``<pre>`` keeps its lines.
A cut mark (``MARK``) can be placed before chosen elements, so a caller can split one document
at headings or at the anchors a table of contents points to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from selectolax.lexbor import LexborHTMLParser

#: private-use character placed where a caller wants to cut; survives text extraction
MARK = "\ue000"
_PARA = "\u2029"
_LINE = "\u2028"

_BLOCK_END = re.compile(
    r"</(?:p|div|h[1-6]|li|dt|dd|tr|blockquote|pre|section|article|header|footer|aside|table|figure|figcaption|ul|ol|dl)\s*>",
    re.IGNORECASE,
)
_BR = re.compile(r"<br\b[^>]*>", re.IGNORECASE)
_PRE = re.compile(r"<pre\b.*?</pre\s*>", re.IGNORECASE | re.DOTALL)
_NBSP = "\u00a0"
_TEXT_RUN = re.compile(r">[^<]+")
_WS = re.compile(r"[ \t\n\r\f\v]+")
# whitespace runs that are not already a single space: leaving those alone is 3x faster
_WS_TO_COLLAPSE = re.compile(r"[\t\n\r\f\v][ \t\n\r\f\v]*| [ \t\n\r\f\v]+")
_PARAS = re.compile(rf"{_PARA}[{_PARA}{_LINE}]*")
_HEADINGS = ("h1", "h2", "h3")
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']""")


def decode(data: bytes) -> str:
    """Bytes of a markup document to str: BOM, then UTF-8, then the XML declaration, then cp1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    declared = _XML_ENCODING.match(data[:200])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    return data.decode("cp1252", errors="replace")


def mark_ids(markup: str, ids: Iterable[str]) -> tuple[str, list[str]]:
    """Put ``MARK`` before the start tag of each element whose id is in ``ids``.

    Returns the marked markup and the ids in the order their marks appear in it.
    """
    wanted = sorted({i for i in ids if i}, key=len, reverse=True)
    if not wanted:
        return markup, []
    pattern = re.compile(r"""\sid\s*=\s*["'](%s)["']""" % "|".join(re.escape(i) for i in wanted))
    pieces, order, last = [], [], 0
    for match in pattern.finditer(markup):
        tag_start = markup.rfind("<", last, match.start())
        if tag_start < 0 or match.group(1) in order:
            continue
        pieces.append(markup[last:tag_start] + MARK)
        order.append(match.group(1))
        last = tag_start
    pieces.append(markup[last:])
    return "".join(pieces), order


def mark_tags(markup: str, tags: Iterable[str]) -> str:
    """Put ``MARK`` before every start tag named in ``tags`` (e.g. ``("h1",)``)."""
    names = "|".join(re.escape(t) for t in tags)
    return re.sub(rf"(?=<(?:{names})\b)", MARK, markup, flags=re.IGNORECASE)


def to_text(markup: str) -> tuple[str, str]:
    """Return (text of the body, text of its first h1, else h2, else h3, else "")."""
    markup = _PRE.sub(_keep_pre_layout, markup)
    markup = _BR.sub(_LINE, markup)
    markup = _BLOCK_END.sub(r"\g<0>" + _PARA, markup)
    tree = LexborHTMLParser(markup)
    tree.strip_tags(["script", "style", "head", "template", "noscript"])
    root = tree.body or tree.root
    if root is None:
        return "", ""
    heading = next((h for h in map(tree.css_first, _HEADINGS) if h is not None), None)
    title = _WS.sub(" ", heading.text(deep=True)).strip() if heading is not None else ""
    return _layout(root.text(deep=True, separator="", strip=False)), title


def _keep_pre_layout(match: re.Match[str]) -> str:
    """Inside <pre>, protect line breaks and spaces of the text (not of the tags) from collapsing."""
    return _TEXT_RUN.sub(lambda t: t.group(0).replace("\n", _LINE).replace(" ", _NBSP), match.group(0))


def _layout(raw: str) -> str:
    """Collapse whitespace like a browser, then turn the block marks into line breaks."""
    text = _WS_TO_COLLAPSE.sub(" ", raw)
    for mark in (_PARA, _LINE):
        text = text.replace(" " + mark, mark).replace(mark + " ", mark)
    text = _PARAS.sub("\n\n", text)
    return text.replace(_LINE, "\n").replace(_NBSP, " ").strip()
