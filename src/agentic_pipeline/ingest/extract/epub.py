"""EPUB 2/3 extraction over zipfile + lxml (package) + selectolax (XHTML text).

Built to survive what real files do: ``#fragment`` spine hrefs and several spine entries
pointing at one file (deduplicated), manifest items absent from the zip (skipped with a
warning), ``mimetype`` not first or with a trailing CRLF, non-ASCII entry names stored
without the UTF-8 flag. One chapter per spine document, titled from the nav document or
NCX, else from its first heading, else "Section N"; a document the table of contents splits
at several anchors is cut there; tiny documents (cover, title page) fold into the next one.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import unicodedata
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

from agentic_pipeline import errors
from agentic_pipeline.ingest import metadata, model, text_stats
from agentic_pipeline.ingest.extract import chapters, epub_package, html, quality
from agentic_pipeline.ingest.extract.limits import Limits

_XHTML_TYPES = ("application/xhtml+xml", "text/html", "application/xml", "text/xml", "")
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError, NotImplementedError)


class _Archive:
    """A zip archive whose entries are found by their normalized, decoded names."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
            infos = self.zip.infolist()
        except _READ_ERRORS as exc:
            raise errors.CorruptFile(f"corrupt or unreadable EPUB: {path.name}: {exc}", path=str(path)) from exc
        unpacked = sum(info.file_size for info in infos)
        if unpacked > limits.max_unpacked:
            self.zip.close()
            raise errors.BookTooLarge(
                f"the book exceeds the configured size limits: {path.name} unpacks to {unpacked:,} bytes "
                f"(limit {limits.max_unpacked:,}; a zip bomb?)",
                path=str(path),
            )
        self.names = {_key(_decoded_name(info)): info for info in infos}
        self.folded = {key.casefold(): info for key, info in self.names.items()}

    def find(self, name: str) -> zipfile.ZipInfo | None:
        key = _key(name)
        return self.names.get(key) or self.folded.get(key.casefold())

    def read(self, name: str) -> bytes | None:
        """Bytes of an entry; None if it is absent. Damaged entries raise CorruptFile."""
        info = self.find(name)
        if info is None:
            return None
        try:
            return self.zip.read(info)
        except _READ_ERRORS as exc:
            raise errors.CorruptFile(
                f"corrupt or unreadable EPUB: {self.path.name}: entry {name}: {exc}", path=str(self.path)
            ) from exc

    def close(self) -> None:
        self.zip.close()


def read(path: Path, limits: Limits) -> model.ExtractedBook:
    """Extract an EPUB (a zip the sniffer found); UnsupportedFormat if the zip is no EPUB."""
    archive = _Archive(path, limits)
    try:
        return _extract(archive, limits)
    finally:
        archive.close()


def _extract(archive: _Archive, limits: Limits) -> model.ExtractedBook:
    path = archive.path
    warnings: list[str] = []
    _check_mimetype(archive, warnings)
    _check_drm(archive)
    opf_path, package = _package(archive)
    toc = _toc(archive, package)
    docs = _spine_documents(archive, package, warnings)
    toc.rebase(docs)
    parts: list[chapters.Part] = []
    counts: list[int] = []
    texts: list[str] = []
    source_words = 0
    for doc_path in docs:
        doc = _document(archive, doc_path, toc, warnings)
        parts.extend(doc.parts)
        counts.extend(doc.counts)
        texts.append(doc.text)
        source_words += doc.words
    if source_words == 0:
        raise errors.NoTextLayer(f"no text layer: {path.name} holds no text (images only?)", path=str(path))
    full_text = "\n\n".join(texts)
    quality.check_garbage(full_text, path, limits.max_garbage_ratio)
    built = _with_paths(chapters.build(parts, line_titles=False, words=counts), toc, chapters.clean_title(package.title))
    meta = model.Metadata(
        title=chapters.clean_title(metadata.title_or_none(package.title) or package.title) or path.stem,
        authors=metadata.split_authors(package.authors, path=str(path)),
        language=package.language,
        identifiers=package.identifiers,
        format="epub",
        page_count=len(package.spine),
        isbn=metadata.find_isbn(package.identifiers),
    )
    method = ("nav" if toc.kind == "nav" else "ncx" if toc.kind == "ncx" else "spine") if len(built) > 1 else "single"
    return model.ExtractedBook(meta, built, source_words, tuple(warnings), method)


