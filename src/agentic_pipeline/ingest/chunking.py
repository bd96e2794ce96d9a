"""Split chapters into token-bounded, overlapping chunks for embedding and search (pure).

Why this shape:

* **Chapter-aware.** A chunk never spans two chapters, so every search hit names one chapter.
* **Bounded by the model's own tokenizer.** ``count_tokens`` is the embedder's (``Embedder.count_tokens``);
  a limit in words would be meaningless for Japanese text or for code, which the Llama tokenizer
  splits into many more pieces than words. The final text of every chunk is counted exactly,
  so ``token_count <= max_tokens`` holds for every chunk except documented oversize blocks.
* **Natural boundaries.** Text is cut into sentences (also ``。！？``), packed greedily, and the
  cut falls before a paragraph when that still leaves the chunk at least half full; otherwise at
  a sentence end; a sentence longer than the limit is cut at whitespace, then at characters.
* **Code and tables whole.** For technical books (the caller decides, via the strategy), fenced or
  indented code, paragraphs of code-like lines and tables are atomic: never split between chunks.
  A block longer than ``max_tokens`` becomes one oversize chunk (``oversize=True``) as long as it fits
  ``hard_cap_tokens``; beyond that it is cut at line ends and each piece carries a ``note``.
* **Overlap.** Each chunk repeats up to ``overlap_tokens`` of whole trailing sentences of the
  previous one, so a passage cut at a boundary is still found whole in one of them.
* **Exact slices.** ``text == chapter.text[start:end]``; nothing is rewritten, so offsets can be
  used to highlight hits and the property tests can prove that the chunks cover every character.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Sequence

from agentic_pipeline.errors import ConfigError
from agentic_pipeline.ingest.model import Chapter

CountTokens = Callable[[str], int]


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """A contiguous slice of one chapter's text, sized for the embedding model."""

    chapter_index: int
    #: 0-based position of the chunk within its chapter
    position: int
    #: 0-based position of the chunk within the whole book
    ordinal: int
    text: str
    token_count: int
    #: character offsets into ``Chapter.text``: ``text == chapter.text[start:end]``
    start: int = 0
    end: int = 0
    #: a code block or table longer than max_tokens kept whole (up to hard_cap_tokens)
    oversize: bool = False
    #: why the chunk is unusual, e.g. a code block too long to keep whole was cut at line ends
    note: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class _Unit:
    """An indivisible span: a sentence, a piece of one, or a whole code block or table."""

    start: int
    end: int
    tokens: int
    #: begins a paragraph or block: the preferred place to cut before it
    para_start: bool
    atomic: bool = False
    note: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class _Block:
    start: int
    end: int
    kind: str  # "prose", "code" or "table"


# --------------------------------------------------------------------------- public


def chunk_chapters(
    chapters: Sequence[Chapter],
    *,
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: CountTokens,
    keep_code_whole: bool = False,
    keep_tables_whole: bool = False,
    hard_cap_tokens: int | None = None,
) -> list[Chunk]:
    """Chunk every chapter in order; ``ordinal`` numbers the chunks across the whole book.

    ``hard_cap_tokens`` (default ``2 * max_tokens``) is the largest code block or table kept whole.
    """
    hard_cap = _check_limits(max_tokens, overlap_tokens, hard_cap_tokens)
    chunks: list[Chunk] = []
    for chapter in chapters:
        for position, (start, end, oversize, note) in enumerate(
            _chapter_spans(chapter.text, max_tokens, overlap_tokens, hard_cap, count_tokens,
                           keep_code_whole, keep_tables_whole)
        ):
            text = chapter.text[start:end]
            chunks.append(Chunk(chapter.index, position, len(chunks), text, count_tokens(text),
                                start, end, oversize, note))
    return chunks


def _check_limits(max_tokens: int, overlap_tokens: int, hard_cap_tokens: int | None) -> int:
    if max_tokens < 8:
        raise ConfigError(f"chunk max_tokens must be at least 8, got {max_tokens}")
    if not 0 <= overlap_tokens <= max_tokens // 2:
        raise ConfigError(f"chunk overlap_tokens must be between 0 and max_tokens/2 ({max_tokens // 2}), "
                          f"got {overlap_tokens}")
    hard_cap = 2 * max_tokens if hard_cap_tokens is None else hard_cap_tokens
    if hard_cap < max_tokens:
        raise ConfigError(f"chunk hard_cap_tokens ({hard_cap}) must be at least max_tokens ({max_tokens})")
    return hard_cap


