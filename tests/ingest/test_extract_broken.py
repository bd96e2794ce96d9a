"""Bad files raise their specific BookError with a message that names the file; content beats suffix."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from agentic_pipeline import errors
from agentic_pipeline.ingest.extract import extract

from .conftest import BOOKS, BROKEN

# file -> (error class, fragment the message must contain)
FAILING = {
    "empty.epub": (errors.EmptyFile, "empty file"),
    "truncated.epub": (errors.CorruptFile, "corrupt or unreadable EPUB"),
    "truncated.pdf": (errors.CorruptFile, "corrupt or unreadable PDF"),
    "password.pdf": (errors.PasswordProtected, "password protected"),
    "scan-huckfinn.pdf": (errors.NoTextLayer, "no text layer: scanned pages need OCR"),
    "garbled-ru.pdf": (errors.GarbageText, "garbage"),
    "not-a-pdf.pdf": (errors.UnsupportedFormat, "not a PDF: not-a-pdf.pdf is plain text (no %PDF header)"),
}


@pytest.mark.parametrize("name", list(FAILING))
def test_broken_sample_raises_its_specific_error(name):
    cls, fragment = FAILING[name]
    with pytest.raises(cls) as info:
        extract(BROKEN / name)
    assert fragment in str(info.value)
    assert name in str(info.value)
    assert isinstance(info.value, errors.BookError) and info.value.permanent


def test_driver_errors_are_chained_not_leaked():
    with pytest.raises(errors.CorruptFile) as info:
        extract(BROKEN / "truncated.epub")
    assert isinstance(info.value.__cause__, zipfile.BadZipFile)


def test_text_named_pdf_says_how_to_read_it(tmp_path):
    with pytest.raises(errors.UnsupportedFormat, match=r"rename it to \.txt to ingest it as text"):
        extract(BROKEN / "not-a-pdf.pdf")
    renamed = tmp_path / "not-a-pdf.txt"
    shutil.copy(BROKEN / "not-a-pdf.pdf", renamed)
    book = extract(renamed)
    assert book.metadata.format == "text"
    assert book.metadata.title == "Debian Developer's Reference"
    assert "1. Scope of This Document" in [c.title for c in book.chapters]
    assert book.word_count / book.source_word_count >= 0.9


def test_html_named_epub_is_not_an_epub(tmp_path):
    target = tmp_path / "waste-land.epub"
    shutil.copy(BOOKS / "waste-land.html", target)
    with pytest.raises(errors.UnsupportedFormat, match=r"not an EPUB: waste-land.epub is an HTML document .*\.html"):
        extract(target)


def test_pdf_named_epub_is_read_as_pdf(tmp_path):
    target = tmp_path / "ltnews36.epub"
    shutil.copy(BOOKS / "ltnews36.pdf", target)
    book = extract(target)
    assert book.metadata.format == "pdf" and book.metadata.page_count == 4


def test_epub_named_txt_is_read_as_epub(tmp_path):
    target = tmp_path / "romeo.txt"
    shutil.copy(BOOKS / "romeo-juliet.epub", target)
    assert extract(target).metadata.format == "epub"


def test_zip_that_is_not_an_epub_is_unsupported(tmp_path):
    target = tmp_path / "archive.epub"
    with zipfile.ZipFile(target, "w") as archive:
        archive.write(BOOKS / "waste-land.md", "waste-land.md")
    with pytest.raises(errors.UnsupportedFormat, match="not an EPUB"):
        extract(target)


def test_binary_junk_is_unsupported(tmp_path):
    target = tmp_path / "cover.epub"
    with zipfile.ZipFile(BOOKS / "waste-land.epub") as archive:
        target.write_bytes(archive.read("EPUB/wasteland-cover.jpg"))
    with pytest.raises(errors.UnsupportedFormat, match="JPEG image"):
        extract(target)


def test_size_limits_are_enforced():
    with pytest.raises(errors.BookTooLarge, match="113 pages"):
        extract(BOOKS / "r-intro.pdf", max_pages=100)
    with pytest.raises(errors.BookTooLarge, match="bytes"):
        extract(BOOKS / "r-intro.pdf", max_bytes=100_000)
    with pytest.raises(errors.BookTooLarge, match="zip bomb"):
        extract(BOOKS / "romeo-juliet.epub", max_unpacked=100_000)


def test_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(errors.InputError):
        extract(tmp_path / "nope.epub")
    with pytest.raises(errors.InputError, match="not a file"):
        extract(tmp_path)


def _rezip(target, replace: dict[str, bytes], drop: set[str] = frozenset()):
    with zipfile.ZipFile(BOOKS / "waste-land.epub") as src, zipfile.ZipFile(target, "w") as out:
        for info in src.infolist():
            if info.filename in drop or info.filename in replace:
                continue
            out.writestr(info, src.read(info.filename))
        for name, data in replace.items():
            out.writestr(name, data)


def test_a_drm_protected_epub_says_so(tmp_path):
    target = tmp_path / "drm.epub"
    encryption = (b'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                  b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                  b'<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
                  b'<enc:CipherData><enc:CipherReference URI="EPUB/wasteland-content.xhtml"/></enc:CipherData>'
                  b'</enc:EncryptedData></encryption>')
    _rezip(target, {"META-INF/encryption.xml": encryption})
    with pytest.raises(errors.PasswordProtected, match="DRM protected"):
        extract(target)
    fonts_only = encryption.replace(b"http://www.w3.org/2001/04/xmlenc#aes128-cbc", b"http://www.idpf.org/2008/embedding")
    _rezip(target, {"META-INF/encryption.xml": fonts_only})
    assert extract(target).chapters  # obfuscated fonts: the text is readable


def test_a_container_naming_a_missing_package_says_which(tmp_path):
    target = tmp_path / "lost.epub"
    container = (b'<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                 b'<rootfiles><rootfile full-path="OEBPS/gone.opf" media-type="application/oebps-package+xml"/>'
                 b'</rootfiles></container>')
    with zipfile.ZipFile(BOOKS / "waste-land.epub") as src:
        opfs = {n for n in src.namelist() if n.endswith(".opf")}
    _rezip(target, {"META-INF/container.xml": container}, drop=opfs)
    with pytest.raises(errors.CorruptFile, match="names the package OEBPS/gone.opf, which is not in the archive"):
        extract(target)


def test_a_pdf_with_no_pages_says_so(tmp_path):
    import pypdfium2 as pdfium

    target = tmp_path / "zero.pdf"
    with open(target, "wb") as f:
        pdfium.PdfDocument.new().save(f)  # a well-formed PDF with an empty page tree
    with pytest.raises((errors.EmptyFile, errors.CorruptFile), match="no pages") as info:
        extract(target)
    assert "Success" not in str(info.value)