def _with_paths(built: tuple[model.Chapter, ...], toc: "_Toc", book_title: str = "") -> tuple[model.Chapter, ...]:
    """Give each chapter its place in the TOC's hierarchy ("Book One › VIII") when it has one.

    Chapters and chapter-level entries are both in reading order (tiny parts were merged away), so
    each chapter takes the next entry with its title: repeated titles ("VIII" in every book) stay apart.
    """
    out, i = [], 0
    for ch in built:
        j = next((k for k in range(i, len(toc.paths)) if toc.paths[k][0] == ch.title), None)
        path = toc.paths[j][1] if j is not None else ""
        if book_title and path.startswith(book_title + " › "):  # the book's own title heads its nav: no news
            path = path[len(book_title) + 3:]
        if j is not None:
            i = j + 1
        out.append(dataclasses.replace(ch, path=path) if path and path != ch.title else ch)
    return tuple(out)


def _check_mimetype(archive: _Archive, warnings: list[str]) -> None:
    data = archive.read("mimetype")
    if data is None:
        warnings.append("no mimetype entry")
    elif data.strip() != b"application/epub+zip":
        warnings.append(f"unexpected mimetype {data.strip()[:60]!r}")


#: encryption.xml algorithms that only obfuscate embedded fonts (IDPF, Adobe): the text is readable
_FONT_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")
_ALGORITHM = re.compile(rb"""Algorithm\s*=\s*["']([^"']+)["']""")
_CIPHER_URI = re.compile(rb"""<(?:\w+:)?CipherReference[^>]*URI\s*=\s*["']([^"']+)["']""")


def _check_drm(archive: _Archive) -> None:
    """DRM (Adobe ADEPT, Apple FairPlay, Readium LCP...) encrypts the documents themselves: say so plainly."""
    data = archive.read("META-INF/encryption.xml")
    if not data:
        return
    algorithms = {a.decode("ascii", "replace") for a in _ALGORITHM.findall(data)} - {""}
    encrypted = [u.decode("utf-8", "replace") for u in _CIPHER_URI.findall(data)]
    texts = [u for u in encrypted if u.lower().rsplit(".", 1)[-1] in ("xhtml", "html", "htm", "xml", "opf", "ncx")]
    if texts and not algorithms <= set(_FONT_OBFUSCATION):
        raise errors.PasswordProtected(
            f"DRM protected: {archive.path.name} has {len(texts)} encrypted documents "
            f"(META-INF/encryption.xml); only a DRM-free copy can be read", path=str(archive.path))


def _package(archive: _Archive) -> tuple[str, epub_package.Package]:
    container = archive.read("META-INF/container.xml")
    named = epub_package.rootfile(container) if container else None
    opf_path = named
    if opf_path is None or archive.find(opf_path) is None:
        opf_path = next((n for n in archive.names if n.lower().endswith(".opf")), None)
    if opf_path is None:
        if named:
            raise errors.CorruptFile(f"corrupt or unreadable EPUB: {archive.path.name}: META-INF/container.xml "
                                     f"names the package {named}, which is not in the archive", path=str(archive.path))
        raise errors.UnsupportedFormat(
            f"unsupported format: {archive.path.name} is a zip archive but not an EPUB "
            "(no META-INF/container.xml and no .opf package)",
            path=str(archive.path),
        )
    package = epub_package.parse_opf(archive.read(opf_path) or b"", opf_path)
    if package is None:
        raise errors.CorruptFile(
            f"corrupt or unreadable EPUB: {archive.path.name}: the OPF package {opf_path} does not parse",
            path=str(archive.path),
        )
    return opf_path, package