# --------------------------------------------------------------------------- blocks


_FENCE = re.compile(r"^\s*(```|~~~)")
_INDENTED = re.compile(r"^(?: {4}|\t)\S")
_CODE_PUNCT = set("{}[]();=<>#$%&*+/\\|_:^~`@")
_CODE_LINE = re.compile(
    r"""^\s*(?:[>$%\#]\s|>>>|\.\.\.\s|\+\s)             # REPL / shell prompts, R continuation
        |[{}]\s*$|[(=].*;\s*$                          # block ends, statements
        |^\s*(?:if|for|while|switch)\s*\(              # control flow
        |^\s*(?:def|class)\s+\w+\s*[(:]|\bfunction\s*\(
        |^\s*(?:import\s+[\w.]+\s*$|from\s+[\w.]+\s+import\b|\#include\b|library\()""",
    re.VERBOSE,
)
_TABLE_LINE = re.compile(r"\|.*\||\t|\S {3,}\S.* {3,}\S")
_OPERATOR = re.compile(r"<-|->|==|!=|:=|=>|::|\+\+|&&|\|\||\w\(.*\)")
_PROSE_WORDS = re.compile(r"\b[^\W\d_]{2,}\b")


def _is_code_line(line: str) -> bool:
    """A line that reads as code: a prompt, a statement end, a keyword, or operators in few words."""
    stripped = line.strip()
    if not stripped:
        return False
    if _CODE_LINE.search(line):
        return True
    punct = sum(ch in _CODE_PUNCT for ch in stripped) / len(stripped)
    few_words = len(_PROSE_WORDS.findall(stripped)) < 6
    return punct >= 0.2 or (few_words and punct >= 0.05 and bool(_OPERATOR.search(stripped)))


def _classify(lines: list[str]) -> str:
    """Call a paragraph code or a table when most of its lines look like it."""
    lines = [ln for ln in lines if ln.strip()]
    if all(_INDENTED.match(ln) for ln in lines) and any(_is_code_line(ln) for ln in lines):
        return "code"
    if len(lines) >= 2 and sum(bool(_TABLE_LINE.search(ln)) for ln in lines) >= 0.6 * len(lines):
        return "table"
    if sum(_is_code_line(ln) for ln in lines) >= 0.6 * len(lines):
        return "code"
    return "prose"


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every line, without its newline."""
    pos = 0
    for line in text.splitlines(keepends=True):
        yield pos, pos + len(line.rstrip("\r\n"))
        pos += len(line)


def _blocks(text: str) -> list[_Block]:
    """Paragraphs (separated by blank lines) and fenced blocks, classified; adjacent code merged."""
    raw: list[_Block] = []
    para: list[tuple[int, int]] = []
    fence: list[tuple[int, int]] = []

    def flush() -> None:
        if para:
            kind = _classify([text[s:e] for s, e in para])
            if kind == "prose":  # PDF text has no blank lines: look for runs of code lines inside
                raw.extend(_line_runs(text, para))
            else:
                raw.append(_Block(para[0][0], para[-1][1], kind))
            para.clear()

    for s, e in _lines(text):
        line = text[s:e]
        if fence:
            fence.append((s, e))
            if _FENCE.match(line):
                raw.append(_Block(fence[0][0], e, "code"))
                fence.clear()
        elif _FENCE.match(line):
            flush()
            fence.append((s, e))
        elif line.strip():
            para.append((s, e))
        else:
            flush()
    flush()
    if fence:  # an unclosed fence runs to the end
        raw.append(_Block(fence[0][0], fence[-1][1], "code"))
    return _merge_code(raw, text)


def _line_runs(text: str, lines: list[tuple[int, int]]) -> list[_Block]:
    """Split a paragraph into runs of prose, code and table lines.

    A line that is not code but sits between two code lines, without ending a sentence,
    is taken as code (a wrapped argument list, a bare declaration). Table runs need two lines.
    """
    kinds = ["code" if _is_code_line(text[s:e]) else "table" if _TABLE_LINE.search(text[s:e]) else "prose"
             for s, e in lines]
    for i in range(1, len(kinds) - 1):
        if kinds[i] != "code" and kinds[i - 1] == kinds[i + 1] == "code" and not _ENDS_SENTENCE.search(text[lines[i][0]:lines[i][1]]):
            kinds[i] = "code"
    runs: list[_Block] = []
    for (s, e), kind in zip(lines, kinds):
        if runs and runs[-1].kind == kind:
            runs[-1] = _Block(runs[-1].start, e, kind)
        else:
            runs.append(_Block(s, e, kind))
    runs = [r if r.kind != "table" or "\n" in text[r.start:r.end] else _Block(r.start, r.end, "prose") for r in runs]
    merged: list[_Block] = []
    for run in runs:  # a lone table line turned prose joins its prose neighbours
        if merged and run.kind == "prose" == merged[-1].kind:
            merged[-1] = _Block(merged[-1].start, run.end, "prose")
        else:
            merged.append(run)
    return merged


_ENDS_SENTENCE = re.compile(r"[.!?:。！？]\W*$")


def _merge_code(blocks: list[_Block], text: str) -> list[_Block]:
    merged: list[_Block] = []
    for block in blocks:
        if merged and block.kind == "code" == merged[-1].kind:
            merged[-1] = _Block(merged[-1].start, block.end, "code")
        else:
            merged.append(block)
    return [_strip(b, text) for b in merged if text[b.start:b.end].strip()]


def _strip(block: _Block, text: str) -> _Block:
    """Drop leading/trailing whitespace, but keep the indentation of a code block's first line."""
    start, end = block.start, block.end
    while end > start and text[end - 1].isspace():
        end -= 1
    if block.kind == "prose":
        while start < end and text[start].isspace():
            start += 1
    else:
        while start < end and text[start] in "\r\n":
            start += 1
    return _Block(start, end, block.kind)


