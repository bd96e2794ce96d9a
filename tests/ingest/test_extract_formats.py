"""Format sniffing, Markdown/HTML splitting and the text statistics extraction relies on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentic_pipeline.ingest import text_stats
from agentic_pipeline.ingest.extract import SUPPORTED_SUFFIXES, detect_format, extract, html, sniff

from .conftest import BOOKS, BROKEN

PARTS = ["I. THE BURIAL OF THE DEAD", "II. A GAME OF CHESS", "III. THE FIRE SERMON"]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (BOOKS / "waste-land.epub", "zip"),
        (BOOKS / "r-intro.pdf", "pdf"),
        (BOOKS / "waste-land.html", "html"),
        (BOOKS / "waste-land.md", "markdown"),
        (BROKEN / "not-a-pdf.pdf", "text"),
        (BROKEN / "truncated.epub", "zip"),
    ],
    ids=lambda v: getattr(v, "name", v),
)
def test_detect_format_by_content(path, kind):
    assert detect_format(path) == kind


def test_sniff_is_pure_over_the_head_bytes():
    head = (BOOKS / "r-intro.pdf").read_bytes()[: sniff.HEAD_BYTES]
    assert sniff.sniff(head, ".epub") == "pdf"
    assert sniff.sniff(b"", ".pdf") == "empty"
    assert sniff.mislabeled("pdf", "book.epub") is None  # content wins when it is a book format
    assert sniff.mislabeled("text", "notes.txt") is None
    assert sniff.mislabeled("text", "book.PDF").startswith("not a PDF: book.PDF is plain text")
    assert {".epub", ".pdf", ".txt", ".md", ".html"} <= SUPPORTED_SUFFIXES


@pytest.mark.parametrize("name", ["waste-land.html", "waste-land.md"])
def test_html_and_markdown_split_on_headings(name):
    book = extract(BOOKS / name)
    assert book.split_method == "headings"
    assert [c.title for c in book.chapters][:3] == PARTS
    assert book.metadata.title == "The Waste Land"
    assert book.word_count / book.source_word_count >= 0.9


def test_cjk_words_count_per_character():
    text = (BOOKS / "waste-land.md").read_text(encoding="utf-8")
    assert text_stats.count_words("吾輩は猫である") == 7
    assert text_stats.count_words("Debian リファレンス 2.100") == 8
    assert text_stats.count_words(text) == len(text.split())


def test_garbage_ratio_separates_mojibake_from_real_text():
    book = extract(BOOKS / "live-manual-de.epub")
    assert text_stats.garbage_ratio(book.text) < 0.02
    russian = "Плавающие объекты и таблицы"
    mojibake = russian.encode("cp1251").decode("latin-1")  # what lshort-ru's text layer holds
    assert text_stats.garbage_ratio(mojibake) > 0.9
    assert text_stats.garbage_ratio(russian) == 0.0
    assert text_stats.garbage_ratio("E/x.sc/e.sc/r.sc/c.sc/i.sc/s.sc/e.sc/s.sc") == 1.0
    assert text_stats.garbage_ratio("Élève à l’école, déjà Straße") == 0.0
    assert text_stats.garbage_ratio("") == 0.0


_PIECES = st.sampled_from(["word", "é", "x.", " ", "  ", "\n", "\t", "\u00a0", "\u3000", "\u2029", "\u2028", "\r\n", "\u2009"])


@given(st.lists(_PIECES, max_size=40))
def test_html_layout_is_canonical_and_counts_like_split(pieces):
    text, words = html._layout("".join(pieces))
    assert words == len(text.split())
    for bad in ("  ", " \n", "\n ", "\n\n\n", "\t", "\u00a0"):
        assert bad not in text
    assert text == text.strip()


@pytest.mark.parametrize("name", ["waste-land.epub", "romeo-juliet.epub", "live-manual-de.epub", "kusamakura-ja.epub", "waste-land.html"])
def test_source_word_count_is_the_word_count_of_the_text(name):
    book = extract(BOOKS / name)
    assert book.source_word_count == text_stats.count_words("\n\n".join(c.text for c in book.chapters))


def test_pre_keeps_its_layout_while_the_prose_around_it_is_laid_out():
    doc = ("<html><body><p>Run   this\n  first:</p>"
           "<pre class='src'>\n<span class=\"kw\">def</span> <span class=\"fn\">f</span>(x):\r\n"
           "    <span class=\"kw\">return</span>  x\n\n\n\n    # done\n</pre>"
           "<p>Then\tthis.<br/>And that.</p><pre>a  b</pre>tail</body></html>").encode()
    got = html.to_text(doc)
    assert got.text == ("Run this first:\n\n```\ndef f(x):\n    return  x\n\n    # done\n```\n\nThen this.\nAnd that."
                        "\n\n```\na  b\n```\n\ntail")
    assert got.words == len(got.text.split())


@given(st.lists(st.sampled_from(["猫", "リ", "한", "word", "x.", " ", "\n", "\u3000", "é", "2.1", "\u00a0"]), max_size=40))
def test_count_words_counts_each_cjk_character_and_each_other_run(pieces):
    text = "".join(pieces)
    assert text_stats.count_words(text) == len(text_stats._WORD.findall(text))


def test_ruby_readings_are_not_part_of_the_text():
    got = html.to_text("<p><ruby>障子<rp>(</rp><rt>しょうじ</rt><rp>)</rp></ruby>が立て切ってある</p>".encode())
    assert got.text == "障子が立て切ってある" and got.words == 10


def test_markdown_comments_in_indented_code_are_not_headings(tmp_path):
    md = tmp_path / "guide.md"
    body = "Some words about this part of the guide, enough to be a chapter of its own. " * 40 + "\n\n"
    md.write_text("# Guide\n\n## Getting started\n\n" + body + "    # install the tools\n    make install\n\n"
                  "## Variables\n\n" + body + "\t# set one\n\tx=1\n\n## Loops\n\n" + body, encoding="utf-8")
    titles = [c.title for c in extract(md).chapters]
    assert "install the tools" not in titles and "set one" not in titles
    assert {"Getting started", "Variables", "Loops"} <= set(titles)


def test_table_cells_and_unclosed_blocks_keep_their_words_apart():
    got = html.to_text(b"<table><tr><td>Fruit</td><th>Colour</th></tr><tr><td>Apple<td>Red</table>"
                       b"<p>word<p>Second<hr>Third<li>item")
    assert got.text.split() == ["Fruit", "Colour", "Apple", "Red", "word", "Second", "Third", "item"]
    assert got.words == 8


@pytest.mark.parametrize("name, data, expected", [
    ("stray.txt", ("Chapter One\n\n" + "“Call me Ishmael.” Some years ago, never mind how long. " * 80).encode()[:900]
     + b"\xff" + ("Chapter One\n\n" + "“Call me Ishmael.” Some years ago, never mind how long. " * 80).encode()[900:],
     "“Call me Ishmael.”"),
    ("ru.txt", ("Глава первая\n\n" + "Плавающие объекты и таблицы, это пример русского текста о книгах. " * 60).encode("cp1251"),
     "Плавающие объекты"),
    ("ja.txt", ("第一章\n\n" + "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。" * 60).encode("shift_jis"),
     "吾輩は猫である"),
    ("meta.html", ("<html><head><meta charset=windows-1251></head><body><h1>Глава</h1><p>"
                   + "Плавающие объекты и таблицы. " * 80 + "</p></body></html>").encode("cp1251"), "Плавающие объекты"),
])
def test_text_in_other_encodings_and_with_a_stray_byte_reads_as_written(tmp_path, name, data, expected):
    path = tmp_path / name
    path.write_bytes(data)
    book = extract(path)
    assert expected in "\n".join(c.text for c in book.chapters)


def test_markdown_front_matter_gives_title_author_language_and_stays_out_of_the_text(tmp_path):
    md = tmp_path / "notes.md"
    body = "Words of the section, enough of them to make a real chapter here. " * 40
    md.write_text('---\ntitle: "YAML in Practice"\nauthor: Ada Lovelace and Grace Hopper\nlang: en-GB\n'
                  "tags: [a, b]\n---\n\n## Introduction\n\n" + body + "\n\n## Details\n\n" + body, encoding="utf-8")
    book = extract(md)
    assert book.metadata.title == "YAML in Practice" and book.metadata.language == "en-GB"
    assert book.metadata.authors == ("Ada Lovelace", "Grace Hopper")
    assert "tags:" not in book.chapters[0].text and "title:" not in book.chapters[0].text
    assert [c.title for c in book.chapters] == ["Introduction", "Details"]


def test_epub_illustrators_and_translators_are_not_authors():
    from agentic_pipeline.ingest.extract import epub_package

    opf = (b'<package xmlns="http://www.idpf.org/2007/opf" xmlns:opf="http://www.idpf.org/2007/opf">'
           b'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T</dc:title>'
           b'<dc:creator opf:role="aut">Jane Writer</dc:creator><dc:creator opf:role="ill">Ian Illus</dc:creator>'
           b'<dc:creator id="c3">Tom Trans</dc:creator><meta refines="#c3" property="role">trl</meta>'
           b'<dc:creator>Second Author</dc:creator></metadata><manifest/><spine/></package>')
    assert epub_package.parse_opf(opf, "OEBPS/content.opf").authors == ("Jane Writer", "Second Author")
    editors_only = opf.replace(b'opf:role="aut"', b'opf:role="edt"').replace(b"<dc:creator>Second Author</dc:creator>", b"")
    assert epub_package.parse_opf(editors_only, "x.opf").authors == ("Jane Writer", "Ian Illus", "Tom Trans")


@pytest.mark.parametrize("raw, names", [
    ("Achim Zeileis, Gabor Grothendieck", ("Achim Zeileis", "Gabor Grothendieck")),
    ("Zeileis, Achim", ("Achim Zeileis",)),
    ("A. One and B. Two; C Three", ("A. One", "B. Two", "C Three")),
    ("R Core Team", ("R Core Team",)),
])
def test_pdf_author_fields_split_into_names(raw, names):
    from agentic_pipeline.ingest.extract import pdf

    assert pdf._authors(raw) == names


def test_a_pdf_without_a_title_field_takes_the_largest_text_on_its_first_page():
    book = extract(BOOKS / "r-intro.pdf")  # its Title field is empty
    assert book.metadata.title == "An Introduction to R"


def test_text_running_heads_are_not_chapters_and_chapter_one_is_not_the_title(tmp_path):
    page = "Words of the text on this page, enough for a real chapter to form here. " * 30
    pages = []
    for n in range(1, 10):  # text saved from a PDF: the running head comes back on every page
        chapter = 1 if n < 5 else 2
        name = "Introduction and preliminaries" if chapter == 1 else "Simple manipulations"
        pages.append(f"Chapter {chapter}: {name} {n}\n\n{page}\n")
    txt = tmp_path / "history.txt"
    txt.write_text("A Short History of Things\n\nChapter 1\n\n" + page + "\n\nChapter 2\n\n" + page + "\n\n"
                   + "\n".join(pages), encoding="utf-8")
    book = extract(txt)
    titles = [c.title for c in book.chapters]
    assert not any("preliminaries" in t for t in titles) and len(book.chapters) <= 3
    assert book.metadata.title == "A Short History of Things"


def test_numbered_chapter_headings_are_not_mistaken_for_running_heads():
    from agentic_pipeline.ingest.extract import text

    doc = "# Book\n\n## Chapter 1\n\nOne.\n\n## Chapter 2\n\nTwo.\n\n## Chapter 3\n\nThree.\n"
    assert [t for _o, _l, t in text.find_headings(doc, markdown=True)] == ["Book", "Chapter 1", "Chapter 2", "Chapter 3"]