class _Toc:
    """Table of contents entries at the chapter level, indexed by document."""

    def __init__(self, kind: str, entries: list[epub_package.TocEntry]) -> None:
        self.kind = kind
        self.level = chapters.pick_level(e[0] for e in entries)
        self.title_of: dict[str, str] = {}
        self.anchors: dict[str, list[tuple[str, str]]] = {}
        #: (title, "Parent › Title") of every entry, in reading order
        self.paths: list[tuple[str, str]] = []
        stack: list[str] = []
        top = min((e[0] for e in entries), default=0)
        skip = top + 1 if sum(1 for e in entries if e[0] == top) == 1 else top  # a lone top entry is the book title
        for level, title, _doc, _fragment in entries:
            stack = (stack + [""] * level)[:level] + [chapters.clean_title(title)]
            self.paths.append((stack[-1], " › ".join(t for t in stack[skip:] if t)))
        for level, title, doc, fragment in sorted(entries, key=lambda e: e[0]):
            self.title_of.setdefault(_key(doc), title)
            if level == self.level:
                self.anchors.setdefault(_key(doc), []).append((fragment, title))

    def rebase(self, docs: list[str]) -> None:
        """Re-point entries whose path matches no spine document to the one with the same file name.

        Some generators (Sphinx) write nav hrefs relative to the wrong folder. When several
        documents share the name (one per translation), the first in reading order wins.
        """
        keys = [_key(d) for d in docs]
        by_name: dict[str, str] = {}
        for key in keys:
            by_name.setdefault(posixpath.basename(key), key)
        known = set(keys)
        for table in (self.title_of, self.anchors):
            for key in [k for k in table if k not in known]:
                target = by_name.get(posixpath.basename(key))
                if target is not None and target not in table:
                    table[target] = table.pop(key)


def _toc(archive: _Archive, package: epub_package.Package) -> _Toc:
    """Entries from the EPUB 3 nav document, else the NCX; a broken one is ignored."""
    for item in package.manifest.values():
        if "nav" in item.properties.split():
            entries = epub_package.parse_nav(archive.read(item.path) or b"", item.path)
            if entries:
                return _Toc("nav", entries)
    ncx = package.manifest.get(package.ncx_id or "") or next(
        (i for i in package.manifest.values() if i.media_type == "application/x-dtbncx+xml"), None
    )
    if ncx is not None:
        entries = epub_package.parse_ncx(archive.read(ncx.path) or b"", ncx.path)
        if entries:
            return _Toc("ncx", entries)
    return _Toc("spine", [])


def _spine_documents(archive: _Archive, package: epub_package.Package, warnings: list[str]) -> list[str]:
    """Distinct spine documents in reading order; absent or non-text ones dropped with a warning."""
    docs: list[str] = []
    seen: set[str] = set()
    missing: list[str] = []
    for idref in package.spine:
        item = package.manifest.get(idref)
        if item is None:
            missing.append(f"id {idref}")
            continue
        key = _key(item.path)
        if key in seen or item.media_type not in _XHTML_TYPES and not item.media_type.endswith("html"):
            continue
        seen.add(key)
        if archive.find(item.path) is None:
            missing.append(item.path)
            continue
        docs.append(item.path)
    if missing:
        warnings.append(f"{len(missing)} spine item(s) missing from the archive, skipped: {', '.join(missing[:10])}")
    if not docs:
        raise errors.CorruptFile(
            f"corrupt or unreadable EPUB: {archive.path.name}: no readable document in the spine",
            path=str(archive.path),
        )
    return docs


class _Document(NamedTuple):
    """One spine document: its parts (several if the TOC cuts it at anchors) with their word counts."""

    parts: list[chapters.Part]
    counts: list[int]
    text: str
    words: int


def _document(archive: _Archive, doc: str, toc: _Toc, warnings: list[str]) -> _Document:
    """Read one spine document; a damaged entry is skipped with a warning."""
    try:
        data = archive.read(doc) or b""
    except errors.CorruptFile as exc:
        warnings.append(f"damaged document skipped: {doc}: {exc.__cause__}")
        return _Document([], [], "", 0)
    anchors = toc.anchors.get(_key(doc), [])
    titles = {frag: title for frag, title in anchors if frag}
    order: list[str] = []
    if len(anchors) >= 2:
        data, order = html.mark_ids(html.utf8(data), titles)
    toc_title = toc.title_of.get(_key(doc))
    try:
        text, heading, words = html.to_text(data, heading=not toc_title)
    except errors.CorruptFile as exc:  # markup nested past any real book's: refused, never skipped quietly
        raise errors.CorruptFile(f"corrupt or unreadable EPUB: {archive.path.name}: {doc}: {exc}",
                                 path=str(archive.path)) from exc
    title = toc_title or heading
    if not order:
        return _Document([(title, text)], [words], text, words)
    segments = text.split(html.MARK)
    parts = [(title, segments[0])] + [(titles[frag], seg) for frag, seg in zip(order, segments[1:])]
    return _Document(parts, [text_stats.count_words(seg) for _, seg in parts], text.replace(html.MARK, ""), words)


def _decoded_name(info: zipfile.ZipInfo) -> str:
    """Entry name; names stored as UTF-8 without the UTF-8 flag are decoded as UTF-8."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name.replace("\\", "/").lstrip("/"))
