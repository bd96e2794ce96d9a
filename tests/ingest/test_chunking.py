"""Chunking: properties over generated chapters (hypothesis) and behaviour on code, tables and CJK."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentic_pipeline.errors import ConfigError
from agentic_pipeline.ingest import chunking, embed
from agentic_pipeline.ingest.model import Chapter


@functools.cache
def wordllama() -> embed.WordLlamaEmbedder:
    return embed.WordLlamaEmbedder().load()


def count_real(text: str) -> int:
    return wordllama().count_tokens(text)


# --------------------------------------------------------------------------- generated chapters

WORD = st.sampled_from(
    "the a of state machine driver package vector Romeo Juliet lilacs memory desire x y "
    "installation function(x) c(1,2) {a} 42 3.14 don't e.g. naïve Straße 吾輩 猫 名前".split()
)
SENTENCE = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(WORD, min_size=1, max_size=30),
    st.sampled_from([".", "!", "?", "", "。", ":"]),
)
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=8).map(" ".join)
CODE = st.lists(
    st.sampled_from(["x <- c(1, 2, 3)", "    return f(x);", "if (a == b) {", "}", "> mean(x)", "def g(y):"]),
    min_size=1,
    max_size=25,
).map(lambda lines: "```\n" + "\n".join(lines) + "\n```")
TABLE = st.lists(st.sampled_from(["| a | b |", "| 1 | 2 |", "| long cell text | 3.5 |"]), min_size=2, max_size=6).map(
    "\n".join
)
LONG_RUN = st.integers(min_value=50, max_value=400).map(lambda n: "x" * n)  # no spaces at all
CJK = st.integers(min_value=10, max_value=200).map(lambda n: "吾輩は猫である名前はまだ無い" * (n // 10))
BLOCK = st.one_of(PARAGRAPH, PARAGRAPH, PARAGRAPH, CODE, TABLE, LONG_RUN, CJK, st.sampled_from(["", "   ", "\n"]))
SEPARATOR = st.sampled_from(["\n\n", "\n", " ", "\n\n\n  ", "\t"])
CHAPTER_TEXT = st.builds(
    lambda blocks, sep: sep.join(blocks), st.lists(BLOCK, min_size=0, max_size=12), SEPARATOR
)
LIMITS = st.tuples(st.integers(min_value=8, max_value=120), st.floats(min_value=0, max_value=0.5))


def run(chapters, max_tokens, overlap, keep=True, count=count_real, hard_cap=None):
    return chunking.chunk_chapters(
        chapters,
        max_tokens=max_tokens,
        overlap_tokens=overlap,
        keep_code_whole=keep,
        keep_tables_whole=keep,
        count_tokens=count,
        hard_cap_tokens=hard_cap,
    )


def check_properties(chapters, chunks, max_tokens, hard_cap, count):
    by_index = {c.index: c for c in chapters}
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        source = by_index[chunk.chapter_index].text
        assert chunk.text == source[chunk.start:chunk.end]  # an exact slice of one chapter
        assert chunk.text.strip() and chunk.text == chunk.text.rstrip()
        assert chunk.token_count == count(chunk.text)
        assert chunk.token_count <= (hard_cap if chunk.oversize else max_tokens), chunk
    for chapter in chapters:
        mine = [c for c in chunks if c.chapter_index == chapter.index]
        assert [c.position for c in mine] == list(range(len(mine)))
        for prev, nxt in zip(mine, mine[1:]):
            assert prev.start < nxt.start  # order kept
            assert not chapter.text[prev.end:nxt.start].strip()  # contiguous (up to blanks) or overlapping
            assert nxt.end > prev.end  # every chunk brings new text
        covered = set()
        for c in mine:
            covered.update(range(c.start, c.end))
        missing = [i for i, ch in enumerate(chapter.text) if not ch.isspace() and i not in covered]
        assert not missing, f"uncovered text: {chapter.text[missing[0]:missing[0] + 40]!r}"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(CHAPTER_TEXT, min_size=1, max_size=3), limits=LIMITS, keep=st.booleans())
def test_chunk_properties_with_the_real_tokenizer(texts, limits, keep):
    max_tokens, overlap_share = limits
    overlap = int(max_tokens * overlap_share)
    chapters = [Chapter(index=i, title=f"c{i}", text=t) for i, t in enumerate(texts)]
    chunks = run(chapters, max_tokens, overlap, keep)
    check_properties(chapters, chunks, max_tokens, 2 * max_tokens, count_real)
    assert chunks == run(chapters, max_tokens, overlap, keep)  # deterministic


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(CHAPTER_TEXT, min_size=1, max_size=2), limits=LIMITS)
def test_chunk_properties_with_the_fake_tokenizer(texts, limits):
    fake = embed.HashingEmbedder()
    max_tokens, overlap_share = limits
    chapters = [Chapter(index=i + 3, title="t", text=t) for i, t in enumerate(texts)]
    chunks = run(chapters, max_tokens, int(max_tokens * overlap_share), count=fake.count_tokens)
    check_properties(chapters, chunks, max_tokens, 2 * max_tokens, fake.count_tokens)


# --------------------------------------------------------------------------- behaviour

PROSE = " ".join(f"Sentence number {i} talks about vectors and chapters." for i in range(40))
CODE_BLOCK = "```r\n" + "\n".join(f"x{i} <- c({i}, {i + 1}, {i + 2})" for i in range(12)) + "\n```"


def test_code_block_is_kept_whole_when_asked():
    text = f"{PROSE}\n\n{CODE_BLOCK}\n\n{PROSE}"
    whole = run([Chapter(0, "c", text)], 100, 20, keep=True)
    assert any(c.text == CODE_BLOCK for c in whole) or any(CODE_BLOCK in c.text for c in whole)
    split = run([Chapter(0, "c", text)], 60, 10, keep=False)
    assert not any(CODE_BLOCK in c.text for c in split)


def test_oversize_code_block_within_hard_cap_is_one_flagged_chunk():
    tokens = count_real(CODE_BLOCK)
    chunks = run([Chapter(0, "c", f"Intro.\n\n{CODE_BLOCK}\n\nOutro.")], tokens // 2, 0, hard_cap=tokens)
    oversize = [c for c in chunks if c.oversize]
    assert len(oversize) == 1 and oversize[0].text == CODE_BLOCK
    assert oversize[0].token_count == tokens > tokens // 2


def test_code_block_beyond_the_hard_cap_is_cut_at_line_ends_with_a_note():
    tokens = count_real(CODE_BLOCK)
    chunks = run([Chapter(0, "c", CODE_BLOCK)], tokens // 3, 0, hard_cap=tokens // 2)
    assert len(chunks) >= 3 and not any(c.oversize for c in chunks)
    assert all("hard cap" in c.note for c in chunks)
    assert all(c.text.endswith((")", "```")) for c in chunks)  # whole lines


def test_indented_and_punctuation_heavy_paragraphs_count_as_code():
    blocks = chunking._blocks("Plain prose here.\n\n    x <- mean(y)\n    print(x)\n\nfor (i in 1:10) {\n  s <- s + i;\n}")
    assert [b.kind for b in blocks] == ["prose", "code"]
    assert [b.kind for b in chunking._blocks("| a | b |\n|---|---|\n| 1 | 2 |")] == ["table"]


def test_paragraph_boundary_is_preferred_over_a_sentence_boundary():
    para = " ".join(f"Alpha sentence {i}." for i in range(6))
    text = "\n\n".join([para, para, para])
    chunks = run([Chapter(0, "c", text)], count_real(para) * 2 + 10, 0)
    assert [c.text for c in chunks[:1]] == [para + "\n\n" + para]


def test_overlap_repeats_trailing_sentences():
    chunks = run([Chapter(0, "c", PROSE)], 60, 20)
    assert len(chunks) > 3
    for prev, nxt in zip(chunks, chunks[1:]):
        assert prev.end > nxt.start  # they overlap
        assert count_real(PROSE[nxt.start:prev.end]) <= 20 + 2


def test_japanese_text_without_spaces_is_bounded():
    text = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。" * 30
    chunks = run([Chapter(0, "c", text)], 50, 10)
    assert all(c.token_count <= 50 for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)


def test_chunks_never_span_chapters_and_empty_chapters_give_none():
    chapters = [Chapter(0, "a", PROSE), Chapter(1, "empty", "  \n "), Chapter(2, "b", PROSE)]
    chunks = run(chapters, 80, 10)
    assert {c.chapter_index for c in chunks} == {0, 2}
    assert chunks[0].position == 0 and next(c for c in chunks if c.chapter_index == 2).position == 0


@pytest.mark.parametrize(
    "limits", [dict(max_tokens=4, overlap_tokens=0), dict(max_tokens=100, overlap_tokens=60),
               dict(max_tokens=100, overlap_tokens=-1), dict(max_tokens=100, overlap_tokens=0, hard_cap_tokens=50)]
)
def test_bad_limits_are_config_errors(limits):
    with pytest.raises(ConfigError):
        chunking.chunk_chapters([], count_tokens=len, **limits)


# --------------------------------------------------------------------------- real books

SAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "samples" / "books"


@functools.cache
def sample(name: str):
    from agentic_pipeline.ingest.extract import extract

    return extract(SAMPLES / name)


@pytest.mark.parametrize("name", ["fsm-drivers.pdf", "r-intro.pdf", "kusamakura-ja.epub", "waste-land.epub"])
def test_real_books_chunk_within_limits_and_cover_everything(name):
    book = sample(name)
    chunks = run(book.chapters, 256, 32)
    check_properties(book.chapters, chunks, 256, 512, count_real)
    assert len({c.chapter_index for c in chunks}) == sum(1 for c in book.chapters if c.text.strip())


def test_code_in_a_real_pdf_is_never_cut_between_chunks():
    book = sample("fsm-drivers.pdf")
    chunks = run(book.chapters, 128, 16, keep=True)
    checked = 0
    for chapter in book.chapters:
        mine = [c for c in chunks if c.chapter_index == chapter.index]
        for block in chunking._blocks(chapter.text):
            if block.kind != "code" or count_real(chapter.text[block.start:block.end]) > 256:
                continue
            assert any(c.start <= block.start and block.end <= c.end for c in mine), chapter.text[block.start:block.end]
            checked += 1
    assert checked >= 20
    assert any("struct file_operations memory_fops = {" in c.text and "release: memory_release" in c.text for c in chunks)


def test_an_html_pre_block_stays_in_one_chunk_when_code_is_kept_whole(tmp_path):
    from agentic_pipeline.ingest.extract import extract

    code = "Package: hello\nDepends: libc6\n\nDescription: say hello\n the classic greeting\n\n$ make\ncc -o hello hello.c"
    page = tmp_path / "guide.html"
    page.write_text("<html><body><h1>Packaging</h1><p>" + "Some prose before the control file. " * 30 + "</p><pre>"
                    + code + "</pre><p>" + "And prose after it. " * 30 + "</p></body></html>", encoding="utf-8")
    book = extract(page)
    chunks = chunking.chunk_chapters(book.chapters, max_tokens=40, overlap_tokens=0,
                                     count_tokens=lambda t: len(t.split()), keep_code_whole=True)
    holding = [c for c in chunks if "Depends:" in c.text or "Description:" in c.text or "$ make" in c.text]
    assert len(holding) == 1 and all(part in holding[0].text for part in ("Depends:", "Description:", "cc -o hello"))
