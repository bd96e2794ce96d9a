"""(X)HTML to plain text with selectolax, keeping paragraph breaks and optional cut marks.

Speed matters here (an EPUB is hundreds of documents), so every pass over the markup or the
text is counted. The markup stays UTF-8 bytes, which lexbor parses without a conversion;
block ends and ``<br>`` get a mark in one regex pass each (``<br>``, ``<pre>``, ``<script>``
only when the document has them); lexbor's own walk gives the text; then one regex pass lays
the whitespace out as a browser would (every run becomes " ", "\\n" or "\\n\\n"), which makes
the word count three C-speed operations instead of a split into a list of words.
A cut mark (``MARK``) can be placed before chosen elements, so a caller can split one document
at headings or at the anchors a table of contents points to.

Deeply nested markup is made flat before parsing: an HTML parser's start-tag rules look down the
stack of open elements ("is there a <p> in button scope?"), so 100,000 nested ``<div>``s cost
lexbor quadratic time (70 s for a 3 KB EPUB). ``nesting_depth`` bounds the depth in one C-speed
pass; past ``FLATTEN_DEPTH`` every tag the text does not need is dropped (the block marks
already stand where blocks began and ended, so the text is the same), and markup still nested
past ``MAX_DEPTH`` after that is refused as corrupt.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Iterable
from typing import NamedTuple

from selectolax.lexbor import LexborHTMLParser

from agentic_pipeline import errors
from agentic_pipeline.ingest import text_stats

#: the fence put around the text of a <pre> block (Markdown's), which chunking keeps whole
CODE_FENCE = "```"
#: private-use character placed where a caller wants to cut; survives text extraction
MARK = "\ue000"
_PARA = "\u2029"
_LINE = "\u2028"
# private-use marks put just inside <pre> and just before </pre>: the text between them keeps its layout
_CODE_IN, _CODE_OUT = "\ue001", "\ue002"

# matches only the "<" of a block's start or end tag, so the mark goes in with a plain (fast) replacement:
# start tags too, since HTML lets <p>, <li>, <td>... go unclosed ("<p>one<p>two" is two paragraphs), and
# table cells (a mark before </tr> would be moved out of the table by the parser: cells ran together)
_BLOCK_END = re.compile(
    rb"<(?=/?(?:p|div|h[1-6]|li|dt|dd|td|th|blockquote|pre|section|article|header|footer|aside|table|figure"
    rb"|figcaption|ul|ol|dl|main|nav|hr|address|caption)[\s/>])",
    re.IGNORECASE,
)
_BLOCK_MARK = _PARA.encode() + b"<"
_BR = re.compile(rb"<br\b[^>]*>", re.IGNORECASE)
_PRE_OPEN = re.compile(rb"<pre\b[^>]*>", re.IGNORECASE)
_PRE_CLOSE = re.compile(rb"</pre\s*>", re.IGNORECASE)
# the start tags that need work when present: one pass finds which ones are
_SPECIAL_TAG = re.compile(rb"<(pre|br|script|style|template|noscript|rt|rp|h[1-3])\b", re.IGNORECASE)
# not part of the text: code, styles, and ruby annotations (<rt> readings and <rp> parentheses over
# Japanese or Chinese; kept, they split every annotated word: 障子しょうじ)
_NON_TEXT = frozenset({b"script", b"style", b"template", b"noscript", b"rt", b"rp"})
_HEADINGS = ("h1", "h2", "h3")
_HEADING_TAGS = frozenset(h.encode() for h in _HEADINGS)
# C0 controls and DEL are dropped; \t \n \v \f \r and \x1c-\x1f are whitespace and get laid out
_CONTROL_BYTES = bytes(range(0x00, 0x09)) + b"\x0e\x0f" + bytes(range(0x10, 0x1c)) + b"\x7f"
# UTF-8 lead bytes of CJK ideographs, kana and hangul (U+3000-U+D7FF) and of U+E000-U+FFFF (private
# use, where ``MARK`` lives): text holding any of them is counted exactly, not by the spacing
_EXACT_LEADS = b"\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xeb\xec\xed\xee\xef"
# everything but those two kinds of byte: deleting it shows, in one pass, whether either occurs
_ORDINARY_BYTES = bytes(b for b in range(256) if b not in _CONTROL_BYTES + _EXACT_LEADS)
# every character str.split() splits on (so a laid-out text counts the same as str.split() does),
# spelled out: a class of plain characters lets the regex engine skip ahead, "\s" does not
_SPACE_CHARS = "\t\n\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# a whitespace run that starts with anything but a plain space; a run may not *start* at a space
# because spaces are a sixth of all text and each would begin a failed match (3x slower)
_RUN = re.compile(f"[{_SPACE_CHARS}][ {_SPACE_CHARS}]*")
_WS = re.compile(r"\s+")
_MANY_LINES = re.compile(r"\n{3,}")
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']""")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._-]+)""", re.IGNORECASE)
#: past this estimated nesting depth the markup is flattened before parsing (real books stay under ~60)
FLATTEN_DEPTH = 512
#: markup still nested deeper than this once flattened is refused as corrupt
MAX_DEPTH = 2_000
# every start or end tag: group 1 is "/" for an end tag, group 2 the name, group 3 "/" when self-closed
_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9:-]*)(?:\s[^>]*?)?(/?)>")
_VOID = b"area base br col embed hr img input link meta param source track wbr basefont bgsound frame keygen".split()
# "/" for each end tag, "" for each start tag of an element that can hold others (so: not a void one)
_NESTING_TAG = re.compile(rb"<(/?)(?!(?:%s)[\s/>])[A-Za-z]" % b"|".join(_VOID), re.IGNORECASE)
_STEP = {b"": 1, b"/": -1}
# the tags a flattened document keeps: its frame, the headings ``_first_heading`` reads, and the
# elements whose content is not text or is not markup (dropping those tags would let it through)
_KEEP = frozenset(
    b"html head body h1 h2 h3 script style template noscript rt rp title textarea xmp iframe noembed"
    b" noframes plaintext".split()
)
#: a UTF-8 file with at most one undecodable byte per this many characters is read as UTF-8
STRAY_BYTES_PER = 10_000


class Text(NamedTuple):
    """A document's text, the text of its first h1/h2/h3 (or ""), and its word count."""

    text: str
    heading: str
    words: int