# --------------------------------------------------------------------------- units


_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|(?<=[。！？])\s*")


def _units(text: str, blocks: list[_Block], ctx: "_Ctx") -> list[_Unit]:
    units: list[_Unit] = []
    for block in blocks:
        if (block.kind == "code" and ctx.keep_code) or (block.kind == "table" and ctx.keep_tables):
            units.extend(_atomic_units(text, block, ctx))
        else:
            units.extend(_prose_units(text, block.start, block.end, ctx, para_start=True))
    return units


def _atomic_units(text: str, block: _Block, ctx: "_Ctx") -> list[_Unit]:
    tokens = ctx.count(text[block.start:block.end])
    if tokens <= ctx.hard_cap:
        return [_Unit(block.start, block.end, tokens, para_start=True, atomic=True)]
    note = f"{block.kind} block of {tokens} tokens exceeds the hard cap of {ctx.hard_cap}; cut at line ends"
    units: list[_Unit] = []
    for s, e in _lines(text[block.start:block.end]):
        s, e = block.start + s, block.start + e
        if text[s:e].strip():
            units.extend(_fit(text, s, e, ctx, para_start=not units, note=note))
    return units


def _prose_units(text: str, start: int, end: int, ctx: "_Ctx", *, para_start: bool) -> list[_Unit]:
    units: list[_Unit] = []
    pos = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if match.start() > pos and text[pos:match.start()].strip():
            units.extend(_fit(text, pos, match.start(), ctx, para_start=para_start and not units))
        pos = match.end()
    if pos < end and text[pos:end].strip():
        units.extend(_fit(text, pos, end, ctx, para_start=para_start and not units))
    return units


def _fit(text: str, start: int, end: int, ctx: "_Ctx", *, para_start: bool, note: str = "") -> list[_Unit]:
    """One unit for the span, or several if it has more than max_tokens (cut at spaces, else chars)."""
    while text[start].isspace():
        start += 1
    while text[end - 1].isspace():
        end -= 1
    tokens = ctx.count(text[start:end])
    if tokens <= ctx.max_tokens:
        return [_Unit(start, end, tokens, para_start, note=note)]
    cut = _longest_prefix(text, start, end, ctx)
    head = _fit(text, start, cut, ctx, para_start=para_start, note=note)
    return head + _fit(text, cut, end, ctx, para_start=False, note=note)