def decode(data: bytes) -> str:
    """Bytes of a document to str, whatever encoding it came in.

    In order: a byte-order mark; UTF-8; UTF-8 with a few stray bytes (at most one in
    ``STRAY_BYTES_PER`` characters, each shown as U+FFFD: one bad byte must not turn a whole UTF-8
    book into cp1252 mojibake); the encoding the document declares (XML declaration, ``<meta
    charset>``); charset-normalizer's guess (cp1251, Shift-JIS, Latin-1 files...); cp1252.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8-sig", errors="replace")
    if lenient.count("\ufffd") <= max(1, len(lenient) // STRAY_BYTES_PER):
        return lenient
    declared = _XML_ENCODING.match(data[:200]) or _META_CHARSET.search(data[:4096])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    guessed = _guess(data)
    if guessed is not None:
        return guessed
    return data.decode("cp1252", errors="replace")


def _guess(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes  # lazy: charset detection is slow to import; only for HTML that declares no encoding
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    best = from_bytes(data[:1_000_000]).best()
    if best is None or best.encoding in (None, "ascii"):
        return None
    try:
        return data.decode(best.encoding, errors="replace")
    except LookupError:
        return None


def utf8(data: bytes | str) -> bytes:
    """Markup as UTF-8 bytes, what lexbor parses: valid UTF-8 passes through untouched."""
    if isinstance(data, str):
        return data.encode("utf-8", errors="replace")
    if data.isascii():
        return data
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return decode(data).encode("utf-8")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return decode(data).encode("utf-8")
    return data


def mark_ids(markup: bytes, ids: Iterable[str]) -> tuple[bytes, list[str]]:
    """Put ``MARK`` before the start tag of each element whose id is in ``ids``.

    Returns the marked markup and the ids in the order their marks appear in it.
    """
    wanted = sorted({i.encode("utf-8") for i in ids if i}, key=len, reverse=True)
    if not wanted:
        return markup, []
    pattern = re.compile(rb"""\sid\s*=\s*["'](%s)["']""" % b"|".join(re.escape(i) for i in wanted))
    pieces, order, last = [], [], 0
    mark = MARK.encode("utf-8")
    for match in pattern.finditer(markup):
        found = match.group(1).decode("utf-8")
        tag_start = markup.rfind(b"<", last, match.start())
        if tag_start < 0 or found in order:
            continue
        pieces.append(markup[last:tag_start] + mark)
        order.append(found)
        last = tag_start
    pieces.append(markup[last:])
    return b"".join(pieces), order


def mark_tags(markup: bytes, tags: Iterable[str]) -> bytes:
    """Put ``MARK`` before every start tag named in ``tags`` (e.g. ``("h1",)``)."""
    names = b"|".join(re.escape(t.encode("ascii")) for t in tags)
    return re.sub(rb"(?=<(?:%s)\b)" % names, MARK.encode("utf-8"), markup, flags=re.IGNORECASE)


def to_text(markup: bytes | str, *, heading: bool = True) -> Text:
    """The body's text with paragraph breaks, its first heading (if asked for), and its word count.

    The markup may carry ``MARK`` cut marks (``mark_ids``, ``mark_tags``); they stay in the text.
    """
    data = utf8(markup)
    unusual = data.translate(None, _ORDINARY_BYTES)
    if unusual and unusual.translate(None, _EXACT_LEADS):
        data = data.translate(None, _CONTROL_BYTES)
    present = {tag.lower() for tag in _SPECIAL_TAG.findall(data)}
    if b"pre" in present:
        data = _PRE_OPEN.sub(rb"\g<0>" + _CODE_IN.encode(), data)
        data = _PRE_CLOSE.sub(_CODE_OUT.encode() + rb"\g<0>", data)
    if b"br" in present:
        data = _BR.sub(_LINE.encode(), data)
    data = _BLOCK_END.sub(_BLOCK_MARK, data)
    if nesting_depth(data) > FLATTEN_DEPTH:
        data = flatten(data)
    tree = LexborHTMLParser(data)
    if not present.isdisjoint(_NON_TEXT):
        tree.strip_tags([tag.decode() for tag in _NON_TEXT])
    root = tree.body
    if root is None:
        tree.strip_tags(["head"])
        root = tree.root
    if root is None:
        return Text("", "", 0)
    title = _first_heading(tree) if heading and not present.isdisjoint(_HEADING_TAGS) else ""
    raw = root.text(deep=True, separator="", strip=False)
    text, words = _layout_with_code(raw) if b"pre" in present else _layout(raw)
    exact = unusual.translate(None, _CONTROL_BYTES)
    if "\u00ad" in text:  # soft hyphens (&shy;) only hint where a word may break
        text = text.replace("\u00ad", "")
    if exact:  # the cheap count assumes space-separated words, which cut marks and CJK are not
        words = text_stats.count_words(text.replace(MARK, ""))
    return Text(text, title, words)


def nesting_depth(markup: bytes) -> int:
    """An upper bound on how deep ``markup`` nests its elements, in C-speed passes over its tags.

    Each start tag of a non-void element counts +1 (self-closed ones too: an HTML parser opens
    ``<div/>``), each end tag -1, never below zero. Unclosed ``<p>``/``<li>`` make it an
    overestimate, never an underestimate: it decides only whether to flatten, which keeps the text.
    """
    tags = _NESTING_TAG.findall(markup)
    if len(tags) <= FLATTEN_DEPTH:
        return len(tags)
    level = list(itertools.accumulate(map(_STEP.__getitem__, tags)))
    floor = itertools.accumulate(itertools.chain((0,), level), min)  # the lowest level reached so far
    return max(map(operator.sub, level, floor), default=0)


def flatten(markup: bytes) -> bytes:
    """``markup`` with every tag dropped but the ``_KEEP`` ones; refused if it still nests past ``MAX_DEPTH``.

    The refusal (``CorruptFile``) says only what is wrong with the markup: the caller names the file.
    Called after the block marks are in, so paragraph breaks survive the tags that made them.
    """
    flat = _TAG.sub(lambda m: m.group() if m.group(2).lower() in _KEEP else b"", markup)
    depth = nesting_depth(flat)
    if depth > MAX_DEPTH:
        raise errors.CorruptFile(f"its markup nests {depth:,} elements deep (at most {MAX_DEPTH:,} are read)")
    return flat


def _first_heading(tree: LexborHTMLParser) -> str:
    heading = next((h for h in map(tree.css_first, _HEADINGS) if h is not None), None)
    return _WS.sub(" ", heading.text(deep=True)).strip() if heading is not None else ""


def _layout_with_code(raw: str) -> tuple[str, int]:
    """``_layout`` for the prose; the text of each ``<pre>`` kept as written, set off by blank lines.

    ``raw`` carries ``_CODE_IN``/``_CODE_OUT`` around each ``<pre>``'s text (``to_text``): a few
    string operations per block instead of one per text run inside it (highlighted code has a
    tag around every token). Line ends in code become "\\n"; blank lines at its ends go; more
    than one blank line in a row becomes one, as in the prose; the block is fenced with ``CODE_FENCE``.
    The word count adds the prose's and each block's whitespace-separated words (fences included).
    """
    prose, *blocks = raw.split(_CODE_IN)
    text, words = _layout(prose)
    parts = [text]
    for block in blocks:
        code, closed, after = block.partition(_CODE_OUT)
        code = code.replace("\r\n", "\n").replace("\r", "\n").replace(_LINE, "\n").replace(_PARA, "\n")
        code = _MANY_LINES.sub("\n\n", code.strip("\n").rstrip())
        if code:  # fenced as in Markdown, so chunking keeps the block whole (and readers see where code is)
            code = f"{CODE_FENCE}\n{code}\n{CODE_FENCE}"
        parts.append(code)
        words += len(code.split())
        if closed:
            text, count = _layout(after.replace(_CODE_OUT, ""))
            parts.append(text)
            words += count
    return "\n\n".join(p for p in parts if p), words


class _Runs:
    """The replacement for one whitespace run, counting the runs that became line breaks."""

    __slots__ = ("breaks",)

    def __init__(self) -> None:
        self.breaks = 0

    def __call__(self, match: re.Match[str]) -> str:
        run = match.group()
        if _PARA in run:
            self.breaks += 1
            return "\n\n"
        if _LINE in run:
            self.breaks += 1
            return "\n\n" if run.count(_LINE) > 1 else "\n"  # <br><br> leaves a blank line
        return " "


def _layout(raw: str) -> tuple[str, int]:
    """Collapse whitespace like a browser, block marks becoming line breaks; also count the words.

    Afterwards every whitespace run is exactly " ", "\\n" or "\\n\\n", so the words are the
    spaces plus the line-break runs plus one. Runs are replaced from their first character
    that is not a plain space; the spaces left before them are squeezed out with ``str.replace``.
    """
    runs = _Runs()
    text = _RUN.sub(runs, raw)
    while "  " in text:
        text = text.replace("  ", " ")
    if " \n" in text:
        text = text.replace(" \n", "\n")
    breaks = runs.breaks - text.startswith("\n") - text.endswith("\n")
    text = text.strip()
    return text, (text.count(" ") + breaks + 1 if text else 0)