def _longest_prefix(text: str, start: int, end: int, ctx: "_Ctx") -> int:
    """The furthest cut (at whitespace if the span has any) leaving a prefix within max_tokens."""
    spaces = [m.start() for m in re.finditer(r"\s+", text[start:end])]
    cuts = [start + s for s in spaces if s > 0] or list(range(start + 1, end))
    lo, hi = 0, len(cuts) - 1
    while lo < hi:  # largest index whose prefix fits; index 0 always kept to guarantee progress
        mid = (lo + hi + 1) // 2
        if ctx.count(text[start:cuts[mid]].rstrip()) <= ctx.max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return cuts[lo]


# --------------------------------------------------------------------------- packing


@dataclasses.dataclass
class _Ctx:
    max_tokens: int
    overlap: int
    hard_cap: int
    count_tokens: CountTokens
    keep_code: bool
    keep_tables: bool
    gap_cache: dict[str, int] = dataclasses.field(default_factory=dict)

    def count(self, text: str) -> int:
        return self.count_tokens(text)

    def gap(self, text: str) -> int:
        """Estimated tokens for the whitespace between two units: spaces usually merge into the
        next word's first token (BPE "▁word"); newlines and tabs are tokens of their own."""
        if text not in self.gap_cache:
            self.gap_cache[text] = self.count_tokens(text.replace(" ", ""))
        return self.gap_cache[text]


def _chapter_spans(text, max_tokens, overlap, hard_cap, count_tokens, keep_code, keep_tables):
    """Yield (start, end, oversize, note) for each chunk of one chapter's text."""
    ctx = _Ctx(max_tokens, overlap, hard_cap, count_tokens, keep_code, keep_tables)
    units = _units(text, _blocks(text), ctx)
    i, done = 0, 0
    while done < len(units):
        end = _pack(text, units, i, ctx)
        if end <= done:  # the overlap left no room for new text: start afresh without it
            i = done
            end = _pack(text, units, i, ctx)
        notes = sorted({u.note for u in units[i:end] if u.note})
        oversize = end == i + 1 and units[i].tokens > max_tokens
        yield units[i].start, units[end - 1].end, oversize, "; ".join(notes)
        i, done = _next_start(units, i, end, ctx), end


def _pack(text: str, units: list[_Unit], i: int, ctx: _Ctx) -> int:
    """Index one past the last unit of the chunk starting at unit ``i``."""
    if units[i].tokens > ctx.max_tokens:  # an oversize atomic block stands alone
        return i + 1
    end, estimate = i + 1, units[i].tokens
    while end < len(units) and units[end].tokens <= ctx.max_tokens:
        estimate += ctx.gap(text[units[end - 1].end:units[end].start]) + units[end].tokens
        if estimate > ctx.max_tokens:
            break
        end += 1
    while end > i + 1 and ctx.count(text[units[i].start:units[end - 1].end]) > ctx.max_tokens:
        end -= 1  # the estimate was optimistic: joins can tokenize differently
    if end < len(units):
        end = _prefer_paragraph(units, i, end, ctx)
    return end


def _prefer_paragraph(units: list[_Unit], i: int, end: int, ctx: _Ctx) -> int:
    """Move the cut back to the last paragraph start if the chunk stays at least half full."""
    if units[end].para_start:
        return end
    total = sum(u.tokens for u in units[i:end])
    for k in range(end - 1, i, -1):
        total -= units[k].tokens
        if total < ctx.max_tokens // 2:
            break
        if units[k].para_start:
            return k
    return end


def _next_start(units: list[_Unit], i: int, end: int, ctx: _Ctx) -> int:
    """Step back over whole trailing units worth at most ``overlap`` tokens (always moving forward)."""
    if end == len(units):
        return end
    k, total = end, 0
    room = min(ctx.overlap, ctx.max_tokens - units[end].tokens)
    while k - 1 > i and total + units[k - 1].tokens <= room:
        total += units[k - 1].tokens
        k -= 1
    return k
